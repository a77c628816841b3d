//! The migration pipeline for one table: workers (one target connection each, spread over
//! every target node) lease a chunk, read it page by page (the next page is fetched while the
//! current one is sent), encode straight into binary COPY, and stream it into the chunk's own
//! transaction, which also records its rejected rows and marks it done.
//!
//! Memory is bounded by the pages in flight (`ferry.pageMemoryMb`), not by the table. Rows
//! count as written only after the server acknowledged the chunk's commit.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use scylla::client::session::Session;
use scylla::deserialize::row::ColumnIterator;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::Consistency;

use crate::adapt;
use crate::budget::{Budget, IdleConn, Slot};
use crate::cql::CqlType;
use crate::encode;
use crate::error::{kind_in, target_failure, SideError};
use crate::plan::Plan;
use crate::progress::{ChunkDone, ChunkStatements, Lease, Progress};
use crate::rejects::{Reject, RowShape};
use crate::retry::{backoff, no_reply, note_recovery, Outage};
use crate::schema::{ColumnKind, TableMapping};
use crate::sink::{InsertMode, TableWriter, TargetEndpoint, TargetFacts};
use crate::source::{self, FailureKind, ReadError, ReadSettings, RetryPolicy, Routing};

/// What a run does. Besides migrating, two measurement modes find each side's limit with the
/// same machinery (chunks, leases, workers): reading to nothing, and loading payloads captured
/// earlier without reading Cassandra.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Cassandra → target.
    Migrate,
    /// Read and encode every chunk, write no rows (`--scan-only`): the source side's limit.
    ScanOnly,
    /// As `ScanOnly`, keeping each chunk's encoded COPY payload as a file in this folder
    /// (`--capture DIR`).
    Capture(PathBuf),
    /// Load the payloads a capture left in this folder, reading nothing from Cassandra
    /// (`--replay DIR`): the target side's limit.
    Replay(PathBuf),
}

/// The file a captured chunk's COPY payload lives in.
pub fn capture_file(dir: &std::path::Path, chunk: u32, start: i64, end: i64) -> PathBuf {
    dir.join(format!("chunk-{chunk}_{start}_{end}.pgcopy"))
}

/// How to read and write; the typed form of the `cassandra.*` / `yugabyte.*` settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The page reads' p99 the adaptive controller keeps under (`ferry.sourceLatencyTargetMs`).
    pub source_latency_target_ms: Option<u64>,
    pub fetch_size_rows: i32,
    pub consistency: Consistency,
    pub read_timeout_ms: u64,
    /// Rows per second over all readers; 0 = unlimited.
    pub reads_per_sec: u64,
    /// Retries of a failed page or batch before the run fails.
    pub retry_count: u32,
    /// Backoff between source read retries (`cassandra.connection.reconnectionDelayMs.*`).
    pub retry_delay_min: Duration,
    pub retry_delay_max: Duration,
    /// Which data centres serve the reads (`cassandra.localDC`, `ferry.remoteDcReads`).
    pub routing: Routing,
    /// A COPY statement closes after this many rows (`yugabyte.copyFlushEvery`); a chunk's
    /// COPY statements share its transaction.
    pub batch_rows: usize,
    /// Workers (chunks in flight, one target connection each) at the start.
    pub writers: usize,
    /// With adaptive concurrency, the range the level moves in (see [`crate::adapt`]);
    /// `None` keeps `writers` fixed.
    pub adaptive: Option<(usize, usize)>,
    pub insert_mode: InsertMode,
    /// The reject file: rejected rows are exported here (JSON lines) from the progress
    /// schema's reject table at the end of a run (see [`crate::rejects`]).
    pub reject_file: PathBuf,
    /// A worker that vanishes without closing its connection frees its chunk after about this
    /// long (the server's TCP keepalive probes give up).
    pub lease: Duration,
    /// Memory for pages in flight over all workers; each working worker's share bounds its
    /// page size.
    pub page_budget_bytes: u64,
    /// When a side stays unreachable this long, the run stops (resumable).
    pub outage_deadline: Duration,
    pub mode: Mode,
}

/// Counters one table's run accumulates; shared by readers and writers.
#[derive(Debug, Default)]
pub struct Counters {
    pub rows_read: AtomicU64,
    pub rows_written: AtomicU64,
    pub rows_rejected: AtomicU64,
    pub bytes_written: AtomicU64,
    pub chunks_done: AtomicU64,
    pub batches_written: AtomicU64,
    pub write_retries: AtomicU64,
    /// Nanoseconds spent waiting on Cassandra pages, on target writes, and encoding.
    pub source_wait_ns: AtomicU64,
    pub target_wait_ns: AtomicU64,
    pub encode_ns: AtomicU64,
    /// What is in flight right now: page reads, COPY sends, chunks this process holds leased.
    pub reads_in_flight: AtomicU64,
    pub writes_in_flight: AtomicU64,
    pub chunks_in_flight: AtomicU64,
    /// Workers allowed to work now (adaptive concurrency), and the most there were.
    pub workers_active: AtomicU64,
    pub workers_peak: AtomicU64,
    /// Failed page reads that were retried: pages read again (write retries: `write_retries`).
    pub read_retries: AtomicU64,
    /// Chunks restarted after their source read failed past the page's own retries.
    pub source_chunk_retries: AtomicU64,
    /// Target connections opened again after one was lost.
    pub target_reconnects: AtomicU64,
    /// The longest outage of each side the workers rode through, in ms.
    pub source_outage_ms: AtomicU64,
    pub target_outage_ms: AtomicU64,
    /// Pages served by a replica other than their range's first choice (it was down or failed).
    pub pages_failed_over: AtomicU64,
    /// Request latency per node, observed per page or lease, never per row (`ferry migrate --ui`).
    pub nodes: NodeLatencies,
    /// How long Cassandra page reads took, and chunk commits (the done mark with COMMIT).
    pub source_pages: crate::latency::Histogram,
    pub commits: crate::latency::Histogram,
    /// The page reads' p99 in the controller's last window, in µs (0: not measured).
    pub source_p99_window_us: AtomicU64,
    /// The last few errors that were retried, newest last.
    pub recent_errors: Mutex<std::collections::VecDeque<String>>,
}

impl Counters {
    /// Every retry so far, of either side (the adaptive controller backs off when they grow).
    pub fn retries(&self) -> u64 {
        self.read_retries.load(Ordering::Relaxed)
            + self.source_chunk_retries.load(Ordering::Relaxed)
            + self.write_retries.load(Ordering::Relaxed)
    }

