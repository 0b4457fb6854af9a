//! The LLM judge: a rubric prompt through a provider, strict JSON back, re-asked once.

use aml_providers::{CompletionRequest, ProviderClient};
use serde::Deserialize;

use crate::{Judge, JudgeError, Verdict};

/// The rubric the judge model applies.
pub const RUBRIC: &str = "You grade the rationale an AML/KYC screening model gave for an alert. \
Use only the case input below; do not judge the decision itself.\n\
1. sufficiency: 1 if the rationale cites at least two concrete fields of the input (date of birth, \
nationality or country, alias, identifier such as passport or LEI, ownership link), 0.5 if it cites one, 0 if none.\n\
2. fabricated: any field, name, date, identifier or company link in the rationale that does not appear in the \
input; null if there is none.\n\
Answer with one JSON object and nothing else: {\"sufficiency\": 0 | 0.5 | 1, \"fabricated\": string | null}";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    sufficiency: f64,
    fabricated: Option<String>,
}

fn parse(text: &str) -> Option<Verdict> {
    let trimmed = text
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    let answer: Answer = serde_json::from_str(trimmed).ok()?;
    [0.0, 0.5, 1.0]
        .contains(&answer.sufficiency)
        .then_some(Verdict {
            sufficiency: answer.sufficiency,
            fabricated: answer.fabricated.filter(|detail| !detail.trim().is_empty()),
        })
}

/// Grades through a provider.
#[derive(Debug)]
pub struct LlmJudge {
    client: ProviderClient,
}

impl LlmJudge {
    /// A judge calling `client`.
    pub fn new(client: ProviderClient) -> Self {
        LlmJudge { client }
    }
}

impl Judge for LlmJudge {
    fn name(&self) -> &str {
        self.client.settings().kind.name()
    }

    async fn verdict(&self, input: &str, rationale: &str) -> Result<Verdict, JudgeError> {
        let prompt = format!("Case input:\n{input}\n\nRationale to grade:\n{rationale}");
        let request = CompletionRequest {
            system: Some(RUBRIC.to_owned()),
            prompt: prompt.clone(),
            max_tokens: None,
        };
        let first = self.client.complete(&request).await?;
        if let Some(verdict) = parse(&first.text) {
            return Ok(verdict);
        }
        let retry = CompletionRequest {
            system: Some(RUBRIC.to_owned()),
            prompt: format!(
                "{prompt}\n\nYour previous answer was not the JSON object asked for. Answer with the JSON object only."
            ),
            max_tokens: None,
        };
        let second = self.client.complete(&retry).await?;
        parse(&second.text)
            .ok_or_else(|| JudgeError::InvalidAnswer(second.text.chars().take(120).collect()))
    }
}
