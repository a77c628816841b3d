//! ferry's statistics: everything `compare`, `report` and the probes compute from raw samples.
//!
//! Pure functions over `&[f64]`: no I/O, no clocks, no global randomness (the bootstrap takes a
//! seed, so a report computed twice from the same records is the same report).
//!
//! * [`describe`]: count, mean, median, standard deviation, MAD, min, max, percentiles.
//! * [`percentile`]: linear interpolation between closest ranks (the "R-7" / NumPy default).
//! * [`welch`]: Welch's unequal-variance t-test with the Student-t distribution computed here
//!   (regularized incomplete beta by Lentz's continued fraction), so no dependency is needed.
//! * [`bootstrap`]: percentile bootstrap interval of the relative change of medians.
//! * [`outliers`]: modified z-scores (Iglewicz & Hoaglin, 1993), the method hyperfine uses.

pub mod bootstrap;
pub mod describe;
pub mod outliers;
pub mod special;
pub mod welch;

pub use bootstrap::{relative_change_ci, Interval};
pub use describe::{
    describe, mad, mean, median, percentile, percentile_sorted, stddev, Description,
};
pub use outliers::{modified_z_scores, outlier_indices};
pub use welch::{welch_t_test, WelchTest};
