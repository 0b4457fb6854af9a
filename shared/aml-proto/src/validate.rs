//! What each message must carry beyond what protobuf decoding checks.

use crate::v1::{
    Alert, BatchRequest, CandidateChunk, DatasetReady, Difficulty, EntityKind, GenerateRequest,
    GeneratorMode, JudgeReport, JudgeRequest, Label, PhaseCompleted, Sample, ScoreResult,
    ScoringJob, ShardCompleted, TrainRequest,
};

/// A decoded message that breaks its contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// A required enum field holds its `*_UNSPECIFIED` zero value.
    #[error("{message}.{field} is unspecified")]
    Unspecified {
        /// The message type, e.g. `Sample`.
        message: &'static str,
        /// The field path inside it, e.g. `party.kind`.
        field: String,
    },
    /// An enum field holds a number the contract does not define.
    #[error("{message}.{field} has unknown enum value {value}")]
    UnknownEnumValue {
        /// The message type.
        message: &'static str,
        /// The field path inside it.
        field: String,
        /// The number received.
        value: i32,
    },
    /// A required string or message field is empty or absent.
    #[error("{message}.{field} is missing")]
    Missing {
        /// The message type.
        message: &'static str,
        /// The field path inside it.
        field: String,
    },
}

/// Checks a decoded message against its contract.
pub trait Validate {
    /// Returns the first broken rule, if any.
    fn validate(&self) -> Result<(), ContractError>;
}

fn require_enum<E>(message: &'static str, field: &str, value: i32) -> Result<(), ContractError>
where
    E: TryFrom<i32>,
{
    if value == 0 {
        return Err(ContractError::Unspecified {
            message,
            field: field.to_owned(),
        });
    }
    if E::try_from(value).is_err() {
        return Err(ContractError::UnknownEnumValue {
            message,
            field: field.to_owned(),
            value,
        });
    }
    Ok(())
}

fn require_text(message: &'static str, field: &str, value: &str) -> Result<(), ContractError> {
    if value.trim().is_empty() {
        return Err(ContractError::Missing {
            message,
            field: field.to_owned(),
        });
    }
    Ok(())
}

impl Validate for Sample {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("Sample", "instruction", &self.instruction)?;
        require_text("Sample", "input", &self.input)?;
        require_text("Sample", "output", &self.output)?;
        require_text("Sample", "cot", &self.cot)?;
        require_enum::<Difficulty>("Sample", "difficulty", self.difficulty)?;
        require_enum::<Label>("Sample", "label", self.label)
    }
}

impl Validate for GenerateRequest {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("GenerateRequest", "run_id", &self.run_id)?;
        require_enum::<GeneratorMode>("GenerateRequest", "mode", self.mode)
    }
}

impl Validate for CandidateChunk {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("CandidateChunk", "run_id", &self.run_id)?;
        require_enum::<Difficulty>("CandidateChunk", "tier", self.tier)?;
        for (index, sample) in self.samples.iter().enumerate() {
            sample
                .validate()
                .map_err(|error| nest(error, "CandidateChunk", "samples", index))?;
        }
        Ok(())
    }
}

impl Validate for DatasetReady {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("DatasetReady", "run_id", &self.run_id)?;
        require_text("DatasetReady", "dataset_url", &self.dataset_url)
    }
}

impl Validate for TrainRequest {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("TrainRequest", "run_id", &self.run_id)?;
        require_text("TrainRequest", "base_model", &self.base_model)?;
        require_text("TrainRequest", "dataset_url", &self.dataset_url)
    }
}

impl Validate for PhaseCompleted {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("PhaseCompleted", "run_id", &self.run_id)?;
        require_enum::<Difficulty>("PhaseCompleted", "phase", self.phase)
    }
}

impl Validate for JudgeRequest {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("JudgeRequest", "request_id", &self.request_id)?;
        require_text("JudgeRequest", "gold_url", &self.gold_url)?;
        require_text("JudgeRequest", "predictions_url", &self.predictions_url)
    }
}

