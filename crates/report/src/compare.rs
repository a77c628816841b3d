//! Before vs after: per metric, medians with spread, the change, and whether the change is
//! beyond noise — then the improvement gate ("verify 30%+ improvement").
//!
//! A change counts as real only when both tests agree: Welch's t-test (p < α) and the bootstrap
//! interval of the change of medians excluding zero. One value per side (a single migration
//! run) can never be called a change: the gate fails and says to repeat the run.

use ferry_stats::{describe, relative_change_ci, welch_t_test, Description, Interval, WelchTest};

use crate::metric::{self, Direction};
use crate::record::RunRecord;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Significance level of the t-test.
    pub alpha: f64,
    /// Confidence level of the bootstrap interval.
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            alpha: 0.05,
            level: 0.95,
            resamples: 4000,
            seed: 0x5eed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Better,
    Worse,
    /// The difference is within run-to-run noise.
    Noise,
    /// Fewer than two samples on a side: no statement possible.
    TooFewSamples,
    /// A count or setting: not judged.
    Unjudged,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::Noise => "noise",
            Verdict::TooFewSamples => "too few samples",
            Verdict::Unjudged => "-",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MetricChange {
    pub metric: String,
    pub direction: Direction,
    pub before: Option<Description>,
    pub after: Option<Description>,
    /// `median(after) / median(before) − 1`.
    pub change: Option<f64>,
    /// The change signed so that positive is better (a latency drop is an improvement).
    pub improvement: Option<f64>,
    /// Bootstrap interval of the improvement.
    pub improvement_ci: Option<Interval>,
    pub welch: Option<WelchTest>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone)]
pub struct ProbeComparison {
    pub name: String,
    pub kind: String,
    pub metrics: Vec<MetricChange>,
    /// What a sample was on each side (`window`, `repetition`).
    pub sample_units: (Option<String>, Option<String>),
}

/// Pairs the measurements of two records (by probe name; two single measurements pair
/// regardless) and compares every metric either side reports.
pub fn compare(before: &RunRecord, after: &RunRecord, opts: &Options) -> Vec<ProbeComparison> {
    let (bs, as_) = (before.measurements(), after.measurements());
    let mut pairs: Vec<(&RunRecord, &RunRecord)> = Vec::new();
    if bs.len() == 1 && as_.len() == 1 {
        pairs.push((bs[0], as_[0]));
    } else {
        for b in &bs {
            if let Some(a) = as_.iter().find(|a| a.label() == b.label()) {
                pairs.push((b, a));
            }
        }
    }
    pairs
        .into_iter()
        .map(|(b, a)| compare_measurements(b, a, opts))
        .collect()
}

/// Compares two measurements of the same probe.
pub fn compare_measurements(b: &RunRecord, a: &RunRecord, opts: &Options) -> ProbeComparison {
    let mut names: Vec<&String> = b.summary.keys().chain(a.summary.keys()).collect();
    names.sort_by_key(|m| metric::rank(m));
    names.dedup();
    let metrics = names
        .into_iter()
        .map(|m| compare_metric(m, &b.values(m), &a.values(m), opts))
        .collect();
    ProbeComparison {
        name: if b.label() == a.label() {
            b.label().to_string()
        } else {
            format!("{} → {}", b.label(), a.label())
        },
        kind: a.kind.clone(),
        metrics,
        sample_units: (b.sample_unit.clone(), a.sample_unit.clone()),
    }
}

