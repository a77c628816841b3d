//! The configuration checks: pure arithmetic on the measurements, so every recommendation can be
//! recomputed by hand from the report.
//!
//! The concurrency model is ferry's own pipeline: each worker holds one chunk at a time; per
//! chunk it pays [`BOOKKEEPING_ROUND_TRIPS`] round trips to the target (BEGIN with the lease,
//! the COPY's end, the done mark with COMMIT; the COPY starts while the first page is read) and,
//! per page, one round trip to Cassandra plus the page's transfer
//! (the next page is fetched while the previous one is sent, so the slower of reading and writing
//! a page counts). Little's law then gives the workers needed for a rate: in flight = rate × time
//! per chunk / rows per chunk.

use serde::Serialize;

use super::probe::{ScanSample, TargetResult};
use super::{Check, Endpoint, Percentiles, Role, Verdict};
use crate::config::{MigrationSpec, SplitSize};
use crate::job::Job;

/// Round trips to the target every chunk pays besides its data.
pub const BOOKKEEPING_ROUND_TRIPS: f64 = 3.0;
/// Most workers ferry recommends, whatever the model says: beyond this the servers, not the
/// network, set the pace.
pub const MAX_WORKERS: u32 = 256;
/// Connections left free on the target for others when sizing workers.
pub const SPARE_CONNECTIONS: u64 = 10;

/// The measurements the checks read.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// The slowest reachable node's round trip, per side.
    pub source_rtt: Option<Percentiles>,
    pub target_rtt: Option<Percentiles>,
    pub source_connect_ms: Option<f64>,
    pub target_connect_ms: Option<f64>,
    /// Page times of the sample scan.
    pub page_ms: Option<Percentiles>,
    /// Rows per second of one stream with the round trips taken out: what the path carries when
    /// latency is hidden.
    pub source_stream_rows_per_sec: Option<f64>,
    pub target_stream_rows_per_sec: Option<f64>,
    /// Rows of the table (estimated), and bytes per row.
    pub table_rows: Option<f64>,
    pub table_bytes: Option<f64>,
    pub row_bytes: f64,
    /// Target nodes as listed in yugabyte.host, and as `yb_servers()` lists them.
    pub target_listed: Vec<String>,
    pub target_discovered: Vec<String>,
    pub max_connections: Option<u64>,
    pub connections_in_use: Option<u64>,
    pub cores: usize,
}

fn worst(endpoints: &[Endpoint], role: Role) -> Option<Percentiles> {
    endpoints
        .iter()
        .filter(|e| e.role == role)
        .filter_map(|e| e.rtt_ms)
        .max_by(|a, b| a.p50.total_cmp(&b.p50))
}

