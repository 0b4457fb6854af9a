//! Distillation (`--cot true --distill true`): the CoT model trains first, under `teacher/`,
//! and writes its reasoning for every training input (greedy); its probabilities of MATCH /
//! NO_MATCH / EDGE after that reasoning are the soft targets of a decision-first scorer,
//! trained from the base into the run's top-level folders. The scorer's loss on each input is
//! the cross-entropy of its answer probabilities against `gold_weight` × the gold label +
//! (1 − `gold_weight`) × the teacher's distribution: the gold one-liner carries the gold
//! share, and the prompt with the teacher's distribution over the answers' first tokens as
//! the target of its answer position carries the rest (with multi-token answers, one example
//! per answer, weighted by the teacher's probability of it). Scored tokens are those the workers score
//! ([`aml_scoring::scored_answers`]), so the scorer learns the quantity a batch reads.

use std::path::Path;

use aml_core::{Difficulty, Label, SampleRecord};
use aml_model::generate::{GenerationConfig, generate};
use aml_model::scoring::score_answers;
use aml_model::{CausalLm, TextTokenizer};
use serde::{Deserialize, Serialize};

use crate::data::{Example, PreparedData, prompt_ids, read_tier, sample_name};
use crate::{TrainError, TrainerConfig};

/// Where a distilling run trains its teacher, under its output folder.
pub const TEACHER_DIR: &str = "teacher";

/// Inputs per batched generation or scoring pass of the teacher.
const TEACHER_BATCH: usize = 16;

/// What the teacher said of one training input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherLabel {
    /// The sample's id, or its position in its file.
    pub sample: String,
    /// The teacher's reasoning, up to its decision line.
    pub reasoning: String,
    /// P(MATCH), P(NO_MATCH), P(EDGE) after the reasoning.
    pub probabilities: [f64; 3],
}

/// How the scorer agrees with its teacher on the validation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistillationReport {
    /// Validation inputs compared.
    pub items: usize,
    /// Share of inputs where the scorer's most probable label is the teacher's.
    pub agreement: f64,
    /// Mean total-variation distance between the two label distributions.
    pub mean_total_variation: f64,
    /// The teacher's accuracy against the gold labels (its most probable label).
    pub teacher_accuracy: f64,
    /// The scorer's accuracy against the gold labels.
    pub scorer_accuracy: f64,
    /// The gold label's share of the scorer's target.
    pub gold_weight: f64,
}

fn distillation_error(error: impl std::fmt::Display) -> TrainError {
    TrainError::Distillation(error.to_string())
}

/// The reasoning of a CoT answer: the text before its last decision line (the CoT target is
/// the reasoning, a newline, then the output line starting with the decision word), or the
/// whole text and a newline when no line starts with one.
pub fn reasoning_before_decision(text: &str) -> String {
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(index, _)| index + 1))
        .collect();
    for &start in line_starts.iter().rev() {
        let line = text[start..].lines().next().unwrap_or("");
        if Label::from_decision_line(line).is_some() {
            return text[..start].to_owned();
        }
    }
    format!("{}\n", text.trim_end())
}

/// P(label) of each prompt, renormalised over `answers` (the scored tokens), in batches.
pub fn label_probabilities(
    model: &CausalLm,
    prompts: &[Vec<i64>],
    answers: &[Vec<i64>],
) -> Result<Vec<[f64; 3]>, TrainError> {
    let mut out = Vec::with_capacity(prompts.len());
    for batch in prompts.chunks(TEACHER_BATCH) {
        for scores in score_answers(model, None, batch, answers)? {
            let p = &scores.probabilities;
            out.push([p[0], p[1], p[2]]);
        }
    }
    Ok(out)
}