/// Compares one metric's raw values.
pub fn compare_metric(metric: &str, before: &[f64], after: &[f64], opts: &Options) -> MetricChange {
    let direction = metric::direction(metric);
    let (db, da) = (describe(before), describe(after));
    let change = match (&db, &da) {
        (Some(b), Some(a)) if b.median != 0.0 => Some(a.median / b.median - 1.0),
        _ => None,
    };
    let sign = match direction {
        Direction::LowerIsBetter => -1.0,
        _ => 1.0,
    };
    let improvement = change.map(|c| sign * c);
    let enough = db.as_ref().is_some_and(|d| d.n >= 2) && da.as_ref().is_some_and(|d| d.n >= 2);
    // A bootstrap of one value per side is a point, not an interval: leave it out.
    let ci = if !enough {
        None
    } else {
        relative_change_ci(before, after, opts.level, opts.resamples, opts.seed)
    }
    .map(|ci| {
        if sign < 0.0 {
            Interval {
                estimate: -ci.estimate,
                low: -ci.high,
                high: -ci.low,
                level: ci.level,
            }
        } else {
            ci
        }
    });
    let welch = welch_t_test(before, after);
    let verdict = if direction == Direction::Neutral {
        Verdict::Unjudged
    } else if !enough {
        Verdict::TooFewSamples
    } else {
        let significant =
            welch.is_some_and(|w| w.p < opts.alpha) && ci.is_some_and(|ci| ci.excludes_zero());
        match improvement {
            Some(i) if significant && i > 0.0 => Verdict::Better,
            Some(i) if significant && i < 0.0 => Verdict::Worse,
            _ => Verdict::Noise,
        }
    };
    MetricChange {
        metric: metric.to_string(),
        direction,
        before: db,
        after: da,
        change,
        improvement,
        improvement_ci: ci,
        welch,
        verdict,
    }
}

/// The improvement gate: `metric` must be better beyond noise by at least `min_improvement`
/// (0.30 = 30%) in every compared probe that reports it.
#[derive(Debug, Clone)]
pub struct Gate {
    pub metric: String,
    pub min_improvement: f64,
}

#[derive(Debug, Clone)]
pub struct GateOutcome {
    pub passed: bool,
    /// One sentence per probe checked, with the figures behind it.
    pub lines: Vec<String>,
}

pub fn gate(comparisons: &[ProbeComparison], gate: &Gate) -> GateOutcome {
    let want = gate.min_improvement * 100.0;
    let mut lines = Vec::new();
    let mut passed = true;
    let mut checked = 0;
    if metric::direction(&gate.metric) == Direction::Neutral {
        return GateOutcome {
            passed: false,
            lines: vec![format!(
                "{} has no better direction (it is a count or a setting); gate on a rate (…_per_sec) or a latency (…_ms)",
                gate.metric
            )],
        };
    }
    for c in comparisons {
        let Some(m) = c.metrics.iter().find(|m| m.metric == gate.metric) else {
            continue;
        };
        checked += 1;
        let imp = m.improvement.map(|i| i * 100.0);
        let ci = m
            .improvement_ci
            .map(|ci| {
                format!(
                    ", {:.0}% CI [{:+.1}%, {:+.1}%]",
                    ci.level * 100.0,
                    ci.low * 100.0,
                    ci.high * 100.0
                )
            })
            .unwrap_or_default();
        let p = m
            .welch
            .map(|w| format!(", p = {}", fmt_p(w.p)))
            .unwrap_or_default();
        let figure = match imp {
            Some(i) => format!("improvement {i:+.1}%{ci}{p}"),
            None => "no value on one side".to_string(),
        };
        let (ok, why) = match (m.verdict, imp) {
            (Verdict::Better, Some(i)) if i >= want => (true, format!("≥ {want:.0}%")),
            (Verdict::Better, Some(_)) => (false, format!("real, but below {want:.0}%")),
            (Verdict::TooFewSamples, _) => (
                false,
                "fewer than 2 samples on a side: cannot tell a change from noise (repeat the runs)"
                    .to_string(),
            ),
            (Verdict::Noise, _) => (false, "within noise".to_string()),
            (Verdict::Worse, _) => (false, "worse".to_string()),
            _ => (false, "not comparable".to_string()),
        };
        passed &= ok;
        lines.push(format!(
            "{} {}: {} {figure} — {why}",
            if ok { "PASS" } else { "FAIL" },
            c.name,
            metric::label(&gate.metric)
        ));
    }
    if checked == 0 {
        passed = false;
        lines.push(format!("FAIL: no compared probe reports {}", gate.metric));
    }
    GateOutcome { passed, lines }
}

