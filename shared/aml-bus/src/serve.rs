//! Running a service: connect, create the topology, run the handler until SIGTERM/SIGINT (or,
//! with [`OneMessage`], until its first message is done).

use std::sync::Arc;

use aml_proto::Validate;
use aml_runtime::AmlConfig;
use tokio_util::sync::CancellationToken;

use crate::{
    ConsumerSpec, Delivery, Handler, HandlerError, Result, Runner, RunnerSettings, RunnerStats,
    Topology,
};

/// The token a termination signal (SIGTERM, SIGINT) cancels.
pub fn signal_token(config: &AmlConfig) -> Result<CancellationToken> {
    aml_runtime::signals::shutdown_token().map_err(|error| crate::BusError::Connect {
        url: config.nats.url.clone(),
        reason: format!("cannot install signal handlers: {error}"),
    })
}

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
    let shutdown = signal_token(config)?;
    serve_until(config, service, spec, handler, shutdown).await
}

/// [`serve`] until `shutdown` is cancelled.
pub async fn serve_until<M, H>(
    config: &AmlConfig,
    service: &str,
    spec: ConsumerSpec,
    handler: Arc<H>,
    shutdown: CancellationToken,
) -> Result<RunnerStats>
where
    M: prost::Message + Default + Validate + Send + 'static,
    H: Handler<M>,
{
    let client = crate::connect(&config.nats, service).await?;
    let topology = Topology::new(client).with_limits((&config.bus).into());
    topology.ensure_streams().await?;
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

/// A handler that cancels `done` once one message is finished: handled, or refused as
/// invalid (dead-lettered). A transient failure keeps the service up for the redelivery. With
/// [`serve_until`] and a concurrency of 1 it runs one job and exits (a Kubernetes Job).
pub struct OneMessage<H> {
    inner: Arc<H>,
    done: CancellationToken,
}

impl<H> OneMessage<H> {
    /// Wraps `inner`; `done` is cancelled after its first finished message.
    pub fn new(inner: Arc<H>, done: CancellationToken) -> Self {
        OneMessage { inner, done }
    }
}

impl<M: Send + 'static, H: Handler<M>> Handler<M> for OneMessage<H> {
    async fn handle(&self, delivery: Delivery<M>) -> std::result::Result<(), HandlerError> {
        let outcome = self.inner.handle(delivery).await;
        if !matches!(outcome, Err(HandlerError::Transient(_))) {
            self.done.cancel();
        }
        outcome
    }

    fn metrics(&self) -> String {
        self.inner.metrics()
    }
}
