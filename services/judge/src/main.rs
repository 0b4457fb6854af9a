//! `judge`: grades predictions on request and reports the metrics.

use std::sync::Arc;

use aml_bus::{ConsumerSpec, Publisher, Topology};
use aml_judge_service::JudgeHandler;
use aml_proto::v1::JudgeRequest;
use aml_runtime::CommonArgs;
use aml_runtime::config::render_redacted;
use aml_storage::Storage;
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
    let config = args.common.load()?;
    if args.common.print_config {
        print!("{}", render_redacted(&config));
        return Ok(());
    }
    let _telemetry = aml_runtime::telemetry::init("judge", &config.telemetry)?;
    let storage = Storage::open_configured(&config.storage.url, &config.storage)?;
    let client = aml_bus::connect(&config.nats, "judge-publisher").await?;
    let publisher = Publisher::new(Topology::new(client).jetstream().clone());
    let environment: Vec<(String, String)> = std::env::vars().collect();
    let handler = Arc::new(JudgeHandler::new(
        storage,
        publisher,
        environment,
        args.cache_dir,
    ));
    aml_bus::serve::<JudgeRequest, _>(&config, "judge", ConsumerSpec::judge(), handler).await?;
    Ok(())
}
