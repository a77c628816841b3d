//! `ferry migrate`: Cassandra → YugabyteDB/PostgreSQL, resumable, with a summary and a run record.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use clap::Args;
use ferry_migrate::job;
use ferry_migrate::pipeline::Mode;
use ferry_migrate::progress::Verdict;
use serde_json::json;

use super::job::ConfigArgs;
use super::output;

use crate::exit::{Exit, Resumable};

#[derive(Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Create missing target tables from the source schema.
    #[arg(long)]
    pub create_tables: bool,
    /// Forget stored progress and start over (refused when the target has rows, unless --truncate).
    #[arg(long)]
    pub fresh: bool,
    /// With --fresh or --replay: empty the target table first (both refuse a table with rows
    /// without it).
    #[arg(long)]
    pub truncate: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Validate the migrated tables at the end, as `ferry validate` does (also on with
    /// migration.validation.enabled=true); exit code 1 when they differ beyond rejected rows.
    #[arg(long)]
    pub validate: bool,
    /// Measurement: read and encode everything, write no rows (the source side's limit).
    #[arg(long, conflicts_with_all = ["capture", "replay"])]
    pub scan_only: bool,
    /// Measurement: as --scan-only, keeping each chunk's encoded COPY payload in DIR.
    #[arg(long, value_name = "DIR", conflicts_with = "replay")]
    pub capture: Option<std::path::PathBuf>,
    /// Measurement: load the payloads --capture left in DIR into the (emptied) target table,
    /// reading nothing from Cassandra (the target side's limit).
    #[arg(long, value_name = "DIR")]
    pub replay: Option<std::path::PathBuf>,
    /// Serve a live page (throughput, chunks, per-node latency, bottleneck), `/metrics`
    /// (Prometheus) and `/api/status` (JSON) at ADDR while the migration runs, e.g.
    /// 127.0.0.1:4040.
    #[arg(long, value_name = "ADDR")]
    pub ui: Option<std::net::SocketAddr>,
    /// Catch-up pass: copy, as upserts, only the rows written at or after TIME (an RFC 3339
    /// time, or `last`: when the table's previous completed pass started), less
    /// ferry.clockSkewSecs. Resumable like any run.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["scan_only", "capture", "replay", "fresh"])]
    pub since: Option<String>,
    /// Keep the live page up this many seconds after the migration ends.
    #[arg(long, value_name = "SECS", default_value_t = 0, requires = "ui")]
    pub ui_linger: u64,
}

