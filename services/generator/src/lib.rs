//! The generator's handler: a GenerateRequest becomes CandidateChunks on `aml.jobs.validate`,
//! synthesised offline or, in LLM mode, asked of the request's provider and model with the
//! keys of the service's configuration (`ANTHROPIC_API_KEY`, ... in its environment or
//! `.env`).
//!
//! Chunks are published with `Nats-Msg-Id` = `<run>/<tier>/<chunk>`. Offline they are
//! deterministic for (run, seed); in LLM mode the answers are cached on disk by prompt, so a
//! request redelivered after a crash asks the same prompts, gets the same answers from the
//! cache and republishes the same chunks, which JetStream deduplicates and the validator
//! stores under the same keys.

use aml_bus::topology::subjects;
use aml_bus::{Delivery, Handler, HandlerError, Publisher};
use std::path::PathBuf;

use aml_core::{Difficulty, SampleRecord};
use aml_proto::v1::{self, CandidateChunk, GenerateRequest, GeneratorMode};
use aml_providers::{Credentials, ProviderClient, ProviderKind, ProviderSettings};
use aml_synth::llm::{LlmPlan, generate_tier_llm, label_targets};
use aml_synth::{Synthesizer, generate_tier};
use tracing::{info, warn};

/// Samples per chunk when the request leaves it unset.
pub const DEFAULT_CHUNK_SIZE: usize = 100;

/// Samples asked for per LLM request.
const PER_REQUEST: usize = 10;

/// The largest LLM answer, in tokens.
const MAX_ANSWER_TOKENS: u32 = 8_192;

/// Handles GenerateRequests.
pub struct GenerateHandler {
    publisher: Publisher,
    credentials: Credentials,
    cache_dir: PathBuf,
}

impl GenerateHandler {
    /// A handler publishing through `publisher`; LLM mode uses `credentials` (provider keys
    /// under their usual names) and caches answers in `cache_dir`.
    pub fn new(publisher: Publisher, credentials: Credentials, cache_dir: PathBuf) -> Self {
        GenerateHandler {
            publisher,
            credentials,
            cache_dir,
        }
    }

    /// A client for the request's provider and model; a missing key or an unknown provider
    /// refuses the request.
    fn client(&self, request: &GenerateRequest) -> Result<ProviderClient, HandlerError> {
        let kind = ProviderKind::from_name(&request.provider).ok_or_else(|| {
            HandlerError::invalid(format!(
                "provider `{}`: expected anthropic, perplexity or openai",
                request.provider
            ))
        })?;
        let model = if request.model.is_empty() {
            aml_providers::DEFAULT_MODEL
        } else {
            &request.model
        };
        let mut settings = ProviderSettings::from_environment(kind, model, &self.credentials.0)
            .map_err(HandlerError::invalid)?;
        settings.seed = Some(request.seed);
        settings.cache_dir = Some(self.cache_dir.join(&request.run_id));
        ProviderClient::new(settings).map_err(HandlerError::transient)
    }

    /// The samples of `tier`: offline, or asked of the provider.
    async fn samples(
        &self,
        request: &GenerateRequest,
        client: Option<&ProviderClient>,
        tier: Difficulty,
    ) -> Result<Vec<SampleRecord>, HandlerError> {
        let (per_tier, seed) = (request.per_tier as usize, request.seed);
        let Some(client) = client else {
            return tokio::task::spawn_blocking(move || {
                generate_tier(&Synthesizer::default(), tier, per_tier, seed)
            })
            .await
            .map_err(HandlerError::transient);
        };
        let mut plan = LlmPlan {
            per_request: PER_REQUEST,
            max_requests: 0,
            max_answer_tokens: MAX_ANSWER_TOKENS,
            seed,
        };
        plan.max_requests = plan.default_budget(per_tier);
        let result = generate_tier_llm(client, tier, label_targets(per_tier), &plan)
            .await
            .map_err(|error| match error {
                aml_providers::ProviderError::Exhausted { .. } => HandlerError::transient(error),
                refused => HandlerError::invalid(refused),
            })?;
        info!(
            run = %request.run_id, %tier, samples = result.samples.len(), requests = result.requests,
            input_tokens = result.usage.input_tokens, output_tokens = result.usage.output_tokens,
            "tier asked of the provider"
        );
        if !result.missing.is_empty() {
            warn!(run = %request.run_id, %tier, missing = ?result.missing, "the request budget ran out before every label had its share");
        }
        Ok(result.samples)
    }
}

impl Handler<GenerateRequest> for GenerateHandler {
    async fn handle(&self, delivery: Delivery<GenerateRequest>) -> Result<(), HandlerError> {
        let request = delivery.message;
        aml_bus::topology::require_id("run_id", &request.run_id)?;
        let client = match request.mode() {
            GeneratorMode::Llm => Some(self.client(&request)?),
            _ => None,
        };
        let per_tier = request.per_tier as usize;
        let chunk_size = match request.chunk_size {
            0 => DEFAULT_CHUNK_SIZE,
            size => size as usize,
        };
        let chunks_per_tier = per_tier.div_ceil(chunk_size);
        let total_chunks = (chunks_per_tier * Difficulty::ALL.len()) as u32;
        for tier in Difficulty::ALL {
            let samples = self.samples(&request, client.as_ref(), tier).await?;
            for (index, part) in samples.chunks(chunk_size).enumerate() {
                let chunk = CandidateChunk {
                    run_id: request.run_id.clone(),
                    tier: v1::Difficulty::from(tier) as i32,
                    chunk: index as u32,
                    total_chunks,
                    samples: part.iter().map(v1::Sample::from).collect(),
                    seed: request.seed,
                };
                let id = format!("{}/{tier}/{index}", request.run_id);
                self.publisher
                    .publish(subjects::VALIDATE, &chunk, Some(&id))
                    .await
                    .map_err(HandlerError::transient)?;
            }
            info!(run = %request.run_id, %tier, chunks = chunks_per_tier, "tier published");
        }
        Ok(())
    }
}
