//! `generator`: turns GenerateRequests into candidate samples for the validator.

use std::sync::Arc;

use aml_bus::{ConsumerSpec, Publisher, Topology};
use aml_generator::GenerateHandler;
use aml_proto::v1::GenerateRequest;
use aml_runtime::CommonArgs;
use aml_runtime::config::render_redacted;
use clap::Parser;

/// The generator service.
#[derive(Debug, Parser)]
#[command(name = "generator", version, about)]
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
    let _telemetry = aml_runtime::telemetry::init("generator", &config.telemetry)?;
    let client = aml_bus::connect(&config.nats, "generator-publisher").await?;
    let publisher = Publisher::new(Topology::new(client).jetstream().clone());
    let handler = Arc::new(GenerateHandler::new(publisher));
    aml_bus::serve::<GenerateRequest, _>(&config, "generator", ConsumerSpec::generator(), handler)
        .await?;
    Ok(())
}
