//! `ferry compare BEFORE AFTER [--min-improvement 30%] [--metric records_per_sec]`: each
//! metric before and after, the change, and whether it is beyond run-to-run noise; with a
//! threshold, the seed's "verify 30%+ improvement" as an exit code.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ferry_report::compare::{self, Gate, Options};
use ferry_report::RunRecord;

use crate::exit::Exit;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// The run record before tuning.
    pub before: PathBuf,
    /// The run record after tuning.
    pub after: PathBuf,
    /// Fail (exit 1) unless --metric improved by at least this much beyond noise, e.g. 30%.
    #[arg(long, value_parser = parse_percent, value_name = "PERCENT")]
    pub min_improvement: Option<f64>,
    /// The metric the gate judges.
    #[arg(long, default_value = "records_per_sec")]
    pub metric: String,
    /// Significance level of Welch's t-test.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
}

/// `30%`, `30` or `0.3` → 0.30 (a bare number above 1 is read as percent).
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, pct) = match t.strip_suffix('%') {
        Some(n) => (n, true),
        None => (t, false),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("expected a percentage such as 30%, got {s:?}"))?;
    let v = if pct || v > 1.0 { v / 100.0 } else { v };
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("{s} is out of range"));
    }
    Ok(v)
}

pub async fn run(args: CompareArgs) -> Result<Exit> {
    let before = RunRecord::load(&args.before).context("reading BEFORE")?;
    let after = RunRecord::load(&args.after).context("reading AFTER")?;
    let opts = Options {
        alpha: args.alpha,
        ..Options::default()
    };
    let comparisons = compare::compare(&before, &after, &opts);
    println!(
        "before: {} ({})\nafter:  {} ({})\n",
        args.before.display(),
        ferry_report::model::fmt_time(before.started_at),
        args.after.display(),
        ferry_report::model::fmt_time(after.started_at)
    );
    print!("{}", compare::render_text(&comparisons));
    println!(
        "verdict: better/worse only when Welch's t-test (p < {}) and the 95% bootstrap interval of the change of medians agree; value = median ±MAD over the samples",
        args.alpha
    );
    let Some(min) = args.min_improvement else {
        return Ok(Exit::Success);
    };
    let outcome = compare::gate(
        &comparisons,
        &Gate {
            metric: args.metric.clone(),
            min_improvement: min,
        },
    );
    println!();
    for l in &outcome.lines {
        println!("gate: {l}");
    }
    if outcome.passed {
        println!(
            "gate: PASSED ({} improved ≥ {:.0}% beyond noise)",
            args.metric,
            min * 100.0
        );
        Ok(Exit::Success)
    } else {
        println!(
            "gate: FAILED (needs {} ≥ {:.0}% better, beyond noise)",
            args.metric,
            min * 100.0
        );
        Ok(Exit::CheckFailed)
    }
}
