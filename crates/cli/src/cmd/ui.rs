//! `ferry migrate --ui ADDR`: the live page (one self-contained HTML file, no CDN), `/api/status`
//! as JSON and `/metrics` in Prometheus text format, served only while the migration runs (and
//! `--ui-linger` seconds after).
//!
//! Everything is read from the tables' shared [`Counters`]; a sampler turns the totals into a
//! throughput history and per-node latency over the last interval, twice a second. Nothing on
//! the migration's hot path knows the page exists.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use ferry_migrate::job::PreparedTable;
use ferry_migrate::pipeline::{Counters, NodeLatency, Side};
use serde_json::{json, Value};

use super::output;

/// How often the sampler reads the counters.
const TICK: Duration = Duration::from_millis(500);
/// History kept for the chart: ten minutes at two samples a second.
const HISTORY: usize = 1200;

struct TableLive {
    name: String,
    chunks_total: u64,
    done_before: u64,
    counters: Arc<Counters>,
    /// When the table joined the run (its rate is over the time since).
    added: Instant,
}

/// A table's state on the page: waiting for a worker, copying, or done.
fn table_state(done: u64, total: u64, leased: u64) -> &'static str {
    if done >= total {
        "done"
    } else if leased > 0 || done > 0 {
        "copying"
    } else {
        "waiting"
    }
}

/// One point of the chart.
#[derive(Clone, Copy)]
struct Sample {
    secs: f64,
    rows_per_sec: f64,
    mb_per_sec: f64,
}

/// Mean latency per node over the last tick.
#[derive(Clone, Default)]
struct NodeNow {
    mean_ms: f64,
    max_ms: f64,
    requests: u64,
    total_ns: u64,
}

/// What the page shows, shared by the server and the migration.
pub struct Live {
    started: Instant,
    target: String,
    tables: Mutex<Vec<TableLive>>,
    history: Mutex<VecDeque<Sample>>,
    nodes: Mutex<BTreeMap<(Side, String), NodeNow>>,
    finished: AtomicBool,
    outcome: Mutex<Option<String>>,
    /// `ferry.sourceLatencyTargetMs`, shown beside the page reads' p99.
    source_latency_target_ms: Mutex<Option<u64>>,
}

impl Live {
    pub fn new(target: &str) -> Arc<Self> {
        Arc::new(Live {
            started: Instant::now(),
            target: target.split(" on ").next().unwrap_or(target).to_string(),
            tables: Mutex::new(Vec::new()),
            history: Mutex::new(VecDeque::new()),
            nodes: Mutex::new(BTreeMap::new()),
            finished: AtomicBool::new(false),
            outcome: Mutex::new(None),
            source_latency_target_ms: Mutex::new(None),
        })
    }

    /// The page reads' p99 bound the page shows beside the measured one.
    pub fn set_source_latency_target(&self, ms: Option<u64>) {
        if let Ok(mut t) = self.source_latency_target_ms.lock() {
            *t = ms;
        }
    }

    /// A table starts: its counters join the page.
    pub fn add_table(&self, t: &PreparedTable, counters: &Arc<Counters>, done_before: Option<u64>) {
        if let Ok(mut tables) = self.tables.lock() {
            tables.push(TableLive {
                name: format!(
                    "{} → {}",
                    t.mapping.source.qualified(),
                    t.mapping.qualified_target()
                ),
                chunks_total: t.plan.chunks.len() as u64,
                done_before: done_before.unwrap_or(0),
                counters: counters.clone(),
                added: Instant::now(),
            });
        }
    }

    /// The run ended (`outcome` in a few words).
    pub fn finish(&self, outcome: &str) {
        self.finished.store(true, Ordering::Relaxed);
        if let Ok(mut o) = self.outcome.lock() {
            *o = Some(outcome.to_string());
        }
    }

    fn totals(&self) -> (u64, u64) {
        let tables = self.tables.lock().expect("ui lock");
        tables.iter().fold((0, 0), |(r, b), t| {
            (
                r + t.counters.rows_written.load(Ordering::Relaxed),
                b + t.counters.bytes_written.load(Ordering::Relaxed),
            )
        })
    }

