//! What a report says, computed once from the run records and rendered twice (Markdown, HTML),
//! so the two can never disagree.

use std::collections::BTreeMap;

use ferry_stats::{mean, percentile};

use crate::compare::{self, ProbeComparison};
use crate::hints::{self, Hint};
use crate::record::{ExpectationResult, HostFacts, RunRecord};

/// A run record and where it came from.
#[derive(Debug, Clone)]
pub struct Input {
    /// Shown in the report, e.g. the file name.
    pub source: String,
    pub record: RunRecord,
}

/// One measurement with its place in the report.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub source: String,
    pub service: String,
    pub record: RunRecord,
}

#[derive(Debug, Clone, Default)]
pub struct Resources {
    pub cpu_avg: f64,
    pub cpu_peak: f64,
    pub self_cpu_avg: f64,
    pub mem_peak: f64,
    pub disk_read_mb_s: f64,
    pub disk_write_mb_s: f64,
    pub disk_busy_avg: f64,
    pub net_rx_mb_s: f64,
    pub net_tx_mb_s: f64,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub first_start: f64,
    pub last_end: f64,
    pub records: usize,
    pub hosts: Vec<HostFacts>,
    /// Service name → its measurements, oldest first.
    pub services: BTreeMap<String, Vec<Measurement>>,
    pub expectations: Vec<(String, ExpectationResult)>,
    pub hints: Vec<Hint>,
    /// Per probe measured more than once: its first run against its last.
    pub improvements: Vec<(String, String, ProbeComparison)>,
    pub failures: Vec<(String, String)>,
}

/// The service a kind of record measures, as the report's headings name it.
pub fn service_of(rec: &RunRecord) -> String {
    let yb = rec.target.as_deref().is_some_and(|t| t.contains("-YB-"));
    match rec.kind.as_str() {
        k if k.starts_with("kafka") => "Kafka".into(),
        "postgres" if yb => "YugabyteDB".into(),
        "postgres" => "PostgreSQL".into(),
        "cassandra" => "Cassandra".into(),
        "trino" => "Trino".into(),
        "redis" => "Redis".into(),
        "ray" => "Ray".into(),
        "http" => "HTTP".into(),
        "migration" => "Migration (Cassandra → PostgreSQL/YugabyteDB)".into(),
        other => other.to_string(),
    }
}

pub fn resources(rec: &RunRecord) -> Option<Resources> {
    let hs = if rec.host_samples.len() > 2 {
        &rec.host_samples[1..]
    } else {
        &rec.host_samples[..]
    };
    if hs.is_empty() {
        return None;
    }
    let s = |f: fn(&crate::record::HostSample) -> f64| hs.iter().map(f).collect::<Vec<f64>>();
    let avg = |v: Vec<f64>| mean(&v).unwrap_or(0.0);
    let peak = |v: Vec<f64>| percentile(&v, 100.0).unwrap_or(0.0);
    Some(Resources {
        cpu_avg: avg(s(|h| h.cpu_busy_pct)),
        cpu_peak: peak(s(|h| h.cpu_busy_pct)),
        self_cpu_avg: avg(s(|h| h.self_cpu_pct)),
        mem_peak: peak(s(|h| h.mem_used_pct)),
        disk_read_mb_s: avg(s(|h| h.disk_read_mb_s)),
        disk_write_mb_s: avg(s(|h| h.disk_write_mb_s)),
        disk_busy_avg: avg(s(|h| h.disk_busy_pct)),
        net_rx_mb_s: avg(s(|h| h.net_rx_mb_s)),
        net_tx_mb_s: avg(s(|h| h.net_tx_mb_s)),
    })
}

pub fn build(inputs: &[Input]) -> Report {
    let mut all: Vec<Measurement> = Vec::new();
    let mut expectations = Vec::new();
    let mut hints = Vec::new();
    let mut failures = Vec::new();
    let mut hosts: Vec<HostFacts> = Vec::new();
    for input in inputs {
        // The same machine, whatever optional facts each record carries.
        let same = |h: &HostFacts| {
            let r = &input.record.host;
            (&h.hostname, h.cpus, &h.cpu_model, h.memory_mb, &h.os)
                == (&r.hostname, r.cpus, &r.cpu_model, r.memory_mb, &r.os)
        };
        if !hosts.iter().any(same) {
            hosts.push(input.record.host.clone());
        }
        for e in &input.record.expectations {
            expectations.push((input.record.label().to_string(), e.clone()));
        }
        hints.extend(hints::hints(&input.record));
        for m in input.record.measurements() {
            for e in &m.expectations {
                if !std::ptr::eq(m, &input.record) {
                    expectations.push((m.label().to_string(), e.clone()));
                }
            }
            if let Some(err) = &m.error {
                failures.push((m.label().to_string(), err.clone()));
            }
            all.push(Measurement {
                source: input.source.clone(),
                service: service_of(m),
                record: m.clone(),
            });
        }
    }
    all.sort_by(|a, b| a.record.started_at.total_cmp(&b.record.started_at));
    let mut services: BTreeMap<String, Vec<Measurement>> = BTreeMap::new();
    for m in &all {
        services
            .entry(m.service.clone())
            .or_default()
            .push(m.clone());
    }
    // Improvements: a probe (same kind and name) measured more than once, first vs last.
    let mut by_probe: BTreeMap<(String, String), Vec<&Measurement>> = BTreeMap::new();
    for m in &all {
        by_probe
            .entry((m.record.kind.clone(), m.record.label().to_string()))
            .or_default()
            .push(m);
    }
    let opts = compare::Options::default();
    let improvements = by_probe
        .values()
        .filter(|ms| ms.len() >= 2 && ms.iter().all(|m| m.record.error.is_none()))
        .map(|ms| {
            let (b, a) = (ms[0], ms[ms.len() - 1]);
            (
                b.source.clone(),
                a.source.clone(),
                compare::compare_measurements(&b.record, &a.record, &opts),
            )
        })
        .collect();
    Report {
        first_start: all
            .iter()
            .map(|m| m.record.started_at)
            .fold(f64::INFINITY, f64::min),
        last_end: all.iter().map(|m| m.record.ended_at).fold(0.0, f64::max),
        records: inputs.len(),
        hosts,
        services,
        expectations,
        hints,
        improvements,
        failures,
    }
}

