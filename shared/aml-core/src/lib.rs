//! The domain core every service shares: the screening labels and curriculum tiers, the
//! training sample record, the one formatter that renders an alert into the model's input
//! text, and the classification metrics of a screening model.

pub mod capacity;
pub mod cascade;
pub mod digest;
pub mod format;
pub mod label;
pub mod labelled;
pub mod metrics;
pub mod placement;
pub mod policy;
pub mod record;
pub mod rng;
pub mod sample;
pub mod stats;

pub use label::{Difficulty, Label, ParseEnumError};
pub use placement::{DeviceChoice, DtypeChoice};
pub use sample::{SampleRecord, stratified_indices};
