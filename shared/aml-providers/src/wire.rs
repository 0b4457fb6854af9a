//! The three wire formats: request bodies, headers and how the answer text is found.

use serde_json::{Value, json};

use crate::completion::{CompletionRequest, ProviderKind, ProviderSettings, Usage};

/// What a successful response holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer text.
    pub text: String,
    /// The provider stopped at the token limit (`stop_reason: max_tokens`, `finish_reason:
    /// length`): the last line may be cut.
    pub truncated: bool,
    /// Tokens in and out, as the provider counted them (0 where it did not say).
    pub usage: Usage,
}

/// The endpoint a provider's completion request goes to.
pub fn endpoint(settings: &ProviderSettings) -> String {
    let base = settings.base_url.clone().unwrap_or_else(|| {
        match settings.kind {
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::Perplexity => "https://api.perplexity.ai",
            ProviderKind::OpenAi => "https://api.openai.com/v1",
        }
        .to_owned()
    });
    let base = base.trim_end_matches('/');
    match settings.kind {
        ProviderKind::Anthropic => format!("{base}/v1/messages"),
        ProviderKind::Perplexity | ProviderKind::OpenAi => format!("{base}/chat/completions"),
    }
}

/// The JSON body of a completion request.
pub fn body(settings: &ProviderSettings, request: &CompletionRequest) -> Value {
    let max_tokens = request.max_tokens.unwrap_or(settings.max_tokens);
    match settings.kind {
        ProviderKind::Anthropic => {
            let mut body = json!({
                "model": settings.model,
                "max_tokens": max_tokens,
                "temperature": settings.temperature,
                "messages": [{"role": "user", "content": request.prompt}],
            });
            if let Some(system) = &request.system {
                body["system"] = json!(system);
            }
            body
        }
        ProviderKind::Perplexity | ProviderKind::OpenAi => {
            let mut messages = Vec::new();
            if let Some(system) = &request.system {
                messages.push(json!({"role": "system", "content": system}));
            }
            messages.push(json!({"role": "user", "content": request.prompt}));
            let mut body = json!({
                "model": settings.model,
                "max_tokens": max_tokens,
                "temperature": settings.temperature,
                "messages": messages,
            });
            if let (ProviderKind::OpenAi, Some(seed)) = (settings.kind, settings.seed) {
                body["seed"] = json!(seed);
            }
            body
        }
    }
}

/// The answer of a successful response: its text, whether it was cut at the token limit,
/// and the tokens used.
pub fn answer(kind: ProviderKind, response: &Value) -> Option<Answer> {
    let count = |value: Option<&Value>| value.and_then(Value::as_u64).unwrap_or(0);
    let usage = response.get("usage");
    let (truncated, usage) = match kind {
        ProviderKind::Anthropic => (
            response.get("stop_reason").and_then(Value::as_str) == Some("max_tokens"),
            Usage {
                input_tokens: count(usage.and_then(|u| u.get("input_tokens"))),
                output_tokens: count(usage.and_then(|u| u.get("output_tokens"))),
            },
        ),
        ProviderKind::Perplexity | ProviderKind::OpenAi => (
            response
                .pointer("/choices/0/finish_reason")
                .and_then(Value::as_str)
                == Some("length"),
            Usage {
                input_tokens: count(usage.and_then(|u| u.get("prompt_tokens"))),
                output_tokens: count(usage.and_then(|u| u.get("completion_tokens"))),
            },
        ),
    };
    Some(Answer {
        text: answer_text(kind, response)?,
        truncated,
        usage,
    })
}

/// The answer text of a successful response.
fn answer_text(kind: ProviderKind, response: &Value) -> Option<String> {
    match kind {
        ProviderKind::Anthropic => {
            let parts: Vec<&str> = response
                .get("content")?
                .as_array()?
                .iter()
                .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|block| block.get("text").and_then(Value::as_str))
                .collect();
            (!parts.is_empty()).then(|| parts.concat())
        }
        ProviderKind::Perplexity | ProviderKind::OpenAi => response
            .get("choices")?
            .get(0)?
            .get("message")?
            .get("content")?
            .as_str()
            .map(str::to_owned),
    }
}

/// The message of an error response, whatever its shape.
pub fn error_message(response: &str) -> String {
    serde_json::from_str::<Value>(response)
        .ok()
        .and_then(|value| {
            value
                .get("error")
                .and_then(|error| error.get("message").or(Some(error)))
                .and_then(|message| {
                    message
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| Some(message.to_string()))
                })
        })
        .unwrap_or_else(|| response.chars().take(200).collect())
}