/// Unix seconds as `2026-11-24 14:50:54 UTC`.
pub fn fmt_time(unix: f64) -> String {
    chrono::DateTime::from_timestamp(unix.floor() as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{unix}"))
}

/// What one of a kind's `records_per_sec` counts, e.g. `tasks/s` for Ray: two figures share a
/// chart axis only when their units are equal.
pub fn throughput_unit(kind: &str) -> &'static str {
    match kind {
        "postgres" => "transactions/s",
        "cassandra" | "redis" => "operations/s",
        "trino" => "queries/s",
        "ray" => "tasks/s",
        "http" => "requests/s",
        "migration" => "rows/s",
        _ => "records/s",
    }
}

/// The one figure that stands for a measurement in the executive summary: the metric of its
/// first expectation (what the team said it cares about), else its throughput.
pub fn headline_metric(rec: &RunRecord) -> Option<String> {
    rec.expectations
        .first()
        .map(|e| e.metric.clone())
        .or_else(|| {
            rec.summary
                .contains_key(crate::metric::RECORDS_PER_SEC)
                .then(|| crate::metric::RECORDS_PER_SEC.to_string())
        })
        .or_else(|| {
            rec.summary
                .keys()
                .find(|k| k.ends_with("_per_sec"))
                .cloned()
        })
}

/// A metric's value with its unit as a reader says it: `95,000 records/s`, `p99 3.2 ms`.
pub fn fmt_metric(rec: &RunRecord, metric: &str, v: f64) -> String {
    use crate::metric::{fmt_value, label, RECORDS_PER_SEC};
    if metric == RECORDS_PER_SEC {
        format!("{} {}", fmt_value(v), throughput_unit(&rec.kind))
    } else if let Some(m) = metric.strip_suffix("_ms") {
        format!(
            "{} {} ms",
            m.replace("p999", "p99.9").replace('_', " "),
            fmt_value(v)
        )
    } else {
        format!("{} {}", fmt_value(v), label(metric))
    }
}

/// The headline of a measurement: the figures a reader wants first.
pub fn headline(rec: &RunRecord) -> String {
    use crate::metric::fmt_value;
    let s = &rec.summary;
    let mut parts = Vec::new();
    let unit = throughput_unit(&rec.kind);
    if let Some(v) = s.get("records_per_sec") {
        parts.push(format!("**{} {unit}**", fmt_value(*v)));
    }
    if let Some(v) = s.get("mb_per_sec") {
        parts.push(format!("{} MB/s", fmt_value(*v)));
    }
    for (k, l) in [("p50_ms", "p50"), ("p99_ms", "p99")] {
        if let Some(v) = s.get(k) {
            parts.push(format!("{l} {} ms", fmt_value(*v)));
        }
    }
    // Trino's own figures (the round's totals when a probe runs several queries).
    for (k, l) in [("elapsed_ms", "elapsed"), ("cpu_ms", "CPU")] {
        if rec.kind == "trino" {
            if let Some(v) = s.get(k) {
                parts.push(format!("{l} {} ms", fmt_value(*v)));
            }
        }
    }
    for (k, l) in [
        ("write_ops_per_sec", "writes/s"),
        ("read_ops_per_sec", "reads/s"),
        ("set_ops_per_sec", "SETs/s"),
        ("get_ops_per_sec", "GETs/s"),
        ("cpu_tasks_per_sec", "CPU-bound tasks/s"),
        ("io_tasks_per_sec", "I/O-bound tasks/s"),
    ] {
        if let Some(v) = s.get(k) {
            parts.push(format!("{} {l}", fmt_value(*v)));
        }
    }
    if let Some(r) = rec
        .server
        .as_ref()
        .and_then(|s| s.pointer("/during/cache_hit_ratio"))
        .and_then(|v| v.as_f64())
    {
        parts.push(format!("cache hit ratio {:.2}%", r * 100.0));
    }
    if let Some(r) = rec
        .server
        .as_ref()
        .and_then(|s| s.pointer("/during/keyspace_hit_ratio"))
        .and_then(|v| v.as_f64())
    {
        parts.push(format!("keyspace hit ratio {:.2}%", r * 100.0));
    }
    if let Some(c) = rec
        .server
        .as_ref()
        .and_then(|s| s.pointer("/reserved_cpus"))
        .and_then(|v| v.as_f64())
    {
        parts.push(format!(
            "on {c:.0} reserved CPU{}",
            if c == 1.0 { "" } else { "s" }
        ));
    }
    if parts.is_empty() {
        "no summary figures".into()
    } else {
        parts.join(", ")
    }
}
