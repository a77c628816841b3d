//! ferry's migration engine.
