//! One module per `aml` subcommand.

pub mod alerts;
pub mod auth;
pub mod batch;
pub mod calibrate;
pub mod dataset;
pub mod dlq;
pub mod judge;
pub mod model;
pub mod plan;
pub mod prescreen;
pub mod request;
pub mod retention;
pub mod score;
pub mod setup;
pub mod summary;
pub mod train;
