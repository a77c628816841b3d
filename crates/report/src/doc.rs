//! The report's content as blocks (headings, paragraphs, tables, charts): the seed's
//! "Performance Baseline Report" template with every "[INSERT …]" filled from run records.
//! Built once, rendered by [`crate::markdown`] and [`crate::html`], so they cannot disagree.
//!
//! Inline text may use `**bold**` and `` `code` `` — the one bit of Markdown the HTML renderer
//! translates.

use crate::compare::{fmt_p, fmt_side, Verdict};
use crate::metric::{self, fmt_value};
use crate::model::{self, fmt_time, Measurement, Report};
use crate::record::RunRecord;

#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    H1(String),
    H2(String),
    H3(String),
    Para(String),
    Bullets(Vec<String>),
    Table(Table),
    Chart(Chart),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub head: Vec<String>,
    /// Right-aligned (numeric) columns.
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Chart {
    /// One horizontal bar per item.
    Bars {
        title: String,
        unit: String,
        items: Vec<(String, f64)>,
    },
    /// Before/after pairs of bars.
    Pairs {
        title: String,
        unit: String,
        items: Vec<(String, f64, f64)>,
    },
    /// Series over time (x in seconds from each run's start).
    Lines {
        title: String,
        unit: String,
        series: Vec<(String, Vec<(f64, f64)>)>,
    },
}

fn table(head: &[&str], numeric_from: usize, rows: Vec<Vec<String>>) -> Block {
    table_cols(head, &(numeric_from..head.len()).collect::<Vec<_>>(), rows)
}

/// A table whose `numeric` columns are right-aligned.
fn table_cols(head: &[&str], numeric: &[usize], rows: Vec<Vec<String>>) -> Block {
    Block::Table(Table {
        head: head.iter().map(|s| s.to_string()).collect(),
        numeric: (0..head.len()).map(|i| numeric.contains(&i)).collect(),
        rows,
    })
}

/// The columns of a service's table: the metrics any of its measurements reports, best first.
pub fn columns(ms: &[&RunRecord]) -> Vec<String> {
    let mut cols: Vec<String> = ms.iter().flat_map(|m| m.summary.keys().cloned()).collect();
    cols.sort_by_key(|m| metric::rank(m));
    cols.dedup();
    cols
}

fn pct(c: Option<f64>) -> String {
    c.map(|c| format!("{:+.1}%", c * 100.0))
        .unwrap_or_else(|| "-".into())
}

