//! The generator's handler: a GenerateRequest becomes CandidateChunks on `aml.jobs.validate`.
//!
//! Chunks are deterministic for (run, seed) and published with `Nats-Msg-Id` =
//! `<run>/<tier>/<chunk>`, so a request redelivered after a crash republishes the same
//! chunks, which JetStream deduplicates and the validator stores under the same keys.

use aml_bus::topology::subjects;
use aml_bus::{Delivery, Handler, HandlerError, Publisher};
use aml_core::Difficulty;
use aml_proto::v1::{self, CandidateChunk, GenerateRequest, GeneratorMode};
use aml_synth::{Synthesizer, generate_tier};
use tracing::info;

/// Samples per chunk when the request leaves it unset.
pub const DEFAULT_CHUNK_SIZE: usize = 100;

/// Handles GenerateRequests.
pub struct GenerateHandler {
    publisher: Publisher,
}

impl GenerateHandler {
    /// A handler publishing through `publisher`.
    pub fn new(publisher: Publisher) -> Self {
        GenerateHandler { publisher }
    }
}

impl Handler<GenerateRequest> for GenerateHandler {
    async fn handle(&self, delivery: Delivery<GenerateRequest>) -> Result<(), HandlerError> {
        let request = delivery.message;
        aml_bus::topology::require_id("run_id", &request.run_id)?;
        if request.mode() == GeneratorMode::Llm {
            return Err(HandlerError::invalid(
                "GENERATOR_MODE_LLM runs from `aml generate --provider`; the service generates offline",
            ));
        }
        let per_tier = request.per_tier as usize;
        let chunk_size = match request.chunk_size {
            0 => DEFAULT_CHUNK_SIZE,
            size => size as usize,
        };
        let chunks_per_tier = per_tier.div_ceil(chunk_size);
        let total_chunks = (chunks_per_tier * Difficulty::ALL.len()) as u32;
        for tier in Difficulty::ALL {
            let seed = request.seed;
            let samples = tokio::task::spawn_blocking(move || {
                generate_tier(&Synthesizer::default(), tier, per_tier, seed)
            })
            .await
            .map_err(HandlerError::transient)?;
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