    /// Remembers a retried error for the live page; keeps the last 20.
    pub fn note_error(&self, message: String) {
        if let Ok(mut q) = self.recent_errors.lock() {
            if q.len() == 20 {
                q.pop_front();
            }
            q.push_back(message);
        }
    }
}

pub use crate::error::Side;

/// Totals of the requests to one node: enough for a mean over any interval (difference of two
/// readings) and the worst case.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeLatency {
    pub requests: u64,
    pub total_ns: u64,
    pub max_ns: u64,
}

/// Request latency per (side, node address). One short lock per page or lease.
#[derive(Debug, Default)]
pub struct NodeLatencies(Mutex<std::collections::BTreeMap<(Side, String), NodeLatency>>);

impl NodeLatencies {
    pub fn observe(&self, side: Side, node: &str, took: Duration) {
        let ns = took.as_nanos() as u64;
        if let Ok(mut m) = self.0.lock() {
            let e = m.entry((side, node.to_string())).or_default();
            e.requests += 1;
            e.total_ns += ns;
            e.max_ns = e.max_ns.max(ns);
        }
    }

    pub fn snapshot(&self) -> Vec<(Side, String, NodeLatency)> {
        self.0
            .lock()
            .map(|m| m.iter().map(|((s, n), l)| (*s, n.clone(), *l)).collect())
            .unwrap_or_default()
    }
}

/// Counts one in-flight item for as long as it lives.
struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    fn new(n: &'a AtomicU64) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether one worker is counted idle (no chunk left to lease); uncounted when it ends.
struct Idle<'a> {
    count: &'a AtomicU64,
    on: std::cell::Cell<bool>,
}

impl<'a> Idle<'a> {
    fn new(count: &'a AtomicU64) -> Self {
        Idle {
            count,
            on: std::cell::Cell::new(false),
        }
    }

