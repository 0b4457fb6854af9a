//! `inference-worker`: pulls ScoringJobs, scores their shards, writes per-bank results.

use std::sync::Arc;
use std::time::Duration;

use aml_bus::{ConsumerSpec, Publisher};
use aml_inference_worker::{Backend, ScoreHandler, WorkerSettings};
use aml_proto::v1::ScoringJob;
use aml_runtime::{CommonArgs, ScoringBackend, Startup};
use aml_scoring::RemoteEndpoint;
use anyhow::Context;
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
    /// Per-request timeout for the OpenAI-compatible backend, in seconds.
    #[arg(long, env = "AML_REQUEST_TIMEOUT_SECS", default_value_t = 300)]
    request_timeout_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Startup::Run(config, _telemetry) = aml_runtime::start("inference-worker", &args.common)?
    else {
        return Ok(());
    };
    let storage = config.storage.open(&config.storage.url)?;
    let publisher = Publisher::connect(&config.nats, "inference-worker-publisher").await?;
    let worker_id = args.worker_id.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let scoring = &config.scoring;
    let backend = match scoring.backend {
        ScoringBackend::Local => Backend::Local(
            aml_model::LoadOptions::resolve(scoring.device, scoring.dtype, false)
                .context("scoring.device / scoring.dtype")?,
        ),
        ScoringBackend::Openai => {
            if scoring.openai_url.is_empty() || scoring.openai_model.is_empty() {
                anyhow::bail!(
                    "scoring.backend = \"openai\" needs scoring.openai_url and scoring.openai_model (AML_SCORING__OPENAI_URL, AML_SCORING__OPENAI_MODEL)"
                );
            }
            Backend::Remote(RemoteEndpoint {
                base_url: scoring.openai_url.clone(),
                model: scoring.openai_model.clone(),
                api_key: scoring
                    .openai_api_key
                    .as_ref()
                    .map(|key| key.expose().to_owned()),
                timeout: Duration::from_secs(args.request_timeout_secs),
                top_logprobs: scoring.openai_top_logprobs,
            })
        }
    };
    let settings = WorkerSettings {
        worker_id,
        batch_size: scoring.worker_batch_size,
        model_cache: args.model_cache,
        backend,
        prefix_cache_bytes: scoring.prefix_cache_bytes,
        progress_interval: (Duration::from_secs(scoring.shard_timeout_secs.max(1)) / 4)
            .min(Duration::from_secs(1)),
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
