//! `ferry diagnose`: latency, bandwidth, topology and configuration of both sides → a verdict per
//! check, the recommended settings, and optionally the recommended properties file.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::Args;
use ferry_migrate::diagnose::{self, properties, Endpoint, Report, Role, Verdict};
use serde_json::json;

use super::job::ConfigArgs;
use super::output;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Round trips per endpoint for the percentiles.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub samples: u32,
    /// Most rows the sample scan of the configured table reads.
    #[arg(long, default_value_t = 20_000)]
    pub scan_rows: u64,
    /// Rows the COPY probe writes into a temporary table on each target node.
    #[arg(long, default_value_t = 20_000)]
    pub copy_rows: u64,
    /// The rate to size concurrency for (default: what this machine reaches with no latency to
    /// hide, from the measurements).
    #[arg(long, value_name = "ROWS")]
    pub rows_per_sec: Option<f64>,
    /// Write the configuration file with the recommended values to FILE.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: DiagnoseArgs) -> Result<Exit> {
    let started = SystemTime::now();
    let loaded = super::job::load(&args.config)?;
    let job = super::job::job(&args.config, &loaded, false)?;
    let opts = diagnose::Options {
        samples: args.samples as usize,
        scan_rows: args.scan_rows,
        copy_rows: args.copy_rows,
        goal_rows_per_sec: args.rows_per_sec,
    };
    let report = diagnose::diagnose(&job, &loaded.spec, &opts).await;
    let recommended = report.recommendations();
    if let Some(path) = &args.write {
        let text = std::fs::read_to_string(&args.config.config)
            .with_context(|| format!("reading {}", args.config.config.display()))?;
        let header = format!(
            "added by ferry diagnose ({} samples per endpoint)",
            args.samples
        );
        std::fs::write(path, properties::rewrite(&text, &recommended, &header))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let value = serde_json::to_value(&report)?;
    let mut record = output::run_record(
        "diagnose",
        started,
        json!({
            "config_file": args.config.config.display().to_string(),
            "overrides": output::overrides(&args.config.set),
            "samples": args.samples,
            "scan_rows": args.scan_rows,
            "copy_rows": args.copy_rows,
        }),
    );
    record.result = Some(value.clone());
    let record_path = output::write_run_record(&loaded.spec.run.runs_dir, &record)?;
    if args.json {
        output::print_json("diagnose", &value)?;
    } else {
        print!("{}", render(&report));
        if !recommended.is_empty() {
            println!("\nrecommended settings:");
            for (k, v) in &recommended {
                println!("  {k}={v}");
            }
        }
        if let Some(path) = &args.write {
            println!("recommended properties written to {}", path.display());
        }
        println!("run record: {}", record_path.display());
    }
    Ok(match report.verdict() {
        Verdict::Fail => Exit::CheckFailed,
        _ => Exit::Success,
    })
}

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok  ",
        Verdict::Warn => "WARN",
        Verdict::Fail => "FAIL",
    }
}

fn endpoint_block(out: &mut String, e: &Endpoint) {
    let _ = writeln!(
        out,
        "\n  {} [{}] ({})",
        e.address,
        mark(e.verdict()).trim(),
        e.found_in.join(", ")
    );
    let mut line = Vec::new();
    if let Some(d) = e.dns_ms {
        line.push(format!("dns {d:.1} ms"));
    }
    if let Some(c) = e.connect_ms {
        line.push(format!("connect {c:.1} ms"));
    }
    if let Some(r) = e.rtt_ms {
        line.push(format!(
            "round trip p50 {:.1} / p95 {:.1} / p99 {:.1} ms",
            r.p50, r.p95, r.p99
        ));
    }
    if !line.is_empty() {
        let _ = writeln!(out, "    {}", line.join(", "));
    }
    match (&e.tls, e.login_ms) {
        (Some(t), login) => {
            let _ = writeln!(
                out,
                "    tls {} {}, certificate {} (issuer {}), expires {} ({} days)",
                t.protocol, t.cipher, t.subject, t.issuer, t.not_after, t.days_to_expiry
            );
            let of_login = login
                .map(|l| format!(" of the {l:.1} ms login"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    tls costs {} round trips ({} to ask for TLS + {} for a {} {} handshake, {:.1} ms){of_login}",
                t.round_trips(),
                t.negotiation_round_trips,
                t.handshake_round_trips,
                t.handshake_kind,
                t.protocol,
                t.handshake_ms
            );
        }
        (None, Some(login)) => {
            let _ = writeln!(out, "    tls off (clear text), login {login:.1} ms");
        }
        (None, None) => {}
    }
    if let Some(t) = e.throughput {
        let _ = writeln!(
            out,
            "    {} one stream: {:.0} rows/s, {:.1} MB/s ({} rows in {:.2} s, {} requests of {:.1} ms)",
            t.direction, t.rows_per_sec, t.mb_per_sec, t.rows, t.seconds, t.requests, t.request_ms
        );
    }
    if !e.facts.is_empty() {
        let facts: Vec<String> = e
            .facts
            .iter()
            .map(|(k, v)| {
                let v = v.split(" on ").next().unwrap_or(v);
                format!("{k}={v}")
            })
            .collect();
        let _ = writeln!(out, "    {}", facts.join(", "));
    }
    for c in &e.verdicts {
        if c.verdict == Verdict::Ok && c.name != "reachable" {
            continue;
        }
        let _ = writeln!(out, "    {} {}: {}", mark(c.verdict), c.name, c.found);
        if !c.advice.is_empty() && c.verdict != Verdict::Ok {
            let _ = writeln!(out, "         {}", c.advice);
        }
    }
}

/// The readable report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    for (role, title, facts) in [
        (Role::Source, "source (Cassandra)", &r.source_facts),
        (
            Role::Target,
            "target (PostgreSQL/YugabyteDB)",
            &r.target_facts,
        ),
    ] {
        let _ = writeln!(out, "{title}");
        for (k, v) in facts {
            let v = v.split(" on ").next().unwrap_or(v);
            let _ = writeln!(out, "  {k}: {v}");
        }
        for e in r.endpoints.iter().filter(|e| e.role == role) {
            endpoint_block(&mut out, e);
        }
        out.push('\n');
    }
    let _ = writeln!(out, "checks");
    for c in &r.checks {
        let _ = writeln!(out, "  {} {}: {}", mark(c.verdict), c.name, c.found);
        if !c.advice.is_empty() {
            let _ = writeln!(out, "       {}", c.advice);
        }
        if let (Some(k), Some(v)) = (&c.key, &c.recommended) {
            let _ = writeln!(out, "       → {k}={v}");
        }
    }
    if let Some(m) = &r.model {
        let _ = writeln!(
            out,
            "\nmodel: goal {:.0} rows/s ({}); now {} workers → {:.0} rows/s predicted; recommended {} workers → {:.0} rows/s",
            m.goal_rows_per_sec,
            m.goal_from,
            m.current.workers,
            m.current.predicted_rows_per_sec,
            m.chosen.workers,
            m.chosen.predicted_rows_per_sec
        );
    }
    let _ = writeln!(out, "\nverdict: {}", r.verdict().as_str());
    out
}
