//! One module per `aml` subcommand.

pub mod dataset;
pub mod dlq;
pub mod model;
pub mod setup;
