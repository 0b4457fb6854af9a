//! The judge's handler: read gold and predictions from object storage, grade, write the
//! report under its key and announce it with JudgeReport (`Nats-Msg-Id` = request id), so a
//! redelivered request overwrites the same report and its event is deduplicated.

use std::path::PathBuf;

use aml_bus::topology::subjects;
use aml_bus::{Delivery, Handler, HandlerError, Publisher};
use aml_core::SampleRecord;
use aml_judge::{AnyJudge, Prediction, evaluate, join};
use aml_proto::v1::{JudgeReport, JudgeRequest};
use aml_storage::{Storage, StorageError};
use tracing::info;

/// Handles JudgeRequests whose URLs lie under `storage`.
pub struct JudgeHandler {
    storage: Storage,
    publisher: Publisher,
    environment: Vec<(String, String)>,
    cache_dir: PathBuf,
}

impl JudgeHandler {
    /// A handler; `environment` supplies provider keys for LLM judges.
    pub fn new(
        storage: Storage,
        publisher: Publisher,
        environment: Vec<(String, String)>,
        cache_dir: PathBuf,
    ) -> Self {
        JudgeHandler {
            storage,
            publisher,
            environment,
            cache_dir,
        }
    }

    fn key<'a>(&self, url: &'a str, field: &str) -> Result<&'a str, HandlerError> {
        self.storage.key_of(url).ok_or_else(|| {
            HandlerError::invalid(format!("{field} {url} is not under {}", self.storage.url()))
        })
    }
}

fn storage_failure(error: StorageError) -> HandlerError {
    match error {
        StorageError::NotFound { .. } | StorageError::Json { .. } => HandlerError::invalid(error),
        other => HandlerError::transient(other),
    }
}

impl Handler<JudgeRequest> for JudgeHandler {
    async fn handle(&self, delivery: Delivery<JudgeRequest>) -> Result<(), HandlerError> {
        let request = delivery.message;
        aml_bus::topology::require_id("request_id", &request.request_id)?;
        let gold: Vec<SampleRecord> = self
            .storage
            .get_jsonl(self.key(&request.gold_url, "gold_url")?)
            .await
            .map_err(storage_failure)?;
        let predictions: Vec<Prediction> = self
            .storage
            .get_jsonl(self.key(&request.predictions_url, "predictions_url")?)
            .await
            .map_err(storage_failure)?;
        let pairs = join(&gold, &predictions).map_err(HandlerError::invalid)?;
        let judge = AnyJudge::from_name(
            &request.provider,
            aml_judge::DEFAULT_MODEL,
            &self.environment,
            &self.cache_dir,
        )
        .map_err(HandlerError::invalid)?;
        let report = evaluate(&pairs, &judge).await;
        let report_url = if request.report_url.is_empty() {
            self.storage
                .url_of(&format!("reports/{}.json", request.request_id))
        } else {
            request.report_url.clone()
        };
        self.storage
            .put_json(self.key(&report_url, "report_url")?, &report)
            .await
            .map_err(HandlerError::transient)?;
        let event = JudgeReport {
            request_id: request.request_id.clone(),
            report_url,
            n: report.classification.n,
            accuracy: report.classification.accuracy,
            precision_match: report.classification.precision_match,
            recall_match: report.classification.recall_match,
            f1_match: report.classification.f1_match,
            macro_f1: report.classification.macro_f1,
            rubric_mean: report.rubric_mean,
            judge_error_rate: report.judge_error_rate,
            tau_recall_99: report.tau_recall_99,
            fpr_at_tau: report.fpr_at_tau,
        };
        self.publisher
            .publish(
                &subjects::judge_report(&request.request_id),
                &event,
                Some(&request.request_id),
            )
            .await
            .map_err(HandlerError::transient)?;
        info!(request = %request.request_id, n = report.classification.n, "judge report written");
        Ok(())
    }
}
