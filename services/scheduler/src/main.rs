//! `scheduler`: alert intake, batches on a schedule or on request, and their reports.

use aml_runtime::{CommonArgs, Startup};
use aml_scheduler::service::run_scheduler;
use clap::Parser;

/// The scheduler service.
#[derive(Debug, Parser)]
#[command(name = "scheduler", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Startup::Run(config, _telemetry) = aml_runtime::start("scheduler", &args.common)? else {
        return Ok(());
    };
    run_scheduler(&config, aml_runtime::signals::shutdown_token()?).await
}
