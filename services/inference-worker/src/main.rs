//! `inference-worker`: pulls ScoringJobs, scores their shards, writes per-bank results.

use std::sync::Arc;

use aml_bus::{ConsumerSpec, Publisher};
use aml_inference_worker::{ScoreHandler, WorkerSettings};
use aml_proto::v1::ScoringJob;
use aml_runtime::{CommonArgs, Startup};
use aml_storage::Storage;
use clap::Parser;

/// The inference worker service.
#[derive(Debug, Parser)]
#[command(name = "inference-worker", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// This worker's name in ShardCompleted and the report (default: host name and process id).
    #[arg(long, env = "AML_WORKER_ID")]
    worker_id: Option<String>,
    /// Where models named by object-store URLs are downloaded.
    #[arg(
        long,
        env = "AML_MODEL_CACHE",
        default_value = "./aml-data/.model-cache"
    )]
    model_cache: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Startup::Run(config, _telemetry) = aml_runtime::start("inference-worker", &args.common)?
    else {
        return Ok(());
    };
    let storage = Storage::open_configured(&config.storage.url, &config.storage)?;
    let publisher = Publisher::connect(&config.nats, "inference-worker-publisher").await?;
    let worker_id = args.worker_id.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let settings = WorkerSettings {
        worker_id,
        batch_size: config.scoring.worker_batch_size,
        model_cache: args.model_cache,
    };
    let handler = Arc::new(ScoreHandler::new(storage, publisher, settings));
    aml_bus::serve::<ScoringJob, _>(
        &config,
        "inference-worker",
        ConsumerSpec::inference_worker(),
        handler,
    )
    .await?;
    Ok(())
}
