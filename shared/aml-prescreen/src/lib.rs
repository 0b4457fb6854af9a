//! The prescreen cascade: a fast deterministic matcher that scores every alert before the
//! model. Names are normalised (Unicode NFKD, marks stripped, transliterated to Latin, legal
//! suffixes canonicalised), compared by token-set overlap, aligned Jaro-Winkler and phonetic
//! keys, then adjusted by the agreement or conflict of date of birth, country and identifiers.
//! Alerts scoring below a cutoff calibrated for recall are cleared with their reason.

#![forbid(unsafe_code)]

pub mod attributes;
pub mod calibrate;
pub mod jaro;
pub mod normalize;
pub mod pairs;
pub mod phonetic;
pub mod screen;

pub use calibrate::{CutoffCalibration, calibrate_cutoff};
pub use normalize::{NameKey, Schema};
pub use screen::{Prescreen, Verdict, name_similarity, prescreen_alert, prescreen_text};
