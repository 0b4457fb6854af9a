//! `judge`: grades predictions on request and reports the metrics.

use std::sync::Arc;

use aml_bus::{ConsumerSpec, Publisher};
use aml_judge_service::JudgeHandler;
use aml_proto::v1::JudgeRequest;
use aml_runtime::{CommonArgs, Startup};
use clap::Parser;

/// The judge service.
#[derive(Debug, Parser)]
#[command(name = "judge", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Response cache for LLM judges.
    #[arg(long, default_value = ".aml-cache/judge")]
    cache_dir: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Startup::Run(config, _telemetry) = aml_runtime::start("judge", &args.common)? else {
        return Ok(());
    };
    let storage = config.storage.open(&config.storage.url)?;
    let publisher = Publisher::connect(&config.nats, "judge-publisher").await?;
    let handler = Arc::new(JudgeHandler::new(
        storage,
        publisher,
        config.providers.variables(),
        args.cache_dir,
    ));
    aml_bus::serve::<JudgeRequest, _>(&config, "judge", ConsumerSpec::judge(), handler).await?;
    Ok(())
}
