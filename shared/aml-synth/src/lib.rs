//! Synthetic training data for the screening model, with no real PII.
//!
//! [`offline`] builds cases procedurally: a listed entity, a customer derived from it under
//! chosen facts (transliteration under several romanisation systems, phonetic neighbours,
//! edit and OCR noise, reordering, diacritics, initials, maiden names, homoglyphs,
//! legal-suffix variants, DOB fuzz and partial DOBs, nationality conflicts, passport and LEI
//! numbers, ownership links, near-collisions), and the gold label that follows from those
//! facts by the rules of [`evidence::decide`]. [`prompt`] holds the LLM mode's domain prompt.

pub mod alerts;
pub mod case;
pub mod evidence;
pub mod identity;
pub mod llm;
pub mod noise;
pub mod offline;
pub mod pools;
pub mod prompt;
pub mod translit;

pub use alerts::bank_alerts;
pub use case::{Case, Synthesizer};
pub use offline::generate_tier;
