//! `ferry baseline SUITE.toml`: every probe of a suite into one baseline record, each
//! expectation marked met or missed with its figure.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct BaselineArgs {
    /// The suite (TOML: [[probe]] tables with type, name, expect and the probe's settings).
    pub suite: PathBuf,
    /// Write the run record here (default: runs/baseline-<unix ms>.json).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub async fn run(args: BaselineArgs) -> Result<Exit> {
    let text = std::fs::read_to_string(&args.suite)
        .with_context(|| format!("reading the suite {}", args.suite.display()))?;
    let suite =
        ferry_bench::suite::parse(&text).with_context(|| format!("in {}", args.suite.display()))?;
    let record = ferry_bench::suite::run(&suite, |r| {
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
    for h in ferry_report::hints::hints(&record) {
        println!("hint ({}, {}): {}", h.resource, h.probe, h.message);
    }
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| super::bench::default_path("baseline"));
    record
        .save(&path)
        .with_context(|| format!("saving the run record to {}", path.display()))?;
    println!("run record: {}", path.display());
    let failed = record.probes.iter().any(|p| p.error.is_some());
    let missed = record
        .probes
        .iter()
        .flat_map(|p| &p.expectations)
        .any(|e| !e.met);
    Ok(if failed || missed {
        Exit::CheckFailed
    } else {
        Exit::Success
    })
}
