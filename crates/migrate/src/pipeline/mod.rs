//! The migration pipeline for one table: workers (one target connection each, spread over
//! every target node) lease a chunk, read it page by page (the next page is fetched while the
//! current one is sent), encode straight into binary COPY, and stream it into the chunk's own
//! transaction, which also records its rejected rows and marks it done.
//!
//! Memory is bounded by the pages in flight (`ferry.pageMemoryMb`), not by the table. Rows
//! count as written only after the server acknowledged the chunk's commit.
//!
//! Here: the table's run (settings, workers, the adaptive loop, the report). [`worker`]: a
//! worker's connection and loop; [`chunk`]: one chunk's copy and commit; [`copy`]: where the
//! encoded bytes go; [`counters`]: the live counters; [`pages`]: the page budget.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use bytes::{Bytes, BytesMut};
use scylla::client::session::Session;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::Consistency;

use crate::adapt;
use crate::budget::{Budget, IdleConn, Slot};
use crate::encode;
use crate::error::{kind_in, target_failure, SideError};
use crate::plan::Plan;
use crate::progress::{ChunkDone, ChunkStatements, Lease, Leased, Progress};
use crate::rejects::Reject;
use crate::retry::{backoff, no_reply, note_recovery, Outage};
use crate::schema::TableMapping;
use crate::sink::{InsertMode, TableWriter, TargetEndpoint, TargetFacts};
use crate::source::{self, FailureKind, ReadError, ReadSettings, RetryPolicy, Routing};

mod chunk;
mod copy;
mod counters;
mod encoder;
mod pages;
mod worker;

use chunk::*;
use copy::*;
pub use counters::*;
pub use encoder::{PageCounts, RowEncoder};
pub use pages::page_budget;
use pages::*;
use worker::*;
pub use worker::{open_connections, warm_connections, OpenedConn};

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
    /// Target columns that get each row's write time and expiry ([`crate::row_times`]).
    pub row_times: crate::config::RowTimeColumns,
    /// A catch-up pass: only rows written at or after this time (µs since the Unix epoch,
    /// the clock-skew margin already taken off) are written; rows without a write time are
    /// written too. Set per table by the job.
    pub since_us: Option<i64>,
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
    pub workers: Workers,
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
    /// A catch-up pass: its time (µs since the Unix epoch, before the clock-skew margin);
    /// `rows_read` are the rows it scanned, `rows_written` those written since.
    pub since_us: Option<i64>,
}

/// A table's workers (chunks in flight; adaptive concurrency moves them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Workers {
    pub start: u64,
    pub end: u64,
    pub peak: u64,
}

