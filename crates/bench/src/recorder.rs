//! Per-operation timings and what a probe makes of them: the summary (rate, MB/s, latency
//! percentiles as `kafka-producer-perf-test` prints them) and the raw samples (equal time
//! windows of the run) that `compare` tests for significance.
//!
//! Every operation is kept (12 bytes each): exact percentiles, and windows cut after the fact.

use std::time::{Duration, Instant};

use ferry_report::record::{Metrics, Sample};
use ferry_stats::percentile_sorted;

/// One finished operation.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// Microseconds from the probe's start to completion.
    pub done_us: u64,
    /// Microseconds from issue to completion.
    pub latency_us: u32,
}

/// Timings of one worker; merge workers with [`Recorder::merge`].
#[derive(Debug, Clone)]
pub struct Recorder {
    origin: Instant,
    pub ops: Vec<Op>,
    pub errors: u64,
}

impl Recorder {
    pub fn new(origin: Instant) -> Self {
        Recorder {
            origin,
            ops: Vec::new(),
            errors: 0,
        }
    }

    pub fn record(&mut self, issued: Instant, done: Instant) {
        self.ops.push(Op {
            done_us: (done - self.origin).as_micros() as u64,
            latency_us: (done - issued).as_micros().min(u32::MAX as u128) as u32,
        });
    }

    pub fn merge(&mut self, other: Recorder) {
        self.ops.extend(other.ops);
        self.errors += other.errors;
    }
}

/// Target number of windows; fewer for short runs so each window holds enough operations.
const WINDOWS: usize = 20;
const MIN_WINDOW: Duration = Duration::from_millis(100);
/// A window's percentiles mean little below this many operations.
const MIN_OPS_PER_WINDOW: usize = 25;

/// The summary and windowed samples of a set of operations over `elapsed`. Metric names get
/// `prefix` (e.g. `read_`); `records_per_sec` becomes `{prefix}ops_per_sec` when a prefix is set.
pub fn summarize(
    ops: &[Op],
    elapsed: Duration,
    bytes_per_op: f64,
    prefix: &str,
    with_latency: bool,
) -> (Metrics, Vec<Sample>) {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate_key = if prefix.is_empty() {
        "records_per_sec".to_string()
    } else {
        format!("{prefix}ops_per_sec")
    };
    let mut summary = Metrics::new();
    let n = ops.len() as f64;
    summary.insert(rate_key.clone(), n / secs);
    if bytes_per_op > 0.0 {
        summary.insert(format!("{prefix}mb_per_sec"), n * bytes_per_op / 1e6 / secs);
    }
    summary.insert(format!("{prefix}records"), n);
    if with_latency {
        latency_metrics(&mut summary, prefix, ops.iter().map(|o| o.latency_us));
    }
    // Windows: equal slices of the run; each op counts in the window where it completed.
    let windows = ((secs / MIN_WINDOW.as_secs_f64()) as usize)
        .min(ops.len() / MIN_OPS_PER_WINDOW)
        .clamp(1, WINDOWS);
    let w = secs / windows as f64;
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); windows];
    for o in ops {
        let i = ((o.done_us as f64 / 1e6) / w) as usize;
        buckets[i.min(windows - 1)].push(o.latency_us);
    }
    let samples = if windows < 2 {
        Vec::new()
    } else {
        buckets
            .into_iter()
            .enumerate()
            .map(|(i, lat)| {
                let mut m = Metrics::new();
                let k = lat.len() as f64;
                m.insert(rate_key.clone(), k / w);
                if bytes_per_op > 0.0 {
                    m.insert(format!("{prefix}mb_per_sec"), k * bytes_per_op / 1e6 / w);
                }
                if with_latency && !lat.is_empty() {
                    latency_metrics(&mut m, prefix, lat.into_iter());
                }
                Sample {
                    start_s: i as f64 * w,
                    seconds: w,
                    metrics: m,
                }
            })
            .collect()
    };
    (summary, samples)
}

/// avg, p50, p95, p99, p99.9 and max in milliseconds.
pub fn latency_metrics(m: &mut Metrics, prefix: &str, latencies_us: impl Iterator<Item = u32>) {
    let mut v: Vec<f64> = latencies_us.map(|us| us as f64 / 1000.0).collect();
    if v.is_empty() {
        return;
    }
    v.sort_by(f64::total_cmp);
    m.insert(
        format!("{prefix}avg_ms"),
        v.iter().sum::<f64>() / v.len() as f64,
    );
    for (k, p) in [("p50", 50.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9)] {
        if let Some(x) = percentile_sorted(&v, p) {
            m.insert(format!("{prefix}{k}_ms"), x);
        }
    }
    m.insert(format!("{prefix}max_ms"), v[v.len() - 1]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_run_and_rates_add_up() {
        let ops: Vec<Op> = (0..10_000)
            .map(|i| Op {
                done_us: i * 400, // 4 s
                latency_us: 1000 + (i % 100) as u32,
            })
            .collect();
        let (s, samples) = summarize(&ops, Duration::from_secs(4), 1024.0, "", true);
        assert!((s["records_per_sec"] - 2500.0).abs() < 1e-6);
        assert_eq!(samples.len(), 20);
        let total: f64 = samples
            .iter()
            .map(|x| x.metrics["records_per_sec"] * x.seconds)
            .sum();
        assert!((total - 10_000.0).abs() < 1e-6);
        assert!(s["p50_ms"] >= 1.0 && s["max_ms"] <= 1.1);
        let (s, _) = summarize(&ops, Duration::from_secs(4), 0.0, "read_", true);
        assert!(s.contains_key("read_ops_per_sec") && s.contains_key("read_p99_ms"));
    }
}
