//! `aml batch run`: ask the scheduler for a batch now and wait for its report.

use std::time::Duration;

use aml_bus::topology::subjects;
use aml_proto::v1::{BatchReport, BatchRequest};
use aml_runtime::AmlConfig;

use super::request::EventWaiter;

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

/// Publishes a BatchRequest, then waits for that batch's report and prints it as JSON (its
/// warnings on stderr); a refused batch is an error with the scheduler's reason.
pub async fn run(config: &AmlConfig, args: &RunArgs) -> anyhow::Result<BatchReport> {
    let batch_id = args.id.clone().unwrap_or_else(|| {
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        format!("manual-{seconds}")
    });
    let (mut reports, publisher) = EventWaiter::follow(
        config,
        "aml-batch",
        &subjects::batch_report(crate::commands::request::valid(&batch_id)?),
        Duration::from_secs(args.timeout_secs),
    )
    .await?;
    let request = BatchRequest {
        batch_id: batch_id.clone(),
        banks: args.banks.clone(),
        shard_size: args.shard_size,
    };
    publisher
        .publish(subjects::BATCH, &request, Some(&batch_id))
        .await?;
    eprintln!("batch {batch_id} requested; waiting for its report");
    let report: BatchReport = reports
        .next(|report: &BatchReport| report.batch_id == batch_id)
        .await?;
    println!("{}", serde_json::to_string(&report)?);
    if !report.refused.is_empty() {
        anyhow::bail!("batch {batch_id} refused: {}", report.refused);
    }
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(report)
}
