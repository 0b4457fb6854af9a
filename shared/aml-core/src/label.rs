//! The screening decision and the curriculum tier, as the JSONL files and the model spell them.

use std::fmt;
use std::str::FromStr;

use aml_proto::v1;
use serde::{Deserialize, Serialize};

/// A string that names no label or tier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`, expected one of: {expected}")]
pub struct ParseEnumError {
    kind: &'static str,
    value: String,
    expected: &'static str,
}

/// The screening decision. MATCH and EDGE count as positives (escalated to an analyst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// The candidate is the listed entity.
    Match,
    /// The candidate is not the listed entity.
    NoMatch,
    /// Borderline: needs an analyst's judgement.
    Edge,
}

impl Label {
    /// Every label, in the order the metrics report them.
    pub const ALL: [Label; 3] = [Label::Match, Label::NoMatch, Label::Edge];

    /// The lowercase spelling of the JSONL files (`match`, `no_match`, `edge`).
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Match => "match",
            Label::NoMatch => "no_match",
            Label::Edge => "edge",
        }
    }

    /// The decision word a model writes first in its output line (`MATCH`, `NO_MATCH`, `EDGE`).
    pub fn decision_word(self) -> &'static str {
        match self {
            Label::Match => "MATCH",
            Label::NoMatch => "NO_MATCH",
            Label::Edge => "EDGE",
        }
    }

    /// Whether the label counts as a positive (escalated) outcome.
    pub fn is_positive(self) -> bool {
        self != Label::NoMatch
    }

    /// Reads the decision word at the start of an output line, e.g. `MATCH — alias + DOB agree`.
    pub fn from_decision_line(line: &str) -> Option<Label> {
        let first = line
            .trim_start()
            .split(|c: char| !(c.is_ascii_alphabetic() || c == '_' || c == '-'))
            .next()?;
        let word = first.to_ascii_uppercase().replace('-', "_");
        match word.as_str() {
            "MATCH" => Some(Label::Match),
            "NO_MATCH" | "NOMATCH" => Some(Label::NoMatch),
            "EDGE" => Some(Label::Edge),
            _ => None,
        }
    }
}

/// Spellings of the decision words that models write, longest first, and the label each
/// means.
const DECISION_SPELLINGS: [(&str, Label); 6] = [
    ("NO_MATCH", Label::NoMatch),
    ("NO MATCH", Label::NoMatch),
    ("NO-MATCH", Label::NoMatch),
    ("NOMATCH", Label::NoMatch),
    ("MATCH", Label::Match),
    ("EDGE", Label::Edge),
];

impl Label {
    /// `line` with its leading decision word in the canonical spelling (`NO MATCH — ...`,
    /// `No match: ...` and `no-match ...` become `NO_MATCH — ...`); `None` when it starts with
    /// no decision word.
    pub fn canonical_decision_line(line: &str) -> Option<String> {
        let trimmed = line.trim_start();
        let head: String = trimmed
            .chars()
            .take(8)
            .collect::<String>()
            .to_ascii_uppercase();
        DECISION_SPELLINGS.iter().find_map(|(spelling, label)| {
            if !head.starts_with(spelling) {
                return None;
            }
            let rest = &trimmed[spelling.len()..];
            let joined = rest
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            (!joined).then(|| format!("{}{rest}", label.decision_word()))
        })
    }
}

impl fmt::Display for Label {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Label {
    type Err = ParseEnumError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "match" => Ok(Label::Match),
            "no_match" => Ok(Label::NoMatch),
            "edge" => Ok(Label::Edge),
            _ => Err(ParseEnumError {
                kind: "label",
                value: value.to_owned(),
                expected: "match, no_match, edge",
            }),
        }
    }
}

impl From<Label> for v1::Label {
    fn from(label: Label) -> Self {
        match label {
            Label::Match => v1::Label::Match,
            Label::NoMatch => v1::Label::NoMatch,
            Label::Edge => v1::Label::Edge,
        }
    }
}

impl TryFrom<v1::Label> for Label {
    type Error = ParseEnumError;

