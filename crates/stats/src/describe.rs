//! Descriptive statistics of one sample: location, spread and percentiles.
//!
//! NaN values are the caller's bug, not data: they are ignored by sorting them last and
//! excluding them, so one bad sample cannot poison a whole report.

/// Arithmetic mean; `None` for an empty sample.
pub fn mean(xs: &[f64]) -> Option<f64> {
    let xs = finite(xs);
    if xs.is_empty() {
        return None;
    }
    Some(xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample standard deviation (n − 1 in the denominator); `None` below two values.
pub fn stddev(xs: &[f64]) -> Option<f64> {
    let xs = finite(xs);
    if xs.len() < 2 {
        return None;
    }
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

/// The median; `None` for an empty sample.
pub fn median(xs: &[f64]) -> Option<f64> {
    percentile(xs, 50.0)
}

/// Median absolute deviation from the median, unscaled (multiply by 1.4826 to estimate σ of a
/// normal distribution).
pub fn mad(xs: &[f64]) -> Option<f64> {
    let m = median(xs)?;
    let dev: Vec<f64> = finite(xs).iter().map(|x| (x - m).abs()).collect();
    median(&dev)
}

/// The `p`-th percentile (0 ≤ p ≤ 100) by linear interpolation between closest ranks.
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    let mut v = finite(xs);
    v.sort_by(f64::total_cmp);
    percentile_sorted(&v, p)
}

/// [`percentile`] on an already sorted, NaN-free slice: use it to take many percentiles of one
/// large sample with one sort.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0) / 100.0;
    let rank = p * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * frac)
}

/// Everything a report shows about one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    /// Sample standard deviation; 0 for a single value.
    pub stddev: f64,
    /// Unscaled median absolute deviation.
    pub mad: f64,
    pub min: f64,
    pub max: f64,
    pub p5: f64,
    pub p95: f64,
}

/// Describes a sample; `None` when it holds no finite value.
pub fn describe(xs: &[f64]) -> Option<Description> {
    let mut v = finite(xs);
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let pct = |p| percentile_sorted(&v, p).expect("non-empty");
    Some(Description {
        n: v.len(),
        mean: v.iter().sum::<f64>() / v.len() as f64,
        median: pct(50.0),
        stddev: stddev(&v).unwrap_or(0.0),
        mad: mad(&v).unwrap_or(0.0),
        min: v[0],
        max: v[v.len() - 1],
        p5: pct(5.0),
        p95: pct(95.0),
    })
}

fn finite(xs: &[f64]) -> Vec<f64> {
    xs.iter().copied().filter(|x| x.is_finite()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        let xs = [1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(mean(&xs), Some(22.0));
        assert_eq!(median(&xs), Some(3.0));
        assert_eq!(mad(&xs), Some(1.0));
        assert_eq!(percentile(&xs, 0.0), Some(1.0));
        assert_eq!(percentile(&xs, 100.0), Some(100.0));
        assert_eq!(percentile(&xs, 25.0), Some(2.0));
        // rank 0.9 * 4 = 3.6 → 4 + 0.6 * 96
        assert!((percentile(&xs, 90.0).unwrap() - 61.6).abs() < 1e-9);
        let sd = stddev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert!((sd - 2.138089935).abs() < 1e-6);
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(mean(&[]), None);
        assert_eq!(median(&[]), None);
        assert_eq!(stddev(&[1.0]), None);
        let d = describe(&[5.0]).unwrap();
        assert_eq!((d.n, d.median, d.stddev, d.mad), (1, 5.0, 0.0, 0.0));
        assert!(describe(&[f64::NAN]).is_none());
    }

    proptest! {
        #[test]
        fn percentiles_are_monotone_and_bounded(
            xs in prop::collection::vec(-1e9f64..1e9, 1..200),
            a in 0.0f64..100.0, b in 0.0f64..100.0,
        ) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let pl = percentile(&xs, lo).unwrap();
            let ph = percentile(&xs, hi).unwrap();
            prop_assert!(pl <= ph);
            let d = describe(&xs).unwrap();
            prop_assert!(d.min <= pl && ph <= d.max);
            prop_assert!(d.min <= d.median && d.median <= d.max);
            prop_assert!(d.mad >= 0.0 && d.stddev >= 0.0);
        }

        #[test]
        fn shift_moves_location_not_spread(
            xs in prop::collection::vec(-1e6f64..1e6, 2..100), c in -1e6f64..1e6,
        ) {
            let shifted: Vec<f64> = xs.iter().map(|x| x + c).collect();
            let (a, b) = (describe(&xs).unwrap(), describe(&shifted).unwrap());
            prop_assert!((b.median - a.median - c).abs() < 1e-6);
            prop_assert!((b.stddev - a.stddev).abs() < 1e-6 * (1.0 + a.stddev));
            prop_assert!((b.mad - a.mad).abs() < 1e-6 * (1.0 + a.mad));
        }
    }
}
