//! `validator`: stores candidate chunks and builds each run's dataset once it is complete.

use std::sync::Arc;

use aml_bus::{ConsumerSpec, Publisher, Topology};
use aml_dataset::ValidatorSettings;
use aml_proto::v1::CandidateChunk;
use aml_runtime::CommonArgs;
use aml_runtime::config::{render_redacted, storage_url};
use aml_storage::{S3Options, Storage};
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
    let s3 = S3Options {
        endpoint: config.storage.s3.endpoint.clone(),
        region: config.storage.s3.region.clone(),
        access_key_id: config.storage.s3.access_key_id.clone(),
        secret_access_key: config
            .storage
            .s3
            .secret_access_key
            .as_ref()
            .map(|secret| secret.expose().to_owned()),
        allow_http: config.storage.s3.allow_http,
    };
    let storage = Storage::open(&storage_url(&config.storage.url), &s3)?;
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