    /// Samples the counters every tick until the server stops.
    async fn sample(self: Arc<Self>) {
        let mut last = (Instant::now(), 0u64, 0u64);
        let mut last_nodes: BTreeMap<(Side, String), NodeLatency> = BTreeMap::new();
        loop {
            tokio::time::sleep(TICK).await;
            let now = Instant::now();
            let (rows, bytes) = self.totals();
            let dt = now.duration_since(last.0).as_secs_f64().max(1e-6);
            let s = Sample {
                secs: now.duration_since(self.started).as_secs_f64(),
                rows_per_sec: rows.saturating_sub(last.1) as f64 / dt,
                mb_per_sec: bytes.saturating_sub(last.2) as f64 / 1e6 / dt,
            };
            last = (now, rows, bytes);
            if let Ok(mut h) = self.history.lock() {
                if h.len() == HISTORY {
                    h.pop_front();
                }
                h.push_back(s);
            }
            let mut merged: BTreeMap<(Side, String), NodeLatency> = BTreeMap::new();
            for t in self.tables.lock().expect("ui lock").iter() {
                for (side, node, l) in t.counters.nodes.snapshot() {
                    let e = merged.entry((side, node)).or_default();
                    e.requests += l.requests;
                    e.total_ns += l.total_ns;
                    e.max_ns = e.max_ns.max(l.max_ns);
                }
            }
            if let Ok(mut nodes) = self.nodes.lock() {
                for (key, l) in &merged {
                    let prev = last_nodes.get(key).copied().unwrap_or_default();
                    let n = l.requests.saturating_sub(prev.requests);
                    let e = nodes.entry(key.clone()).or_default();
                    if n > 0 {
                        e.mean_ms =
                            l.total_ns.saturating_sub(prev.total_ns) as f64 / n as f64 / 1e6;
                    }
                    e.max_ms = l.max_ns as f64 / 1e6;
                    e.requests = l.requests;
                    e.total_ns = l.total_ns;
                }
            }
            last_nodes = merged;
        }
    }

    /// `/api/status`.
    pub fn status(&self) -> Value {
        let tables = self.tables.lock().expect("ui lock");
        let mut all = (0u64, 0u64, 0u64);
        let (mut reads, mut writes, mut leased) = (0, 0, 0);
        let (mut read_retries, mut write_retries) = (0, 0);
        let mut errors = Vec::new();
        let tables_json: Vec<Value> = tables
            .iter()
            .map(|t| {
                let c = &t.counters;
                let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                let (s, w, e) = (ld(&c.source_wait_ns), ld(&c.target_wait_ns), ld(&c.encode_ns));
                all = (all.0 + s, all.1 + w, all.2 + e);
                reads += ld(&c.reads_in_flight);
                writes += ld(&c.writes_in_flight);
                let chunks_leased = ld(&c.chunks_in_flight);
                leased += chunks_leased;
                read_retries += ld(&c.read_retries);
                write_retries += ld(&c.write_retries);
                if let Ok(q) = c.recent_errors.lock() {
                    errors.extend(q.iter().cloned());
                }
                let done = (t.done_before + ld(&c.chunks_done)).min(t.chunks_total);
                let state = table_state(done, t.chunks_total, chunks_leased);
                let secs = t.added.elapsed().as_secs_f64().max(1e-3);
                json!({
                    "name": t.name,
                    "state": state,
                    "rows_per_sec": if state == "waiting" { 0.0 } else { ld(&c.rows_written) as f64 / secs },
                    "chunks_total": t.chunks_total,
                    "chunks_done": done,
                    "chunks_leased": chunks_leased,
                    "chunks_pending": t.chunks_total.saturating_sub(done + chunks_leased),
                    "rows_read": ld(&c.rows_read),
                    "rows_written": ld(&c.rows_written),
                    "rows_rejected": ld(&c.rows_rejected),
                    "bytes_written": ld(&c.bytes_written),
                    "wait_seconds": {"source": s as f64 / 1e9, "target": w as f64 / 1e9, "encode": e as f64 / 1e9},
                    // The page reads' p99 in the controller's last window, and over the run;
                    // the chunk commits' p99 over the run.
                    "source_page_p99_window_ms": match ld(&c.source_p99_window_us) { 0 => None, us => Some(us as f64 / 1e3) },
                    "source_page_p99_ms": c.source_pages.snapshot().percentile(99.0),
                    "commit_p99_ms": c.commits.snapshot().percentile(99.0),
                    "bottleneck": bottleneck_of(s, w, e),
                })
            })
            .collect();
        let sum = |k: &str| {
            tables_json
                .iter()
                .map(|t| t[k].as_u64().unwrap_or(0))
                .sum::<u64>()
        };
        let history: Vec<Sample> = self
            .history
            .lock()
            .expect("ui lock")
            .iter()
            .copied()
            .collect();
        // The current rate: the mean of the last two seconds of samples.
        let recent: Vec<&Sample> = history.iter().rev().take(4).collect();
        let rate = |f: fn(&Sample) -> f64| {
            if recent.is_empty() {
                0.0
            } else {
                recent.iter().map(|s| f(s)).sum::<f64>() / recent.len() as f64
            }
        };
        let elapsed = self.started.elapsed().as_secs_f64();
        let nodes: Vec<Value> = self
            .nodes
            .lock()
            .expect("ui lock")
            .iter()
            .map(|((side, node), n)| {
                json!({
                    "side": side.as_str(),
                    "address": node,
                    "requests": n.requests,
                    "mean_ms": n.mean_ms,
                    "max_ms": n.max_ms,
                    "total_seconds": n.total_ns as f64 / 1e9,
                })
            })
            .collect();
        let errors_tail: Vec<String> = errors.iter().rev().take(10).cloned().collect();
        json!({
            "schema_version": 1,
            "state": if self.finished.load(Ordering::Relaxed) { "finished" } else { "running" },
            "outcome": *self.outcome.lock().expect("ui lock"),
            "target": self.target,
            "elapsed_seconds": elapsed,
            "rows_read": sum("rows_read"),
            "rows_written": sum("rows_written"),
            "rows_rejected": sum("rows_rejected"),
            "bytes_written": sum("bytes_written"),
            "rows_per_sec": rate(|s| s.rows_per_sec),
            "mb_per_sec": rate(|s| s.mb_per_sec),
            "source_latency_target_ms": self.source_latency_target_ms.lock().ok().and_then(|t| *t),
            "mean_rows_per_sec": sum("rows_written") as f64 / elapsed.max(1e-3),
            "chunks": {
                "total": sum("chunks_total"),
                "done": sum("chunks_done"),
                "leased": sum("chunks_leased"),
                "pending": sum("chunks_pending"),
            },
            "in_flight": {"reads": reads, "writes": writes, "chunks": leased},
            "wait_seconds": {"source": all.0 as f64 / 1e9, "target": all.1 as f64 / 1e9, "encode": all.2 as f64 / 1e9},
            "bottleneck": bottleneck_of(all.0, all.1, all.2),
            "errors": {"read_retries": read_retries, "write_retries": write_retries, "recent": errors_tail},
            "tables": tables_json,
            "nodes": nodes,
            "history": history.iter().map(|s| json!([
                (s.secs * 10.0).round() / 10.0,
                s.rows_per_sec.round(),
                (s.mb_per_sec * 100.0).round() / 100.0
            ])).collect::<Vec<_>>(),
        })
    }

