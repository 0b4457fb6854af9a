//! The validator's handler: CandidateChunks are stored under deterministic keys; when a run
//! has all its chunks, the dataset is built, written and announced with DatasetReady.
//!
//! Every step is idempotent: a redelivered chunk overwrites its own object, a rebuilt dataset
//! is byte-identical, and DatasetReady carries `Nats-Msg-Id` = run id. The last chunks of a
//! run, handled at once, all find the run complete: one builds it, the others see it built
//! from the same chunks and stop.

use std::collections::HashMap;

use aml_bus::topology::subjects;
use aml_bus::{Delivery, Handler, HandlerError, Publisher};
use aml_core::{Difficulty, SampleRecord};
use aml_dataset::{ValidatorSettings, build, write_dataset};
use aml_proto::v1::{CandidateChunk, DatasetReady};
use aml_storage::Storage;
use tokio::sync::Mutex;
use tracing::info;

/// Handles CandidateChunks.
pub struct ValidateHandler {
    storage: Storage,
    publisher: Publisher,
    settings: ValidatorSettings,
    /// Per run, the chunk objects its dataset was last built from here; held while a build
    /// runs, so one validator builds one dataset at a time.
    built: Mutex<HashMap<String, Vec<String>>>,
}

impl ValidateHandler {
    /// A handler writing under `datasets/<run>/` of `storage`.
    pub fn new(storage: Storage, publisher: Publisher, settings: ValidatorSettings) -> Self {
        ValidateHandler {
            storage,
            publisher,
            settings,
            built: Mutex::new(HashMap::new()),
        }
    }

    async fn build_dataset(
        &self,
        run: &str,
        seed: u64,
        keys: &[String],
    ) -> Result<(), HandlerError> {
        let mut candidates = Vec::new();
        for key in keys {
            let records: Vec<SampleRecord> = self
                .storage
                .get_jsonl(key)
                .await
                .map_err(HandlerError::transient)?;
            candidates.extend(records);
        }
        let total = candidates.len();
        let settings = ValidatorSettings {
            seed,
            ..self.settings.clone()
        };
        let dataset = tokio::task::spawn_blocking(move || build(candidates, &settings))
            .await
            .map_err(HandlerError::transient)?;
        let prefix = format!("datasets/{run}");
        let manifest = write_dataset(&self.storage, &prefix, &dataset)
            .await
            .map_err(HandlerError::transient)?;
        let rejected = &manifest.rejections;
        let ready = DatasetReady {
            run_id: run.to_owned(),
            dataset_url: self.storage.url_of(&prefix),
            train_count: manifest
                .files
                .get("train.jsonl")
                .map_or(0, |file| file.records),
            validation_count: manifest
                .files
                .get("validation.jsonl")
                .map_or(0, |file| file.records),
            duplicates_removed: rejected.exact_duplicates + rejected.near_duplicates,
            rejected: rejected.cot_too_long
                + rejected.input_too_long
                + rejected.output_disagrees_with_label
                + rejected.conflicting_labels,
            manifest_sha256: manifest.dataset_sha256.clone(),
        };
        self.publisher
            .publish(&subjects::dataset_ready(run), &ready, Some(run))
            .await
            .map_err(HandlerError::transient)?;
        info!(
            run,
            candidates = total,
            train = ready.train_count,
            "dataset ready"
        );
        Ok(())
    }
}

impl Handler<CandidateChunk> for ValidateHandler {
    async fn handle(&self, delivery: Delivery<CandidateChunk>) -> Result<(), HandlerError> {
        let chunk = delivery.message;
        aml_bus::topology::require_id("run_id", &chunk.run_id)?;
        let tier = Difficulty::try_from(chunk.tier()).map_err(HandlerError::invalid)?;
        let mut records = Vec::with_capacity(chunk.samples.len());
        for sample in &chunk.samples {
            records.push(SampleRecord::try_from(sample).map_err(HandlerError::invalid)?);
        }
        let folder = format!("datasets/{}/candidates", chunk.run_id);
        let key = format!("{folder}/{tier}-{:05}.jsonl", chunk.chunk);
        self.storage
            .put_jsonl(&key, &records)
            .await
            .map_err(HandlerError::transient)?;
        let keys = self
            .storage
            .list(&folder)
            .await
            .map_err(HandlerError::transient)?;
        if keys.len() < chunk.total_chunks as usize {
            return Ok(());
        }
        let mut built = self.built.lock().await;
        if built.get(&chunk.run_id) == Some(&keys) {
            return Ok(());
        }
        self.build_dataset(&chunk.run_id, chunk.seed, &keys).await?;
        built.insert(chunk.run_id, keys);
        Ok(())
    }
}
