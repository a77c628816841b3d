//! ferry's migration engine: CQL type model, configuration, schema, plan, encoders, sample data.

pub mod adapt;
pub mod budget;
pub mod cassandra;
pub mod config;
pub mod cql;
pub mod diagnose;
pub mod encode;
pub mod error;
pub mod gen;
pub mod job;
pub mod job_spec;
pub mod latency;
pub mod page_size;
pub mod partition_split;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod rejects;
pub mod retry;
pub mod schema;
pub mod sink;
pub mod sizing;
pub mod source;
pub mod target_tls;
pub mod tls;
pub mod validate;
