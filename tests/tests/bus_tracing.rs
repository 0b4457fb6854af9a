//! One trace follows a message: the span around a publish is the parent of the consumer's span.

use std::sync::Arc;
use std::time::Duration;

use aml_bus::topology::subjects;
use aml_bus::{
    ConsumerSpec, Delivery, Handler, HandlerError, Publisher, Runner, RunnerSettings, Topology,
};
use aml_integration_tests::{NatsServer, scoring_job};
use aml_proto::v1::ScoringJob;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Stops the runner once it has handled one message.
struct StopAfterOne(CancellationToken);

impl Handler<ScoringJob> for StopAfterOne {
    async fn handle(&self, _delivery: Delivery<ScoringJob>) -> Result<(), HandlerError> {
        tracing::info_span!("write-results").in_scope(|| tracing::info!("results written"));
        self.0.cancel();
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn publishing_span_is_parent_of_the_consumer_span() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bus-test")));
    let _default = tracing::subscriber::set_default(subscriber);

    let nats = NatsServer::start().expect("nats-server");
    let topology = Topology::new(nats.connect().await.expect("connects"));
    topology.ensure_streams().await.expect("streams");
    let publisher = Publisher::new(topology.jetstream().clone());
    publisher
        .publish(subjects::SCORE, &scoring_job("traced", 1, 64), None)
        .instrument(tracing::info_span!("scheduler.publish"))
        .await
        .expect("published");

    let shutdown = CancellationToken::new();
    let settings = RunnerSettings {
        concurrency: 1,
        ack_wait: Duration::from_secs(5),
        nak_delay: Duration::from_millis(50),
        max_deliveries: 3,
        fetch_expiry: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(20),
    };
    Runner::new(topology, ConsumerSpec::inference_worker(), settings)
        .run::<ScoringJob, _>(Arc::new(StopAfterOne(shutdown.clone())), shutdown)
        .await
        .expect("runner");
    provider.force_flush().expect("flush");

    let spans = exporter.get_finished_spans().expect("spans");
    let find = |name: &str| {
        spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "no span {name} in {:?}",
                    spans.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            })
    };
    let publish = find("scheduler.publish");
    let handle = find("aml.handle");
    let write = find("write-results");
    assert_eq!(
        handle.span_context.trace_id(),
        publish.span_context.trace_id()
    );
    assert_eq!(handle.parent_span_id, publish.span_context.span_id());
    assert_eq!(write.parent_span_id, handle.span_context.span_id());
}