    fn try_from(label: v1::Label) -> Result<Self, Self::Error> {
        match label {
            v1::Label::Match => Ok(Label::Match),
            v1::Label::NoMatch => Ok(Label::NoMatch),
            v1::Label::Edge => Ok(Label::Edge),
            v1::Label::Unspecified => Err(ParseEnumError {
                kind: "label",
                value: "LABEL_UNSPECIFIED".to_owned(),
                expected: "match, no_match, edge",
            }),
        }
    }
}

/// The curriculum tier of a sample, and the name of a training phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Difficulty {
    /// Clear-cut matches and mismatches.
    Easy,
    /// Minor noise.
    Medium,
    /// Transliteration, mixed scripts, partial IDs, hierarchies, near-collisions.
    Hard,
}

impl Difficulty {
    /// The tiers in curriculum order.
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard];

    /// The lowercase spelling of the JSONL files and file names (`easy`, `medium`, `hard`).
    pub fn as_str(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }
}

impl fmt::Display for Difficulty {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Difficulty {
    type Err = ParseEnumError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "easy" => Ok(Difficulty::Easy),
            "medium" => Ok(Difficulty::Medium),
            "hard" => Ok(Difficulty::Hard),
            _ => Err(ParseEnumError {
                kind: "difficulty",
                value: value.to_owned(),
                expected: "easy, medium, hard",
            }),
        }
    }
}

impl From<Difficulty> for v1::Difficulty {
    fn from(difficulty: Difficulty) -> Self {
        match difficulty {
            Difficulty::Easy => v1::Difficulty::Easy,
            Difficulty::Medium => v1::Difficulty::Medium,
            Difficulty::Hard => v1::Difficulty::Hard,
        }
    }
}

impl TryFrom<v1::Difficulty> for Difficulty {
    type Error = ParseEnumError;

    fn try_from(difficulty: v1::Difficulty) -> Result<Self, Self::Error> {
        match difficulty {
            v1::Difficulty::Easy => Ok(Difficulty::Easy),
            v1::Difficulty::Medium => Ok(Difficulty::Medium),
            v1::Difficulty::Hard => Ok(Difficulty::Hard),
            v1::Difficulty::Unspecified => Err(ParseEnumError {
                kind: "difficulty",
                value: "DIFFICULTY_UNSPECIFIED".to_owned(),
                expected: "easy, medium, hard",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_words_as_models_write_them_become_canonical() {
        for (written, canonical) in [
            ("NO MATCH — DOB differs", "NO_MATCH — DOB differs"),
            ("No match: other person", "NO_MATCH: other person"),
            ("no-match, different country", "NO_MATCH, different country"),
            ("  Match — alias and DOB", "MATCH — alias and DOB"),
            ("EDGE — partial ID", "EDGE — partial ID"),
            ("NO_MATCH — kept", "NO_MATCH — kept"),
        ] {
            assert_eq!(
                Label::canonical_decision_line(written).as_deref(),
                Some(canonical),
                "{written}"
            );
        }
        assert_eq!(Label::canonical_decision_line("Matching names only"), None);
        assert_eq!(Label::canonical_decision_line("Decision: MATCH"), None);
    }

    #[test]
    fn decision_word_is_read_from_output_line() {
        assert_eq!(
            Label::from_decision_line("MATCH — alias + DOB + LEI link confirm identity"),
            Some(Label::Match)
        );
        assert_eq!(
            Label::from_decision_line("NO_MATCH: different DOB"),
            Some(Label::NoMatch)
        );
        assert_eq!(
            Label::from_decision_line("  Edge - partial DOB"),
            Some(Label::Edge)
        );
        assert_eq!(Label::from_decision_line("MATCHING names"), None);
    }

    #[test]
    fn labels_round_trip_through_strings_and_proto() {
        for label in Label::ALL {
            assert_eq!(label.as_str().parse::<Label>(), Ok(label));
            assert_eq!(Label::try_from(v1::Label::from(label)), Ok(label));
        }
        assert!("maybe".parse::<Label>().is_err());
    }
}