impl Validate for JudgeReport {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("JudgeReport", "request_id", &self.request_id)
    }
}

impl Validate for Alert {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("Alert", "alert_id", &self.alert_id)?;
        require_text("Alert", "bank", &self.bank)?;
        let Some(party) = &self.party else {
            return Err(ContractError::Missing {
                message: "Alert",
                field: "party".to_owned(),
            });
        };
        require_enum::<EntityKind>("Alert", "party.kind", party.kind)?;
        require_text("Alert", "party.name", &party.name)?;
        let Some(entry) = &self.entry else {
            return Err(ContractError::Missing {
                message: "Alert",
                field: "entry".to_owned(),
            });
        };
        require_enum::<EntityKind>("Alert", "entry.kind", entry.kind)?;
        require_text("Alert", "entry.name", &entry.name)
    }
}

impl Validate for BatchRequest {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("BatchRequest", "batch_id", &self.batch_id)
    }
}

impl Validate for ScoringJob {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("ScoringJob", "batch_id", &self.batch_id)?;
        require_text("ScoringJob", "shard_url", &self.shard_url)
    }
}

impl Validate for ScoreResult {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("ScoreResult", "alert_id", &self.alert_id)?;
        require_enum::<Label>("ScoreResult", "label", self.label)
    }
}

impl Validate for ShardCompleted {
    fn validate(&self) -> Result<(), ContractError> {
        require_text("ShardCompleted", "batch_id", &self.batch_id)?;
        require_text("ShardCompleted", "results_url", &self.results_url)
    }
}

fn nest(error: ContractError, message: &'static str, list: &str, index: usize) -> ContractError {
    let prefix = |field: String| format!("{list}[{index}].{field}");
    match error {
        ContractError::Unspecified { field, .. } => ContractError::Unspecified {
            message,
            field: prefix(field),
        },
        ContractError::UnknownEnumValue { field, value, .. } => ContractError::UnknownEnumValue {
            message,
            field: prefix(field),
            value,
        },
        ContractError::Missing { field, .. } => ContractError::Missing {
            message,
            field: prefix(field),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn sample() -> Sample {
        Sample {
            id: "s1".into(),
            instruction: "decide".into(),
            input: "customer: A".into(),
            output: "MATCH — DOB agrees".into(),
            cot: "DOB agrees".into(),
            difficulty: Difficulty::Easy as i32,
            label: Label::Match as i32,
        }
    }

    #[test]
    fn complete_sample_is_valid() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn unspecified_label_is_reported_with_its_field() {
        let mut unspecified = sample();
        unspecified.label = 0;
        let decoded = Sample::decode(unspecified.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!(
            decoded.validate().unwrap_err().to_string(),
            "Sample.label is unspecified"
        );
    }

    #[test]
    fn unknown_enum_number_is_reported() {
        let mut unknown = sample();
        unknown.difficulty = 42;
        assert_eq!(
            unknown.validate().unwrap_err().to_string(),
            "Sample.difficulty has unknown enum value 42"
        );
    }

    #[test]
    fn nested_sample_error_names_its_index() {
        let mut broken = sample();
        broken.cot = " ".into();
        let chunk = CandidateChunk {
            run_id: "r".into(),
            tier: Difficulty::Hard as i32,
            chunk: 0,
            total_chunks: 1,
            seed: 0,
            samples: vec![sample(), broken],
        };
        assert_eq!(
            chunk.validate().unwrap_err().to_string(),
            "CandidateChunk.samples[1].cot is missing"
        );
    }

    #[test]
    fn alert_without_party_kind_is_invalid() {
        let alert = Alert {
            alert_id: "a1".into(),
            bank: "alpha".into(),
            party: Some(crate::v1::Party {
                name: "Ivan Petrov".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            alert.validate().unwrap_err().to_string(),
            "Alert.party.kind is unspecified"
        );
    }
}