pub fn build(r: &Report) -> Vec<Block> {
    let mut d = vec![Block::H1("Performance Baseline Report".into())];
    let n: usize = r.services.values().map(|v| v.len()).sum();
    let mut facts = vec![
        format!(
            "**Measured**: {} – {}",
            fmt_time(r.first_start),
            fmt_time(r.last_end)
        ),
        format!("**Run records**: {} ({n} measurements)", r.records),
    ];
    for h in &r.hosts {
        facts.push(format!(
            "**Host**: {} — {} × {}, {} MB memory, {}",
            if h.hostname.is_empty() {
                "?"
            } else {
                &h.hostname
            },
            h.cpus,
            h.cpu_model,
            h.memory_mb,
            h.os
        ));
    }
    d.push(Block::Bullets(facts));

    // Executive summary: one row per probe, its headline figure, the expectation it was held
    // to, and its change since its first run — what a reader needs in one screen.
    d.push(Block::H2("Executive summary".into()));
    d.push(executive_table(r));
    d.push(Block::Para(EXECUTIVE_LEGEND.into()));
    let mut bullets = Vec::new();
    if !r.expectations.is_empty() {
        let met = r.expectations.iter().filter(|(_, e)| e.met).count();
        bullets.push(format!(
            "Expectations: {met} of {} met{}.",
            r.expectations.len(),
            if met == r.expectations.len() {
                String::new()
            } else {
                " (every miss is under Expectations)".to_string()
            }
        ));
    }
    bullets.push(format!(
        "Bottleneck hints: {}.",
        if r.hints.is_empty() {
            "none".to_string()
        } else {
            let kinds: std::collections::BTreeSet<&str> =
                r.hints.iter().map(|h| h.resource).collect();
            format!(
                "{} ({}; see Bottlenecks)",
                r.hints.len(),
                kinds.into_iter().collect::<Vec<_>>().join(", ")
            )
        }
    ));
    for (p, e) in &r.failures {
        let first = e.lines().next().unwrap_or(e);
        bullets.push(format!("**{p} failed**: {}", shorten(first, 160)));
    }
    d.push(Block::Bullets(bullets));

    // Baseline metrics per service.
    d.push(Block::H2("Baseline metrics per service".into()));
    // One chart per unit: tasks/s, operations/s and queries/s never share an axis.
    let mut by_unit: std::collections::BTreeMap<&str, Vec<(String, f64)>> = Default::default();
    for m in r.services.values().flatten() {
        if let Some(v) = m.record.summary.get(metric::RECORDS_PER_SEC) {
            by_unit
                .entry(model::throughput_unit(&m.record.kind))
                .or_default()
                .push((format!("{} · {}", m.service, m.record.label()), *v));
        }
    }
    for (unit, items) in by_unit {
        if items.len() > 1 {
            d.push(Block::Chart(Chart::Bars {
                title: "Throughput".into(),
                unit: unit.into(),
                items,
            }));
        }
    }
    for (service, ms) in &r.services {
        d.push(Block::H3(service.clone()));
        let recs: Vec<&RunRecord> = ms.iter().map(|m| &m.record).collect();
        for (group, cols) in split_columns(&columns(&recs)) {
            d.push(Block::Para(format!("**{group}**")));
            d.push(metric_table(ms, &cols));
        }
        let series: Vec<(String, Vec<(f64, f64)>)> = ms
            .iter()
            .filter_map(|m| {
                let key = if m.record.summary.contains_key(metric::RECORDS_PER_SEC) {
                    metric::RECORDS_PER_SEC
                } else {
                    return None;
                };
                let pts: Vec<(f64, f64)> = m
                    .record
                    .samples
                    .iter()
                    .filter_map(|s| s.metrics.get(key).map(|v| (s.start_s + s.seconds, *v)))
                    .collect();
                (pts.len() >= 2 && m.record.sample_unit.as_deref() == Some("window"))
                    .then(|| (m.record.label().to_string(), pts))
            })
            .collect();
        if !series.is_empty() {
            d.push(Block::Chart(Chart::Lines {
                title: format!("{service}: throughput over each run"),
                unit: "records/s".into(),
                series,
            }));
        }
        let lat: Vec<(String, f64)> = ms
            .iter()
            .flat_map(|m| {
                ["p50_ms", "p95_ms", "p99_ms", "p999_ms"]
                    .iter()
                    .filter_map(|k| {
                        m.record
                            .summary
                            .get(*k)
                            .map(|v| (format!("{} {}", m.record.label(), metric::label(k)), *v))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        if !lat.is_empty() {
            d.push(Block::Chart(Chart::Bars {
                title: format!("{service}: latency percentiles"),
                unit: "ms".into(),
                items: lat,
            }));
        }
        for m in ms {
            if let Some(t) = &m.record.target {
                d.push(Block::Para(format!(
                    "{}: target `{}`",
                    m.record.label(),
                    t.split(" on ").next().unwrap_or(t)
                )));
            }
            if let Some(server) = &m.record.server {
                d.push(Block::Para(format!(
                    "**Server facts**: {}",
                    m.record.label()
                )));
                d.push(server_table(server));
            }
            if let Some(queries) = m
                .record
                .result
                .as_ref()
                .and_then(|r| r.get("queries"))
                .and_then(|q| q.as_array())
            {
                let rows = queries
                    .iter()
                    .map(|q| {
                        let f = |k: &str| {
                            q.get(k)
                                .and_then(|v| v.as_f64())
                                .map(fmt_value)
                                .unwrap_or("-".into())
                        };
                        vec![
                            format!("`{}`", q.get("sql").and_then(|s| s.as_str()).unwrap_or("?")),
                            f("count"),
                            f("p50_ms"),
                            f("p99_ms"),
                            f("max_ms"),
                        ]
                    })
                    .collect();
                d.push(table(
                    &["query", "count", "p50 ms", "p99 ms", "max ms"],
                    1,
                    rows,
                ));
            }
        }
    }

    // Resource utilization.
    d.push(Block::H2("Resource utilization".into()));
    d.push(Block::Para(
        "Sampled from /proc on the probe's machine while it ran; network includes loopback.".into(),
    ));
    let mut rows = Vec::new();
    let mut cpu_series = Vec::new();
    for m in r.services.values().flatten() {
        if let Some(u) = model::resources(&m.record) {
            rows.push(vec![
                m.record.label().to_string(),
                format!("{:.0}%", u.cpu_avg),
                format!("{:.0}%", u.cpu_peak),
                format!("{:.0}%", u.self_cpu_avg),
                format!("{:.0}%", u.mem_peak),
                fmt_value(u.disk_read_mb_s),
                fmt_value(u.disk_write_mb_s),
                format!("{:.0}%", u.disk_busy_avg),
                fmt_value(u.net_rx_mb_s),
                fmt_value(u.net_tx_mb_s),
            ]);
            cpu_series.push((
                m.record.label().to_string(),
                m.record
                    .host_samples
                    .iter()
                    .map(|h| (h.t_s, h.cpu_busy_pct))
                    .collect(),
            ));
        }
    }
    if rows.is_empty() {
        d.push(Block::Para("These records hold no host samples.".into()));
    } else {
        d.push(table(
            &[
                "probe",
                "CPU avg",
                "CPU peak",
                "ferry CPU (% of one)",
                "memory peak",
                "disk read MB/s",
                "disk write MB/s",
                "disk busy",
                "net rx MB/s",
                "net tx MB/s",
            ],
            1,
            rows,
        ));
        d.push(Block::Chart(Chart::Lines {
            title: "Host CPU busy during each probe".into(),
            unit: "%".into(),
            series: cpu_series,
        }));
    }

    // Bottlenecks.
    d.push(Block::H2("Bottlenecks".into()));
    if r.hints.is_empty() {
        d.push(Block::Para(
            "None found: no CPU, memory, disk, cache, connection or tail-latency threshold was crossed."
                .into(),
        ));
    } else {
        d.push(Block::Bullets(
            r.hints
                .iter()
                .map(|h| format!("**{}** ({}): {}", h.resource, h.probe, h.message))
                .collect(),
        ));
    }

    // Expectations.
    if !r.expectations.is_empty() {
        d.push(Block::H2("Expectations".into()));
        let rows = r
            .expectations
            .iter()
            .map(|(p, e)| {
                vec![
                    p.clone(),
                    format!("`{}`", e.expect),
                    e.actual.map(fmt_value).unwrap_or("absent".into()),
                    if e.met {
                        "met".into()
                    } else {
                        "**missed**".into()
                    },
                ]
            })
            .collect();
        d.push(table_cols(
            &["probe", "expectation", "actual", "result"],
            &[2],
            rows,
        ));
    }

    // Improvements.
    d.push(Block::H2("Improvements".into()));
    if r.improvements.is_empty() {
        d.push(Block::Para("No probe was measured more than once. Run the same probe after tuning and pass both records to see the change, with its significance, here.".into()));
    }
    let mut pairs = Vec::new();
    for (b, a, c) in &r.improvements {
        d.push(Block::H3(format!("{} (`{b}` → `{a}`)", c.name)));
        let rows = c
            .metrics
            .iter()
            .map(|m| {
                vec![
                    metric::label(&m.metric),
                    fmt_side(&m.before),
                    fmt_side(&m.after),
                    pct(m.change),
                    m.improvement_ci
                        .map(|ci| format!("[{:+.1}%, {:+.1}%]", ci.low * 100.0, ci.high * 100.0))
                        .unwrap_or("-".into()),
                    m.welch.map(|w| fmt_p(w.p)).unwrap_or("-".into()),
                    match m.verdict {
                        Verdict::Better | Verdict::Worse => format!("**{}**", m.verdict.as_str()),
                        v => v.as_str().to_string(),
                    },
                ]
            })
            .collect();
        d.push(table_cols(
            &[
                "metric",
                "before",
                "after",
                "change",
                "improvement 95% CI",
                "p (Welch)",
                "verdict",
            ],
            &[1, 2, 3, 4, 5],
            rows,
        ));
        if let Some(m) = c
            .metrics
            .iter()
            .find(|m| m.metric == metric::RECORDS_PER_SEC)
        {
            if let (Some(b), Some(a)) = (&m.before, &m.after) {
                pairs.push((
                    model::throughput_unit(&c.kind),
                    (c.name.clone(), b.median, a.median),
                ));
            }
        }
    }
    let mut by_unit: std::collections::BTreeMap<&str, Vec<(String, f64, f64)>> = Default::default();
    for (unit, item) in pairs {
        by_unit.entry(unit).or_default().push(item);
    }
    for (unit, items) in by_unit {
        d.push(Block::Chart(Chart::Pairs {
            title: "Throughput before and after".into(),
            unit: unit.into(),
            items,
        }));
    }

    // Runs.
    d.push(Block::H2("Runs".into()));
    let rows = r
        .services
        .values()
        .flatten()
        .map(|m| {
            let params: Vec<String> = m
                .record
                .parameters
                .iter()
                .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
                .collect();
            vec![
                m.source.clone(),
                m.record.label().to_string(),
                m.record.kind.clone(),
                fmt_time(m.record.started_at),
                format!("{:.1}", m.record.seconds()),
                params.join(", "),
            ]
        })
        .collect();
    d.push(table_cols(
        &[
            "source",
            "probe",
            "kind",
            "started",
            "seconds",
            "parameters",
        ],
        &[4],
        rows,
    ));
    d
}

/// The executive summary's table: per probe (latest run), the headline figure, the
/// expectation it was held to, and its change since the probe's first run with the verdict.
fn executive_table(r: &Report) -> Block {
    let mut rows = Vec::new();
    for (service, ms) in &r.services {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for m in ms.iter().rev() {
            let key = (m.record.kind.as_str(), m.record.label());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            let rec = &m.record;
            let metric = model::headline_metric(rec);
            let figure = match (&metric, &rec.error) {
                (_, Some(_)) => "**failed**".to_string(),
                (Some(k), None) => rec
                    .summary
                    .get(k)
                    .map(|v| format!("**{}**", model::fmt_metric(rec, k, *v)))
                    .unwrap_or_else(|| "-".into()),
                (None, None) => "-".into(),
            };
            let expectation = match rec.expectations.as_slice() {
                [] => "-".to_string(),
                es => {
                    let missed: Vec<&str> = es
                        .iter()
                        .filter(|e| !e.met)
                        .map(|e| e.expect.as_str())
                        .collect();
                    if missed.is_empty() {
                        format!("met: `{}`", es[0].expect)
                    } else {
                        format!("**missed**: `{}`", missed.join("`, `"))
                    }
                }
            };
            let change = metric.as_ref().and_then(|k| {
                r.improvements
                    .iter()
                    .find(|(_, _, c)| c.kind == rec.kind && c.name == rec.label())
                    .and_then(|(_, _, c)| c.metrics.iter().find(|x| &x.metric == k))
            });
            let (delta, verdict) = match change {
                Some(c) => (
                    pct(c.change),
                    match c.verdict {
                        Verdict::Better | Verdict::Worse => format!("**{}**", c.verdict.as_str()),
                        v => v.as_str().to_string(),
                    },
                ),
                None => ("-".into(), "-".into()),
            };
            rows.push(vec![
                service.clone(),
                rec.label().to_string(),
                figure,
                expectation,
                delta,
                verdict,
            ]);
        }
    }
    table_cols(
        &[
            "service",
            "probe",
            "headline",
            "expectation",
            "vs baseline",
            "verdict",
        ],
        &[2, 4],
        rows,
    )
}

/// The executive summary's legend, under its table.
const EXECUTIVE_LEGEND: &str = "headline: the metric of the probe's first expectation, else its throughput; vs baseline: the change of that figure since the probe's first run in these records (median over samples), with the verdict of Welch's t-test and a bootstrap interval together (`-`: measured once).";

/// A service's metrics in three tables: throughput (`…_per_sec`), latency (`…_ms`), and the
/// other figures (counts, ratios, seconds, heap) — so no table runs to dozens of columns.
pub fn split_columns(cols: &[String]) -> Vec<(&'static str, Vec<String>)> {
    let mut groups: Vec<(&'static str, Vec<String>)> = vec![
        ("Throughput", Vec::new()),
        ("Latency", Vec::new()),
        ("Other figures", Vec::new()),
    ];
    for c in cols {
        let g = if c.ends_with("_per_sec") {
            0
        } else if c.ends_with("_ms") {
            1
        } else {
            2
        };
        groups[g].1.push(c.clone());
    }
    groups.retain(|(_, c)| !c.is_empty());
    groups
}

/// Most metric columns a table shows side by side; more, and the table turns (one row per
/// metric, one column per run).
const MAX_METRIC_COLUMNS: usize = 6;

/// A column's label in a table of these measurements: `records/s` says what the kind counts
/// (queries/s for Trino, tasks/s for Ray, …) when every row is of one kind.
fn column_label(ms: &[Measurement], c: &str) -> String {
    match c {
        metric::RECORDS_PER_SEC => {
            let kind = ms.first().map(|m| m.record.kind.as_str());
            match kind {
                Some(k) if ms.iter().all(|m| m.record.kind == k) => {
                    model::throughput_unit(k).to_string()
                }
                _ => metric::label(c),
            }
        }
        "cpu_tasks_per_sec" => "CPU-bound tasks/s".into(),
        "io_tasks_per_sec" => "I/O-bound tasks/s".into(),
        _ => metric::label(c),
    }
}

fn metric_table(ms: &[Measurement], cols: &[String]) -> Block {
    let value = |m: &Measurement, c: &str| {
        m.record
            .summary
            .get(c)
            .map(|v| fmt_value(*v))
            .unwrap_or("-".into())
    };
    if cols.len() <= MAX_METRIC_COLUMNS {
        let mut head = vec!["probe".to_string(), "started".to_string()];
        head.extend(cols.iter().map(|c| column_label(ms, c)));
        let rows = ms
            .iter()
            .map(|m| {
                let mut row = vec![m.record.label().to_string(), fmt_time(m.record.started_at)];
                row.extend(cols.iter().map(|c| value(m, c)));
                row
            })
            .collect();
        return Block::Table(Table {
            numeric: (0..head.len()).map(|i| i >= 2).collect(),
            head,
            rows,
        });
    }
    let mut head = vec!["metric".to_string()];
    head.extend(ms.iter().map(|m| {
        format!(
            "{} ({})",
            m.record.label(),
            fmt_time(m.record.started_at)
                .get(11..19)
                .unwrap_or_default()
        )
    }));
    let rows = cols
        .iter()
        .map(|c| {
            let mut row = vec![column_label(ms, c)];
            row.extend(ms.iter().map(|m| value(m, c)));
            row
        })
        .collect();
    Block::Table(Table {
        numeric: (0..head.len()).map(|i| i >= 1).collect(),
        head,
        rows,
    })
}

/// At most `max` characters, with an ellipsis.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// A PostgreSQL server snapshot: the seed's pg_stat_database query and its SHOW settings.
fn server_table(server: &serde_json::Value) -> Block {
    let mut rows = Vec::new();
    for (label, p) in [
        ("version", "/version"),
        ("connections (pg_stat_activity)", "/connections"),
        ("backends in this database", "/database/numbackends"),
        ("commits during the run", "/during/commits"),
        ("rollbacks during the run", "/during/rollbacks"),
        ("commits/s (server's count)", "/during/commits_per_sec"),
        ("cache hit ratio during the run", "/during/cache_hit_ratio"),
        (
            "cache hit ratio since stats reset",
            "/database/cache_hit_ratio",
        ),
        // Redis
        ("connected clients", "/clients"),
        ("used_memory", "/memory/used_memory_human"),
        ("used_memory_peak", "/memory/used_memory_peak"),
        ("keyspace hits during the run", "/during/keyspace_hits"),
        ("keyspace misses during the run", "/during/keyspace_misses"),
        (
            "keyspace hit ratio during the run",
            "/during/keyspace_hit_ratio",
        ),
        (
            "keyspace hit ratio since start",
            "/stats/keyspace_hit_ratio",
        ),
        ("keys evicted during the run", "/during/evicted_keys"),
        // The server's JVM (Kafka, Cassandra, Trino), read before and after the probe.
        ("JVM read with", "/jvm/read_with"),
        ("JVM GC collections during the run", "/jvm/during/gc_count"),
        ("JVM GC pause time during the run (ms)", "/jvm/during/gc_ms"),
        ("JVM GC share of the run (%)", "/jvm/during/gc_time_pct"),
        ("JVM heap used before (MB)", "/jvm/before/heap_used_mb"),
        ("JVM heap used after (MB)", "/jvm/after/heap_used_mb"),
        ("JVM heap committed (MB)", "/jvm/after/heap_committed_mb"),
        ("JVM not read", "/jvm/error"),
        // Ray
        ("nodes", "/nodes"),
        ("cluster CPUs", "/cluster_resources/CPU"),
        ("CPUs reserved by the job", "/reserved_cpus"),
        ("cluster memory (bytes)", "/cluster_resources/memory"),
        (
            "object store memory (bytes)",
            "/cluster_resources/object_store_memory",
        ),
        ("job's Python", "/python"),
    ] {
        if let Some(v) = server.pointer(p) {
            rows.push(vec![label.to_string(), json_str(p, v)]);
        }
    }
    if let Some(settings) = server.pointer("/settings").and_then(|s| s.as_object()) {
        for (k, v) in settings {
            rows.push(vec![k.clone(), json_str(k, v)]);
        }
    }
    table(&["figure", "value"], 1, rows)
}

fn json_str(key: &str, v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.split(" on ").next().unwrap_or(s).to_string(),
        serde_json::Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if key.ends_with("ratio") {
                format!("{:.2}%", f * 100.0)
            } else {
                fmt_value(f)
            }
        }
        other => other.to_string(),
    }
}
