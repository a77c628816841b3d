//! ferry's migration engine: CQL type model, configuration, schema, plan, encoders, sample data.

pub mod cql;
