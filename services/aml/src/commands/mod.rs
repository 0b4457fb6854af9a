//! One module per `aml` subcommand.

pub mod auth;
pub mod dataset;
pub mod dlq;
pub mod judge;
pub mod model;
pub mod plan;
pub mod setup;
pub mod train;