    /// `/metrics`: Prometheus text format 0.0.4, names `ferry_<name>_<unit>[_total]`.
    pub fn metrics(&self) -> String {
        let st = self.status();
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        let tables = st["tables"].as_array().cloned().unwrap_or_default();
        let per_table = |key: &str| -> Vec<(String, f64)> {
            tables
                .iter()
                .map(|t| {
                    (
                        format!("{{table=\"{}\"}}", escape(t["name"].as_str().unwrap_or(""))),
                        t[key].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        };
        family(
            "ferry_read_rows_total",
            "counter",
            "Rows read from Cassandra.",
            per_table("rows_read"),
        );
        family(
            "ferry_written_rows_total",
            "counter",
            "Rows the target acknowledged.",
            per_table("rows_written"),
        );
        family(
            "ferry_rejected_rows_total",
            "counter",
            "Rows that could not be written (see the reject file).",
            per_table("rows_rejected"),
        );
        family(
            "ferry_written_bytes_total",
            "counter",
            "Binary COPY bytes the target acknowledged.",
            per_table("bytes_written"),
        );
        family(
            "ferry_total_chunks",
            "gauge",
            "Chunks in the table's plan.",
            per_table("chunks_total"),
        );
        family(
            "ferry_done_chunks",
            "gauge",
            "Chunks committed (including earlier runs).",
            per_table("chunks_done"),
        );
        family(
            "ferry_leased_chunks",
            "gauge",
            "Chunks this process is copying now.",
            per_table("chunks_leased"),
        );
        family(
            "ferry_pending_chunks",
            "gauge",
            "Chunks not started.",
            per_table("chunks_pending"),
        );
        // The 99th percentile over the run, as a summary's quantile label.
        let p99_seconds = |key: &str| -> Vec<(String, f64)> {
            per_table(key)
                .into_iter()
                .map(|(l, ms)| (l.replacen('}', ",quantile=\"0.99\"}", 1), ms / 1e3))
                .collect()
        };
        family(
            "ferry_source_page_seconds",
            "gauge",
            "Cassandra page reads over the run, by quantile (0.99).",
            p99_seconds("source_page_p99_ms"),
        );
        family(
            "ferry_commit_seconds",
            "gauge",
            "Chunk commits (done mark and COMMIT) on the target over the run, by quantile (0.99).",
            p99_seconds("commit_p99_ms"),
        );
        if let Some(t) = st["source_latency_target_ms"].as_f64() {
            family(
                "ferry_source_latency_target_seconds",
                "gauge",
                "ferry.sourceLatencyTargetMs: the page reads' p99 the controller keeps under.",
                vec![(String::new(), t / 1e3)],
            );
        }
        let mut waits = Vec::new();
        for t in &tables {
            for side in ["source", "target", "encode"] {
                waits.push((
                    format!(
                        "{{table=\"{}\",side=\"{side}\"}}",
                        escape(t["name"].as_str().unwrap_or(""))
                    ),
                    t["wait_seconds"][side].as_f64().unwrap_or(0.0),
                ));
            }
        }
        family(
            "ferry_wait_seconds_total",
            "counter",
            "Time workers spent waiting on Cassandra, on the target, and encoding.",
            waits,
        );
        family(
            "ferry_in_flight_requests",
            "gauge",
            "Requests in flight now.",
            vec![
                (
                    "{kind=\"read\"}".into(),
                    st["in_flight"]["reads"].as_f64().unwrap_or(0.0),
                ),
                (
                    "{kind=\"write\"}".into(),
                    st["in_flight"]["writes"].as_f64().unwrap_or(0.0),
                ),
            ],
        );
        family(
            "ferry_retries_total",
            "counter",
            "Failed requests that were retried.",
            vec![
                (
                    "{side=\"source\"}".into(),
                    st["errors"]["read_retries"].as_f64().unwrap_or(0.0),
                ),
                (
                    "{side=\"target\"}".into(),
                    st["errors"]["write_retries"].as_f64().unwrap_or(0.0),
                ),
            ],
        );
        let nodes = st["nodes"].as_array().cloned().unwrap_or_default();
        let per_node = |key: &str, scale: f64| -> Vec<(String, f64)> {
            nodes
                .iter()
                .map(|n| {
                    (
                        format!(
                            "{{side=\"{}\",node=\"{}\"}}",
                            n["side"].as_str().unwrap_or(""),
                            escape(n["address"].as_str().unwrap_or(""))
                        ),
                        n[key].as_f64().unwrap_or(0.0) * scale,
                    )
                })
                .collect()
        };
        family(
            "ferry_node_requests_total",
            "counter",
            "Requests per node (pages from Cassandra, chunk leases on the target).",
            per_node("requests", 1.0),
        );
        family(
            "ferry_node_request_seconds_total",
            "counter",
            "Time those requests took; with ferry_node_requests_total gives the mean latency.",
            per_node("total_seconds", 1.0),
        );
        family(
            "ferry_node_request_max_seconds",
            "gauge",
            "Slowest request per node so far.",
            per_node("max_ms", 1e-3),
        );
        family(
            "ferry_throughput_rows_per_second",
            "gauge",
            "Rows written per second over the last two seconds.",
            vec![(String::new(), st["rows_per_sec"].as_f64().unwrap_or(0.0))],
        );
        family(
            "ferry_uptime_seconds",
            "gauge",
            "Seconds since the migration started.",
            vec![(String::new(), st["elapsed_seconds"].as_f64().unwrap_or(0.0))],
        );
        out
    }
}

/// Which side the run waits on most (as the summary names it).
pub fn bottleneck_of(source_ns: u64, target_ns: u64, encode_ns: u64) -> &'static str {
    output::bottleneck_side(
        Duration::from_nanos(source_ns),
        Duration::from_nanos(target_ns),
        Duration::from_nanos(encode_ns),
    )
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

const PAGE: &str = include_str!("ui.html");

async fn page(State(live): State<Arc<Live>>) -> Html<String> {
    // The first state is in the page itself, so it renders complete before any request.
    let initial = live.status().to_string().replace("</", "<\\/");
    Html(PAGE.replace("/*INITIAL*/null", &initial))
}

async fn status(State(live): State<Arc<Live>>) -> impl IntoResponse {
    axum::Json(live.status())
}

async fn metrics(State(live): State<Arc<Live>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        live.metrics(),
    )
}

/// A running server; dropping it stops the server and the sampler.
pub struct Server {
    handles: Vec<tokio::task::JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

/// Binds `addr` (an error names it) and serves the page until the returned [`Server`] drops.
pub async fn serve(addr: SocketAddr, live: Arc<Live>) -> Result<Server> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--ui {addr}: cannot listen there"))?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/", get(page))
        .route("/api/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(live.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let sampler = tokio::spawn(live.sample());
    Ok(Server {
        handles: vec![server, sampler],
        addr,
    })
}
