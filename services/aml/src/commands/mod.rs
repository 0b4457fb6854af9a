//! One module per `aml` subcommand.

pub mod dlq;
pub mod model;
pub mod setup;