    fn set(&self, on: bool) {
        if self.on.replace(on) != on {
            if on {
                self.count.fetch_add(1, Ordering::Relaxed);
            } else {
                self.count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.set(false);
    }
}

/// The outcome for one table.
#[derive(Clone, Debug)]
pub struct TableReport {
    pub source: String,
    pub target: String,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub bytes: u64,
    pub chunks: u64,
    pub elapsed: Duration,
    pub source_wait: Duration,
    pub target_wait: Duration,
    pub encode: Duration,
    pub write_retries: u64,
    /// Page reads retried: pages read again after a failed read.
    pub read_retries: u64,
    /// Chunks restarted after their source read failed past the page's own retries.
    pub source_chunk_retries: u64,
    /// Target connections opened again after one was lost.
    pub target_reconnects: u64,
    /// The longest outage of each side the run rode through (zero: none).
    pub source_outage: Duration,
    pub target_outage: Duration,
    /// Pages served by another replica than their range's first choice.
    pub pages_failed_over: u64,
    /// Workers at the start, at the end, and at most (adaptive concurrency).
    pub workers: (u64, u64, u64),
    /// Rows earlier runs of a resumed plan wrote (already in the target).
    pub rows_before: u64,
    /// When the table started copying (set by the job, which runs tables side by side).
    pub started_at: Option<std::time::SystemTime>,
    /// Rows per second over the middle 80% of the table's time (set-up and the last chunks'
    /// tail left out); `None` for a run too short to tell (under a second).
    pub steady_rows_per_sec: Option<f64>,
    /// The 99th percentile of the table's Cassandra page reads and of its chunk commits, in ms.
    pub source_p99_ms: Option<f64>,
    pub commit_p99_ms: Option<f64>,
}

impl TableReport {
    pub fn rows_per_sec(&self) -> f64 {
        self.rows_written as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Everything the workers of one table share.
struct Ctx<'a> {
    reader: source::RangeReader<'a>,
    types: Vec<CqlType>,
    key_columns: Vec<usize>,
    names: Vec<String>,
    constants: Vec<Option<Vec<u8>>>,
    settings: &'a Settings,
    counters: &'a Counters,
    table: String,
    limiter: Option<RateLimiter>,
    target: &'a TargetEndpoint,
    facts: &'a TargetFacts,
    writer: &'a TableWriter,
    progress: &'a Progress,
    job: &'a str,
    owner: &'a str,
    stop: &'a AtomicBool,
    /// The run's slots and idle connections, shared with the tables copied beside this one.
    budget: &'a Budget,
    /// Chunks whose reads timed out, and how often their range is halved.
    splits: Mutex<HashMap<u32, u32>>,
    /// Workers with an index below this work; the others wait (adaptive concurrency).
    active: std::sync::atomic::AtomicUsize,
    /// Set by the first worker that finds every chunk done.
    finished: AtomicBool,
    /// Encoded (binary COPY) bytes per row, as last measured; 0 until the first page.
    row_bytes: AtomicU64,
    /// Bytes all workers' pages may take at once.
    page_budget: u64,
    /// Workers that found no chunk left to lease: their page memory goes to the others.
    idle: AtomicU64,
    /// The source's frame limit, which bounds a page ([`crate::page_size`]).
    frame_bytes: u64,
    /// How long a reply the target owes may take ([`crate::retry::reply_deadline`]).
    reply: Duration,
}

/// The page memory for a source `rtt` away, out of at most `max`. Pages in flight are what hides
/// the round trip, and the memory that takes grows with it (the bandwidth-delay product); close
/// by, a third of `max` reads as fast (measured on loopback), so the rest comes in step with the
/// round trip, all of it from 50 ms on (25 ms each way). An unmeasured round trip gets all of `max`.
pub fn page_budget(max: u64, rtt: Option<Duration>) -> u64 {
    const FULL_AT: Duration = Duration::from_millis(50);
    let Some(rtt) = rtt else { return max };
    let floor = max / 3;
    let f = (rtt.as_secs_f64() / FULL_AT.as_secs_f64()).min(1.0);
    floor + ((max - floor) as f64 * f) as u64
}

/// The source's round trip: the fastest of three small queries sent at once.
pub async fn source_rtt(session: &Session) -> Option<Duration> {
    let ping = || async {
        let t = Instant::now();
        session
            .query_unpaged("SELECT release_version FROM system.local", &[])
            .await
            .ok()
            .map(|_| t.elapsed())
    };
    let (a, b, c) = tokio::join!(ping(), ping(), ping());
    [a, b, c].into_iter().flatten().min()
}

/// Rows per page ([`crate::page_size`]): the fetch size (`ceiling`) within this worker's share
/// of the page budget; past it, when chunks are fewer than workers, unless `grow` is false
/// (the chunk's reads timed out).
fn page_rows_for(ctx: &Ctx<'_>, ceiling: i32, grow: bool) -> i32 {
    crate::page_size::page_rows(&crate::page_size::PageInputs {
        budget: ctx.page_budget,
        row_bytes: ctx.row_bytes.load(Ordering::Relaxed),
        active: ctx.active.load(Ordering::Relaxed) as u64,
        // The run's slots in use count too: tables copied beside this one share the budget.
        holding: ctx
            .counters
            .chunks_in_flight
            .load(Ordering::Relaxed)
            .max(ctx.budget.in_use() as u64),
        idle: ctx.idle.load(Ordering::Relaxed),
        fetch_rows: ceiling.max(1) as u64,
        grow,
        frame_bytes: ctx.frame_bytes,
    })
}

/// Migrates one table: workers lease chunks from the progress table until none is left. Each
/// chunk is read page by page and streamed into COPY inside one transaction that also marks the
/// chunk done, so after any crash a rerun writes every row exactly once. A worker works while it
/// holds one of `budget`'s slots, on a connection from its pool (see [`crate::budget`]).
#[allow(clippy::too_many_arguments)]
pub async fn run_table(
    session: &Session,
    mapping: &TableMapping,
    plan: &Plan,
    target: &TargetEndpoint,
    facts: &TargetFacts,
    writer: &TableWriter,
    constants: Vec<Option<Vec<u8>>>,
    settings: &Settings,
    counters: &Counters,
    progress: &Progress,
    job: &str,
    owner: &str,
    stop: &AtomicBool,
    budget: &Budget,
) -> Result<TableReport> {
    let start = Instant::now();
    // The source's round trip is measured beside the prepare, at no extra wait: it sizes the
    // page memory (see [`page_budget`]).
    let read = settings.read_settings();
    let (reader, rtt, frame_bytes) = tokio::join!(
        source::RangeReader::new(
            session,
            mapping.source.range_select(),
            mapping.source.qualified(),
            plan,
            &read,
        ),
        source_rtt(session),
        crate::page_size::frame_bytes(session)
    );
    let reader = reader?.with_slices(&mapping.source);
    let page_budget = page_budget(settings.page_budget_bytes, rtt);
    tracing::info!(
        rtt_us = rtt.map(|d| d.as_micros() as u64),
        page_budget_mib = page_budget >> 20,
        "page memory"
    );
    let ctx = Ctx {
        reply: crate::retry::reply_deadline(target),
        reader,
        types: mapping
            .source
            .columns
            .iter()
            .map(|c| c.ty.clone())
            .collect(),
        key_columns: mapping
            .source
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                matches!(
                    c.kind,
                    ColumnKind::PartitionKey | ColumnKind::Clustering { .. }
                )
            })
            .map(|(i, _)| i)
            .collect(),
        names: mapping
            .source
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        constants,
        settings,
        counters,
        table: mapping.source.qualified(),
        limiter: (settings.reads_per_sec > 0).then(|| RateLimiter::new(settings.reads_per_sec)),
        target,
        facts,
        writer,
        progress,
        job,
        owner,
        stop,
        budget,
        splits: Mutex::new(HashMap::new()),
        active: std::sync::atomic::AtomicUsize::new(settings.writers.max(1)),
        finished: AtomicBool::new(false),
        row_bytes: AtomicU64::new(0),
        page_budget,
        idle: AtomicU64::new(0),
        frame_bytes,
    };
    let ctx = &ctx;
    let start_level = settings.writers.max(1);
    counters
        .workers_active
        .store(start_level as u64, Ordering::Relaxed);
    counters
        .workers_peak
        .store(start_level as u64, Ordering::Relaxed);
    let spawned = settings
        .adaptive
        .map_or(start_level, |(_, max)| max.max(start_level));
    let workers = futures::future::try_join_all((0..spawned).map(|i| worker(ctx, i)));
    // Rows written over time, for the steady-state rate.
    let progress_over_time = Mutex::new(vec![(0.0, 0u64)]);
    let sample = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Ok(mut s) = progress_over_time.lock() {
                s.push((
                    start.elapsed().as_secs_f64(),
                    counters.rows_written.load(Ordering::Relaxed),
                ));
            }
        }
    };
    let run = async {
        match settings.adaptive {
            None => workers.await,
            Some((min, max)) => {
                tokio::select! {
                    r = workers => r,
                    _ = adapt_loop(ctx, start_level, min, max) => unreachable!("the controller never ends"),
                }
            }
        }
    };
    let result = tokio::select! {
        r = run => r,
        _ = sample => unreachable!("the sampler never ends"),
    };
    let steady_rows_per_sec = progress_over_time.lock().ok().and_then(|mut s| {
        s.push((
            start.elapsed().as_secs_f64(),
            counters.rows_written.load(Ordering::Relaxed),
        ));
        steady_rate(&s)
    });
    result?;
    Ok(TableReport {
        source: mapping.source.qualified(),
        target: format!("{}.{}", mapping.target_schema, mapping.target_table),
        rows_read: counters.rows_read.load(Ordering::Relaxed),
        rows_written: counters.rows_written.load(Ordering::Relaxed),
        rows_rejected: counters.rows_rejected.load(Ordering::Relaxed),
        bytes: counters.bytes_written.load(Ordering::Relaxed),
        chunks: counters.chunks_done.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        source_wait: Duration::from_nanos(counters.source_wait_ns.load(Ordering::Relaxed)),
        target_wait: Duration::from_nanos(counters.target_wait_ns.load(Ordering::Relaxed)),
        encode: Duration::from_nanos(counters.encode_ns.load(Ordering::Relaxed)),
        write_retries: counters.write_retries.load(Ordering::Relaxed),
        read_retries: counters.read_retries.load(Ordering::Relaxed),
        source_chunk_retries: counters.source_chunk_retries.load(Ordering::Relaxed),
        target_reconnects: counters.target_reconnects.load(Ordering::Relaxed),
        source_outage: Duration::from_millis(counters.source_outage_ms.load(Ordering::Relaxed)),
        target_outage: Duration::from_millis(counters.target_outage_ms.load(Ordering::Relaxed)),
        pages_failed_over: counters.pages_failed_over.load(Ordering::Relaxed),
        workers: (
            start_level as u64,
            counters.workers_active.load(Ordering::Relaxed),
            counters.workers_peak.load(Ordering::Relaxed),
        ),
        rows_before: 0,
        started_at: None,
        steady_rows_per_sec,
        source_p99_ms: counters.source_pages.snapshot().percentile(99.0),
        commit_p99_ms: counters.commits.snapshot().percentile(99.0),
    })
}

