//! ferry's migration engine: CQL type model, configuration, schema, plan, encoders, sample data.

pub mod cassandra;
pub mod cql;
pub mod encode;
pub mod gen;
pub mod plan;
pub mod schema;