impl TableReport {
    pub fn rows_per_sec(&self) -> f64 {
        self.rows_written as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Everything the workers of one table share.
struct Ctx<'a> {
    reader: source::RangeReader<'a>,
    /// Rows into target rows.
    encoder: RowEncoder,
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
    /// Notified when `finished` is set: the worker waiting for chunks other workers hold
    /// stops at once, instead of at its next look.
    settled: tokio::sync::Notify,
    /// Bytes all workers' pages may take at once.
    page_budget: u64,
    /// Workers that found no chunk left to lease: their page memory goes to the others.
    idle: AtomicU64,
    /// The source's frame limit, which bounds a page ([`crate::page_size`]).
    frame_bytes: u64,
    /// How long a reply the target owes may take ([`crate::retry::reply_deadline`]).
    reply: Duration,
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
    ready: SourceReady,
) -> Result<TableReport> {
    let start = Instant::now();
    // What the run did not read while the tables were checked is read now, at once: the
    // scan's prepare, the source's round trip (it sizes the page memory, see
    // [`page_budget`]) and its frame limit.
    let read = settings.read_settings();
    let scanned = settings.scanned(&mapping.source);
    let (reader, rtt, frame_bytes) = tokio::join!(
        async {
            match ready.scan {
                Some(scan) => Ok(source::RangeReader::prepared(
                    session,
                    scan,
                    mapping.source.qualified(),
                    plan,
                    &read,
                )),
                None => {
                    source::RangeReader::new(
                        session,
                        scanned.range_select(),
                        mapping.source.qualified(),
                        plan,
                        &read,
                    )
                    .await
                }
            }
        },
        async {
            match ready.rtt {
                Some(rtt) => Some(rtt),
                None => source_rtt(session).await,
            }
        },
        async {
            match ready.frame_bytes {
                Some(bytes) => bytes,
                None => crate::page_size::frame_bytes(session).await,
            }
        }
    );
    let reader = reader?.with_slices(&scanned);
    let page_budget = page_budget(settings.page_budget_bytes, rtt);
    tracing::info!(
        rtt_us = rtt.map(|d| d.as_micros() as u64),
        page_budget_mib = page_budget >> 20,
        "page memory"
    );
    let ctx = Ctx {
        encoder: RowEncoder::new(
            &scanned,
            constants,
            settings.row_times.clone(),
            settings.since_us,
        ),
        reply: crate::retry::reply_deadline(target),
        reader,
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
        settled: tokio::sync::Notify::new(),
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
        workers: Workers {
            start: start_level as u64,
            end: counters.workers_active.load(Ordering::Relaxed),
            peak: counters.workers_peak.load(Ordering::Relaxed),
        },
        rows_before: 0,
        started_at: None,
        steady_rows_per_sec,
        source_p99_ms: counters.source_pages.snapshot().percentile(99.0),
        commit_p99_ms: counters.commits.snapshot().percentile(99.0),
        since_us: None,
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
    answered(deadline, node, what, f)
        .await
        .map_err(ChunkError::Target)
}

/// [`answer`] outside a chunk's copy (leasing, checking progress).
async fn answered<T>(
    deadline: Duration,
    node: &str,
    what: &str,
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, SideError> {
    match tokio::time::timeout(deadline, f).await {
        Ok(r) => r.map_err(|e| SideError::target(&e, node, what)),
        Err(_) => Err(no_reply(deadline, node, what)),
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

/// What a table's copy needs from the source before its first page, when the run has it
/// already: across a WAN, one round trip less before each table copies. What is `None` is
/// read as the table starts.
#[derive(Clone, Default)]
pub struct SourceReady {
    /// The table's scan ([`Settings::scanned`]'s `range_select`), prepared while its plan was
    /// bound.
    pub scan: Option<scylla::statement::prepared::PreparedStatement>,
    /// The source's round trip, as the chunk sizing measured it.
    pub rtt: Option<Duration>,
    /// The source's frame limit ([`crate::page_size::frame_bytes`]), read while the tables
    /// were checked ([`crate::job::prepare_to_copy`]).
    pub frame_bytes: Option<u64>,
}

impl Settings {
    /// The columns a table's scan selects: the source's, with the row times the target
    /// columns or a catch-up ([`Settings::since_us`]) need.
    pub fn scanned(&self, source: &crate::schema::SourceTable) -> crate::schema::SourceTable {
        let mut scanned = source.clone();
        scanned.times = crate::row_times::RowTimes {
            writetime: self.row_times.writetime.is_some() || self.since_us.is_some(),
            ttl: self.row_times.expires.is_some(),
        };
        scanned
    }

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
        // Close by: a third (16 MiB at most); far: all of it; unknown: all of it.
        assert_eq!(page_budget(MAX, Some(Duration::ZERO)), MAX / 3);
        assert_eq!(page_budget(128 << 20, Some(Duration::ZERO)), 16 << 20);
        assert_eq!(page_budget(12 << 20, Some(Duration::ZERO)), 4 << 20);
        assert_eq!(page_budget(128 << 20, ms(50)), 128 << 20);
        assert_eq!(page_budget(128 << 20, ms(25)), (16 << 20) + (112 << 20) / 2);
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
