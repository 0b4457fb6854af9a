//! What the scheduler and the inference workers agree on: where a batch's objects live (each
//! bank under its own keys), the shard format, the checks an alert passes at intake, the
//! hashed dedup index of the ids earlier batches took, the
//! batch manifest, how a report is assembled from shard completions, and the columnar
//! (Arrow IPC) form of results.

#![forbid(unsafe_code)]

pub mod columnar;
pub mod dedup;
pub mod gold;
pub mod intake;
pub mod layout;
pub mod manifest;
pub mod report;
pub mod retention;
pub mod shard;

pub use columnar::{ColumnarError, put_results, read_results_arrow, write_results_arrow};
pub use gold::{cascade_items, read_gold};
pub use intake::{IntakeRules, check_alert};
pub use manifest::{BankPlan, BankScoring, BatchManifest, CalibrationSource, ShardPlan};
pub use report::assemble_report;
pub use shard::{ShardError, decode_shard, encode_shard};
