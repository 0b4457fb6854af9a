//! The BatchRequest handler: cut (or resume) the batch, follow it, write and announce the
//! report. The runner's progress acks keep the request while the batch runs; a scheduler
//! restarted mid-batch gets the request again and resumes from the manifest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aml_batch::report::refused_report;
use aml_batch::{BatchManifest, assemble_report, layout};
use aml_bus::topology::subjects;
use aml_bus::{Delivery, Handler, HandlerError, Publisher};
use aml_proto::v1::{BatchReport, BatchRequest};
use aml_runtime::ScoringConfig;
use aml_storage::{Fingerprinter, Storage};
use async_nats::jetstream;
use tracing::{info, warn};

use crate::cut::{CutError, commit_cursors, cut_batch};
use crate::follow::{FollowTimeouts, follow_batch};

/// Handles BatchRequests.
pub struct BatchHandler {
    jetstream: jetstream::Context,
    storage: Storage,
    publisher: Publisher,
    config: ScoringConfig,
    fingerprinter: Fingerprinter,
    cut: CutCounters,
}

/// What the cuts of this process did with the alerts they read.
#[derive(Debug, Default)]
struct CutCounters {
    taken: AtomicU64,
    rejected: AtomicU64,
    duplicates: AtomicU64,
    cleared: AtomicU64,
}

impl CutCounters {
    fn add(&self, manifest: &BatchManifest) {
        for plan in manifest.banks.values() {
            self.taken.fetch_add(plan.alerts_in, Ordering::Relaxed);
            self.rejected.fetch_add(plan.rejected, Ordering::Relaxed);
            self.duplicates
                .fetch_add(plan.duplicates_dropped, Ordering::Relaxed);
            self.cleared
                .fetch_add(plan.cleared_by_prescreen, Ordering::Relaxed);
        }
    }

    fn render(&self) -> String {
        let name = "aml_scheduler_alerts_total";
        let mut text = format!(
            "# HELP {name} Alerts read by batch cuts, by outcome (cleared: taken and cleared by the prescreen).\n# TYPE {name} counter\n"
        );
        for (outcome, counter) in [
            ("taken", &self.taken),
            ("rejected", &self.rejected),
            ("duplicate", &self.duplicates),
            ("cleared", &self.cleared),
        ] {
            let value = counter.load(Ordering::Relaxed);
            text.push_str(&format!("{name}{{outcome=\"{outcome}\"}} {value}\n"));
        }
        text
    }
}

impl BatchHandler {
    /// A handler cutting batches from `jetstream`'s ALERTS into `storage`.
    pub fn new(
        jetstream: jetstream::Context,
        storage: Storage,
        publisher: Publisher,
        config: ScoringConfig,
    ) -> Self {
        BatchHandler {
            jetstream,
            storage,
            publisher,
            config,
            fingerprinter: Fingerprinter::default(),
            cut: CutCounters::default(),
        }
    }

    /// Writes the batch's report (`batches/<id>/report.json`) and announces it.
    async fn publish_report(&self, batch: &str, report: &BatchReport) -> Result<(), HandlerError> {
        self.storage
            .put_json(&layout::report(batch), report)
            .await
            .map_err(HandlerError::transient)?;
        self.publisher
            .publish(&subjects::batch_report(batch), report, Some(batch))
            .await
            .map_err(HandlerError::transient)?;
        Ok(())
    }

    /// Writes and announces the report of a refused batch, then sends the request to the
    /// DLQ with the same reason.
    async fn refuse(&self, batch: &str, reason: String) -> Result<(), HandlerError> {
        warn!(batch, %reason, "batch refused");
        self.publish_report(batch, &refused_report(batch, &reason))
            .await?;
        Err(HandlerError::invalid(reason))
    }
}

impl Handler<BatchRequest> for BatchHandler {
    async fn handle(&self, delivery: Delivery<BatchRequest>) -> Result<(), HandlerError> {
        let request = &delivery.message;
        let batch = request.batch_id.as_str();
        if !aml_bus::topology::valid_id(batch) {
            return Err(HandlerError::invalid(format!(
                "batch id `{batch}`: use letters, digits, `-` and `_` (at most 128)"
            )));
        }
        let manifest_key = layout::manifest(batch);
        let manifest: BatchManifest = if self
            .storage
            .exists(&manifest_key)
            .await
            .map_err(HandlerError::transient)?
        {
            info!(batch, "resuming a batch cut earlier");
            self.storage
                .get_json(&manifest_key)
                .await
                .map_err(HandlerError::transient)?
        } else {
            let shard_size = if request.shard_size > 0 {
                request.shard_size
            } else {
                self.config.shard_size
            };
            match cut_batch(
                &self.jetstream,
                &self.storage,
                &self.fingerprinter,
                &self.config,
                batch,
                &request.banks,
                shard_size,
            )
            .await
            {
                Ok(manifest) => {
                    self.cut.add(&manifest);
                    manifest
                }
                Err(CutError::Refused(reason)) => return self.refuse(batch, reason).await,
                Err(error) => return Err(HandlerError::transient(error)),
            }
        };
        commit_cursors(&self.storage, &manifest)
            .await
            .map_err(HandlerError::transient)?;
        info!(
            batch,
            alerts = manifest.alerts_in(),
            shards = manifest.shards.len(),
            "batch cut"
        );
        let timeouts = FollowTimeouts {
            shard: Duration::from_secs(self.config.shard_timeout_secs.max(1)),
            batch: Duration::from_secs(self.config.batch_timeout_secs.max(1)),
        };
        let outcome = follow_batch(
            &self.jetstream,
            &self.publisher,
            &self.storage,
            &manifest,
            timeouts,
            &delivery.shutdown,
        )
        .await
        .map_err(HandlerError::transient)?;
        let wall_seconds = (chrono::Utc::now().timestamp_millis() - manifest.created_unix_ms).max(1)
            as f64
            / 1000.0;
        let report = assemble_report(
            &manifest,
            &outcome.completions,
            wall_seconds,
            self.config.gpu_price_per_hour,
            outcome.republished,
        );
        self.publish_report(batch, &report).await?;
        info!(
            batch,
            completion = report.completion_rate,
            scored = report.scored,
            escalated = report.escalated,
            "batch report written"
        );
        Ok(())
    }

    fn metrics(&self) -> String {
        self.cut.render()
    }
}
