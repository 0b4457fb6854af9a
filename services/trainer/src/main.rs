//! `trainer`: runs curriculum fine-tuning on request.

use std::sync::Arc;

use aml_bus::{ConsumerSpec, OneMessage, Publisher};
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
    /// Local folder where object-store models, datasets and outputs, and Hub snapshots, are
    /// staged.
    #[arg(long, default_value = "./aml-data/.staging")]
    staging_dir: std::path::PathBuf,
    /// Take one TrainRequest, train it, and exit (one request at a time): a Kubernetes Job
    /// on a GPU node. A transient failure keeps it running for the redelivery.
    #[arg(long)]
    once: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Startup::Run(config, _telemetry) = aml_runtime::start("trainer", &args.common)? else {
        return Ok(());
    };
    let publisher = Publisher::connect(&config.nats, "trainer-publisher").await?;
    let storage = config.storage.open(&config.storage.url)?;
    let credentials = config.providers.variables();
    let hub = aml_hub::HubClient::from_environment(&credentials)?;
    let handler = Arc::new(TrainHandler::new(
        publisher,
        storage,
        args.staging_dir,
        hub,
        aml_judge::Credentials(credentials),
    ));
    if args.once {
        let mut config = config;
        config.bus.concurrency = 1;
        let shutdown = aml_bus::signal_token(&config)?;
        let once = Arc::new(OneMessage::new(handler, shutdown.clone()));
        aml_bus::serve_until::<TrainRequest, _>(
            &config,
            "trainer",
            ConsumerSpec::trainer(),
            once,
            shutdown,
        )
        .await?;
        return Ok(());
    }
    aml_bus::serve::<TrainRequest, _>(&config, "trainer", ConsumerSpec::trainer(), handler).await?;
    Ok(())
}
