//! Welch's t-test: are two samples' means different, without assuming equal variances?
//!
//! Benchmark repetitions rarely share a variance (a tuned system is often steadier), so the
//! pooled Student test would be wrong; Welch–Satterthwaite degrees of freedom handle that.

use crate::special::student_t_two_sided_p;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WelchTest {
    /// t statistic of mean(b) − mean(a).
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Welch's test of mean(b) vs mean(a). `None` when either side has fewer than two finite values.
/// Two constant samples give p = 1 when equal and p = 0 when different.
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Option<WelchTest> {
    let a: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|x| x.is_finite()).collect();
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (ma, mb) = (a.iter().sum::<f64>() / na, b.iter().sum::<f64>() / nb);
    let va = a.iter().map(|x| (x - ma).powi(2)).sum::<f64>() / (na - 1.0);
    let vb = b.iter().map(|x| (x - mb).powi(2)).sum::<f64>() / (nb - 1.0);
    let (sa, sb) = (va / na, vb / nb);
    let se2 = sa + sb;
    if se2 == 0.0 {
        let differ = ma != mb;
        return Some(WelchTest {
            t: if differ {
                f64::INFINITY.copysign(mb - ma)
            } else {
                0.0
            },
            df: na + nb - 2.0,
            p: if differ { 0.0 } else { 1.0 },
        });
    }
    let t = (mb - ma) / se2.sqrt();
    let df = se2 * se2 / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
    Some(WelchTest {
        t,
        df,
        p: student_t_two_sided_p(t, df),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_a_reference_computation() {
        // Wikipedia's "Welch's t-test", example 1: t = −2.46, ν = 24.99, p = 0.021 (a vs b).
        let a = [
            27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7,
            21.4,
        ];
        let b = [
            27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5,
            24.4,
        ];
        let w = welch_t_test(&b, &a).unwrap();
        assert!((w.t - -2.455_356).abs() < 1e-5, "t = {}", w.t);
        assert!((w.df - 24.988_53).abs() < 1e-4, "df = {}", w.df);
        assert!((w.p - 0.021).abs() < 1e-3, "p = {}", w.p);
    }

    #[test]
    fn degenerate_samples() {
        assert!(welch_t_test(&[1.0], &[1.0, 2.0]).is_none());
        assert_eq!(welch_t_test(&[3.0, 3.0], &[3.0, 3.0]).unwrap().p, 1.0);
        assert_eq!(welch_t_test(&[3.0, 3.0], &[4.0, 4.0]).unwrap().p, 0.0);
    }

    proptest! {
        #[test]
        fn a_sample_against_itself_is_never_significant(xs in prop::collection::vec(0.0f64..1e6, 2..60)) {
            let w = welch_t_test(&xs, &xs).unwrap();
            prop_assert!(w.p > 0.999, "p = {}", w.p);
        }

        #[test]
        fn a_large_shift_is_significant(xs in prop::collection::vec(100.0f64..110.0, 5..40)) {
            let shifted: Vec<f64> = xs.iter().map(|x| x * 1.5).collect();
            let w = welch_t_test(&xs, &shifted).unwrap();
            prop_assert!(w.p < 0.01 && w.t > 0.0);
        }
    }
}
