//! Poison messages, transient failures and deduplication against a real JetStream server.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use aml_bus::topology::{DLQ_STREAM, subjects};
use aml_bus::{
    ConsumerSpec, DLQ_REASON_HEADER, DLQ_SUBJECT_HEADER, Delivery, Handler, HandlerError,
    Publisher, Runner, RunnerSettings, Topology,
};
use aml_integration_tests::{NatsServer, wait_until};
use aml_proto::v1::{CandidateChunk, Difficulty, Label, Sample};
use async_nats::jetstream::consumer::pull;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

/// Records the chunks it handled; fails `fail_times` deliveries of a chunk numbered 99.
struct ChunkRecorder {
    seen: Mutex<Vec<(u32, i64)>>,
    fail_times: i64,
}

impl Handler<CandidateChunk> for ChunkRecorder {
    async fn handle(&self, delivery: Delivery<CandidateChunk>) -> Result<(), HandlerError> {
        let chunk = delivery.message.chunk;
        if chunk == 99 && delivery.delivered <= self.fail_times {
            return Err(HandlerError::transient("object store unavailable"));
        }
        if chunk == 13 {
            return Err(HandlerError::invalid("chunk 13 references an unknown run"));
        }
        self.seen
            .lock()
            .expect("lock")
            .push((chunk, delivery.delivered));
        Ok(())
    }
}

fn chunk(number: u32, tier: Difficulty) -> CandidateChunk {
    CandidateChunk {
        run_id: "run-1".into(),
        tier: tier as i32,
        chunk: number,
        total_chunks: 1,
        seed: 0,
        samples: vec![Sample {
            id: format!("s{number}"),
            instruction: "decide".into(),
            input: "customer".into(),
            output: "MATCH — DOB agrees".into(),
            cot: "DOB agrees".into(),
            difficulty: Difficulty::Easy as i32,
            label: Label::Match as i32,
        }],
    }
}

fn settings() -> RunnerSettings {
    RunnerSettings {
        concurrency: 4,
        ack_wait: Duration::from_secs(5),
        nak_delay: Duration::from_millis(50),
        max_deliveries: 3,
        fetch_expiry: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(20),
    }
}

async fn dlq_messages(topology: &Topology, expected: usize) -> Vec<(String, String)> {
    let stream = topology
        .jetstream()
        .get_stream(DLQ_STREAM)
        .await
        .expect("DLQ stream");
    let consumer = stream
        .create_consumer(pull::Config::default())
        .await
        .expect("DLQ reader");
    let mut batch = consumer
        .fetch()
        .max_messages(expected + 5)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .expect("fetch");
    let mut found = Vec::new();
    while let Some(Ok(message)) = batch.next().await {
        let headers = message.headers.clone().expect("DLQ headers");
        found.push((
            headers
                .get(DLQ_SUBJECT_HEADER)
                .expect("subject")
                .to_string(),
            headers.get(DLQ_REASON_HEADER).expect("reason").to_string(),
        ));
    }
    found
}

