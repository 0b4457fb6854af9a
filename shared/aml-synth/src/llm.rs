//! LLM mode: prompt a provider with the domain prompt per tier, the labels still wanted and a
//! diversity seed, and keep the lines that parse into valid samples, until every label of the
//! tier has its share or the request budget is spent.
//!
//! What models do on a first run is expected, not fatal: answers in code fences or after a
//! preface, decision words written `NO MATCH` or `No match` (made canonical), smart quotes and
//! trailing commas (repaired), an answer cut at the token limit (its complete lines kept, and
//! the next request asks for fewer samples). Each request's answer budget is sized from the
//! samples it asks for and the prompt's length limits.

use std::collections::BTreeMap;

use aml_core::{Difficulty, Label, SampleRecord};
use aml_dataset::parse_sample_line;
use aml_providers::{CompletionRequest, ProviderClient, ProviderError, Usage};
use serde_json::Value;

use crate::prompt::request_prompt;

/// Answer tokens one sample may take: input under 350 and cot under 250 tokens (the domain
/// prompt's limits), instruction, output, label, tier and the JSON around them, with a margin
/// for escaping.
pub const TOKENS_PER_SAMPLE: u32 = 900;

/// Answer tokens beyond the samples: a preface, code fences.
const ANSWER_SLACK: u32 = 256;

/// How one tier is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LlmPlan {
    /// Samples asked for per request (fewer when the answer budget cannot hold them, or after
    /// an answer was cut).
    pub per_request: usize,
    /// Most requests for the tier.
    pub max_requests: u64,
    /// The largest answer the model may give, in tokens.
    pub max_answer_tokens: u32,
    /// Diversity seed.
    pub seed: u64,
}

impl LlmPlan {
    /// The default request budget for `count` samples: three times the requests they need
    /// at [`LlmPlan::fitting_per_request`], for retries of what came back malformed or short.
    pub fn default_budget(&self, count: usize) -> u64 {
        3 * count.div_ceil(self.fitting_per_request()).max(1) as u64
    }

    /// Samples one request may ask for so that their answer fits `max_answer_tokens`.
    pub fn fitting_per_request(&self) -> usize {
        let room = self.max_answer_tokens.saturating_sub(ANSWER_SLACK) / TOKENS_PER_SAMPLE;
        self.per_request.min(room.max(1) as usize).max(1)
    }
}

/// The answer budget for `samples` samples.
pub fn answer_budget(samples: usize, max_answer_tokens: u32) -> u32 {
    (samples as u32)
        .saturating_mul(TOKENS_PER_SAMPLE)
        .saturating_add(ANSWER_SLACK)
        .min(max_answer_tokens)
}

/// What came back from the provider for one tier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmTier {
    /// Valid samples of the requested tier, at most the plan's share of each label.
    pub samples: Vec<SampleRecord>,
    /// Lines that parsed only after a repair.
    pub repaired: u64,
    /// Samples whose decision word or label was rewritten to the canonical spelling.
    pub normalised: u64,
    /// Lines dropped as malformed, cut or of the wrong tier.
    pub dropped: u64,
    /// Valid samples of a label that already had its share.
    pub surplus: u64,
    /// Answers cut at the token limit.
    pub truncated: u64,
    /// Requests made (cache hits included).
    pub requests: u64,
    /// Tokens spent.
    pub usage: Usage,
    /// Per label, samples still missing when the budget ran out (empty: none).
    pub missing: BTreeMap<Label, usize>,
}

/// Each label's share of `count`: as even as it goes, the first labels taking the remainder.
pub fn label_targets(count: usize) -> BTreeMap<Label, usize> {
    Label::ALL
        .iter()
        .enumerate()
        .map(|(index, label)| (*label, count / 3 + usize::from(index < count % 3)))
        .collect()
}

fn repair(line: &str) -> String {
    line.trim()
        .trim_end_matches(',')
        .replace(['\u{201c}', '\u{201d}'], "\"")
        .replace(",}", "}")
        .replace(", }", " }")
}

/// Rewrites a sample object's label and output decision word to their canonical spellings;
/// true when something changed.
fn normalise(fields: &mut serde_json::Map<String, Value>) -> bool {
    let mut changed = false;
    if let Some(Value::String(label)) = fields.get_mut("label") {
        let canonical = label.trim().to_ascii_lowercase().replace([' ', '-'], "_");
        if canonical != *label {
            *label = canonical;
            changed = true;
        }
    }
    if let Some(Value::String(difficulty)) = fields.get_mut("difficulty") {
        let canonical = difficulty.trim().to_ascii_lowercase();
        if canonical != *difficulty {
            *difficulty = canonical;
            changed = true;
        }
    }
    if let Some(Value::String(output)) = fields.get_mut("output")
        && let Some(canonical) = Label::canonical_decision_line(output)
        && canonical != *output
    {
        *output = canonical;
        changed = true;
    }
    changed
}

/// One line as a sample: parsed (repaired when the fix is mechanical) and normalised.
/// Returns the sample and whether it was repaired and normalised.
fn parse_line(line: &str) -> Option<(SampleRecord, bool, bool)> {
    let (mut value, repaired) = match serde_json::from_str::<Value>(line) {
        Ok(value) => (value, false),
        Err(_) => (serde_json::from_str::<Value>(&repair(line)).ok()?, true),
    };
    let normalised = match &mut value {
        Value::Object(fields) => normalise(fields),
        _ => return None,
    };
    let sample = parse_sample_line(&value.to_string()).ok()?;
    Some((sample, repaired, normalised))
}

