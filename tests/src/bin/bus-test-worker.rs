//! A worker process for the bus tests: runs the real runner over the inference-worker
//! consumer with a [`RecordingHandler`], until SIGTERM/SIGINT (or SIGKILL).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aml_bus::{ConsumerSpec, Runner, RunnerSettings, Topology};
use aml_integration_tests::RecordingHandler;
use aml_proto::v1::ScoringJob;
use aml_storage::{S3Options, Storage};
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    nats_url: String,
    #[arg(long)]
    storage_url: String,
    #[arg(long)]
    log: Option<PathBuf>,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    #[arg(long, default_value_t = 2000)]
    ack_wait_ms: u64,
    #[arg(long, default_value_t = 0)]
    work_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shutdown = aml_runtime::signals::shutdown_token()?;
    let storage = Storage::open(&args.storage_url, &S3Options::default())?;
    let handler = Arc::new(RecordingHandler::new(
        storage,
        args.log,
        Duration::from_millis(args.work_ms),
    )?);
    let client = async_nats::connect(&args.nats_url).await?;
    let topology = Topology::new(client);
    topology.ensure_streams().await?;
    let settings = RunnerSettings {
        concurrency: args.concurrency,
        ack_wait: Duration::from_millis(args.ack_wait_ms),
        nak_delay: Duration::from_millis(100),
        max_deliveries: 100,
        fetch_expiry: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(20),
    };
    let runner = Runner::new(topology, ConsumerSpec::inference_worker(), settings);
    let stats = runner.run::<ScoringJob, _>(handler, shutdown).await?;
    println!("acked={} released={}", stats.acked, stats.released);
    Ok(())
}
