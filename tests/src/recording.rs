//! A handler for ScoringJob messages whose output is keyed by job id, as real handlers are:
//! it writes `results/<job id>.json`, then appends the id to its own handling log.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use aml_bus::{Delivery, Handler, HandlerError};
use aml_proto::v1::ScoringJob;
use aml_storage::Storage;

/// The id a test job is keyed by.
pub fn job_id(job: &ScoringJob) -> String {
    format!("{}-{:06}", job.batch_id, job.shard)
}

/// A test job; its payload is padded to about `payload_bytes`.
pub fn scoring_job(batch_id: &str, shard: u32, payload_bytes: usize) -> ScoringJob {
    ScoringJob {
        batch_id: batch_id.to_owned(),
        shard,
        shard_url: format!("memory://shards/{shard}.jsonl"),
        prefix_url: "p".repeat(payload_bytes.saturating_sub(64)),
        ..Default::default()
    }
}

/// Writes one result object per job, then logs the id.
pub struct RecordingHandler {
    storage: Storage,
    log: Option<Mutex<std::fs::File>>,
    work: Duration,
}

impl RecordingHandler {
    /// Results go to `storage`; handled ids are appended to `log` when given; each job
    /// takes `work` of simulated compute.
    pub fn new(storage: Storage, log: Option<PathBuf>, work: Duration) -> anyhow::Result<Self> {
        let log = match log {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
            None => None,
        };
        Ok(RecordingHandler { storage, log, work })
    }
}

impl Handler<ScoringJob> for RecordingHandler {
    async fn handle(&self, delivery: Delivery<ScoringJob>) -> Result<(), HandlerError> {
        if !self.work.is_zero() {
            tokio::time::sleep(self.work).await;
        }
        let id = job_id(&delivery.message);
        let result = serde_json::json!({ "id": id, "delivered": delivery.delivered });
        self.storage
            .put_json(&format!("results/{id}.json"), &result)
            .await
            .map_err(HandlerError::transient)?;
        if let Some(log) = &self.log {
            let mut file = log
                .lock()
                .map_err(|_| HandlerError::transient("log lock poisoned"))?;
            writeln!(file, "{id}").map_err(HandlerError::transient)?;
        }
        Ok(())
    }
}
