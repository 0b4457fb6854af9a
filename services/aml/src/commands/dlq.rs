//! `aml dlq`: show dead-lettered messages and why they were rejected.

use std::time::Duration;

use aml_bus::topology::DLQ_STREAM;
use aml_bus::{DLQ_DELIVERED_HEADER, DLQ_REASON_HEADER, DLQ_SUBJECT_HEADER, Topology};
use aml_runtime::AmlConfig;
use anyhow::Context;

/// Options of `aml dlq`.
#[derive(Debug, clap::Args)]
pub struct DlqArgs {
    /// Show at most this many messages, oldest first.
    #[arg(long, default_value_t = 50)]
    limit: u64,
}

/// Prints one JSON line per dead-lettered message: sequence, subject, reason, deliveries, size.
pub async fn run(config: &AmlConfig, args: &DlqArgs) -> anyhow::Result<()> {
    let client = aml_bus::connect(&config.nats, "aml-dlq").await?;
    let topology = Topology::new(client).with_limits((&config.bus).into());
    topology.ensure_streams().await?;
    let stream = topology
        .jetstream()
        .get_stream(DLQ_STREAM)
        .await
        .context("failed to open the DLQ stream")?;
    let mut sequence = 1;
    let mut shown = 0;
    while shown < args.limit {
        let message =
            match tokio::time::timeout(Duration::from_secs(5), stream.get_raw_message(sequence))
                .await
            {
                Ok(Ok(message)) => message,
                Ok(Err(_)) | Err(_) => break,
            };
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .map(|value| value.to_string())
                .unwrap_or_default()
        };
        let line = serde_json::json!({
            "sequence": message.sequence,
            "subject": header(DLQ_SUBJECT_HEADER),
            "reason": header(DLQ_REASON_HEADER),
            "delivered": header(DLQ_DELIVERED_HEADER),
            "bytes": message.payload.len(),
        });
        println!("{line}");
        sequence += 1;
        shown += 1;
    }
    Ok(())
}
