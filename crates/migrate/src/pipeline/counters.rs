//! The live counters one table's run accumulates (readers and writers add to them; the live
//! page, the progress bars and the summary read them), and the guards that keep the in-flight
//! gauges right.

use super::*;

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
pub(super) struct InFlight<'a>(&'a AtomicU64);

impl<'a> InFlight<'a> {
    pub(super) fn new(n: &'a AtomicU64) -> Self {
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
pub(super) struct Idle<'a> {
    count: &'a AtomicU64,
    on: std::cell::Cell<bool>,
}

impl<'a> Idle<'a> {
    pub(super) fn new(count: &'a AtomicU64) -> Self {
        Idle {
            count,
            on: std::cell::Cell::new(false),
        }
    }

    pub(super) fn set(&self, on: bool) {
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
