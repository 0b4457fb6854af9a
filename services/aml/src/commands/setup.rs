//! `aml setup`: create the messaging topology.

use std::time::Duration;

use aml_bus::{ConsumerSpec, Topology};
use aml_runtime::AmlConfig;
use anyhow::Context;
use tracing::info;

/// Creates the streams and every service's durable consumer.
pub async fn run(config: &AmlConfig) -> anyhow::Result<()> {
    let client = aml_bus::connect(&config.nats, "aml-setup").await?;
    let topology = Topology::new(client).with_limits((&config.bus).into());
    topology
        .apply_limits()
        .await
        .context("failed to create the streams")?;
    let ack_wait = Duration::from_secs(config.bus.ack_wait_secs);
    let consumers = [
        ConsumerSpec::generator(),
        ConsumerSpec::validator(),
        ConsumerSpec::trainer(),
        ConsumerSpec::judge(),
        ConsumerSpec::scheduler(),
        ConsumerSpec::inference_worker(),
    ];
    for spec in &consumers {
        topology.consumer(spec, ack_wait).await?;
        info!(consumer = %spec.durable, subject = %spec.filter_subject, "consumer ready");
    }
    println!(
        "streams ALERTS, JOBS, EVENTS, DLQ and {} consumers ready on {}",
        consumers.len(),
        config.nats.url
    );
    Ok(())
}
