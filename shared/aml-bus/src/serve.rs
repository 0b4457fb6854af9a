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
    Runner::new(topology, spec, RunnerSettings::from(&config.bus))
        .run::<M, H>(handler, shutdown)
        .await
}