/// The teacher's reasoning and label distribution for each of `samples` (greedy reasoning
/// of at most `config.distill_max_new_tokens` tokens, kept within `context`).
pub fn teacher_labels(
    model: &CausalLm,
    tokenizer: &TextTokenizer,
    samples: &[SampleRecord],
    config: &TrainerConfig,
    context: usize,
) -> Result<Vec<TeacherLabel>, TrainError> {
    let _no_grad = tch::no_grad_guard();
    let answers = aml_scoring::scored_answers(tokenizer).map_err(distillation_error)?;
    let longest_answer = answers.iter().map(Vec::len).max().unwrap_or(1);
    let system = config.system_prompt.as_deref();
    let mut labels = Vec::with_capacity(samples.len());
    for (batch_index, batch) in samples.chunks(TEACHER_BATCH).enumerate() {
        let prompts = batch
            .iter()
            .map(|sample| prompt_ids(tokenizer, sample, system))
            .collect::<Result<Vec<_>, _>>()?;
        let room = prompts
            .iter()
            .map(|prompt| context.saturating_sub(prompt.len() + longest_answer + 1))
            .min()
            .unwrap_or(0);
        let generation = GenerationConfig {
            max_new_tokens: config.distill_max_new_tokens.min(room as i64).max(0),
            stop_ids: tokenizer.eos_ids().to_vec(),
            ..GenerationConfig::default()
        };
        let generated = if generation.max_new_tokens > 0 {
            generate(model, None, &prompts, &generation)?
        } else {
            vec![Vec::new(); prompts.len()]
        };
        let mut reasonings = Vec::with_capacity(batch.len());
        let mut continued = Vec::with_capacity(batch.len());
        for (prompt, tokens) in prompts.iter().zip(&generated) {
            let reasoning = reasoning_before_decision(&tokenizer.decode(tokens)?);
            let mut ids = tokenizer.encode(&reasoning, false)?;
            ids.truncate(room);
            continued.push([prompt.as_slice(), &ids].concat());
            reasonings.push(reasoning);
        }
        let probabilities = label_probabilities(model, &continued, &answers)?;
        for (offset, (reasoning, probabilities)) in
            reasonings.into_iter().zip(probabilities).enumerate()
        {
            let index = batch_index * TEACHER_BATCH + offset;
            labels.push(TeacherLabel {
                sample: sample_name(&samples[index], index),
                reasoning,
                probabilities,
            });
        }
    }
    Ok(labels)
}

/// Every tier's samples, as the run reads them.
pub fn tier_samples(data_dir: &Path) -> Result<Vec<Vec<SampleRecord>>, TrainError> {
    Difficulty::ALL
        .iter()
        .map(|&tier| read_tier(data_dir, tier))
        .collect()
}

/// The scorer's data: `gold` (the run's data prepared decision-first) with each tier's gold
/// examples weighed by `gold_weight`, and per input one example per answer (the prompt, then
/// the answer's scored tokens) weighed by (1 − `gold_weight`) × the teacher's probability.
/// The validation set stays gold, so early stopping watches the gold loss.
pub fn distillation_data(
    tokenizer: &TextTokenizer,
    mut gold: PreparedData,
    samples: &[Vec<SampleRecord>],
    teacher: &[Vec<TeacherLabel>],
    config: &TrainerConfig,
) -> Result<PreparedData, TrainError> {
    let answers = aml_scoring::scored_answers(tokenizer).map_err(distillation_error)?;
    let gold_weight = config.distill_gold_weight.clamp(0.0, 1.0);
    let system = config.system_prompt.as_deref();
    for (((_, examples), samples), labels) in gold.tiers.iter_mut().zip(samples).zip(teacher) {
        for example in examples.iter_mut() {
            example.weight = gold_weight as f32;
        }
        examples.retain(|example| example.weight > 0.0);
        for (sample, label) in samples.iter().zip(labels) {
            let prompt = prompt_ids(tokenizer, sample, system)?;
            examples.extend(soft_examples(
                &prompt,
                &answers,
                label,
                gold_weight,
                gold.max_len,
            ));
        }
    }
    gold.distilled_from = Some(format!("{TEACHER_DIR}/adapter"));
    Ok(gold)
}