#[tokio::test]
async fn poison_messages_go_to_the_dlq_and_the_consumer_keeps_going() {
    let nats = NatsServer::start().expect("nats-server");
    let topology = Topology::new(nats.connect().await.expect("connects"));
    topology.ensure_streams().await.expect("streams");
    let publisher = Publisher::new(topology.jetstream().clone());
    publisher
        .publish(subjects::VALIDATE, &chunk(1, Difficulty::Easy), None)
        .await
        .expect("valid chunk");
    topology
        .jetstream()
        .publish(
            subjects::VALIDATE,
            bytes::Bytes::from_static(b"\xff\xff not protobuf"),
        )
        .await
        .expect("sent")
        .await
        .expect("stored");
    publisher
        .publish(subjects::VALIDATE, &chunk(2, Difficulty::Unspecified), None)
        .await
        .expect("unspecified tier");
    publisher
        .publish(subjects::VALIDATE, &chunk(13, Difficulty::Hard), None)
        .await
        .expect("invalid by handler");
    publisher
        .publish(subjects::VALIDATE, &chunk(99, Difficulty::Hard), None)
        .await
        .expect("transient twice");
    publisher
        .publish(subjects::VALIDATE, &chunk(3, Difficulty::Medium), None)
        .await
        .expect("valid chunk");

    let handler = Arc::new(ChunkRecorder {
        seen: Mutex::new(Vec::new()),
        fail_times: 2,
    });
    let shutdown = CancellationToken::new();
    let runner = Runner::new(topology.clone(), ConsumerSpec::validator(), settings());
    let running = tokio::spawn({
        let handler = Arc::clone(&handler);
        let shutdown = shutdown.clone();
        async move { runner.run::<CandidateChunk, _>(handler, shutdown).await }
    });
    let all_seen = wait_until(Duration::from_secs(20), || {
        let count = handler.seen.lock().expect("lock").len();
        async move { count == 3 }
    })
    .await;
    shutdown.cancel();
    let stats = running.await.expect("runner task").expect("runner");
    assert!(
        all_seen,
        "handled: {:?}",
        handler.seen.lock().expect("lock")
    );

    let mut seen = handler.seen.lock().expect("lock").clone();
    seen.sort();
    assert_eq!(
        seen,
        vec![(1, 1), (3, 1), (99, 3)],
        "the retried chunk succeeded on its third delivery"
    );
    assert_eq!(stats.acked, 3);
    assert_eq!(stats.nacked, 2);
    assert_eq!(stats.dead_lettered, 3);

    let mut dead = dlq_messages(&topology, 3).await;
    dead.sort();
    assert_eq!(dead.len(), 3, "{dead:?}");
    assert!(
        dead.iter()
            .all(|(subject, _)| subject == subjects::VALIDATE)
    );
    let reasons: Vec<&str> = dead.iter().map(|(_, reason)| reason.as_str()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("undecodable payload:")),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"invalid message: CandidateChunk.tier is unspecified"),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"invalid message: chunk 13 references an unknown run"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_message_failing_every_delivery_ends_in_the_dlq() {
    let nats = NatsServer::start().expect("nats-server");
    let topology = Topology::new(nats.connect().await.expect("connects"));
    topology.ensure_streams().await.expect("streams");
    Publisher::new(topology.jetstream().clone())
        .publish(subjects::VALIDATE, &chunk(99, Difficulty::Hard), None)
        .await
        .expect("published");
    let handler = Arc::new(ChunkRecorder {
        seen: Mutex::new(Vec::new()),
        fail_times: i64::MAX,
    });
    let shutdown = CancellationToken::new();
    let runner = Runner::new(topology.clone(), ConsumerSpec::validator(), settings());
    let running = tokio::spawn({
        let handler = Arc::clone(&handler);
        let shutdown = shutdown.clone();
        async move { runner.run::<CandidateChunk, _>(handler, shutdown).await }
    });
    let dead = wait_until(Duration::from_secs(20), || {
        let topology = topology.clone();
        async move {
            let mut stream = topology
                .jetstream()
                .get_stream(DLQ_STREAM)
                .await
                .expect("DLQ");
            stream.info().await.expect("info").state.messages == 1
        }
    })
    .await;
    shutdown.cancel();
    let stats = running.await.expect("runner task").expect("runner");
    assert!(dead, "the exhausted message did not reach the DLQ");
    assert_eq!((stats.nacked, stats.dead_lettered), (2, 1));
    let reasons = dlq_messages(&topology, 1).await;
    assert_eq!(
        reasons[0].1,
        "gave up after 3 deliveries: object store unavailable"
    );
}

#[tokio::test]
async fn republishing_the_same_message_id_is_deduplicated() {
    let nats = NatsServer::start().expect("nats-server");
    let topology = Topology::new(nats.connect().await.expect("connects"));
    topology.ensure_streams().await.expect("streams");
    let publisher = Publisher::new(topology.jetstream().clone());
    let message = chunk(1, Difficulty::Easy);
    let first = publisher
        .publish(subjects::VALIDATE, &message, Some("chunk-1"))
        .await
        .expect("first");
    let second = publisher
        .publish(subjects::VALIDATE, &message, Some("chunk-1"))
        .await
        .expect("second");
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(first.sequence, second.sequence);
}

#[tokio::test]
async fn one_message_mode_stops_after_one_finished_job_and_a_transient_failure_stays_queued() {
    let nats = NatsServer::start().expect("nats-server");
    let topology = Topology::new(nats.connect().await.expect("connects"));
    topology.ensure_streams().await.expect("streams");
    let publisher = Publisher::new(topology.jetstream().clone());
    for number in [99, 3] {
        publisher
            .publish(subjects::VALIDATE, &chunk(number, Difficulty::Easy), None)
            .await
            .expect("published");
    }
    let recorder = Arc::new(ChunkRecorder {
        seen: Mutex::new(Vec::new()),
        fail_times: 1,
    });
    let shutdown = CancellationToken::new();
    let once = Arc::new(aml_bus::OneMessage::new(
        Arc::clone(&recorder),
        shutdown.clone(),
    ));
    let one_at_a_time = RunnerSettings {
        concurrency: 1,
        ..settings()
    };
    let runner = Runner::new(topology.clone(), ConsumerSpec::validator(), one_at_a_time);
    let stats = tokio::time::timeout(
        Duration::from_secs(20),
        runner.run::<CandidateChunk, _>(once, shutdown),
    )
    .await
    .expect("the runner stops by itself")
    .expect("runner");
    assert_eq!(
        *recorder.seen.lock().expect("lock"),
        vec![(3, 1)],
        "a transient failure did not stop the runner; the first finished job did"
    );
    assert_eq!((stats.acked, stats.nacked), (1, 1));
    let consumer_info = topology
        .jetstream()
        .get_stream("JOBS")
        .await
        .expect("jobs")
        .info()
        .await
        .expect("info")
        .state
        .messages;
    assert_eq!(
        consumer_info, 1,
        "the job that failed transiently waits in the queue for the next run"
    );
}
