//! Third-party credentials and endpoints: the LLM providers' keys, the Hugging Face Hub
//! token and the LLM judge's provider. They are read under their usual names
//! (`ANTHROPIC_API_KEY`, `HF_TOKEN`, `JUDGE_PROVIDER`, ...) from the process environment and
//! from `.env`, or as `providers.*` keys, and print as `<redacted>`.

use serde::{Deserialize, Serialize};

use super::Secret;

/// The `providers` section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersConfig {
    /// Anthropic API key (`ANTHROPIC_API_KEY`).
    pub anthropic_api_key: Option<Secret>,
    /// Anthropic endpoint for a proxy or stand-in (`ANTHROPIC_BASE_URL`).
    pub anthropic_base_url: Option<String>,
    /// Perplexity API key (`PERPLEXITY_API_KEY`).
    pub perplexity_api_key: Option<Secret>,
    /// Perplexity endpoint (`PERPLEXITY_BASE_URL`).
    pub perplexity_base_url: Option<String>,
    /// OpenAI-compatible API key (`OPENAI_API_KEY`).
    pub openai_api_key: Option<Secret>,
    /// OpenAI-compatible endpoint (`OPENAI_BASE_URL`).
    pub openai_base_url: Option<String>,
    /// Hugging Face Hub token (`HF_TOKEN`, or `HUGGING_FACE_HUB_TOKEN`).
    pub hf_token: Option<Secret>,
    /// Hugging Face Hub endpoint, for a mirror (`HF_ENDPOINT`).
    pub hf_endpoint: Option<String>,
    /// The LLM judge's provider when a command is not told one (`JUDGE_PROVIDER`).
    pub judge_provider: Option<String>,
}

/// The standard variables of this section, with the key each sets.
pub(super) const PROVIDER_VARIABLES: [(&str, &str); 10] = [
    ("ANTHROPIC_API_KEY", "providers.anthropic_api_key"),
    ("ANTHROPIC_BASE_URL", "providers.anthropic_base_url"),
    ("PERPLEXITY_API_KEY", "providers.perplexity_api_key"),
    ("PERPLEXITY_BASE_URL", "providers.perplexity_base_url"),
    ("OPENAI_API_KEY", "providers.openai_api_key"),
    ("OPENAI_BASE_URL", "providers.openai_base_url"),
    ("HUGGING_FACE_HUB_TOKEN", "providers.hf_token"),
    ("HF_TOKEN", "providers.hf_token"),
    ("HF_ENDPOINT", "providers.hf_endpoint"),
    ("JUDGE_PROVIDER", "providers.judge_provider"),
];

impl ProvidersConfig {
    /// The settings as the standard variables the provider and Hub clients read
    /// (`ProviderSettings::from_environment`, `HubClient::from_environment`).
    pub fn variables(&self) -> Vec<(String, String)> {
        let secrets = [
            ("ANTHROPIC_API_KEY", &self.anthropic_api_key),
            ("PERPLEXITY_API_KEY", &self.perplexity_api_key),
            ("OPENAI_API_KEY", &self.openai_api_key),
            ("HF_TOKEN", &self.hf_token),
        ];
        let plain = [
            ("ANTHROPIC_BASE_URL", &self.anthropic_base_url),
            ("PERPLEXITY_BASE_URL", &self.perplexity_base_url),
            ("OPENAI_BASE_URL", &self.openai_base_url),
            ("HF_ENDPOINT", &self.hf_endpoint),
            ("JUDGE_PROVIDER", &self.judge_provider),
        ];
        secrets
            .into_iter()
            .filter_map(|(name, value)| {
                value
                    .as_ref()
                    .map(|secret| (name.to_owned(), secret.expose().to_owned()))
            })
            .chain(plain.into_iter().filter_map(|(name, value)| {
                value.as_ref().map(|value| (name.to_owned(), value.clone()))
            }))
            .collect()
    }
}