/// The rate over the middle 80% of a run's time, from `(seconds, rows so far)` samples in time
/// order (the first at 0, the last at the end), interpolated between samples.
pub fn steady_rate(samples: &[(f64, u64)]) -> Option<f64> {
    let end = samples.last()?.0;
    if end < 1.0 || samples.len() < 3 {
        return None;
    }
    let at = |t: f64| -> f64 {
        let i = samples.partition_point(|(s, _)| *s < t);
        if i == 0 {
            return samples[0].1 as f64;
        }
        let ((t0, r0), (t1, r1)) = (samples[i - 1], samples[i.min(samples.len() - 1)]);
        if t1 <= t0 {
            return r1 as f64;
        }
        r0 as f64 + (r1 as f64 - r0 as f64) * (t - t0) / (t1 - t0)
    };
    let (a, b) = (0.1 * end, 0.9 * end);
    Some((at(b) - at(a)) / (b - a))
}

/// Adaptive concurrency: measures the read rate each window and lets [`adapt::Controller`] set
/// how many of this table's workers work. The first window at a new level is discarded by the
/// controller.
async fn adapt_loop(ctx: &Ctx<'_>, start: usize, min: usize, max: usize) {
    let target = ctx.settings.source_latency_target_ms.map(|ms| ms as f64);
    adapt::steer(
        adapt::Controller::new(start, min, max).with_latency_target(target),
        || ctx.counters.rows_read.load(Ordering::Relaxed),
        || ctx.counters.retries(),
        || ctx.counters.source_pages.snapshot(),
        |level, p99| {
            ctx.counters
                .source_p99_window_us
                .store(p99.map_or(0, |p| (p * 1e3) as u64), Ordering::Relaxed);
            ctx.active.store(level, Ordering::Relaxed);
            ctx.counters
                .workers_active
                .store(level as u64, Ordering::Relaxed);
            ctx.counters
                .workers_peak
                .fetch_max(level as u64, Ordering::Relaxed);
        },
    )
    .await
}

/// Why a chunk attempt failed, which decides what happens next.
enum ChunkError {
    /// Reading Cassandra failed after the page's own retries: restart the chunk with backoff,
    /// unless the failure is one no restart fixes.
    Source(ReadError),
    /// Writing failed; [`SideError::retryable`] decides whether another attempt (maybe on
    /// another node) follows.
    Target(SideError),
    /// A local failure (the capture file, a row the driver cannot decode): not retried.
    Local(anyhow::Error),
}

fn classify_pg(e: tokio_postgres::Error, node: &str, what: &str) -> ChunkError {
    ChunkError::Target(SideError::target(&e, node, what))
}