impl Inputs {
    pub fn from_measurements(
        job: &Job,
        endpoints: &[Endpoint],
        scan: Option<&ScanSample>,
        est_bytes: Option<u64>,
        row_bytes: f64,
        target: &TargetResult,
    ) -> Inputs {
        let source_rtt = worst(endpoints, Role::Source);
        let target_rtt = worst(endpoints, Role::Target);
        let connect = |role| {
            endpoints
                .iter()
                .filter(|e| e.role == role)
                .filter_map(|e| e.connect_ms)
                .max_by(f64::total_cmp)
        };
        // One stream's rate with the round trips taken out; never less than a tenth of the
        // elapsed time is left, so a noisy RTT cannot make it infinite.
        let source_stream_rows_per_sec = scan.filter(|s| s.rows > 0).map(|s| {
            let total: f64 = s.page_ms.iter().sum();
            let rtt = source_rtt.map_or(0.0, |p| p.p50) * s.page_ms.len() as f64;
            s.rows as f64 / ((total - rtt).max(total * 0.1) / 1e3)
        });
        let target_stream_rows_per_sec = endpoints
            .iter()
            .filter(|e| e.role == Role::Target)
            .filter_map(|e| e.throughput)
            .map(|t| {
                // COPY start and finish are one round trip each.
                let rtt = 2.0 * target_rtt.map_or(0.0, |p| p.p50) / 1e3;
                t.rows as f64 / (t.seconds - rtt).max(t.seconds * 0.1).max(1e-6)
            })
            .min_by(f64::total_cmp);
        let table_rows = match (est_bytes, scan) {
            (_, Some(s)) if s.complete => Some(s.rows as f64),
            (Some(b), _) if row_bytes > 0.0 => Some(b as f64 / row_bytes),
            // Murmur3 spreads partitions evenly over the ring: the covered share scales up.
            (_, Some(s)) if s.ring_covered > 0.001 => Some(s.rows as f64 / s.ring_covered),
            _ => None,
        };
        let table_bytes = table_rows.map(|r| r * row_bytes);
        Inputs {
            source_rtt,
            target_rtt,
            source_connect_ms: connect(Role::Source),
            target_connect_ms: connect(Role::Target),
            page_ms: scan.and_then(|s| Percentiles::of(&s.page_ms)),
            source_stream_rows_per_sec,
            target_stream_rows_per_sec,
            table_rows,
            table_bytes,
            row_bytes,
            target_listed: job
                .target
                .hosts
                .iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect(),
            target_discovered: target.discovered.clone(),
            max_connections: target.max_connections,
            connections_in_use: target.connections_in_use,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// How chunks are sized.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Chunking {
    /// `autoDetermine`: at least 8 chunks per worker and 64 in all.
    Auto { split_mb: u32 },
    /// `cassandra.inputSplitSizeMb.override`.
    Fixed { split_mb: u32 },
}

/// One configuration the model evaluated.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Candidate {
    pub workers: u32,
    pub chunking: Chunking,
    pub chunks: f64,
    pub rows_per_chunk: f64,
    /// Seconds one worker spends on one chunk.
    pub chunk_secs: f64,
    pub predicted_rows_per_sec: f64,
}

/// The model's numbers, in the report so the advice can be checked.
#[derive(Clone, Debug, Serialize)]
pub struct Model {
    pub goal_rows_per_sec: f64,
    /// `measured` (from `--rows-per-sec`) or how it was derived.
    pub goal_from: String,
    pub source_rtt_ms: f64,
    pub target_rtt_ms: f64,
    pub source_stream_rows_per_sec: f64,
    pub target_stream_rows_per_sec: f64,
    pub table_rows: f64,
    pub fetch_size: u32,
    pub current: Candidate,
    pub chosen: Candidate,
    pub connection_budget: u64,
}

/// Chunks a table of `bytes` gets under `chunking` with `workers` workers (as `job.rs` and
/// `plan.rs` compute it).
pub fn chunk_count(bytes: f64, chunking: Chunking, workers: u32) -> f64 {
    match chunking {
        Chunking::Auto { split_mb } => (bytes / (f64::from(split_mb) * 1048576.0))
            .ceil()
            .max(f64::from(workers) * 8.0)
            .max(64.0),
        Chunking::Fixed { split_mb } => (bytes / (f64::from(split_mb) * 1048576.0)).ceil().max(1.0),
    }
}

/// The pipeline model: predicted rows/s for a configuration.
#[allow(clippy::too_many_arguments)]
pub fn predict(
    workers: u32,
    chunking: Chunking,
    rows: f64,
    row_bytes: f64,
    fetch: f64,
    rtt_s: f64,
    rtt_t: f64,
    src_rate: f64,
    tgt_rate: f64,
) -> Candidate {
    let chunks = chunk_count(rows * row_bytes, chunking, workers);
    let per_chunk = (rows / chunks).max(1.0);
    let pages = (per_chunk / fetch).ceil().max(1.0);
    let page_rows = per_chunk / pages;
    let page = (rtt_s + page_rows / src_rate).max(page_rows / tgt_rate);
    let chunk_secs = pages * page + BOOKKEEPING_ROUND_TRIPS * rtt_t;
    // Workers take chunks in waves; the last wave may be partly idle.
    let waves = (chunks / f64::from(workers)).ceil();
    Candidate {
        workers,
        chunking,
        chunks,
        rows_per_chunk: per_chunk,
        chunk_secs,
        predicted_rows_per_sec: rows / (waves * chunk_secs),
    }
}

fn current_chunking(spec: &MigrationSpec) -> Chunking {
    match spec.source.split_size {
        SplitSize::Auto { start_mb } => Chunking::Auto { split_mb: start_mb },
        SplitSize::Fixed { mb } => Chunking::Fixed { split_mb: mb },
    }
}

/// Every check, and the model behind the concurrency advice (when there was enough to model).
pub fn checks(
    spec: &MigrationSpec,
    inp: &Inputs,
    goal: Option<f64>,
) -> (Vec<Check>, Option<Model>) {
    let mut out = Vec::new();
    target_nodes(spec, inp, &mut out);
    let fetch = fetch_size(spec, inp, &mut out);
    let model = concurrency(spec, inp, goal, fetch, &mut out);
    timeouts(spec, inp, &mut out);
    (out, model)
}

/// Every YugabyteDB node listed, and load balancing on when there is more than one.
fn target_nodes(spec: &MigrationSpec, inp: &Inputs, out: &mut Vec<Check>) {
    let missing: Vec<&String> = inp
        .target_discovered
        .iter()
        .filter(|d| !inp.target_listed.contains(d))
        .collect();
    let mut all = inp.target_listed.clone();
    all.extend(missing.iter().map(|s| (*s).clone()));
    if !inp.target_discovered.is_empty() {
        let check = if missing.is_empty() {
            Check::new(
                "every node listed",
                Verdict::Ok,
                format!(
                    "yugabyte.host lists all {} nodes yb_servers() reports",
                    inp.target_discovered.len()
                ),
                String::new(),
            )
        } else {
            Check::new(
                "every node listed",
                if spec.target.load_balance_hosts {
                    Verdict::Warn
                } else {
                    Verdict::Fail
                },
                format!(
                    "yb_servers() reports {} nodes; yugabyte.host lists {} (missing {})",
                    inp.target_discovered.len(),
                    inp.target_listed.len(),
                    missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                ),
                if spec.target.load_balance_hosts {
                    "loadBalanceHosts discovers them at run time; list them too so a run can start while the first host is down".into()
                } else {
                    "the writes go to the listed hosts only: the seed's biggest loss (one node doing all the work)".into()
                },
            )
            .recommend("yugabyte.host", all.join(","))
        };
        out.push(check);
    }
    let nodes = all.len().max(inp.target_discovered.len());
    if nodes > 1 && !spec.target.load_balance_hosts {
        out.push(
            Check::new(
                "yugabyte.loadBalanceHosts",
                Verdict::Warn,
                format!("false, with {nodes} target nodes"),
                "spread the COPY connections over every node".into(),
            )
            .recommend("yugabyte.loadBalanceHosts", "true"),
        );
    } else if nodes > 1 {
        out.push(Check::new(
            "yugabyte.loadBalanceHosts",
            Verdict::Ok,
            format!("true, {nodes} target nodes"),
            String::new(),
        ));
    }
}

/// Page size against the round trip: a page should take longer to transfer than to ask for.
/// (The seed's advice to shrink pages for high latency points the wrong way: fewer, larger pages
/// pay fewer round trips.)
fn fetch_size(spec: &MigrationSpec, inp: &Inputs, out: &mut Vec<Check>) -> u32 {
    let fetch = spec.source.fetch_size_rows;
    let (Some(rtt), Some(rate)) = (inp.source_rtt, inp.source_stream_rows_per_sec) else {
        return fetch;
    };
    let transfer_ms = f64::from(fetch) / rate * 1e3;
    let efficiency = transfer_ms / (transfer_ms + rtt.p50);
    let found = format!(
        "cassandra.fetchSizeInRows={fetch}: a page transfers in {transfer_ms:.1} ms and waits {:.1} ms for the round trip ({:.0}% of a page's time is transfer)",
        rtt.p50,
        efficiency * 100.0
    );
    if efficiency >= 0.5 || fetch >= 20_000 {
        out.push(Check::new(
            "fetch size against latency",
            Verdict::Ok,
            found,
            String::new(),
        ));
        return fetch;
    }
    // Enough rows that the transfer takes as long as the round trip, rounded up to 1000.
    let want =
        ((rtt.p50 / 1e3 * rate / 1000.0).ceil() * 1000.0).clamp(f64::from(fetch), 20_000.0) as u32;
    out.push(
        Check::new(
            "fetch size against latency",
            Verdict::Warn,
            found,
            format!("larger pages pay fewer round trips per row; {want} rows per page keep memory bounded (pages in flight × page size)"),
        )
        .recommend("cassandra.fetchSizeInRows", want),
    );
    want
}

/// Little's law on the pipeline model: workers (and connections) for the goal rate at the
/// measured round trips.
fn concurrency(
    spec: &MigrationSpec,
    inp: &Inputs,
    goal: Option<f64>,
    fetch: u32,
    out: &mut Vec<Check>,
) -> Option<Model> {
    let (Some(src), Some(tgt)) = (
        inp.source_stream_rows_per_sec,
        inp.target_stream_rows_per_sec,
    ) else {
        return None;
    };
    let rtt_s = inp.source_rtt.map_or(0.0, |p| p.p50) / 1e3;
    let rtt_t = inp.target_rtt.map_or(0.0, |p| p.p50) / 1e3;
    let hosts = {
        let mut all = inp.target_listed.clone();
        all.extend(
            inp.target_discovered
                .iter()
                .filter(|d| !inp.target_listed.contains(d))
                .cloned(),
        );
        all.len().max(1) as u32
    };
    let current_workers =
        spec.run.max_parallel_chunks.max(1).min(
            spec.target.hosts.len().max(1) as u32 * spec.target.max_connections_per_host.max(1),
        );
    let rows = inp.table_rows.unwrap_or(1e7).max(1.0);
    let chunking = current_chunking(spec);
    let fetch_f = f64::from(fetch.max(1));
    let run =
        |w: u32, c: Chunking| predict(w, c, rows, inp.row_bytes, fetch_f, rtt_s, rtt_t, src, tgt);
    let current = predict(
        current_workers,
        chunking,
        rows,
        inp.row_bytes,
        f64::from(spec.source.fetch_size_rows.max(1)),
        rtt_s,
        rtt_t,
        src,
        tgt,
    );
    let (goal, goal_from) = match goal {
        Some(g) => (g, "--rows-per-sec".to_string()),
        None => {
            // What this machine reaches with no latency to hide: the slower side's per-stream
            // speed times the streams its cores can feed (or the configured workers, if fewer).
            let streams = (current_workers as usize).min(inp.cores.max(1)) as f64;
            (
                streams * src.min(tgt),
                format!(
                    "{streams} streams (min of workers {current_workers} and {} cores) × {:.0} rows/s per stream with the round trips taken out",
                    inp.cores,
                    src.min(tgt)
                ),
            )
        }
    };
    let budget = inp
        .max_connections
        .map(|m| m.saturating_sub(inp.connections_in_use.unwrap_or(0) + SPARE_CONNECTIONS))
        .unwrap_or(u64::from(MAX_WORKERS))
        .clamp(1, u64::from(MAX_WORKERS));
    let mut candidates = Vec::new();
    for w in [
        current_workers,
        4,
        8,
        12,
        16,
        24,
        32,
        48,
        64,
        96,
        128,
        192,
        256,
    ] {
        if u64::from(w) > budget || w < current_workers {
            continue;
        }
        candidates.push(run(w, chunking));
        // Fixed chunks of about two per worker: fewer chunks pay fewer bookkeeping round trips.
        if let Some(bytes) = inp.table_bytes {
            let mb = (bytes / 1048576.0 / (2.0 * f64::from(w))).floor().max(1.0) as u32;
            let cap = match chunking {
                Chunking::Auto { split_mb } | Chunking::Fixed { split_mb } => split_mb,
            };
            if mb < cap {
                candidates.push(run(w, Chunking::Fixed { split_mb: mb }));
            }
        }
    }
    // The fewest workers that reach the goal (simpler for the servers), else the fastest.
    let chosen = candidates
        .iter()
        .filter(|c| c.predicted_rows_per_sec >= goal)
        .min_by(|a, b| {
            a.workers.cmp(&b.workers).then(
                b.predicted_rows_per_sec
                    .total_cmp(&a.predicted_rows_per_sec),
            )
        })
        .or_else(|| {
            candidates.iter().max_by(|a, b| {
                a.predicted_rows_per_sec
                    .total_cmp(&b.predicted_rows_per_sec)
            })
        })
        .copied()
        .unwrap_or(current);
    let in_flight = goal * chosen.chunk_secs / chosen.rows_per_chunk;
    let found = format!(
        "{current_workers} workers ({}: {}) predict {:.0} rows/s at {:.1} ms to Cassandra and {:.1} ms to the target; goal {:.0} rows/s",
        spec.run.max_parallel_chunks_from,
        spec.run.max_parallel_chunks,
        current.predicted_rows_per_sec,
        rtt_s * 1e3,
        rtt_t * 1e3,
        goal
    );
    let enough = current.predicted_rows_per_sec >= 0.9 * goal
        || (chosen.workers == current_workers && chosen.chunking == current.chunking);
    let mut check = Check::new(
        "requests in flight (Little's law)",
        if enough { Verdict::Ok } else { Verdict::Warn },
        found,
        format!(
            "in flight = rate × time per chunk / rows per chunk = {goal:.0} × {:.3} s / {:.0} ≈ {in_flight:.1}; {} workers predict {:.0} rows/s",
            chosen.chunk_secs, chosen.rows_per_chunk, chosen.workers, chosen.predicted_rows_per_sec
        ),
    );
    if !enough {
        check = check.recommend("ferry.maxParallelChunks", chosen.workers);
    }
    out.push(check);
    if !enough {
        let per_host = chosen.workers.div_ceil(hosts);
        if per_host > spec.target.max_connections_per_host
            || spec.target.hosts.len() as u32 * spec.target.max_connections_per_host
                < chosen.workers
        {
            let per_listed = chosen
                .workers
                .div_ceil(hosts.max(spec.target.hosts.len() as u32).max(1));
            out.push(
                Check::new(
                    "connections per target host",
                    Verdict::Warn,
                    format!(
                        "yugabyte.maxPoolSize={} × {} hosts < {} workers",
                        spec.target.max_connections_per_host,
                        spec.target.hosts.len(),
                        chosen.workers
                    ),
                    "each worker holds one COPY connection".into(),
                )
                .recommend(
                    "yugabyte.maxPoolSize",
                    per_listed.max(spec.target.max_connections_per_host),
                ),
            );
        }
        if spec.source.concurrent_reads < chosen.workers {
            out.push(
                Check::new(
                    "cassandra.concurrentReads",
                    Verdict::Warn,
                    format!(
                        "{} < {} workers",
                        spec.source.concurrent_reads, chosen.workers
                    ),
                    "each worker has one page in flight".into(),
                )
                .recommend("cassandra.concurrentReads", chosen.workers),
            );
        }
        if let Chunking::Fixed { split_mb } = chosen.chunking {
            if chosen.chunking != current.chunking {
                out.push(
                    Check::new(
                        "chunk size against latency",
                        Verdict::Warn,
                        format!(
                            "{:.0} chunks of {:.0} rows: each pays {BOOKKEEPING_ROUND_TRIPS} target round trips ({:.0} ms) for {:.0} ms of data",
                            current.chunks,
                            current.rows_per_chunk,
                            BOOKKEEPING_ROUND_TRIPS * rtt_t * 1e3,
                            (current.chunk_secs - BOOKKEEPING_ROUND_TRIPS * rtt_t) * 1e3
                        ),
                        format!("{split_mb} MB chunks ({:.0} of them) amortize the round trips", chosen.chunks),
                    )
                    .recommend("cassandra.inputSplitSizeMb.override", split_mb),
                );
            }
        }
    }
    if let Some(max) = inp.max_connections {
        let used = inp.connections_in_use.unwrap_or(0);
        if u64::from(chosen.workers) + used + 2 > max {
            out.push(Check::new(
                "target max_connections",
                Verdict::Fail,
                format!(
                    "{} workers + {used} in use > max_connections {max}",
                    chosen.workers
                ),
                "raise max_connections on the target or run fewer workers".into(),
            ));
        }
    }
    Some(Model {
        goal_rows_per_sec: goal,
        goal_from,
        source_rtt_ms: rtt_s * 1e3,
        target_rtt_ms: rtt_t * 1e3,
        source_stream_rows_per_sec: src,
        target_stream_rows_per_sec: tgt,
        table_rows: rows,
        fetch_size: fetch,
        current,
        chosen,
        connection_budget: budget,
    })
}

/// Rounds up to a multiple of `step`.
fn round_up(x: f64, step: f64) -> u64 {
    ((x / step).ceil() * step) as u64
}

/// Timeouts against the measured tails: a timeout under the tail fails requests that would have
/// succeeded; ten times the p99 leaves room for a slow moment.
fn timeouts(spec: &MigrationSpec, inp: &Inputs, out: &mut Vec<Check>) {
    if let Some(page) = inp.page_ms {
        let want = round_up((page.p99 * 10.0).max(30_000.0), 1000.0);
        let have = spec.source.read_timeout_ms;
        let verdict = if (have as f64) < page.p99 * 2.0 {
            Verdict::Fail
        } else if have < want {
            Verdict::Warn
        } else {
            Verdict::Ok
        };
        let mut c = Check::new(
            "cassandra.readTimeoutMs",
            verdict,
            format!(
                "{have} ms; a page took p50 {:.0} ms, p99 {:.0} ms",
                page.p50, page.p99
            ),
            "at least 10× the slowest page (and 30 s)".into(),
        );
        if verdict != Verdict::Ok {
            c = c.recommend("cassandra.readTimeoutMs", want);
        }
        out.push(c);
    }
    let connect_check = |name: &str, have: u64, connect: Option<f64>, rtt: Option<Percentiles>| {
        // TCP, then the protocol's handshake and login: a few round trips.
        let need = connect.unwrap_or(0.0) + 4.0 * rtt.map_or(0.0, |p| p.p99);
        let want = round_up((need * 10.0).max(5_000.0), 1000.0);
        let verdict = if (have as f64) < need * 2.0 {
            Verdict::Fail
        } else if (have as f64) < need * 10.0 {
            Verdict::Warn
        } else {
            Verdict::Ok
        };
        let mut c = Check::new(
            name,
            verdict,
            format!("{have} ms; connecting and logging in takes about {need:.0} ms"),
            "at least 10× the connect and login time (and 5 s)".into(),
        );
        if verdict != Verdict::Ok {
            c = c.recommend(name, want);
        }
        c
    };
    if inp.source_connect_ms.is_some() {
        out.push(connect_check(
            "cassandra.connection.timeoutMs",
            spec.source.connect_timeout_ms,
            inp.source_connect_ms,
            inp.source_rtt,
        ));
    }
    if inp.target_connect_ms.is_some() {
        out.push(connect_check(
            "yugabyte.connectionTimeout",
            spec.target.connect_timeout_ms,
            inp.target_connect_ms,
            inp.target_rtt,
        ));
    }
    if let (Some(secs), Some(rtt)) = (spec.target.socket_timeout_secs, inp.target_rtt) {
        // A chunk's commit waits for its bookkeeping and its data; a socket timeout under that
        // kills healthy chunks.
        let need = BOOKKEEPING_ROUND_TRIPS * rtt.p99 / 1e3 * 10.0;
        if (secs as f64) < need.max(60.0) {
            out.push(
                Check::new(
                    "yugabyte.socketTimeout",
                    Verdict::Warn,
                    format!("{secs} s"),
                    "0 (no socket timeout) lets ferry's own read and outage deadlines decide"
                        .into(),
                )
                .recommend("yugabyte.socketTimeout", 0),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_chunks_follow_workers_and_fixed_chunks_follow_size() {
        let mb = 1048576.0;
        assert_eq!(
            chunk_count(10.0 * mb, Chunking::Auto { split_mb: 64 }, 4),
            64.0
        );
        assert_eq!(
            chunk_count(10.0 * mb, Chunking::Auto { split_mb: 64 }, 16),
            128.0
        );
        assert_eq!(
            chunk_count(6400.0 * mb, Chunking::Auto { split_mb: 64 }, 4),
            100.0
        );
        assert_eq!(
            chunk_count(10.0 * mb, Chunking::Fixed { split_mb: 2 }, 16),
            5.0
        );
    }

    #[test]
    fn latency_makes_the_same_workers_slower_and_more_workers_win_it_back() {
        let c = Chunking::Auto { split_mb: 64 };
        let (rows, rb, fetch, src, tgt) = (1e7, 200.0, 5000.0, 50_000.0, 80_000.0);
        let local = predict(16, c, rows, rb, fetch, 0.0005, 0.0005, src, tgt);
        let wan = predict(16, c, rows, rb, fetch, 0.05, 0.05, src, tgt);
        assert!(wan.predicted_rows_per_sec < local.predicted_rows_per_sec * 0.8);
        let more = predict(64, c, rows, rb, fetch, 0.05, 0.05, src, tgt);
        assert!(more.predicted_rows_per_sec > wan.predicted_rows_per_sec * 2.0);
    }

    #[test]
    fn bookkeeping_round_trips_dominate_tiny_chunks() {
        // 200 000 rows in 512 chunks: each chunk is a few hundred rows and 8 round trips.
        let tiny = predict(
            64,
            Chunking::Auto { split_mb: 64 },
            2e5,
            250.0,
            5000.0,
            0.05,
            0.05,
            5e4,
            5e4,
        );
        let fixed = predict(
            64,
            Chunking::Fixed { split_mb: 1 },
            2e5,
            250.0,
            5000.0,
            0.05,
            0.05,
            5e4,
            5e4,
        );
        assert!(fixed.rows_per_chunk > tiny.rows_per_chunk);
        assert!(fixed.predicted_rows_per_sec > tiny.predicted_rows_per_sec);
    }
}
