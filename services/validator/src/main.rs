//! `validator`: stores candidate chunks and builds each run's dataset once it is complete.

use std::sync::Arc;

use aml_bus::{ConsumerSpec, Publisher, Topology};
use aml_dataset::ValidatorSettings;
use aml_proto::v1::CandidateChunk;
use aml_runtime::CommonArgs;
use aml_runtime::config::render_redacted;
use aml_storage::Storage;
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
    let config = args.common.load()?;
    if args.common.print_config {
        print!("{}", render_redacted(&config));
        return Ok(());
    }
    let _telemetry = aml_runtime::telemetry::init("validator", &config.telemetry)?;
    let storage = Storage::open_configured(&config.storage.url, &config.storage)?;
    let client = aml_bus::connect(&config.nats, "validator-publisher").await?;
    let publisher = Publisher::new(Topology::new(client).jetstream().clone());
    let handler = Arc::new(ValidateHandler::new(
        storage,
        publisher,
        ValidatorSettings::default(),
    ));
    aml_bus::serve::<CandidateChunk, _>(&config, "validator", ConsumerSpec::validator(), handler)
        .await?;
    Ok(())
}
