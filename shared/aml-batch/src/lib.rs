//! What the scheduler and the inference workers agree on: where a batch's objects live (each
//! bank under its own keys), the shard format, the checks an alert passes at intake, the
//! batch manifest and how a report is assembled from shard completions.

#![forbid(unsafe_code)]

pub mod intake;
pub mod layout;
pub mod manifest;
pub mod policy;
pub mod report;
pub mod shard;

pub use intake::{IntakeRules, check_alert};
pub use manifest::{BankPlan, BatchManifest, ShardPlan};
pub use report::assemble_report;
pub use shard::{ShardError, decode_shard, encode_shard};
