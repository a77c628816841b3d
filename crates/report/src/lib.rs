//! ferry's run records and what is made of them.
//!
//! * [`record`]: the run record — the one versioned JSON format of every measurement
//!   (migrations, probes, baseline suites).
//! * [`compare`]: before vs after, per metric, with significance, and the improvement gate.
//! * [`expect`]: a suite's expectations ("records_per_sec >= 100k"), met or missed.
//! * [`hints`]: bottleneck hints from host samples and server snapshots.
//! * [`model`] → [`doc`] → [`markdown`] / [`html`]: the "Performance Baseline Report".
//!
//! Pure apart from [`RunRecord::load`]/[`RunRecord::save`]: the CLI decides what to print and
//! which exit code a failed gate gets.

pub mod compare;
pub mod doc;
pub mod expect;
pub mod hints;
pub mod html;
pub mod markdown;
pub mod metric;
pub mod model;
pub mod record;

pub use record::{HostFacts, HostSample, RunRecord, Sample, SCHEMA_VERSION};

/// Markdown and HTML of one report over the given run records.
pub fn render(inputs: &[model::Input]) -> (String, String) {
    let report = model::build(inputs);
    let blocks = doc::build(&report);
    (markdown::render(&blocks), html::render(&blocks))
}
