//! Percentile bootstrap interval of the relative change of medians, `median(b) / median(a) − 1`.
//!
//! Medians because benchmark samples are skewed (a GC pause, a checkpoint); the bootstrap
//! because it assumes no distribution. The generator is seeded SplitMix64, so the interval is a
//! pure function of its inputs.

use crate::describe::percentile_sorted;

/// A two-sided confidence interval around a point estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// The confidence level, e.g. 0.95.
    pub level: f64,
}

impl Interval {
    /// Whether the interval lies entirely on one side of zero.
    pub fn excludes_zero(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// The bootstrap interval of `median(b) / median(a) − 1` from `resamples` resamples (each side
/// resampled independently, with replacement). `None` when a side is empty or `a`'s median is 0.
pub fn relative_change_ci(
    a: &[f64],
    b: &[f64],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    let a: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|x| x.is_finite()).collect();
    let (ma, mb) = (median_of(&a)?, median_of(&b)?);
    if ma == 0.0 {
        return None;
    }
    let mut rng = SplitMix64(seed);
    let mut ra = vec![0.0; a.len()];
    let mut rb = vec![0.0; b.len()];
    let mut changes = Vec::with_capacity(resamples.max(1));
    for _ in 0..resamples.max(1) {
        resample(&a, &mut ra, &mut rng);
        resample(&b, &mut rb, &mut rng);
        let (sa, sb) = (median_of(&ra)?, median_of(&rb)?);
        if sa != 0.0 {
            changes.push(sb / sa - 1.0);
        }
    }
    changes.sort_by(f64::total_cmp);
    let alpha = (1.0 - level.clamp(0.0, 1.0)) / 2.0;
    Some(Interval {
        estimate: mb / ma - 1.0,
        low: percentile_sorted(&changes, alpha * 100.0)?,
        high: percentile_sorted(&changes, (1.0 - alpha) * 100.0)?,
        level,
    })
}

fn median_of(xs: &[f64]) -> Option<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    percentile_sorted(&v, 50.0)
}

fn resample(src: &[f64], dst: &mut [f64], rng: &mut SplitMix64) {
    for d in dst.iter_mut() {
        *d = src[rng.below(src.len())];
    }
}

/// SplitMix64 (Steele, Lea & Flood, 2014): tiny, fast, good enough to pick resample indices.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        // Lemire's multiply-shift: the bias is negligible for sample-sized n.
        ((self.next() as u128 * n as u128) >> 64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clear_doubling_is_found() {
        let a: Vec<f64> = (0..20).map(|i| 100.0 + (i % 5) as f64).collect();
        let b: Vec<f64> = a.iter().map(|x| x * 2.0).collect();
        let ci = relative_change_ci(&a, &b, 0.95, 2000, 7).unwrap();
        assert!((ci.estimate - 1.0).abs() < 1e-9);
        assert!(ci.low > 0.9 && ci.high < 1.1, "{ci:?}");
        assert!(ci.excludes_zero());
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(
            relative_change_ci(&a, &b, 0.95, 500, 1),
            relative_change_ci(&a, &b, 0.95, 500, 1)
        );
    }

    proptest! {
        #[test]
        fn a_sample_against_itself_includes_zero(xs in prop::collection::vec(1.0f64..1e6, 1..40), seed in any::<u64>()) {
            let ci = relative_change_ci(&xs, &xs, 0.95, 300, seed).unwrap();
            prop_assert!(ci.estimate == 0.0);
            prop_assert!(ci.low <= 0.0 && ci.high >= 0.0, "{:?}", ci);
            prop_assert!(!ci.excludes_zero());
        }

        #[test]
        fn interval_is_ordered(
            a in prop::collection::vec(1.0f64..1e3, 1..30),
            b in prop::collection::vec(1.0f64..1e3, 1..30),
        ) {
            let ci = relative_change_ci(&a, &b, 0.9, 200, 3).unwrap();
            prop_assert!(ci.low <= ci.high);
        }
    }
}
