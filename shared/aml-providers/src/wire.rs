//! The three wire formats: request bodies, headers and how the answer text is found.

use serde_json::{Value, json};

use crate::client::{CompletionRequest, ProviderKind, ProviderSettings};

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
    match settings.kind {
        ProviderKind::Anthropic => {
            let mut body = json!({
                "model": settings.model,
                "max_tokens": settings.max_tokens,
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
                "max_tokens": settings.max_tokens,
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

/// The answer text of a successful response.
pub fn answer_text(kind: ProviderKind, response: &Value) -> Option<String> {
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
