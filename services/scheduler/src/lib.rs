//! The scheduler: cuts the alerts received since the last batch into per-bank shards on a
//! schedule or a BatchRequest (checking each alert once, the failures to the DLQ), publishes a
//! ScoringJob per shard with its bank's calibrated thresholds, follows the ShardCompleted
//! events, publishes again the shards that time out, and writes the BatchReport.

pub mod calibration;
pub mod cut;
pub mod follow;
pub mod schedule;
pub mod service;

mod handler;

pub use handler::BatchHandler;
