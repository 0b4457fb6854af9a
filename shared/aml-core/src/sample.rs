//! The training sample as one JSONL line, in the schema of the user's notes.

use aml_proto::v1;
use serde::{Deserialize, Serialize};

use crate::{Difficulty, Label};

/// One line of `train.jsonl`:
/// `{"instruction", "input", "output", "cot", "difficulty", "label"}`, with an optional `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRecord {
    /// Stable identifier; predictions join on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The task description the model is given.
    pub instruction: String,
    /// The case: customer, watchlist entry and context, rendered as text.
    pub input: String,
    /// One line that starts with the decision word, e.g. `MATCH — alias + DOB confirm identity`.
    pub output: String,
    /// Step-by-step reasoning that cites the input's fields.
    pub cot: String,
    /// Curriculum tier.
    pub difficulty: Difficulty,
    /// Gold decision.
    pub label: Label,
}

impl From<&SampleRecord> for v1::Sample {
    fn from(record: &SampleRecord) -> Self {
        v1::Sample {
            id: record.id.clone().unwrap_or_default(),
            instruction: record.instruction.clone(),
            input: record.input.clone(),
            output: record.output.clone(),
            cot: record.cot.clone(),
            difficulty: v1::Difficulty::from(record.difficulty) as i32,
            label: v1::Label::from(record.label) as i32,
        }
    }
}

impl TryFrom<&v1::Sample> for SampleRecord {
    type Error = crate::ParseEnumError;

    fn try_from(sample: &v1::Sample) -> Result<Self, Self::Error> {
        Ok(SampleRecord {
            id: (!sample.id.is_empty()).then(|| sample.id.clone()),
            instruction: sample.instruction.clone(),
            input: sample.input.clone(),
            output: sample.output.clone(),
            cot: sample.cot.clone(),
            difficulty: Difficulty::try_from(sample.difficulty())?,
            label: Label::try_from(sample.label())?,
        })
    }
}

/// `size` indices stratified over the label x difficulty cells: each cell is shuffled with the
/// seed and the cells are taken round-robin, so cell sizes differ by at most one while every
/// cell has enough samples. Sorted ascending.
pub fn stratified_indices(samples: &[SampleRecord], size: usize, seed: u64) -> Vec<usize> {
    let mut cells: std::collections::BTreeMap<(Difficulty, Label), Vec<usize>> =
        std::collections::BTreeMap::new();
    for (index, sample) in samples.iter().enumerate() {
        cells
            .entry((sample.difficulty, sample.label))
            .or_default()
            .push(index);
    }
    let mut rng = crate::rng::SeededRng::new(seed);
    for members in cells.values_mut() {
        rng.shuffle(members);
    }
    let mut chosen = Vec::with_capacity(size);
    let mut round = 0;
    while chosen.len() < size.min(samples.len()) {
        let before = chosen.len();
        for members in cells.values() {
            if chosen.len() == size {
                break;
            }
            if let Some(&index) = members.get(round) {
                chosen.push(index);
            }
        }
        if chosen.len() == before {
            break;
        }
        round += 1;
    }
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_line_round_trips_through_proto() {
        let line = r#"{"instruction":"i","input":"x","output":"EDGE — partial DOB","cot":"c","difficulty":"hard","label":"edge"}"#;
        let record: SampleRecord = serde_json::from_str(line).unwrap();
        let back = SampleRecord::try_from(&v1::Sample::from(&record)).unwrap();
        assert_eq!(back, record);
        assert_eq!(serde_json::to_string(&back).unwrap(), line);
    }

    #[test]
    fn unknown_field_is_rejected() {
        let line = r#"{"instruction":"i","input":"x","output":"o","cot":"c","difficulty":"hard","label":"edge","extra":1}"#;
        let error = serde_json::from_str::<SampleRecord>(line).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `extra`"),
            "{error}"
        );
    }
}
