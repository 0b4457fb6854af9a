//! The judge: grades predictions against gold samples with a rubric and computes the
//! screening metrics.
//!
//! Rubric per item, 0-1: decision correctness (1/0, the primary term), reasoning sufficiency
//! (cites two or more concrete fields of the input: 1, one: 0.5, none: 0), and harmful
//! hallucination (a fabricated field, name, date, identifier or link sets the item to 0).
//! Item score = (2 x correctness + sufficiency) / 3, or 0 with a hallucination. The judge is
//! either [`offline`] (deterministic, the default) or an LLM through a provider ([`llm`]).

pub mod llm;
pub mod offline;
pub mod pictures;
pub mod report;

pub use aml_providers::{Credentials, DEFAULT_MODEL};
pub use report::{ItemGrade, JudgeReport, Prediction, evaluate, join, render_table};

/// What a judge says about one rationale.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Reasoning sufficiency: 0, 0.5 or 1.
    pub sufficiency: f64,
    /// A fabricated detail, when the rationale invents one.
    pub fabricated: Option<String>,
}

/// Why a judge could not grade an item.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] aml_providers::ProviderError),
    /// The judge model did not answer valid JSON, even when asked again.
    #[error("the judge answered invalid JSON twice: {0}")]
    InvalidAnswer(String),
}

/// Grades one rationale against the input it should rest on.
pub trait Judge {
    /// The judge's name for reports (`offline`, `anthropic`, ...).
    fn name(&self) -> &str;

    /// Grades `rationale` (cot + output) for a case with `input`.
    fn verdict(
        &self,
        input: &str,
        rationale: &str,
    ) -> impl std::future::Future<Output = Result<Verdict, JudgeError>> + Send;
}

/// The deterministic offline judge.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineJudge;

impl Judge for OfflineJudge {
    fn name(&self) -> &str {
        "offline"
    }

    async fn verdict(&self, input: &str, rationale: &str) -> Result<Verdict, JudgeError> {
        let findings = offline::inspect(input, rationale);
        Ok(Verdict {
            sufficiency: offline::sufficiency(&findings),
            fabricated: findings.fabricated,
        })
    }
}

/// Either judge, chosen at run time by provider name.
#[derive(Debug)]
pub enum AnyJudge {
    /// The deterministic offline judge.
    Offline(OfflineJudge),
    /// An LLM through a provider.
    Llm(Box<llm::LlmJudge>),
}

impl AnyJudge {
    /// `offline` (or empty) gives the offline judge; `anthropic`, `perplexity` or `openai` an LLM
    /// judge with the key from `environment` and responses cached in `cache_dir`.
    pub fn from_name(
        name: &str,
        model: &str,
        environment: &[(String, String)],
        cache_dir: &std::path::Path,
    ) -> Result<Self, JudgeError> {
        if name.is_empty() || name == "offline" {
            return Ok(AnyJudge::Offline(OfflineJudge));
        }
        let kind = aml_providers::ProviderKind::from_name(name).ok_or_else(|| {
            JudgeError::InvalidAnswer(format!(
                "unknown judge provider `{name}`: expected offline, anthropic, perplexity or openai"
            ))
        })?;
        let mut settings =
            aml_providers::ProviderSettings::from_environment(kind, model, environment)?;
        settings.temperature = 0.0;
        settings.max_tokens = 256;
        settings.cache_dir = Some(cache_dir.to_owned());
        let client = aml_providers::ProviderClient::new(settings)?;
        Ok(AnyJudge::Llm(Box::new(llm::LlmJudge::new(client))))
    }
}

impl Judge for AnyJudge {
    fn name(&self) -> &str {
        match self {
            AnyJudge::Offline(judge) => judge.name(),
            AnyJudge::Llm(judge) => judge.name(),
        }
    }

    async fn verdict(&self, input: &str, rationale: &str) -> Result<Verdict, JudgeError> {
        match self {
            AnyJudge::Offline(judge) => judge.verdict(input, rationale).await,
            AnyJudge::Llm(judge) => judge.verdict(input, rationale).await,
        }
    }
}