/// The samples of an answer: JSON objects one per line, anything else (prefaces, code
/// fences, a line cut at the token limit) dropped and counted. Samples of another tier are
/// dropped.
pub fn parse_answer(text: &str, tier: Difficulty, into: &mut LlmTier) -> Vec<SampleRecord> {
    let mut samples = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("```") {
            continue;
        }
        if !line.starts_with('{') {
            into.dropped += 1;
            continue;
        }
        match parse_line(line) {
            Some((sample, repaired, normalised)) if sample.difficulty == tier => {
                into.repaired += u64::from(repaired);
                into.normalised += u64::from(normalised);
                samples.push(sample);
            }
            _ => into.dropped += 1,
        }
    }
    samples
}

/// Of each label, how many are still wanted, at most `limit` in all (the labels most short
/// first).
fn next_request(wanted: &BTreeMap<Label, usize>, limit: usize) -> Vec<(Label, usize)> {
    let mut asked: BTreeMap<Label, usize> = BTreeMap::new();
    let mut left = limit;
    while left > 0 {
        let Some(label) = Label::ALL
            .iter()
            .filter(|label| wanted[label] > asked.get(label).copied().unwrap_or(0))
            .max_by_key(|label| wanted[label] - asked.get(label).copied().unwrap_or(0))
        else {
            break;
        };
        *asked.entry(*label).or_default() += 1;
        left -= 1;
    }
    asked.into_iter().collect()
}

/// Asks for the `wanted` samples of each label of `tier` (see [`label_targets`]) until each
/// label has them or the plan's request budget is spent; `missing` then says what is short.
pub async fn generate_tier_llm(
    client: &ProviderClient,
    tier: Difficulty,
    mut wanted: BTreeMap<Label, usize>,
    plan: &LlmPlan,
) -> Result<LlmTier, ProviderError> {
    let mut result = LlmTier::default();
    for label in Label::ALL {
        wanted.entry(label).or_default();
    }
    let mut per_request = plan.fitting_per_request();
    while wanted.values().any(|left| *left > 0) && result.requests < plan.max_requests {
        let labels = next_request(&wanted, per_request);
        let asked: usize = labels.iter().map(|(_, count)| count).sum();
        let request = CompletionRequest {
            system: None,
            prompt: request_prompt(tier, &labels, plan.seed.wrapping_add(result.requests)),
            max_tokens: Some(answer_budget(asked, plan.max_answer_tokens)),
        };
        let answer = client.complete(&request).await?;
        result.requests += 1;
        result.usage.input_tokens += answer.usage.input_tokens;
        result.usage.output_tokens += answer.usage.output_tokens;
        if answer.truncated {
            result.truncated += 1;
            per_request = (asked / 2).max(1);
        }
        for sample in parse_answer(&answer.text, tier, &mut result) {
            let left = wanted
                .get_mut(&sample.label)
                .expect("every label has a target");
            if *left == 0 {
                result.surplus += 1;
                continue;
            }
            *left -= 1;
            result.samples.push(sample);
        }
    }
    result.missing = wanted.into_iter().filter(|(_, left)| *left > 0).collect();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_repaired_normalised_or_dropped_never_fatal() {
        let good = r#"{"instruction":"i","input":"x","output":"MATCH — DOB","cot":"c","difficulty":"hard","label":"match"}"#;
        let smart = good.replace("\"label\":\"match\"", "\u{201c}label\u{201d}:\"match\"");
        let spaced = good
            .replace("MATCH — DOB", "NO MATCH — DOB differs")
            .replace("\"match\"", "\"No Match\"");
        let text = format!(
            "Here are the samples:\n```json\n{good}\n{smart},\n{spaced}\nnot json at all\n{{\"instruction\": \n{}\n```",
            good.replace("hard", "easy")
        );
        let mut result = LlmTier::default();
        let samples = parse_answer(&text, Difficulty::Hard, &mut result);
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[2].label, Label::NoMatch);
        assert_eq!(samples[2].output, "NO_MATCH — DOB differs");
        assert_eq!(result.repaired, 1);
        assert_eq!(result.normalised, 1);
        assert_eq!(
            result.dropped, 4,
            "the preface, prose, truncated JSON and the wrong tier"
        );
    }

    #[test]
    fn budgets_fit_the_samples_and_labels_share_the_count() {
        assert_eq!(answer_budget(10, 64_000), 9_256);
        assert_eq!(answer_budget(10, 8_192), 8_192);
        let plan = LlmPlan {
            per_request: 10,
            max_requests: 9,
            max_answer_tokens: 8_192,
            seed: 0,
        };
        assert_eq!(plan.fitting_per_request(), 8, "8 x 900 + 256 fits 8,192");
        let targets = label_targets(31);
        assert_eq!(targets.values().sum::<usize>(), 31);
        assert_eq!(targets[&Label::Match], 11);
        let asked = next_request(&targets, 8);
        assert_eq!(asked.iter().map(|(_, n)| n).sum::<usize>(), 8);
        assert!(asked.iter().all(|(_, n)| (2..=3).contains(n)), "{asked:?}");
    }
}
