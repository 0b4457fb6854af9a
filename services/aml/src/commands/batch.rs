//! `aml batch run`: ask the scheduler for a batch now and wait for its report.

use std::time::Duration;

use aml_bus::topology::{EVENTS_STREAM, subjects};
use aml_bus::{Publisher, Topology};
use aml_proto::v1::{BatchReport, BatchRequest};
use aml_runtime::AmlConfig;
use anyhow::{Context, bail};
use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::StreamExt;
use prost::Message;

/// Options of `aml batch run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Batch id (default: `manual-<unix time>`).
    #[arg(long)]
    id: Option<String>,
    /// Only these banks (default: every bank).
    #[arg(long, value_delimiter = ',')]
    banks: Vec<String>,
    /// Alerts per shard (default: the scheduler's `scoring.shard_size`).
    #[arg(long, default_value_t = 0)]
    shard_size: u32,
    /// Give up waiting for the report after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout_secs: u64,
}

/// Publishes a BatchRequest, then waits for that batch's report and prints it as JSON.
pub async fn run(config: &AmlConfig, args: &RunArgs) -> anyhow::Result<BatchReport> {
    let batch_id = args.id.clone().unwrap_or_else(|| {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        format!("manual-{seconds}")
    });
    let client = aml_bus::connect(&config.nats, "aml-batch").await?;
    let topology = Topology::new(client);
    topology.ensure_streams().await?;
    let stream = topology.jetstream().get_stream(EVENTS_STREAM).await?;
    let mut reports = stream
        .create_consumer(OrderedConfig {
            filter_subject: subjects::BATCH_REPORT.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?
        .messages()
        .await?;
    let request = BatchRequest {
        batch_id: batch_id.clone(),
        banks: args.banks.clone(),
        shard_size: args.shard_size,
    };
    Publisher::new(topology.jetstream().clone())
        .publish(subjects::BATCH, &request, Some(&batch_id))
        .await?;
    eprintln!("batch {batch_id} requested; waiting for its report");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_secs);
    loop {
        let message = tokio::time::timeout_at(deadline, reports.next())
            .await
            .with_context(|| {
                format!(
                    "no report for batch {batch_id} within {} s",
                    args.timeout_secs
                )
            })?;
        let Some(message) = message else {
            bail!("the report consumer ended");
        };
        let report = BatchReport::decode(message?.payload.clone())?;
        if report.batch_id == batch_id {
            println!("{}", serde_json::to_string(&report)?);
            return Ok(report);
        }
    }
}
