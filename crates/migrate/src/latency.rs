//! A lock-free latency histogram: the hot path adds one count to a bucket; readers take
//! snapshots and read percentiles over the whole run or between two snapshots (a window).
//!
//! Buckets grow by a factor of 1.25 from 100 µs, so a percentile is within 12.5% of the truth
//! (its bucket's geometric middle), up to about 13 minutes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: usize = 64;
const FIRST_US: f64 = 100.0;
const GROWTH: f64 = 1.25;

/// Counts of requests by how long they took.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.snapshot().count())
            .finish()
    }
}

/// The counts at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot([u64; BUCKETS]);

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot([0; BUCKETS])
    }
}

fn bucket(d: Duration) -> usize {
    let us = d.as_secs_f64() * 1e6;
    if us <= FIRST_US {
        return 0;
    }
    ((us / FIRST_US).ln() / GROWTH.ln())
        .ceil()
        .min((BUCKETS - 1) as f64) as usize
}

/// The middle of bucket `i`, in milliseconds.
fn middle_ms(i: usize) -> f64 {
    if i == 0 {
        return FIRST_US / 2.0 / 1e3;
    }
    let hi = FIRST_US * GROWTH.powi(i as i32);
    hi / GROWTH.sqrt() / 1e3
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        self.buckets[bucket(d)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot(std::array::from_fn(|i| {
            self.buckets[i].load(Ordering::Relaxed)
        }))
    }
}

impl Snapshot {
    /// Adds another histogram's counts (a run's tables together).
    pub fn add(&mut self, other: &Snapshot) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// Requests counted.
    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The `p`th percentile (0-100) of what was counted since `earlier`, in milliseconds;
    /// `None` when nothing was.
    pub fn percentile_since(&self, earlier: &Snapshot, p: f64) -> Option<f64> {
        let diff: Vec<u64> = self
            .0
            .iter()
            .zip(earlier.0.iter())
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let n: u64 = diff.iter().sum();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in diff.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(middle_ms(i));
            }
        }
        Some(middle_ms(BUCKETS - 1))
    }

    /// The `p`th percentile of everything counted, in milliseconds.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        self.percentile_since(&Snapshot::default(), p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_land_within_a_bucket_of_the_truth() {
        let h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 100);
        for (p, truth) in [(50.0, 50.0), (99.0, 99.0), (100.0, 100.0)] {
            let got = s.percentile(p).unwrap();
            assert!(
                (got / truth - 1.0).abs() <= 0.125,
                "p{p}: {got} ms for {truth} ms"
            );
        }
    }

    #[test]
    fn a_window_sees_only_what_came_after_its_snapshot() {
        let h = Histogram::default();
        for _ in 0..1000 {
            h.record(Duration::from_millis(2));
        }
        let before = h.snapshot();
        for _ in 0..10 {
            h.record(Duration::from_millis(400));
        }
        let now = h.snapshot();
        let p = now.percentile_since(&before, 50.0).unwrap();
        assert!((p / 400.0 - 1.0).abs() <= 0.125, "{p}");
        assert!(now.percentile(50.0).unwrap() < 3.0);
        assert_eq!(now.percentile_since(&now, 99.0), None);
    }

    #[test]
    fn extremes_stay_in_range() {
        let h = Histogram::default();
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(100_000));
        let s = h.snapshot();
        assert!(s.percentile(0.0).unwrap() < 0.1);
        assert!(s.percentile(100.0).unwrap() > 60_000.0);
    }
}
