//! `trainer`: runs curriculum fine-tuning on request.

use std::sync::Arc;

use aml_bus::{ConsumerSpec, Publisher};
use aml_proto::v1::TrainRequest;
use aml_runtime::{CommonArgs, Startup};
use aml_trainer_service::TrainHandler;
use clap::Parser;

/// The trainer service.
#[derive(Debug, Parser)]
#[command(name = "trainer", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Startup::Run(config, _telemetry) = aml_runtime::start("trainer", &args.common)? else {
        return Ok(());
    };
    let publisher = Publisher::connect(&config.nats, "trainer-publisher").await?;
    let handler = Arc::new(TrainHandler::new(publisher));
    aml_bus::serve::<TrainRequest, _>(&config, "trainer", ConsumerSpec::trainer(), handler).await?;
    Ok(())
}
