//! `validator`: stores candidate chunks and builds each run's dataset once it is complete.

use std::sync::Arc;

use aml_bus::{ConsumerSpec, Publisher};
use aml_dataset::ValidatorSettings;
use aml_proto::v1::CandidateChunk;
use aml_runtime::{CommonArgs, Startup};
use aml_validator::ValidateHandler;
use clap::Parser;

/// The validator service.
#[derive(Debug, Parser)]
#[command(name = "validator", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Startup::Run(config, _telemetry) = aml_runtime::start("validator", &args.common)? else {
        return Ok(());
    };
    let storage = config.storage.open(&config.storage.url)?;
    let publisher = Publisher::connect(&config.nats, "validator-publisher").await?;
    let handler = Arc::new(ValidateHandler::new(
        storage,
        publisher,
        ValidatorSettings::default(),
    ));
    aml_bus::serve::<CandidateChunk, _>(&config, "validator", ConsumerSpec::validator(), handler)
        .await?;
    Ok(())
}
