//! Training examples: the chat-formatted prompt and the assistant's target, with loss only
//! on the assistant's tokens.

use std::path::Path;

use aml_core::{Difficulty, SampleRecord};
use aml_dataset::parse_candidates;
use aml_model::{ChatMessage, TextTokenizer};

use crate::TrainError;

/// One tokenised example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Prompt and target tokens.
    pub ids: Vec<i64>,
    /// Tokens before this index (the prompt) carry no loss.
    pub target_start: usize,
}

/// What the model learns to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The reasoning, then the one-line decision.
    CotThenOutput,
    /// The one-line decision alone (the fast scoring model).
    OutputOnly,
}

/// The chat messages of a sample's prompt: the policy as the system message when one is
/// given (as the inference workers score, so training and scoring prompts are the same),
/// then the instruction and the input as the user's message.
pub fn prompt_messages(sample: &SampleRecord, system: Option<&str>) -> Vec<ChatMessage> {
    let user = ChatMessage::new(
        "user",
        format!("{}\n\n{}", sample.instruction, sample.input)
            .trim()
            .to_owned(),
    );
    match system {
        Some(policy) => vec![ChatMessage::new("system", policy), user],
        None => vec![user],
    }
}

/// The assistant's text for a sample.
pub fn target_text(sample: &SampleRecord, target: Target) -> String {
    match target {
        Target::CotThenOutput => format!("{}\n{}", sample.cot, sample.output),
        Target::OutputOnly => sample.output.clone(),
    }
}

/// Tokenises a sample with the model's chat template, truncated to `max_len` tokens.
pub fn encode(
    tokenizer: &TextTokenizer,
    sample: &SampleRecord,
    target: Target,
    max_len: usize,
    system: Option<&str>,
) -> Result<Example, TrainError> {
    let prompt = tokenizer.render_chat(&prompt_messages(sample, system), true)?;
    let mut ids = tokenizer.encode(&prompt, false)?;
    let target_start = ids.len();
    ids.extend(tokenizer.encode(&target_text(sample, target), false)?);
    if let Some(&eos) = tokenizer.eos_ids().first() {
        ids.push(eos);
    }
    ids.truncate(max_len);
    Ok(Example { ids, target_start })
}

/// Reads one tier's JSONL; a bad line or an empty tier is an error naming the file.
pub fn read_tier(dir: &Path, tier: Difficulty) -> Result<Vec<SampleRecord>, TrainError> {
    read_file(&dir.join(format!("{tier}.jsonl")))
}

/// Reads a JSONL file of samples; it must hold at least one.
pub fn read_file(path: &Path) -> Result<Vec<SampleRecord>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
        path: path.to_owned(),
        source,
    })?;
    let samples = parse_candidates(path, &text)?;
    if samples.is_empty() {
        return Err(TrainError::EmptyFile(path.to_owned()));
    }
    Ok(samples)
}
