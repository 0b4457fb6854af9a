//! The scheduler as a whole: the batch runner and the schedule.

use std::sync::Arc;

use aml_bus::{ConsumerSpec, Handler, Publisher, Runner, RunnerMetrics, RunnerSettings, Topology};
use aml_proto::v1::BatchRequest;
use aml_runtime::AmlConfig;
use aml_runtime::metrics::serve_metrics;
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::BatchHandler;
use crate::schedule::{parse_schedule, run_schedule};

/// Runs batches and the schedule until `shutdown`, then drains what is in flight.
pub async fn run_scheduler(config: &AmlConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let schedule = if config.scoring.schedule.trim().is_empty() {
        None
    } else {
        Some(parse_schedule(&config.scoring.schedule)?)
    };
    let storage = config.storage.open(&config.storage.url)?;
    let client = aml_bus::connect(&config.nats, "scheduler").await?;
    let topology = Topology::new(client).with_limits((&config.bus).into());
    topology.apply_limits().await?;
    let publisher = Publisher::new(topology.jetstream().clone());
    if let Some(schedule) = schedule {
        tokio::spawn(run_schedule(schedule, publisher.clone(), shutdown.clone()));
    }
    let settings = RunnerSettings::from(&config.bus);
    let batches = Runner::new(topology.clone(), ConsumerSpec::scheduler(), settings);
    let batch_handler = Arc::new(BatchHandler::new(
        topology.jetstream().clone(),
        storage,
        publisher,
        config.scoring.clone(),
    ));
    if let Some(address) = &config.telemetry.metrics_addr {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot serve metrics on {address}"))?;
        let runners = [batches.metrics()];
        let handler = Arc::clone(&batch_handler);
        tokio::spawn(serve_metrics(
            listener,
            Arc::new(move || {
                RunnerMetrics::render_all(&runners) + &Handler::<BatchRequest>::metrics(&*handler)
            }),
            shutdown.clone(),
        ));
    }
    batches
        .run::<BatchRequest, _>(batch_handler, shutdown)
        .await?;
    Ok(())
}