/// The teacher's distribution for one prompt as training examples: with single-token answers
/// (the first-token shape) one example whose last position's target is the distribution over
/// the three tokens; else one example per answer, its tokens weighted by the teacher's
/// probability of it. Either carries `1 − gold_weight` of the input's weight.
fn soft_examples(
    prompt: &[i64],
    answers: &[Vec<i64>],
    label: &TeacherLabel,
    gold_weight: f64,
    max_len: usize,
) -> Vec<Example> {
    let share = (1.0 - gold_weight) as f32;
    let longest = answers.iter().map(Vec::len).max().unwrap_or(1);
    if share <= 0.0 || prompt.len() + longest > max_len {
        return Vec::new();
    }
    if longest == 1 {
        return vec![Example {
            ids: [prompt, &answers[0]].concat(),
            target_start: prompt.len(),
            weight: share,
            soft_target: answers
                .iter()
                .zip(label.probabilities)
                .map(|(answer, probability)| (answer[0], probability as f32))
                .collect(),
        }];
    }
    answers
        .iter()
        .zip(label.probabilities)
        .map(|(answer, probability)| Example {
            ids: [prompt, answer].concat(),
            target_start: prompt.len(),
            weight: share * probability as f32,
            soft_target: Vec::new(),
        })
        .filter(|example| example.weight >= 1e-4)
        .collect()
}

/// Compares the scorer's label distribution on the validation prompts with the teacher's.
pub fn agreement(
    scorer: &CausalLm,
    tokenizer: &TextTokenizer,
    validation: &[SampleRecord],
    teacher: &[TeacherLabel],
    config: &TrainerConfig,
) -> Result<DistillationReport, TrainError> {
    let _no_grad = tch::no_grad_guard();
    let answers = aml_scoring::scored_answers(tokenizer).map_err(distillation_error)?;
    let system = config.system_prompt.as_deref();
    let prompts = validation
        .iter()
        .map(|sample| prompt_ids(tokenizer, sample, system))
        .collect::<Result<Vec<_>, _>>()?;
    let scorer_probabilities = label_probabilities(scorer, &prompts, &answers)?;
    let most_probable = |p: &[f64; 3]| {
        let best = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
        Label::ALL[best]
    };
    let items = validation.len().max(1) as f64;
    let mut report = DistillationReport {
        items: validation.len(),
        agreement: 0.0,
        mean_total_variation: 0.0,
        teacher_accuracy: 0.0,
        scorer_accuracy: 0.0,
        gold_weight: config.distill_gold_weight,
    };
    for ((sample, label), scored) in validation.iter().zip(teacher).zip(&scorer_probabilities) {
        let (taught, learned) = (most_probable(&label.probabilities), most_probable(scored));
        report.agreement += f64::from(taught == learned) / items;
        report.teacher_accuracy += f64::from(taught == sample.label) / items;
        report.scorer_accuracy += f64::from(learned == sample.label) / items;
        report.mean_total_variation += 0.5
            * label
                .probabilities
                .iter()
                .zip(scored)
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
            / items;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reasoning_ends_before_the_last_decision_line() {
        assert_eq!(
            reasoning_before_decision("DOB agrees.\nPassport agrees.\nMATCH — all agree"),
            "DOB agrees.\nPassport agrees.\n"
        );
        assert_eq!(
            reasoning_before_decision("EDGE cases aside\nNO_MATCH — DOB differs"),
            "EDGE cases aside\n"
        );
        assert_eq!(reasoning_before_decision("NO_MATCH — DOB differs"), "");
        assert_eq!(
            reasoning_before_decision("DOB agrees.\nMATCH x\n"),
            "DOB agrees.\n"
        );
        assert_eq!(
            reasoning_before_decision("names agree, identifiers missing "),
            "names agree, identifiers missing\n"
        );
    }
}
