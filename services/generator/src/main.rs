//! `generator`: turns GenerateRequests into candidate samples for the validator.

use std::sync::Arc;

use aml_bus::{ConsumerSpec, Publisher};
use aml_generator::GenerateHandler;
use aml_proto::v1::GenerateRequest;
use aml_runtime::{CommonArgs, Startup};
use clap::Parser;

/// The generator service.
#[derive(Debug, Parser)]
#[command(name = "generator", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// LLM mode's response cache (one folder per run): a redelivered request replays its
    /// answers from here.
    #[arg(long, default_value = ".aml-cache/generator")]
    cache_dir: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Startup::Run(config, _telemetry) = aml_runtime::start("generator", &args.common)? else {
        return Ok(());
    };
    let publisher = Publisher::connect(&config.nats, "generator-publisher").await?;
    let handler = Arc::new(GenerateHandler::new(
        publisher,
        aml_providers::Credentials(config.providers.variables()),
        args.cache_dir,
    ));
    aml_bus::serve::<GenerateRequest, _>(&config, "generator", ConsumerSpec::generator(), handler)
        .await?;
    Ok(())
}
