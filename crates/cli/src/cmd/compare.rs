//! `ferry compare BEFORE AFTER [--min-improvement 30%] [--metric records_per_sec]`: each
//! metric before and after, the change, and whether it is beyond run-to-run noise; with a
//! threshold, the seed's "verify 30%+ improvement" as an exit code.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use ferry_report::compare::{self, Gate, Options, ProbeComparison};
use ferry_report::metric::Direction;
use ferry_report::RunRecord;
use ferry_stats::Description;
use serde_json::json;

use super::output;

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
    /// Judge only these probes (by name; repeatable): e.g. the ones a tuning was meant for.
    /// Every probe is still compared and shown.
    #[arg(long = "probe", value_name = "NAME")]
    pub probes: Vec<String>,
    /// The metric the gate judges.
    #[arg(long, default_value = "records_per_sec")]
    pub metric: String,
    /// Significance level of Welch's t-test.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Print the comparison (and the gate's outcome) as one JSON object on stdout
    /// (docs/json.md); the exit code is the same.
    #[arg(long)]
    pub json: bool,
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
    if let Some(p) = args
        .probes
        .iter()
        .find(|p| !comparisons.iter().any(|c| &c.name == *p))
    {
        anyhow::bail!(
            "--probe {p}: no probe of that name is in both records (compared: {})",
            comparisons
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let judged: Vec<ProbeComparison> = comparisons
        .iter()
        .filter(|c| args.probes.is_empty() || args.probes.contains(&c.name))
        .cloned()
        .collect();
    let gate = args.min_improvement.map(|min| {
        compare::gate(
            &judged,
            &Gate {
                metric: args.metric.clone(),
                min_improvement: min,
            },
        )
    });
    let exit = match &gate {
        Some(g) if !g.passed => Exit::CheckFailed,
        _ => Exit::Success,
    };
    if args.json {
        let side = |path: &std::path::Path, r: &RunRecord| json!({"path": path.display().to_string(), "kind": r.kind, "started_at": r.started_at});
        output::print_json(
            "compare",
            &json!({
                "before": side(&args.before, &before),
                "after": side(&args.after, &after),
                "alpha": args.alpha,
                "probes": comparisons.iter().map(probe_json).collect::<Vec<_>>(),
                "gate": gate.as_ref().map(|g| json!({
                    "metric": args.metric,
                    "min_improvement": args.min_improvement,
                    "passed": g.passed,
                    "lines": g.lines,
                })),
            }),
        )?;
        return Ok(exit);
    }
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
    let (Some(min), Some(outcome)) = (args.min_improvement, gate) else {
        return Ok(exit);
    };
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
    } else {
        println!(
            "gate: FAILED (needs {} ≥ {:.0}% better, beyond noise)",
            args.metric,
            min * 100.0
        );
    }
    Ok(exit)
}

/// One probe's comparison: every metric with both sides' medians and spread, the change, the
/// tests behind the verdict.
fn probe_json(p: &ProbeComparison) -> serde_json::Value {
    let side = |d: &Option<Description>| {
        d.as_ref().map(|d| {
            json!({"n": d.n, "median": d.median, "mad": d.mad, "mean": d.mean, "min": d.min, "max": d.max})
        })
    };
    json!({
        "name": p.name,
        "kind": p.kind,
        "sample_units": {"before": p.sample_units.0, "after": p.sample_units.1},
        "metrics": p.metrics.iter().map(|m| json!({
            "metric": m.metric,
            "direction": match m.direction {
                Direction::HigherIsBetter => "higher_is_better",
                Direction::LowerIsBetter => "lower_is_better",
                Direction::Neutral => "neutral",
            },
            "before": side(&m.before),
            "after": side(&m.after),
            "change": m.change,
            "improvement": m.improvement,
            "improvement_ci": m.improvement_ci.map(|i| json!({"low": i.low, "high": i.high, "level": i.level})),
            "welch_p": m.welch.map(|w| w.p),
            "verdict": m.verdict.as_str(),
        })).collect::<Vec<_>>(),
    })
}