pub fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Median ± MAD, e.g. `11,241 ±320 (n=10)`.
pub fn fmt_side(d: &Option<Description>) -> String {
    match d {
        None => "-".into(),
        Some(d) if d.n == 1 => metric::fmt_value(d.median),
        Some(d) => format!(
            "{} ±{} (n={})",
            metric::fmt_value(d.median),
            metric::fmt_value(d.mad),
            d.n
        ),
    }
}

/// The comparison as a plain-text table, one block per probe.
pub fn render_text(comparisons: &[ProbeComparison]) -> String {
    let mut out = String::new();
    for c in comparisons {
        out.push_str(&format!("{} ({})\n", c.name, c.kind));
        if let (Some(b), Some(a)) = &c.sample_units {
            out.push_str(&format!(
                "  samples: {b}s before, {a}s after; value = median ±MAD\n"
            ));
        }
        out.push_str(&format!(
            "  {:<22} {:>24} {:>24} {:>9} {:>20} {:>8}  {}\n",
            "metric", "before", "after", "change", "improvement CI", "p", "verdict"
        ));
        for m in &c.metrics {
            out.push_str(&format!(
                "  {:<22} {:>24} {:>24} {:>9} {:>20} {:>8}  {}\n",
                m.metric,
                fmt_side(&m.before),
                fmt_side(&m.after),
                m.change
                    .map(|c| format!("{:+.1}%", c * 100.0))
                    .unwrap_or_else(|| "-".into()),
                m.improvement_ci
                    .map(|ci| format!("[{:+.1}%, {:+.1}%]", ci.low * 100.0, ci.high * 100.0))
                    .unwrap_or_else(|| "-".into()),
                m.welch.map(|w| fmt_p(w.p)).unwrap_or_else(|| "-".into()),
                m.verdict.as_str()
            ));
        }
        out.push('\n');
    }
    if comparisons.is_empty() {
        out.push_str("nothing to compare: the two records share no probe name\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options::default()
    }

    #[test]
    fn a_run_against_itself_is_noise_and_fails_the_gate() {
        let xs = [100.0, 104.0, 98.0, 101.0, 99.0];
        let m = compare_metric("records_per_sec", &xs, &xs, &opts());
        assert_eq!(m.verdict, Verdict::Noise);
        let c = ProbeComparison {
            name: "k".into(),
            kind: "kafka-produce".into(),
            metrics: vec![m],
            sample_units: (None, None),
        };
        let g = gate(
            &[c],
            &Gate {
                metric: "records_per_sec".into(),
                min_improvement: 0.3,
            },
        );
        assert!(!g.passed, "{:?}", g.lines);
    }

    #[test]
    fn a_real_latency_drop_is_an_improvement() {
        let before = [10.0, 11.0, 10.5, 10.2, 10.8, 10.1];
        let after = [5.0, 5.2, 4.9, 5.1, 5.3, 5.0];
        let m = compare_metric("p99_ms", &before, &after, &opts());
        assert_eq!(m.verdict, Verdict::Better);
        assert!(m.improvement.unwrap() > 0.45);
        let ci = m.improvement_ci.unwrap();
        assert!(ci.low > 0.4 && ci.high < 0.6, "{ci:?}");
    }

    #[test]
    fn gate_thresholds() {
        let before = [100.0, 101.0, 99.0, 100.5, 99.5];
        let mk = |f: f64| {
            let after: Vec<f64> = before.iter().map(|x| x * f).collect();
            vec![ProbeComparison {
                name: "p".into(),
                kind: "k".into(),
                metrics: vec![compare_metric("records_per_sec", &before, &after, &opts())],
                sample_units: (None, None),
            }]
        };
        let g = Gate {
            metric: "records_per_sec".into(),
            min_improvement: 0.3,
        };
        assert!(gate(&mk(1.5), &g).passed);
        assert!(!gate(&mk(1.2), &g).passed);
        assert!(!gate(&mk(0.5), &g).passed);
    }

    #[test]
    fn single_values_are_never_called_a_change() {
        let m = compare_metric("records_per_sec", &[100.0], &[200.0], &opts());
        assert_eq!(m.verdict, Verdict::TooFewSamples);
        assert_eq!(m.change, Some(1.0));
    }
}
