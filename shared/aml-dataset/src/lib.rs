//! The validator's logic: candidate samples in, a clean dataset out.
//!
//! Schema checks fail fast with file:line and field; then over-long samples, outputs whose
//! decision word disagrees with the label, inputs seen with different labels, and exact and
//! near duplicates are rejected and counted; light label-preserving noise is added; a
//! validation set is drawn stratified by label x difficulty and disjoint from training; the
//! five files and a manifest with counts and hashes are written to object storage.

pub mod build;
pub mod dedup;
pub mod output;
pub mod schema;

pub use build::{Dataset, Rejections, ValidatorSettings, build};
pub use output::{Manifest, write_dataset};
pub use schema::{SchemaError, parse_candidates, parse_sample_line};
