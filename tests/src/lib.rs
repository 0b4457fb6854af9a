//! Shared pieces of the integration tests and benchmarks: a real `nats-server` per test, a
//! job handler whose output is keyed by job id, and training inputs.

pub mod checkpoints;
pub mod cli;
pub mod datasets;
pub mod llm_standin;
pub mod mock_http;
pub mod nats;
pub mod oracle;
pub mod recording;
pub mod s3;

pub use nats::{NatsCluster, NatsServer};
pub use recording::{RecordingHandler, job_id, scoring_job};
pub use s3::S3Server;

/// Polls `check` every 50 ms until it returns true or `timeout` passes; returns the last answer.
pub async fn wait_until<F, Fut>(timeout: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
