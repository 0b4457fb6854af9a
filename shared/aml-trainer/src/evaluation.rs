//! The judge after each phase: the model answers a stratified sample of validation cases,
//! the judge grades its answers, and the gate decides whether the curriculum goes on.

use aml_core::{Label, SampleRecord, stratified_indices};
use aml_judge::{AnyJudge, JudgeReport, Prediction, evaluate, join};
use aml_model::generate::{GenerationConfig, generate};
use aml_model::scoring::score_answers;
use aml_model::{CausalLm, TextTokenizer};

use crate::TrainError;
use crate::config::{Gate, TrainerConfig};
use crate::data::prompt_messages;

impl Gate {
    /// The first threshold the report misses: (metric, value, threshold).
    pub fn failure(&self, report: &JudgeReport) -> Option<(&'static str, f64, f64)> {
        let positive_recall = positive_recall(report);
        let checks = [
            ("positive recall", positive_recall, self.min_positive_recall),
            (
                "accuracy",
                report.classification.accuracy,
                self.min_accuracy,
            ),
            ("rubric mean", report.rubric_mean, self.min_rubric),
        ];
        checks.into_iter().find_map(|(metric, value, threshold)| {
            threshold
                .filter(|&limit| value < limit)
                .map(|limit| (metric, value, limit))
        })
    }
}

/// Share of gold MATCH + EDGE items predicted MATCH or EDGE.
pub fn positive_recall(report: &JudgeReport) -> f64 {
    let (mut positives, mut escalated) = (0u64, 0u64);
    for item in &report.items {
        if item.gold.is_positive() {
            positives += 1;
            if item.predicted.is_positive() {
                escalated += 1;
            }
        }
    }
    if positives == 0 {
        0.0
    } else {
        escalated as f64 / positives as f64
    }
}

/// The decision in a generated answer: the last line that starts with a decision word;
/// an answer without one counts as NO_MATCH (and is then graded as such).
pub fn decision_of(text: &str) -> Label {
    text.lines()
        .rev()
        .find_map(Label::from_decision_line)
        .unwrap_or(Label::NoMatch)
}

/// Answers `config.judge_items` validation cases with the model (greedy, under
/// `config.system_prompt`), scores P(match) + P(edge) after
/// its reasoning, and grades them with `judge` (offline rubric or an LLM provider). Returns
/// the report and the predictions it graded.
pub fn judge_phase(
    model: &CausalLm,
    tokenizer: &TextTokenizer,
    validation: &[SampleRecord],
    config: &TrainerConfig,
    judge: &AnyJudge,
) -> Result<(JudgeReport, Vec<Prediction>), TrainError> {
    let _no_grad = tch::no_grad_guard();
    let system = config.system_prompt.as_deref();
    let max_new_tokens = config.judge_max_new_tokens;
    let chosen: Vec<SampleRecord> = stratified_indices(validation, config.judge_items, config.seed)
        .into_iter()
        .map(|index| validation[index].clone())
        .collect();
    let mut prompts = Vec::with_capacity(chosen.len());
    for sample in &chosen {
        prompts.push(tokenizer.encode(
            &tokenizer.render_chat(&prompt_messages(sample, system), true)?,
            false,
        )?);
    }
    let config = GenerationConfig {
        max_new_tokens,
        stop_ids: tokenizer.eos_ids().to_vec(),
        ..GenerationConfig::default()
    };
    let mut answers = Vec::new();
    for label in Label::ALL {
        answers.push(tokenizer.encode(label.decision_word(), false)?);
    }
    let generated = generate(model, None, &prompts, &config)?;
    let mut predictions = Vec::with_capacity(chosen.len());
    for ((sample, prompt), tokens) in chosen.iter().zip(&prompts).zip(&generated) {
        let text = tokenizer.decode(tokens)?;
        let reasoning: Vec<&str> = text
            .lines()
            .filter(|line| Label::from_decision_line(line).is_none())
            .collect();
        let mut context = prompt.clone();
        context.extend(tokenizer.encode(&format!("{}\n", reasoning.join("\n")), false)?);
        let scores = score_answers(model, None, &[context], &answers)?;
        let probabilities = &scores[0].probabilities;
        predictions.push(Prediction {
            id: sample.id.clone(),
            label: decision_of(&text),
            output: text.lines().last().unwrap_or_default().to_owned(),
            cot: reasoning.join("\n"),
            score: Some(probabilities[0] + probabilities[2]),
        });
    }
    let pairs =
        join(&chosen, &predictions).map_err(|error| TrainError::Judge(error.to_string()))?;
    let report = run_to_completion(evaluate(&pairs, judge))?;
    Ok((report, predictions))
}

/// Drives `future` (the judge's HTTP calls) from this blocking thread: on the caller's Tokio
/// runtime when there is one (training runs on a blocking thread of the service or CLI),
/// else on a small runtime of its own.
fn run_to_completion<F: std::future::Future>(future: F) -> Result<F::Output, TrainError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Ok(handle.block_on(future)),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(future))
            .map_err(|error| {
                TrainError::Judge(format!("cannot start the judge's runtime: {error}"))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_is_the_last_decision_line() {
        assert_eq!(
            decision_of("1. Name agrees.\n2. DOB conflicts.\nNO_MATCH — DOB differs"),
            Label::NoMatch
        );
        assert_eq!(decision_of("reasoning\nEDGE — partial DOB"), Label::Edge);
        assert_eq!(decision_of("MATCH — alias\n"), Label::Match);
        assert_eq!(decision_of("gibberish"), Label::NoMatch);
    }
}
