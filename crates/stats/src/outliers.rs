//! Outlier detection with modified z-scores: `0.6745 · (x − median) / MAD`, outlier when
//! |z| > 3.5 (Iglewicz & Hoaglin, "How to Detect and Handle Outliers", 1993). Median and MAD
//! are not dragged along by the outliers they are meant to find, unlike mean and σ.

use crate::describe::{mad, median};

/// The threshold Iglewicz & Hoaglin recommend.
pub const MODIFIED_Z_THRESHOLD: f64 = 3.5;

/// Modified z-score of each value (0 for all when the MAD is 0).
pub fn modified_z_scores(xs: &[f64]) -> Vec<f64> {
    let (Some(m), Some(d)) = (median(xs), mad(xs)) else {
        return vec![0.0; xs.len()];
    };
    xs.iter()
        .map(|x| if d == 0.0 { 0.0 } else { 0.6745 * (x - m) / d })
        .collect()
}

/// Indices of the values whose |modified z-score| exceeds [`MODIFIED_Z_THRESHOLD`].
pub fn outlier_indices(xs: &[f64]) -> Vec<usize> {
    modified_z_scores(xs)
        .iter()
        .enumerate()
        .filter(|(_, z)| z.abs() > MODIFIED_Z_THRESHOLD)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_the_pause() {
        let xs = [10.0, 11.0, 10.5, 9.8, 10.2, 55.0, 10.1];
        assert_eq!(outlier_indices(&xs), vec![5]);
    }

    proptest! {
        #[test]
        fn at_most_half_are_outliers(xs in prop::collection::vec(-1e6f64..1e6, 1..100)) {
            prop_assert!(outlier_indices(&xs).len() * 2 <= xs.len());
        }
    }
}
