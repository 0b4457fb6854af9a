//! LLM mode: prompt a provider with the domain prompt per tier and diversity seed, and keep
//! the lines that parse into valid samples. Malformed output is repaired when the fix is
//! mechanical (code fences, smart quotes, trailing commas) and otherwise dropped and counted;
//! it never stops the run.

use aml_core::{Difficulty, SampleRecord};
use aml_dataset::parse_sample_line;
use aml_providers::{CompletionRequest, ProviderClient, ProviderError};

use crate::prompt::request_prompt;

/// What came back from the provider for one tier.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LlmTier {
    /// Valid samples of the requested tier.
    pub samples: Vec<SampleRecord>,
    /// Lines that parsed only after a repair.
    pub repaired: u64,
    /// Lines dropped as malformed or of the wrong tier.
    pub dropped: u64,
    /// Requests made.
    pub requests: u64,
}

fn repair(line: &str) -> String {
    line.trim()
        .trim_end_matches(',')
        .replace(['\u{201c}', '\u{201d}'], "\"")
        .replace(",}", "}")
        .replace(", }", " }")
}

/// Splits an answer into sample lines: JSON objects one per line, code fences ignored.
pub fn parse_answer(text: &str, tier: Difficulty, into: &mut LlmTier) {
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("```") {
            continue;
        }
        if !line.starts_with('{') {
            into.dropped += 1;
            continue;
        }
        let parsed = match parse_sample_line(line) {
            Ok(sample) => Some(sample),
            Err(_) => {
                let fixed = parse_sample_line(&repair(line)).ok();
                if fixed.is_some() {
                    into.repaired += 1;
                }
                fixed
            }
        };
        match parsed {
            Some(sample) if sample.difficulty == tier => into.samples.push(sample),
            _ => into.dropped += 1,
        }
    }
}

/// Asks for `count` samples of `tier`, `per_request` at a time, until enough valid samples
/// arrived or `max_requests` were made.
pub async fn generate_tier_llm(
    client: &ProviderClient,
    tier: Difficulty,
    count: usize,
    per_request: usize,
    max_requests: u64,
    seed: u64,
) -> Result<LlmTier, ProviderError> {
    let mut tier_result = LlmTier::default();
    while tier_result.samples.len() < count && tier_result.requests < max_requests {
        let wanted = per_request.min(count - tier_result.samples.len());
        let request = CompletionRequest {
            system: None,
            prompt: request_prompt(tier, wanted, seed.wrapping_add(tier_result.requests)),
        };
        let answer = client.complete(&request).await?;
        tier_result.requests += 1;
        parse_answer(&answer.text, tier, &mut tier_result);
    }
    tier_result.samples.truncate(count);
    Ok(tier_result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_repaired_or_dropped_never_fatal() {
        let good = r#"{"instruction":"i","input":"x","output":"MATCH — DOB","cot":"c","difficulty":"hard","label":"match"}"#;
        let smart = good.replace("\"label\":\"match\"", "\u{201c}label\u{201d}:\"match\"");
        let text = format!(
            "```json\n{good}\n{smart},\nnot json at all\n{{\"instruction\": \n{}\n```",
            good.replace("hard", "easy")
        );
        let mut result = LlmTier::default();
        parse_answer(&text, Difficulty::Hard, &mut result);
        assert_eq!(result.samples.len(), 2);
        assert_eq!(result.repaired, 1);
        assert_eq!(
            result.dropped, 3,
            "prose, truncated JSON and the wrong tier"
        );
    }
}
