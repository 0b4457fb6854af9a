//! How a model folder was trained, written beside every adapter and merged model as
//! `aml_training.json`, so that whatever scores with it can check it answers as scoring reads
//! it (the decision first) and under the policy it was trained with.

use serde::{Deserialize, Serialize};

/// The file name of the record in an adapter or merged-model folder.
pub const RECORD_FILE: &str = "aml_training.json";

/// The record's layout version.
pub const RECORD_VERSION: u32 = 1;

/// What the model writes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerFormat {
    /// The decision word, then the reasons (`--cot false`, or a distilled scorer): the
    /// probabilities of MATCH / NO_MATCH / EDGE as first tokens are its decision.
    DecisionFirst,
    /// Reasoning first, the decision line last (`--cot true`): its first tokens say nothing
    /// about the decision, so it cannot be scored, only asked for rationales.
    ReasoningFirst,
}

/// How a folder's weights were trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// [`RECORD_VERSION`].
    pub version: u32,
    /// What the model writes first.
    pub answer_format: AnswerFormat,
    /// Trained on reasoning then decision.
    pub cot: bool,
    /// `distilled` for a scorer trained on a CoT teacher's label distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distilled_from: Option<String>,
    /// The base model as the run named it (a Hub id or a path).
    pub base_model: String,
    /// SHA-256 of the system prompt (the policy) every example carried; none when training
    /// used no system prompt.
    pub system_prompt_sha256: Option<String>,
    /// SHA-256 of the chat template the examples were rendered with.
    pub chat_template_sha256: Option<String>,
}

impl TrainingRecord {
    /// Why a model with this record cannot score alerts, if it cannot.
    pub fn refusal(&self) -> Option<String> {
        match self.answer_format {
            AnswerFormat::DecisionFirst => None,
            AnswerFormat::ReasoningFirst => Some(
                "it was trained with --cot true (reasoning first, the decision last), so the \
                 probabilities of its first answer tokens are not its decision; score with the \
                 run's distilled scorer (scorer/adapter of a --distill true run) or a --cot false \
                 adapter"
                    .to_owned(),
            ),
        }
    }

    /// Why scoring under `policy` differs from training, if it does: a warning, since the
    /// model still answers, but its calibration was made under other prompts.
    pub fn policy_difference(&self, policy: &str) -> Option<String> {
        let scored = crate::digest::sha256_hex(policy.as_bytes());
        match &self.system_prompt_sha256 {
            Some(trained) if *trained == scored => None,
            Some(trained) => Some(format!(
                "the batch's policy (sha256 {}) is not the system prompt the model was trained with (sha256 {}); train with --system_prompt set to the policy document",
                &scored[..12],
                &trained[..trained.len().min(12)]
            )),
            None => Some(format!(
                "the model was trained with no system prompt but scores under a policy (sha256 {}); train with --system_prompt set to the policy document",
                &scored[..12]
            )),
        }
    }

    /// Reads the record in `dir`; `None` when the folder has none (a base model, or an
    /// adapter written before records existed).
    pub fn read(dir: &std::path::Path) -> Result<Option<Self>, String> {
        let path = dir.join(RECORD_FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(format!("{}: {error}", path.display())),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|error| format!("{}: {error}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(answer_format: AnswerFormat, policy: Option<&str>) -> TrainingRecord {
        TrainingRecord {
            version: RECORD_VERSION,
            answer_format,
            cot: answer_format == AnswerFormat::ReasoningFirst,
            distilled_from: None,
            base_model: "base".into(),
            system_prompt_sha256: policy.map(|text| crate::digest::sha256_hex(text.as_bytes())),
            chat_template_sha256: None,
        }
    }

    #[test]
    fn reasoning_first_is_refused_and_policy_differences_are_named() {
        assert!(
            record(AnswerFormat::ReasoningFirst, None)
                .refusal()
                .unwrap()
                .contains("--cot true")
        );
        let scorer = record(AnswerFormat::DecisionFirst, Some("policy A"));
        assert_eq!(scorer.refusal(), None);
        assert_eq!(scorer.policy_difference("policy A"), None);
        assert!(
            scorer
                .policy_difference("policy B")
                .unwrap()
                .contains("not the system prompt")
        );
        assert!(
            record(AnswerFormat::DecisionFirst, None)
                .policy_difference("policy A")
                .unwrap()
                .contains("no system prompt")
        );
        let dir = std::env::temp_dir().join(format!("aml-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(TrainingRecord::read(&dir).unwrap(), None);
        std::fs::write(dir.join(RECORD_FILE), serde_json::to_vec(&scorer).unwrap()).unwrap();
        assert_eq!(TrainingRecord::read(&dir).unwrap(), Some(scorer));
        std::fs::write(dir.join(RECORD_FILE), b"{").unwrap();
        assert!(
            TrainingRecord::read(&dir)
                .unwrap_err()
                .contains(RECORD_FILE)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
