//! The Prometheus endpoint reports what a runner did.

use std::sync::Arc;
use std::time::Duration;

use aml_bus::topology::subjects;
use aml_bus::{ConsumerSpec, Publisher, Runner, RunnerSettings, Topology};
use aml_integration_tests::{NatsServer, RecordingHandler, job_id, scoring_job};
use aml_proto::v1::ScoringJob;
use aml_storage::{S3Options, Storage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

async fn get(address: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_counts_acked_jobs() {
    let nats = NatsServer::start().expect("nats-server");
    let topology = Topology::new(nats.connect().await.expect("connects"));
    topology.ensure_streams().await.expect("streams");
    let jobs: Vec<ScoringJob> = (0..3)
        .map(|shard| scoring_job("metrics", shard, 128))
        .collect();
    let ids: Vec<String> = jobs.iter().map(job_id).collect();
    Publisher::new(topology.jetstream().clone())
        .publish_all(
            subjects::SCORE,
            ids.iter().map(String::as_str).zip(jobs.iter()),
        )
        .await
        .expect("published");

    let storage = Storage::open("memory://", &S3Options::default()).expect("storage");
    let handler = Arc::new(RecordingHandler::new(storage, None, Duration::ZERO).expect("handler"));
    let settings = RunnerSettings {
        concurrency: 2,
        ack_wait: Duration::from_secs(5),
        nak_delay: Duration::from_millis(50),
        max_deliveries: 3,
        fetch_expiry: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(20),
    };
    let runner = Runner::new(topology, ConsumerSpec::inference_worker(), settings);
    let metrics = runner.metrics();
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let render: Arc<dyn Fn() -> String + Send + Sync> = Arc::new(move || metrics.render());
    tokio::spawn(aml_runtime::metrics::serve_metrics(
        listener,
        render,
        shutdown.clone(),
    ));
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { runner.run::<ScoringJob, _>(handler, shutdown).await }
    });

    let expected = "aml_bus_acked_total{consumer=\"inference-worker\"} 3";
    let mut body = String::new();
    for _ in 0..100 {
        body = get(address, "/metrics").await;
        if body.contains(expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    assert!(
        body.contains("# TYPE aml_bus_acked_total counter"),
        "{body}"
    );
    assert!(body.contains(expected), "{body}");
    assert!(
        body.contains("aml_bus_dead_lettered_total{consumer=\"inference-worker\"} 0"),
        "{body}"
    );
    assert!(
        body.contains(
            "aml_bus_handler_duration_seconds_bucket{consumer=\"inference-worker\",le=\"+Inf\"} 3"
        ),
        "three handler runs in the latency histogram: {body}"
    );
    assert!(
        body.contains("aml_bus_handler_duration_seconds_count{consumer=\"inference-worker\"} 3")
    );
    let health = get(address, "/healthz").await;
    assert!(
        health.starts_with("HTTP/1.1 200 OK") && health.ends_with("ok\n"),
        "{health}"
    );
    assert!(get(address, "/other").await.starts_with("HTTP/1.1 404"));
    shutdown.cancel();
    running.await.expect("runner task").expect("runner");
}