/// A target request's reply, classified, or a timeout when it does not come within `deadline`
/// (a half-open connection never answers; see [`crate::retry::reply_deadline`]).
async fn answer<T>(
    deadline: Duration,
    node: &str,
    what: &str,
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, ChunkError> {
    match tokio::time::timeout(deadline, f).await {
        Ok(r) => r.map_err(|e| classify_pg(e, node, what)),
        Err(_) => Err(ChunkError::Target(no_reply(deadline, node, what))),
    }
}

/// A failed done-mark-and-commit. The done mark divides by zero when its row was not there
/// to mark (the plan was reset under this worker): nothing was committed.
fn classify_commit(e: tokio_postgres::Error, node: &str) -> ChunkError {
    if e.code() == Some(&tokio_postgres::error::SqlState::DIVISION_BY_ZERO) {
        return ChunkError::Local(anyhow!(
            "the chunk's progress row changed while it was copied (was the job reset with --fresh \
             by another process?); nothing of it was committed — rerun to resume"
        ));
    }
    classify_pg(e, node, "committing")
}

/// One worker's target connection, with the per-chunk statements prepared on it.
struct Conn {
    client: tokio_postgres::Client,
    st: ChunkStatements,
    /// The table's COPY statement (migrate and replay).
    copy: Option<tokio_postgres::Statement>,
    node: String,
    /// Its node's index in [`TargetFacts::nodes`].
    index: usize,
    /// How long a reply on it may take.
    reply: Duration,
}

impl Conn {
    /// A connection to `nodes[node]`: an idle one of the run's if there is one (to that node,
    /// else to any: the returned index says which), else a new one. Only the table's COPY
    /// statement is prepared on a reused connection.
    async fn get(ctx: &Ctx<'_>, node: usize) -> Result<(Conn, usize)> {
        if let Some(idle) = ctx.budget.take_conn(node) {
            let (h, p) = &ctx.facts.nodes[idle.node];
            let at_node = format!("{h}:{p}");
            let copy = crate::retry::within(
                ctx.reply,
                &at_node,
                "preparing COPY",
                Self::prepare_copy(ctx, &idle.client),
            )
            .await
            .map_err(|e| target_failure(e, &at_node, "preparing COPY"))?;
            let at = idle.node;
            return Ok((
                Conn {
                    client: idle.client,
                    st: idle.st,
                    copy,
                    node: format!("{h}:{p}"),
                    index: at,
                    reply: ctx.reply,
                },
                at,
            ));
        }
        let (h, p) = &ctx.facts.nodes[node];
        Ok((Self::open(ctx, h, *p, node).await?, node))
    }

    /// Gives the connection to the run's pool, for the next worker of any table.
    fn park(self, budget: &Budget) {
        budget.give_conn(IdleConn {
            client: self.client,
            st: self.st,
            node: self.index,
        });
    }

    async fn prepare_copy(
        ctx: &Ctx<'_>,
        client: &tokio_postgres::Client,
    ) -> Result<Option<tokio_postgres::Statement>> {
        if matches!(ctx.settings.mode, Mode::Migrate | Mode::Replay(_)) {
            client
                .prepare(&ctx.writer.copy_sql)
                .await
                .map(Some)
                .with_context(|| format!("preparing {}", ctx.writer.copy_sql))
        } else {
            Ok(None)
        }
    }

    /// Connects to `host:port` and prepares everything in one more round trip. The server is
    /// told to probe the connection (TCP keepalives) so that a worker that vanishes without
    /// closing it frees its chunk within about `ferry.leaseSecs`.
    async fn open(ctx: &Ctx<'_>, host: &str, port: u16, index: usize) -> Result<Conn> {
        let node = format!("{host}:{port}");
        let client = crate::retry::within(
            ctx.reply,
            &node,
            "connecting",
            ctx.target.connect(host, port),
        )
        .await?;
        let lease = ctx.settings.lease.as_secs().max(3);
        let keepalive = format!(
            "SET tcp_keepalives_idle = {}; SET tcp_keepalives_interval = {}; SET tcp_keepalives_count = 3",
            (lease / 2).max(1),
            (lease / 6).max(1)
        );
        let (st, copy, _) =
            crate::retry::within(ctx.reply, &node, "preparing the chunk statements", async {
                tokio::try_join!(
                    ctx.progress.chunk_statements(&client),
                    Self::prepare_copy(ctx, &client),
                    async {
                        client
                            .batch_execute(&keepalive)
                            .await
                            .context("setting TCP keepalives")
                    },
                )
            })
            .await
            .map_err(|e| target_failure(e, &node, "preparing the chunk statements"))?;
        Ok(Conn {
            client,
            st,
            copy,
            node,
            index,
            reply: ctx.reply,
        })
    }
}

/// One worker: a connection to its node; leases a chunk (locking its progress row in the
/// chunk's own transaction), copies it, commits, repeats. A failed attempt rolls back, which
/// hands the chunk to whichever worker leases next (often this one, after a backoff). On a lost
/// node it moves to the next one; while a side is down it keeps retrying until
/// `outage_deadline`.
async fn worker(ctx: &Ctx<'_>, index: usize) -> Result<()> {
    let nodes = &ctx.facts.nodes;
    let mut node = index % nodes.len();
    let mut conn: Option<Conn> = None;
    let mut slot: Option<Slot<'_>> = None;
    let mut target_down = Outage::new(ctx.settings.outage_deadline);
    let mut source_down = Outage::new(ctx.settings.outage_deadline);
    let mut failures = 0u32;
    // This worker's connection was lost (the next one it opens is a reconnect).
    let mut lost = false;
    // Gives up the slot, and the connection to the run's pool (both are the run's).
    let release = |slot: &mut Option<Slot<'_>>, conn: &mut Option<Conn>| {
        *slot = None;
        if let Some(c) = conn.take() {
            c.park(ctx.budget);
        }
    };
    let idle = Idle::new(&ctx.idle);
    loop {
        if ctx.stop.load(Ordering::Relaxed) || ctx.finished.load(Ordering::Relaxed) {
            release(&mut slot, &mut conn);
            return Ok(());
        }
        if index >= ctx.active.load(Ordering::Relaxed) {
            // Not needed at the current level (adaptive concurrency).
            release(&mut slot, &mut conn);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if slot.is_none() {
            // Worker 0 waits its turn ahead of other tables' extra workers; the others take a
            // free slot or wait.
            slot = if index == 0 {
                Some(ctx.budget.first_slot().await)
            } else {
                ctx.budget.try_slot()
            };
            if slot.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        }
        if conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            lost = true;
        }
        if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            match Conn::get(ctx, node).await {
                Ok((c, at)) => {
                    conn = Some(c);
                    node = at;
                    if std::mem::take(&mut lost) {
                        ctx.counters
                            .target_reconnects
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    // A node that is down is retried (on the next node); refused credentials,
                    // a missing privilege or a TLS refusal stop the run now.
                    if !kind_in(&e).retryable() {
                        return Err(e);
                    }
                    conn = None;
                    lost = true;
                    failures += 1;
                    target_down.failed("the target", "connecting", e)?;
                    node = (node + 1) % nodes.len();
                    tokio::time::sleep(backoff(failures)).await;
                    continue;
                }
            }
        }
        let c = conn.as_ref().expect("connected above");
        let asked = Instant::now();
        let leased = match tokio::time::timeout(
            c.reply,
            ctx.progress.begin_lease(&c.client, &c.st, ctx.job),
        )
        .await
        {
            Ok(r) => r.map_err(|e| {
                SideError::target(&e, &c.node, format!("leasing a chunk of {}", ctx.table))
            }),
            Err(_) => Err(no_reply(c.reply, &c.node, "leasing a chunk")),
        };
        let lease = match leased {
            Ok(l) => {
                ctx.counters
                    .nodes
                    .observe(Side::Target, &c.node, asked.elapsed());
                l
            }
            Err(e) => {
                if !e.retryable() {
                    return Err(e.into());
                }
                conn = None;
                lost = true;
                failures += 1;
                target_down.failed("the target", "leasing a chunk", e.into())?;
                node = (node + 1) % nodes.len();
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        let Some(lease) = lease else {
            // Nothing free: all done, or the rest is held by live workers, whose chunks come
            // back if they fail. Meanwhile this worker's page memory is theirs.
            idle.set(true);
            let checked = tokio::time::timeout(c.reply, async {
                let (rollback, left) = tokio::join!(
                    c.client.batch_execute("ROLLBACK"),
                    ctx.progress.unfinished(&c.client, &c.st, ctx.job)
                );
                rollback.and(left)
            })
            .await;
            let checked = match checked {
                Ok(r) => r.map_err(|e| SideError::target(&e, &c.node, "checking progress")),
                Err(_) => Err(no_reply(c.reply, &c.node, "checking progress")),
            };
            match checked {
                Ok(0) => {
                    ctx.finished.store(true, Ordering::Relaxed);
                    release(&mut slot, &mut conn);
                    return Ok(());
                }
                Ok(_) => {
                    // The rest is in other workers' hands: this one's slot goes to other
                    // tables. Worker 0 stays to pick up a chunk that comes back.
                    release(&mut slot, &mut conn);
                    if index > 0 {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
                Err(e) => {
                    if !e.retryable() {
                        return Err(e.into());
                    }
                    conn = None;
                    lost = true;
                    failures += 1;
                    target_down.failed("the target", "checking progress", e.into())?;
                    node = (node + 1) % nodes.len();
                }
            }
            continue;
        };
        idle.set(false);
        let _leased = InFlight::new(&ctx.counters.chunks_in_flight);
        // Read timeouts split the chunk's token range into 2^split sub-ranges.
        let split = ctx
            .splits
            .lock()
            .map(|m| m.get(&lease.chunk_id).copied().unwrap_or(0))
            .unwrap_or(0);
        let attempt = match &ctx.settings.mode {
            Mode::Replay(dir) => replay_chunk(ctx, c, &lease, dir).await,
            _ => copy_chunk(ctx, c, &lease, split).await,
        };
        let Err(err) = attempt else {
            failures = 0;
            note_recovery(&ctx.counters.target_outage_ms, target_down.ok());
            note_recovery(&ctx.counters.source_outage_ms, source_down.ok());
            if ctx.budget.should_yield() {
                release(&mut slot, &mut conn);
            }
            continue;
        };
        // The chunk's transaction did not commit: rolling it back frees the chunk.
        // A reply that never came may still be owed on the connection: it goes, unasked.
        let unanswered =
            matches!(&err, ChunkError::Target(e) if e.kind == crate::error::ErrorKind::Timeout);
        if unanswered
            || c.client.is_closed()
            || !matches!(
                tokio::time::timeout(c.reply, c.client.batch_execute("ROLLBACK")).await,
                Ok(Ok(()))
            )
        {
            conn = None;
            lost = true;
        }
        failures += 1;
        let chunk = format!(
            "chunk {} (token range ({}, {}]) of {}",
            lease.chunk_id, lease.start, lease.end, ctx.table
        );
        let what = format!("copying {chunk}");
        match err {
            ChunkError::Source(e) => {
                // The page was retried under the source policy already: a consistency level
                // that cannot be met, or an error no retry fixes, ends the run now.
                if e.kind() == FailureKind::Unavailable {
                    return Err(anyhow!(e).context(format!("chunk {}", lease.chunk_id)));
                }
                if let ReadError::Failed {
                    kind: FailureKind::Fatal,
                    source,
                    ..
                } = &e
                {
                    let node = ctx.reader.endpoint(lease.replica_set);
                    return Err(SideError::source(source, &node, what).into());
                }
                ctx.counters
                    .source_chunk_retries
                    .fetch_add(1, Ordering::Relaxed);
                ctx.counters.note_error(format!("{e:#}"));
                let mut split = split;
                if e.kind() == FailureKind::Timeout && split < 6 {
                    split += 1;
                    if let Ok(mut m) = ctx.splits.lock() {
                        m.insert(lease.chunk_id, split);
                    }
                }
                tracing::warn!(
                    chunk = lease.chunk_id,
                    failures,
                    split,
                    "source read failed, retrying the chunk: {e:#}"
                );
                source_down.failed("Cassandra", &what, anyhow!(e))?;
                tokio::time::sleep(ctx.settings.retry_policy().delay(failures)).await;
                continue;
            }
            ChunkError::Target(mut e) => {
                e.doing = format!("{what} ({})", e.doing);
                if !e.retryable() {
                    return Err(e.into());
                }
                let e = anyhow::Error::from(e);
                ctx.counters.write_retries.fetch_add(1, Ordering::Relaxed);
                ctx.counters.note_error(format!("{e:#}"));
                tracing::warn!(
                    chunk = lease.chunk_id,
                    failures,
                    "target write failed, retrying the chunk: {e:#}"
                );
                target_down.failed("the target", &what, e)?;
                if conn.is_none() {
                    node = (node + 1) % nodes.len();
                }
            }
            ChunkError::Local(e) => {
                return Err(e.context(what));
            }
        }
        tokio::time::sleep(backoff(failures)).await;
    }
}

impl Settings {
    /// The source's read settings, for [`source::RangeReader`].
    pub fn read_settings(&self) -> ReadSettings {
        ReadSettings {
            page_rows: self.fetch_size_rows,
            consistency: self.consistency,
            read_timeout: Duration::from_millis(self.read_timeout_ms),
            routing: self.routing.clone(),
            retry: self.retry_policy(),
        }
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retry_count,
            min: self.retry_delay_min,
            max: self.retry_delay_max,
        }
    }
}

/// `(start, end]` cut into `2^split` contiguous sub-ranges.
fn sub_ranges(start: i64, end: i64, split: u32) -> Vec<(i64, i64)> {
    let n = 1i128 << split;
    let w = end as i128 - start as i128;
    (0..n)
        .map(|i| {
            (
                (start as i128 + w * i / n) as i64,
                (start as i128 + w * (i + 1) / n) as i64,
            )
        })
        .filter(|(a, b)| a < b)
        .collect()
}

/// Reads one chunk and streams it into COPY inside one transaction that also marks it done.
/// Page k+1 is fetched while page k is sent. With `split > 0` (after read timeouts) the range
/// is read as smaller sub-ranges with smaller pages.
async fn copy_chunk(
    ctx: &Ctx<'_>,
    conn: &Conn,
    lease: &Lease,
    split: u32,
) -> Result<(), ChunkError> {
    let client = &conn.client;
    // Page size: the configured fetch size is a ceiling; pages are also kept within this
    // worker's share of the memory budget once the row size is known (from any chunk, so a
    // chunk's first page keeps to it too), and shrink after read timeouts (`split`).
    let ceiling = (ctx.settings.fetch_size_rows >> split).max(100);
    let page_rows = std::cell::Cell::new(page_rows_for(ctx, ceiling, split == 0));
    let fetch = |lo: i64, hi: i64, paging: PagingState| {
        let rows = page_rows.get();
        async move {
            let t = Instant::now();
            let in_flight = InFlight::new(&ctx.counters.reads_in_flight);
            let r = ctx
                .reader
                .chunk_page(
                    lease.replica_set,
                    Some(rows),
                    (lo, hi),
                    lease.clustering.as_ref(),
                    paging,
                )
                .await
                .map(|p| {
                    let c = ctx.counters;
                    c.nodes
                        .observe(Side::Source, &p.coordinator.to_string(), t.elapsed());
                    c.source_pages.record(t.elapsed());
                    c.read_retries
                        .fetch_add(u64::from(p.retries), Ordering::Relaxed);
                    if p.failed_over {
                        c.pages_failed_over.fetch_add(1, Ordering::Relaxed);
                    }
                    (p.result, p.next)
                })
                .map_err(ChunkError::Source);
            ctx.counters
                .source_wait_ns
                .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            drop(in_flight);
            r
        }
    };
    let mut ranges = sub_ranges(lease.start, lease.end, split);
    if ranges.is_empty() {
        ranges.push((lease.start, lease.end));
    }
    // The COPY starts while the first page is fetched.
    let (copy, first) = tokio::join!(
        async {
            Ok::<_, ChunkError>(match &ctx.settings.mode {
                Mode::Migrate => {
                    answer(
                        conn.reply,
                        &conn.node,
                        "preparing the transaction",
                        ctx.writer.prepare_tx(client),
                    )
                    .await?;
                    Out::Copy(CopyStream::start(conn).await?)
                }
                Mode::Capture(dir) => {
                    let path = capture_file(dir, lease.chunk_id, lease.start, lease.end);
                    Out::File(std::fs::File::create(&path).map_err(|e| {
                        ChunkError::Local(anyhow!("creating {}: {e}", path.display()))
                    })?)
                }
                Mode::ScanOnly | Mode::Replay(_) => Out::Discard,
            })
        },
        fetch(ranges[0].0, ranges[0].1, PagingState::start())
    );
    let mut copy = copy?;
    let mut first = Some(first?);
    let copying = matches!(copy, Out::Copy(_));
    let mut rows_total = 0u64;
    let mut rows_in_copy = 0u64;
    let mut rejected: Vec<Reject> = Vec::new();
    // Grows to a page's encoding; starts small, as a worker may hold it while idle.
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut bytes_total = 0u64;
    encode::copy_header(&mut buf);
    for (lo, hi) in ranges {
        let mut page = match first.take() {
            Some(p) => p,
            None => fetch(lo, hi, PagingState::start()).await?,
        };
        loop {
            let (res, next) = page;
            let t = Instant::now();
            let n = encode_page(ctx, res, &mut buf, &mut rejected).map_err(ChunkError::Local)?;
            ctx.counters
                .encode_ns
                .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            ctx.counters.rows_read.fetch_add(n.read, Ordering::Relaxed);
            if let Some(row_bytes) = (buf.len() as u64).checked_div(n.written) {
                ctx.row_bytes.store(row_bytes.max(16), Ordering::Relaxed);
                page_rows.set(page_rows_for(ctx, ceiling, split == 0));
            }
            rows_total += n.written;
            rows_in_copy += n.written;
            if let Some(l) = &ctx.limiter {
                l.acquire(n.read).await;
            }
            // A COPY statement ends every `batch_rows` rows; all share the chunk's transaction.
            let boundary = copying && rows_in_copy >= ctx.settings.batch_rows as u64;
            if boundary {
                encode::copy_trailer(&mut buf);
            }
            let out = buf.split().freeze();
            bytes_total += out.len() as u64;
            let more = match next {
                PagingStateResponse::HasMorePages { state } => {
                    let (sent, fetched) =
                        tokio::join!(copy.send(out, ctx.counters), fetch(lo, hi, state));
                    sent?;
                    Some(fetched?)
                }
                PagingStateResponse::NoMorePages => {
                    copy.send(out, ctx.counters).await?;
                    None
                }
            };
            if boundary {
                copy.finish(ctx.counters).await?;
                copy = Out::Copy(CopyStream::start(conn).await?);
                encode::copy_header(&mut buf);
                rows_in_copy = 0;
            }
            match more {
                Some(p) => page = p,
                None => break,
            }
        }
    }
    encode::copy_trailer(&mut buf);
    copy.send(buf.split().freeze(), ctx.counters).await?;
    copy.finish(ctx.counters).await?;
    commit_chunk(
        ctx,
        conn,
        lease,
        copying,
        rows_total,
        &rejected,
        bytes_total,
    )
    .await
}

/// Ends a chunk's transaction: merges staged rows (`merge`, when rows were copied), records
/// its rejected rows, marks the chunk done and commits in one round trip, then counts rows,
/// rejects and bytes: only now has the target acknowledged them.
async fn commit_chunk(
    ctx: &Ctx<'_>,
    conn: &Conn,
    lease: &Lease,
    merge: bool,
    rows: u64,
    rejects: &[Reject],
    bytes: u64,
) -> Result<(), ChunkError> {
    let t = Instant::now();
    if merge {
        answer(
            conn.reply,
            &conn.node,
            "merging staged rows",
            ctx.writer.finish_tx(&conn.client),
        )
        .await?;
    }
    let done = ChunkDone {
        job: ctx.job,
        owner: ctx.owner,
        chunk_id: lease.chunk_id,
        table: &ctx.table,
        rows,
        rejects,
    };
    // A commit whose reply never comes may or may not have happened: the done mark is in the
    // same transaction, so either the chunk is done or it is leased again.
    match tokio::time::timeout(
        conn.reply,
        ctx.progress.complete_commit(&conn.client, &conn.st, &done),
    )
    .await
    {
        Ok(r) => r.map_err(|e| classify_commit(e, &conn.node))?,
        Err(_) => {
            return Err(ChunkError::Target(no_reply(
                conn.reply,
                &conn.node,
                "committing",
            )))
        }
    };
    let c = ctx.counters;
    c.commits.record(t.elapsed());
    c.target_wait_ns
        .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    c.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    c.rows_written.fetch_add(rows, Ordering::Relaxed);
    c.rows_rejected
        .fetch_add(rejects.len() as u64, Ordering::Relaxed);
    c.chunks_done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Where a chunk's encoded bytes go.
enum Out {
    Copy(CopyStream),
    Discard,
    File(std::fs::File),
}

impl Out {
    async fn send(&mut self, bytes: Bytes, counters: &Counters) -> Result<(), ChunkError> {
        match self {
            Out::Copy(c) => c.send(bytes, counters).await,
            Out::Discard => Ok(()),
            Out::File(f) => f
                .write_all(&bytes)
                .map_err(|e| ChunkError::Local(anyhow!("writing the capture: {e}"))),
        }
    }

    async fn finish(&mut self, counters: &Counters) -> Result<(), ChunkError> {
        match self {
            Out::Copy(c) => c.finish(counters).await.map(|_| ()),
            Out::Discard => Ok(()),
            Out::File(f) => f
                .flush()
                .map_err(|e| ChunkError::Local(anyhow!("writing the capture: {e}"))),
        }
    }
}

/// Loads a captured chunk payload into the target in the chunk's transaction.
async fn replay_chunk(
    ctx: &Ctx<'_>,
    conn: &Conn,
    lease: &Lease,
    dir: &std::path::Path,
) -> Result<(), ChunkError> {
    let client = &conn.client;
    let path = capture_file(dir, lease.chunk_id, lease.start, lease.end);
    let payload = Bytes::from(std::fs::read(&path).map_err(|e| {
        ChunkError::Local(anyhow!(
            "reading {}: {e} — capture with the same plan first (--capture)",
            path.display()
        ))
    })?);
    answer(
        conn.reply,
        &conn.node,
        "preparing the transaction",
        ctx.writer.prepare_tx(client),
    )
    .await?;
    let mut copy = CopyStream::start(conn).await?;
    let bytes = payload.len() as u64;
    // `send` cuts the payload into the COPY pieces itself.
    copy.send(payload, ctx.counters).await?;
    let rows = copy.finish(ctx.counters).await?;
    commit_chunk(ctx, conn, lease, true, rows, &[], bytes).await?;
    ctx.counters.rows_read.fetch_add(rows, Ordering::Relaxed);
    Ok(())
}

/// A COPY statement in progress inside the chunk's transaction.
struct CopyStream {
    sink: std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>>,
    /// The node it goes to, for error lines.
    node: String,
    /// How long the server may take to take data or answer.
    reply: Duration,
}

impl CopyStream {
    async fn start(conn: &Conn) -> Result<Self, ChunkError> {
        let stmt = conn
            .copy
            .as_ref()
            .ok_or_else(|| ChunkError::Local(anyhow!("internal: no COPY statement prepared")))?;
        let sink = answer(
            conn.reply,
            &conn.node,
            "starting COPY",
            conn.client.copy_in::<_, Bytes>(stmt),
        )
        .await?;
        Ok(CopyStream {
            sink: Box::pin(sink),
            node: conn.node.clone(),
            reply: conn.reply,
        })
    }

    async fn send(&mut self, bytes: Bytes, counters: &Counters) -> Result<(), ChunkError> {
        use futures::SinkExt;
        let t = Instant::now();
        let _in_flight = InFlight::new(&counters.writes_in_flight);
        // tokio-postgres copies each CopyData message into the connection's write buffer, which
        // keeps its largest size: small pieces keep that buffer (per connection) small.
        const PIECE: usize = 64 << 10;
        let mut r = Ok(());
        let mut at = 0;
        while at < bytes.len() && r.is_ok() {
            let end = (at + PIECE).min(bytes.len());
            r = answer(
                self.reply,
                &self.node,
                "sending COPY data",
                self.sink.send(bytes.slice(at..end)),
            )
            .await;
            at = end;
        }
        counters
            .target_wait_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }

    async fn finish(&mut self, counters: &Counters) -> Result<u64, ChunkError> {
        let t = Instant::now();
        let _in_flight = InFlight::new(&counters.writes_in_flight);
        let r = answer(
            self.reply,
            &self.node,
            "finishing COPY",
            self.sink.as_mut().finish(),
        )
        .await;
        counters
            .target_wait_ns
            .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }
}

struct PageCounts {
    read: u64,
    written: u64,
}

/// Encodes a page's rows into `buf`; a row that cannot be written as it is goes to `rejected`.
fn encode_page(
    ctx: &Ctx<'_>,
    res: scylla::response::query_result::QueryResult,
    buf: &mut BytesMut,
    rejected: &mut Vec<Reject>,
) -> Result<PageCounts> {
    let rows = res
        .into_rows_result()
        .context("the scan returned no rows result")?;
    let ncols = (ctx.types.len() + ctx.constants.len()) as i16;
    let mut counts = PageCounts {
        read: 0,
        written: 0,
    };
    let mut cells: Vec<Option<&[u8]>> = Vec::with_capacity(ctx.types.len());
    // Room for the whole page at once, from the row size measured so far: growing by doubling
    // would copy the page several times and leave up to half of the buffer unused.
    let row_bytes = ctx.row_bytes.load(Ordering::Relaxed) as usize;
    if row_bytes > 0 {
        buf.reserve(rows.rows_num() * (row_bytes + row_bytes / 16) + 64);
    }
    for row in rows.rows::<ColumnIterator>()? {
        let row = row?;
        let row_start = buf.len();
        buf.put_i16(ncols);
        let mut bad = None;
        cells.clear();
        for (i, col) in row.enumerate() {
            let col = col?;
            let cell = col.slice.map(|s| s.as_slice());
            if bad.is_none() {
                if let Err(r) = encode::encode_field(&ctx.types[i], cell, buf) {
                    bad = Some((i, r));
                }
            }
            cells.push(cell);
        }
        counts.read += 1;
        if let Some((col, reject)) = bad {
            buf.truncate(row_start);
            let shape = RowShape {
                table: &ctx.table,
                types: &ctx.types,
                names: &ctx.names,
                key_columns: &ctx.key_columns,
            };
            rejected.push(Reject::of_row(&shape, &cells, col, &reject.reason));
            continue;
        }
        for c in &ctx.constants {
            match c {
                Some(bytes) => {
                    buf.put_i32(bytes.len() as i32);
                    buf.put_slice(bytes);
                }
                None => buf.put_i32(-1),
            }
        }
        counts.written += 1;
    }
    Ok(counts)
}

/// A rows-per-second throttle shared by all readers (`cassandra.readsPerSec`).
struct RateLimiter {
    per_sec: u64,
    start: Instant,
    taken: AtomicU64,
}

impl RateLimiter {
    fn new(per_sec: u64) -> Self {
        RateLimiter {
            per_sec,
            start: Instant::now(),
            taken: AtomicU64::new(0),
        }
    }

    /// Waits until `n` more rows fit under the rate.
    async fn acquire(&self, n: u64) {
        let total = self.taken.fetch_add(n, Ordering::Relaxed) + n;
        let due = Duration::from_secs_f64(total as f64 / self.per_sec as f64);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// Column renames as a map, for [`TableMapping::new`].
pub fn renames(pairs: &[(String, String)]) -> HashMap<String, String> {
    pairs.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_steady_rate_leaves_out_set_up_and_tail() {
        // 2 s of set-up, 10 s at 1,000 rows/s, a 2 s tail of 500 rows.
        let mut samples = vec![(0.0, 0u64)];
        for i in 1..=28 {
            let t = i as f64 * 0.5;
            let rows = if t <= 2.0 {
                0.0
            } else if t <= 12.0 {
                (t - 2.0) * 1000.0
            } else {
                10_000.0 + (t - 12.0) * 250.0
            };
            samples.push((t, rows as u64));
        }
        // The middle 80% (1.4 s to 12.6 s): mostly the steady part.
        let steady = super::steady_rate(&samples).unwrap();
        let whole = 10_500.0 / 14.0;
        assert!(steady > whole * 1.1, "{steady} vs whole-run {whole}");
        assert!((steady - (10_150.0 - 0.0) / 11.2).abs() < 1.0, "{steady}");
        assert_eq!(super::steady_rate(&[(0.0, 0), (0.5, 10)]), None);
    }

    use super::*;

    const MAX: u64 = 48 << 20;

    #[test]
    fn page_budget_follows_the_round_trip() {
        let ms = |n| Some(Duration::from_millis(n));
        // Close by: a third; far: all of it; unknown: all of it.
        assert_eq!(page_budget(MAX, Some(Duration::ZERO)), MAX / 3);
        assert_eq!(page_budget(MAX, ms(50)), MAX);
        assert_eq!(page_budget(MAX, ms(200)), MAX);
        assert_eq!(page_budget(MAX, None), MAX);
        // In between it grows with the round trip, never past the maximum.
        let mut last = 0;
        for n in 0..=60 {
            let b = page_budget(MAX, ms(n));
            assert!(b >= last && b <= MAX, "{n} ms: {b} after {last}");
            last = b;
        }
        assert_eq!(page_budget(MAX, ms(25)), MAX / 3 + (MAX - MAX / 3) / 2);
    }
}
