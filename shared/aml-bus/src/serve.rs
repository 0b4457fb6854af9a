//! Running a service: connect, create the topology, run the handler until SIGTERM/SIGINT.

use std::sync::Arc;

use aml_proto::Validate;
use aml_runtime::AmlConfig;

use crate::{ConsumerSpec, Handler, Result, Runner, RunnerSettings, RunnerStats, Topology};

/// Connects as `service`, ensures the streams, and runs `handler` on `spec` until a
/// termination signal, then drains in-flight messages.
pub async fn serve<M, H>(
    config: &AmlConfig,
    service: &str,
    spec: ConsumerSpec,
    handler: Arc<H>,
) -> Result<RunnerStats>
where
    M: prost::Message + Default + Validate + Send + 'static,
    H: Handler<M>,
{
    let client = crate::connect(&config.nats, service).await?;
    let topology = Topology::new(client);
    topology.ensure_streams().await?;
    let shutdown =
        aml_runtime::signals::shutdown_token().map_err(|error| crate::BusError::Connect {
            url: config.nats.url.clone(),
            reason: format!("cannot install signal handlers: {error}"),
        })?;
    let runner = Runner::new(topology, spec, RunnerSettings::from(&config.bus));
    if let Some(address) = &config.telemetry.metrics_addr {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|error| crate::BusError::Metrics {
                address: address.clone(),
                reason: error.to_string(),
            })?;
        let metrics = runner.metrics();
        let own = Arc::clone(&handler);
        let render: Arc<dyn Fn() -> String + Send + Sync> =
            Arc::new(move || metrics.render() + &own.metrics());
        tokio::spawn(aml_runtime::metrics::serve_metrics(
            listener,
            render,
            shutdown.clone(),
        ));
    }
    runner.run::<M, H>(handler, shutdown).await
}
