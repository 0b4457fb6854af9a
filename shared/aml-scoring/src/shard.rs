//! The score-then-rationale loop of a shard, written once for every backend: the alerts are
//! scored a batch at a time, each result built from its label probabilities and the
//! escalation threshold, then the escalated ones get their rationales, a batch at a time.
//! Progress is published after every batch, so a caller can tell the scheduler the shard is
//! still being worked on.

use std::future::Future;

use aml_proto::v1::{Alert, ScoreResult};
use tokio::sync::watch;

use crate::{EngineHandle, LabelProbabilities, RemoteScorer, ScoringError};

/// A backend that scores alerts and writes rationales behind a policy.
pub trait Scorer: Send + Sync {
    /// Label probabilities of `alerts` (one batch) behind `policy`.
    fn score(
        &self,
        policy: &str,
        alerts: &[Alert],
    ) -> impl Future<Output = Result<Vec<LabelProbabilities>, ScoringError>> + Send;

    /// Rationales of `alerts` (one batch) behind `policy`, at most `max_new_tokens` each.
    fn rationales(
        &self,
        policy: &str,
        alerts: &[Alert],
        max_new_tokens: i64,
    ) -> impl Future<Output = Result<Vec<String>, ScoringError>> + Send;

    /// Prefixes encoded so far (the local engine), or distinct policies sent (a server,
    /// whose cache encodes each once).
    fn prefix_encodes(&self) -> impl Future<Output = Result<u64, ScoringError>> + Send;
}

impl Scorer for EngineHandle {
    async fn score(
        &self,
        policy: &str,
        alerts: &[Alert],
    ) -> Result<Vec<LabelProbabilities>, ScoringError> {
        EngineHandle::score(self, policy, alerts).await
    }

    async fn rationales(
        &self,
        policy: &str,
        alerts: &[Alert],
        max_new_tokens: i64,
    ) -> Result<Vec<String>, ScoringError> {
        EngineHandle::rationales(self, policy, alerts, max_new_tokens).await
    }

    async fn prefix_encodes(&self) -> Result<u64, ScoringError> {
        EngineHandle::prefix_encodes(self).await
    }
}

impl Scorer for RemoteScorer {
    async fn score(
        &self,
        policy: &str,
        alerts: &[Alert],
    ) -> Result<Vec<LabelProbabilities>, ScoringError> {
        RemoteScorer::score(self, policy, alerts).await
    }

    async fn rationales(
        &self,
        policy: &str,
        alerts: &[Alert],
        max_new_tokens: i64,
    ) -> Result<Vec<String>, ScoringError> {
        RemoteScorer::rationales(self, policy, alerts, max_new_tokens).await
    }

    async fn prefix_encodes(&self) -> Result<u64, ScoringError> {
        Ok(RemoteScorer::prefix_encodes(self))
    }
}

/// Longest rationale of an escalated alert, in tokens.
pub const RATIONALE_TOKENS: i64 = 96;

/// How a shard is scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShardSettings {
    /// Alerts per batch (forward pass, request or generation).
    pub batch_size: usize,
    /// Escalation threshold on P(MATCH) + P(EDGE).
    pub tau: f64,
    /// Longest rationale of an escalated alert, in tokens; `None`: no rationales.
    pub rationale_tokens: Option<i64>,
}

/// How far a shard has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShardProgress {
    /// Alerts scored.
    pub scored: u64,
    /// Rationales written.
    pub rationales: u64,
}

/// The result of one alert the model scored (it passed the prescreen, whose score is kept
/// beside the model's).
pub fn score_result(alert: &Alert, probabilities: &LabelProbabilities, tau: f64) -> ScoreResult {
    ScoreResult {
        alert_id: alert.alert_id.clone(),
        bank: alert.bank.clone(),
        p_match: probabilities.p_match,
        p_no_match: probabilities.p_no_match,
        p_edge: probabilities.p_edge,
        score: probabilities.score(),
        escalated: probabilities.score() >= tau,
        label: aml_proto::v1::Label::from(probabilities.label()) as i32,
        rationale: String::new(),
        cleared_reason: String::new(),
        prescreen_score: aml_prescreen::prescreen_alert(alert).score,
        answer_mass: probabilities.answer_mass,
    }
}

/// Scores `alerts` behind `policy` on `scorer`, then writes the rationales of the escalated
/// ones when asked, a batch at a time; `progress` holds how far it has come.
pub async fn score_shard<S: Scorer>(
    scorer: &S,
    policy: &str,
    alerts: &[Alert],
    settings: &ShardSettings,
    progress: &watch::Sender<ShardProgress>,
) -> Result<Vec<ScoreResult>, ScoringError> {
    let batch_size = settings.batch_size.max(1);
    let mut results = Vec::with_capacity(alerts.len());
    for batch in alerts.chunks(batch_size) {
        let probabilities = scorer.score(policy, batch).await?;
        if probabilities.len() != batch.len() {
            return Err(ScoringError::Incomplete {
                expected: batch.len(),
                got: probabilities.len(),
            });
        }
        for (alert, p) in batch.iter().zip(&probabilities) {
            results.push(score_result(alert, p, settings.tau));
        }
        progress.send_modify(|now| now.scored = results.len() as u64);
    }
    if let Some(max_new_tokens) = settings.rationale_tokens {
        let escalated: Vec<usize> = (0..results.len())
            .filter(|&index| results[index].escalated)
            .collect();
        for indices in escalated.chunks(batch_size) {
            let batch: Vec<Alert> = indices.iter().map(|&index| alerts[index].clone()).collect();
            let texts = scorer.rationales(policy, &batch, max_new_tokens).await?;
            for (&index, text) in indices.iter().zip(texts) {
                results[index].rationale = text;
            }
            progress.send_modify(|now| now.rationales += indices.len() as u64);
        }
    }
    Ok(results)
}
