//! `ferry baseline SUITE.toml`: every probe of a suite into one baseline record, each
//! expectation marked met or missed with its figure.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::output;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct BaselineArgs {
    /// The suite (TOML: [[probe]] tables with type, name, expect and the probe's settings).
    pub suite: PathBuf,
    /// Replace one probe's setting for this run, PROBE.KEY=VALUE (repeatable), e.g.
    /// `--set redis.pipeline=16`: the tuned rerun of the same suite. Recorded in the record.
    #[arg(long = "set", value_name = "PROBE.KEY=VALUE", value_parser = ferry_bench::suite::parse_override)]
    pub sets: Vec<ferry_bench::suite::Override>,
    /// Write the run record here (default: runs/baseline-<unix ms>.json).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the outcome as one JSON object on stdout (docs/json.md).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: BaselineArgs) -> Result<Exit> {
    let text = std::fs::read_to_string(&args.suite)
        .with_context(|| format!("reading the suite {}", args.suite.display()))?;
    let suite = ferry_bench::suite::parse_with(&text, &args.sets)
        .with_context(|| format!("in {}", args.suite.display()))?;
    let mut record = ferry_bench::suite::run(&suite, |r| {
        if args.json {
            return;
        }
        match &r.error {
            Some(e) => println!("{}: FAILED: {e}", r.label()),
            None => println!("{}: {}", r.label(), super::bench::summary_line(r)),
        }
        for e in &r.expectations {
            println!(
                "  expect {}: {} (actual {})",
                e.expect,
                if e.met { "met" } else { "MISSED" },
                e.actual
                    .map(ferry_report::metric::fmt_value)
                    .unwrap_or_else(|| "absent".into())
            );
        }
    })
    .await;
    if !args.sets.is_empty() {
        record.parameters.insert(
            "set".into(),
            json!(args
                .sets
                .iter()
                .map(|o| format!("{}.{}={}", o.probe, o.key, o.value))
                .collect::<Vec<_>>()),
        );
    }
    let hints = ferry_report::hints::hints(&record);
    if !args.json {
        for h in &hints {
            println!("hint ({}, {}): {}", h.resource, h.probe, h.message);
        }
    }
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| super::bench::default_path("baseline"));
    record
        .save(&path)
        .with_context(|| format!("saving the run record to {}", path.display()))?;
    let failed = record.probes.iter().any(|p| p.error.is_some());
    let missed = record
        .probes
        .iter()
        .flat_map(|p| &p.expectations)
        .any(|e| !e.met);
    if args.json {
        output::print_json(
            "baseline",
            &json!({
                "probes": record.probes.iter().map(|p| json!({
                    "name": p.label(),
                    "kind": p.kind,
                    "summary_line": super::bench::summary_line(p),
                    "summary": p.summary,
                    "expectations": p.expectations,
                    "error": p.error,
                })).collect::<Vec<_>>(),
                "hints": hints.iter().map(|h| json!({"probe": h.probe, "resource": h.resource, "message": h.message})).collect::<Vec<_>>(),
                "passed": !(failed || missed),
                "run_record": path.display().to_string(),
            }),
        )?;
    } else {
        println!("run record: {}", path.display());
    }
    Ok(if failed || missed {
        Exit::CheckFailed
    } else {
        Exit::Success
    })
}
