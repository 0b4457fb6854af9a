//! The dead-letter queue: where messages that cannot be handled go, with the reason.

use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use async_nats::jetstream::message::PublishMessage;
use bytes::Bytes;

use crate::{BusError, Result};

/// Header naming why a message was dead-lettered.
pub const DLQ_REASON_HEADER: &str = "Aml-Dlq-Reason";
/// Header naming the subject the message was first published on.
pub const DLQ_SUBJECT_HEADER: &str = "Aml-Dlq-Subject";
/// Header giving how many times the message had been delivered.
pub const DLQ_DELIVERED_HEADER: &str = "Aml-Dlq-Delivered";

/// The DLQ subject of an original subject: `aml.jobs.score` -> `aml.dlq.jobs.score`.
pub fn dlq_subject(original: &str) -> String {
    format!(
        "aml.dlq.{}",
        original.strip_prefix("aml.").unwrap_or(original)
    )
}

/// Publishes the original payload and headers to the DLQ with the reason, and waits for the store.
pub async fn dead_letter(
    jetstream: &Context,
    subject: &str,
    headers: Option<&HeaderMap>,
    payload: Bytes,
    delivered: i64,
    reason: &str,
) -> Result<()> {
    let mut dlq_headers = headers.cloned().unwrap_or_default();
    let single_line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    dlq_headers.insert(DLQ_REASON_HEADER, single_line.as_str());
    dlq_headers.insert(DLQ_SUBJECT_HEADER, subject);
    dlq_headers.insert(DLQ_DELIVERED_HEADER, delivered.to_string().as_str());
    let target = dlq_subject(subject);
    let publish_error = |reason: String| BusError::Publish {
        subject: target.clone(),
        reason,
    };
    let message = PublishMessage::build()
        .payload(payload)
        .headers(dlq_headers);
    jetstream
        .send_publish(target.clone(), message)
        .await
        .map_err(|error| publish_error(error.to_string()))?
        .await
        .map_err(|error| publish_error(error.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlq_subject_keeps_the_original_path() {
        assert_eq!(dlq_subject("aml.jobs.score"), "aml.dlq.jobs.score");
        assert_eq!(dlq_subject("aml.alerts.alpha"), "aml.dlq.alerts.alpha");
    }
}