pub async fn run(args: MigrateArgs) -> Result<Exit> {
    let started = SystemTime::now();
    if args.truncate && !args.fresh && args.replay.is_none() {
        anyhow::bail!(
            "--truncate empties the target table only with --fresh or --replay; add one of them, or drop --truncate to resume"
        );
    }
    let loaded = super::job::load(&args.config)?;
    let mut job = super::job::job(&args.config, &loaded, args.create_tables)?;
    job.fresh = args.fresh;
    job.truncate = args.truncate;
    job.since = args.since.as_deref().map(job::Since::parse).transpose()?;
    job.exact_counts =
        args.validate || (loaded.spec.run.validation.enabled && loaded.spec.table_options.validate);
    job.settings.mode = if args.scan_only {
        Mode::ScanOnly
    } else if let Some(dir) = &args.capture {
        Mode::Capture(dir.clone())
    } else if let Some(dir) = &args.replay {
        Mode::Replay(dir.clone())
    } else {
        Mode::Migrate
    };
    let prepared = job::prepare_to_copy(&job).await?;
    for n in &prepared.notes {
        eprintln!("ferry: note: {n}");
    }

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "\nferry: stopping: finishing the chunks in flight (Ctrl-C again to abort)"
                );
                stop.store(true, Ordering::Relaxed);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(Exit::Stopped.code().into());
                }
            }
        });
    }
    let live = super::ui::Live::new(&prepared.facts.version);
    live.set_source_latency_target(job.settings.source_latency_target_ms);
    let server = match args.ui {
        Some(addr) => {
            let s = super::ui::serve(addr, live.clone()).await?;
            eprintln!("ferry: live page at http://{}/ (metrics: /metrics)", s.addr);
            Some(s)
        }
        None => None,
    };
    let progress = output::Progress::new(args.json);
    // An error once a table has started copying leaves a stored plan and committed chunks: a
    // rerun resumes (exit code 4); before that, the run was refused (exit code 2).
    let copying = AtomicBool::new(false);
    let reports = job::run(&job, &prepared, &stop, &|t, counters, bound| {
        copying.store(true, Ordering::Relaxed);
        let done_before = match (&bound.verdict, &bound.stored) {
            (Verdict::Resume { .. }, Some(s)) => Some(s.done_chunks),
            _ => None,
        };
        if server.is_some() {
            live.add_table(t, counters, done_before);
        }
        let name = t.mapping.source.qualified();
        for l in &t.plan.large_partitions {
            eprintln!("ferry: {name}: {}", l.describe());
        }
        match (&bound.verdict, &bound.stored) {
            (Verdict::Resume { .. }, Some(s)) => eprintln!(
                "ferry: resuming {name}: {} of {} chunks already done, {} rows copied by earlier runs",
                s.done_chunks, s.chunks, s.rows_done
            ),
            (Verdict::Restart, Some(s)) => eprintln!(
                "ferry: {} did not exist and this run created it: the stored progress of {name} \
                 ({} of {} chunks, {} rows) is void; copying it from the start",
                t.mapping.qualified_target(),
                s.done_chunks,
                s.chunks,
                s.rows_done
            ),
            _ => {}
        }
        if let Some((there, exact, recorded)) = bound.count_mismatch() {
            eprintln!(
                "ferry: warning: {} holds {}{there} rows but earlier runs recorded {recorded} as \
                 copied: rows were deleted or added outside ferry — `ferry validate` shows which",
                t.mapping.qualified_target(),
                if exact { "" } else { "about " }
            );
        }
        progress.start(t, counters)
    })
    .await;
    progress.finish();
    if let Some(server) = server {
        live.finish(match &reports {
            Ok(_) if stop.load(Ordering::Relaxed) => "stopped",
            Ok(_) => "done",
            Err(_) => "failed",
        });
        if args.ui_linger > 0 {
            eprintln!(
                "ferry: live page stays up {} s at http://{}/",
                args.ui_linger, server.addr
            );
            tokio::time::sleep(std::time::Duration::from_secs(args.ui_linger)).await;
        }
    }
    let reports = match reports {
        Err(e) if copying.load(Ordering::Relaxed) => return Err(e.context(Resumable)),
        r => r?,
    };

    let rejected: u64 = reports.iter().map(|r| r.rows_rejected).sum();
    let written: u64 = reports.iter().map(|r| r.rows_written).sum();
    let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    let secs = started.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let faults = output::Faults::of(&reports, prepared.admin_faults());
    let summary = json!({
        "tables": reports.iter().map(output::report_json).collect::<Vec<_>>(),
        "faults": output::faults_json(&faults),
        "rows_written": written,
        "rows_rejected": rejected,
        "reject_file": if rejected > 0 { Some(job.settings.reject_file.display().to_string()) } else { None },
        "target": prepared.facts.version,
        "large_partitions": prepared.tables.iter().flat_map(|t| t.plan.large_partitions.iter().map(|l| {
            let mut v = output::large_partition_json(l);
            v["source"] = json!(t.mapping.source.qualified());
            v
        })).collect::<Vec<_>>(),
        "stopped_early": stop.load(Ordering::Relaxed),
        "wait_seconds": {
            "source": reports.iter().map(|r| r.source_wait.as_secs_f64()).sum::<f64>(),
            "target": reports.iter().map(|r| r.target_wait.as_secs_f64()).sum::<f64>(),
            "encode": reports.iter().map(|r| r.encode.as_secs_f64()).sum::<f64>(),
        },
        "bottleneck": output::bottleneck_side(
            reports.iter().map(|r| r.source_wait).sum(),
            reports.iter().map(|r| r.target_wait).sum(),
            reports.iter().map(|r| r.encode).sum(),
        ),
    });
    let mut record = output::run_record(
        "migration",
        started,
        json!({
            "config_file": args.config.config.display().to_string(),
            "overrides": output::overrides(&args.config.set),
            "workers": job.settings.writers,
            "fetch_size_rows": job.settings.fetch_size_rows,
            "batch_rows": job.settings.batch_rows,
            "insert_mode": format!("{:?}", job.settings.insert_mode),
            "mode": format!("{:?}", job.settings.mode),
        }),
    );
    record.target = Some(prepared.facts.version.clone());
    record.summary = [
        ("records_per_sec", written as f64 / secs.max(1e-9)),
        ("mb_per_sec", bytes as f64 / 1e6 / secs.max(1e-9)),
        ("rows_written", written as f64),
        ("rows_rejected", rejected as f64),
        ("seconds", secs),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    record.result = Some(summary.clone());
    let record_path = output::write_run_record(&loaded.spec.run.runs_dir, &record)?;
    if args.json {
        output::print_json("migrate", &summary)?;
    } else {
        print!("{}", output::summary_table(&reports));
        if let Some(line) = output::latency_line(&reports, job.settings.source_latency_target_ms) {
            print!("{line}");
        }
        if let Some(line) = output::faults_line(&faults) {
            print!("{line}");
        }
        println!(
            "target: {}",
            prepared.facts.version.split(" on ").next().unwrap_or("")
        );
        println!("run record: {}", record_path.display());
        if rejected > 0 {
            println!(
                "{rejected} rows rejected (not written): see {}",
                job.settings.reject_file.display()
            );
        }
    }
    let validate =
        args.validate || (loaded.spec.run.validation.enabled && loaded.spec.table_options.validate);
    if validate
        && !stop.load(Ordering::Relaxed)
        && super::validate::after_migrate(&job, &prepared, &loaded, &args.config, args.json).await?
    {
        return Ok(Exit::CheckFailed);
    }
    if stop.load(Ordering::Relaxed) {
        eprintln!(
            "ferry: stopped; what was committed stays. Resume with the same command:\n  {}",
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        return Ok(Exit::Stopped);
    }
    Ok(if rejected > 0 {
        Exit::Rejected
    } else {
        Exit::Success
    })
}
