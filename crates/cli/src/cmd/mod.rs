//! One module per subcommand: parse flags into a spec, call the engine, print the outcome.

pub mod baseline;
pub mod bench;
pub mod compare;
pub mod completions;
pub mod diagnose;
pub mod gen;
pub mod job;
pub mod migrate;
pub mod output;
pub mod plan;
pub mod report;
pub mod status;
pub mod ui;
pub mod validate;
