//! Training examples: the chat-formatted prompt and the assistant's target, with loss only
//! on the assistant's tokens.

use std::path::Path;

use aml_core::{Difficulty, SampleRecord};
use aml_dataset::parse_candidates;
use aml_model::{ChatMessage, TextTokenizer};

use crate::{TrainError, TrainerConfig};

/// One tokenised example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Prompt and target tokens.
    pub ids: Vec<i64>,
    /// Tokens before this index (the prompt) carry no loss.
    pub target_start: usize,
    /// The weight of the example's target tokens in the loss: 1 for a gold answer, the
    /// teacher's share for a distillation target.
    pub weight: f32,
    /// A distribution over tokens (token, probability) that replaces the label of the
    /// example's last token: the teacher's label distribution over the answers' first tokens.
    pub soft_target: Vec<(i64, f32)>,
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
        aml_core::format::user_message(&sample.instruction, &sample.input),
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

/// The tokens of a sample's prompt: its chat messages rendered with the model's template,
/// up to where the assistant's answer begins.
pub fn prompt_ids(
    tokenizer: &TextTokenizer,
    sample: &SampleRecord,
    system: Option<&str>,
) -> Result<Vec<i64>, TrainError> {
    let prompt = tokenizer.render_chat(&prompt_messages(sample, system), true)?;
    Ok(tokenizer.encode(&prompt, false)?)
}

/// Tokenises a sample with the model's chat template, truncated to `max_len` tokens.
pub fn encode(
    tokenizer: &TextTokenizer,
    sample: &SampleRecord,
    target: Target,
    max_len: usize,
    system: Option<&str>,
) -> Result<Example, TrainError> {
    let mut ids = prompt_ids(tokenizer, sample, system)?;
    let target_start = ids.len();
    ids.extend(tokenizer.encode(&target_text(sample, target), false)?);
    if let Some(&eos) = tokenizer.eos_ids().first() {
        ids.push(eos);
    }
    ids.truncate(max_len);
    Ok(Example {
        ids,
        target_start,
        weight: 1.0,
        soft_target: Vec::new(),
    })
}

/// A sample's name in errors and reports: its id, or its 1-based position in its file.
pub fn sample_name(sample: &SampleRecord, index: usize) -> String {
    sample
        .id
        .clone()
        .unwrap_or_else(|| format!("#{}", index + 1))
}

/// Reads one tier's JSONL; a bad line or an empty tier is an error naming the file.
pub fn read_tier(dir: &Path, tier: Difficulty) -> Result<Vec<SampleRecord>, TrainError> {
    read_file(&dir.join(format!("{tier}.jsonl")))
}

/// Reads a JSONL file of samples; it must hold at least one.
pub fn read_file(path: &Path) -> Result<Vec<SampleRecord>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    let samples = parse_candidates(path, &text)?;
    if samples.is_empty() {
        return Err(TrainError::EmptyFile(path.to_owned()));
    }
    Ok(samples)
}

/// Encodes the samples of `file`; one whose prompt leaves no room for the answer is an
/// error naming the file and the sample.
fn encode_all(
    tokenizer: &TextTokenizer,
    file: &Path,
    samples: &[SampleRecord],
    target: Target,
    max_len: usize,
    system: Option<&str>,
) -> Result<Vec<Example>, TrainError> {
    let mut examples = Vec::with_capacity(samples.len());
    for (index, sample) in samples.iter().enumerate() {
        let example = encode(tokenizer, sample, target, max_len, system)?;
        if example.target_start >= example.ids.len() {
            return Err(TrainError::NoRoomForAnswer {
                file: file.to_owned(),
                sample: sample_name(sample, index),
                prompt_tokens: example.target_start,
                max_seq_len: max_len,
            });
        }
        examples.push(example);
    }
    Ok(examples)
}

/// A run's data, read, checked and tokenised before the model loads: every tier in
/// curriculum order and the validation set.
#[derive(Debug, Clone)]
pub struct PreparedData {
    /// Each tier's examples, easy first.
    pub tiers: Vec<(Difficulty, Vec<Example>)>,
    /// The validation examples.
    pub validation: Vec<Example>,
    /// The validation samples as read (the judge answers them).
    pub validation_samples: Vec<SampleRecord>,
    /// The longest example kept, in tokens (`max_seq_len` capped by the model's context).
    pub max_len: usize,
    /// The teacher, for a scorer's data distilled from a CoT run's label distribution.
    pub distilled_from: Option<String>,
}

impl PreparedData {
    /// Reads `data_dir`'s tier files and `validation.jsonl` and tokenises them under the
    /// configuration's target and system prompt; `context` is the model's longest context.
    pub fn load(
        tokenizer: &TextTokenizer,
        data_dir: &Path,
        config: &TrainerConfig,
        context: usize,
    ) -> Result<Self, TrainError> {
        let target = config.target();
        let max_len = config.max_seq_len.min(context);
        let system = config.system_prompt.as_deref();
        let validation_file = data_dir.join("validation.jsonl");
        let validation_samples = read_file(&validation_file)?;
        let mut read = Vec::with_capacity(Difficulty::ALL.len());
        for tier in Difficulty::ALL {
            read.push((tier, read_tier(data_dir, tier)?));
        }
        let validation = encode_all(
            tokenizer,
            &validation_file,
            &validation_samples,
            target,
            max_len,
            system,
        )?;
        let mut tiers = Vec::with_capacity(read.len());
        for (tier, samples) in read {
            let file = data_dir.join(format!("{tier}.jsonl"));
            tiers.push((
                tier,
                encode_all(tokenizer, &file, &samples, target, max_len, system)?,
            ));
        }
        Ok(PreparedData {
            tiers,
            validation,
            validation_samples,
            max_len,
            distilled_from: None,
        })
    }

    /// Tokens of the longest example of any tier or the validation set.
    pub fn longest(&self) -> usize {
        self.tiers
            .iter()
            .flat_map(|(_, examples)| examples)
            .chain(&self.validation)
            .map(|example| example.ids.len())
            .max()
            .unwrap_or(0)
    }
}
