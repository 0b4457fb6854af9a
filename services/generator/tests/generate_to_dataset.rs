//! Through NATS: GenerateRequest -> generator -> validator -> DatasetReady, with the generator
//! process killed and restarted mid-run; the dataset is complete, free of duplicates and
//! byte-identical to building the same seed's candidates directly. In LLM mode the generator
//! asks the request's provider and model (a stand-in of the Anthropic API) with the key of its
//! own configuration, read from its `.env`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use aml_bus::topology::subjects;
use aml_bus::{ConsumerSpec, Publisher, Runner, RunnerSettings, Topology};
use aml_core::Difficulty;
use aml_dataset::{ValidatorSettings, build, write_dataset};
use aml_integration_tests::{NatsServer, wait_until};
use aml_proto::v1::{CandidateChunk, DatasetReady, GenerateRequest, GeneratorMode};
use aml_storage::{S3Options, Storage};
use aml_synth::{Synthesizer, generate_tier};
use aml_validator::ValidateHandler;
use futures::StreamExt;
use prost::Message;
use tokio_util::sync::CancellationToken;

const PER_TIER: u32 = 2_000;
const CHUNK: u32 = 25;
const SEED: u64 = 11;

fn start_generator(nats: &NatsServer) -> Child {
    Command::new(env!("CARGO_BIN_EXE_generator"))
        .env_clear()
        .env("AML_NATS__URL", nats.url())
        .env("AML_BUS__ACK_WAIT_SECS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("generator starts")
}

fn stored_chunks(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("datasets/run-7/candidates")).map_or(0, |entries| entries.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_request_survives_a_killed_generator() {
    let nats = NatsServer::start().expect("nats-server");
    let client = nats.connect().await.expect("connects");
    let topology = Topology::new(client.clone());
    topology.ensure_streams().await.expect("streams");
    let mut ready_events = client
        .subscribe(subjects::DATASET_READY)
        .await
        .expect("subscribe");

    let dir = tempfile::tempdir().expect("storage");
    let storage = Storage::open(
        &format!("file://{}", dir.path().display()),
        &S3Options::default(),
    )
    .expect("storage");
    let publisher = Publisher::new(topology.jetstream().clone());
    let handler = Arc::new(ValidateHandler::new(
        storage.clone(),
        publisher.clone(),
        ValidatorSettings::default(),
    ));
    let shutdown = CancellationToken::new();
    let settings = RunnerSettings {
        concurrency: 8,
        ack_wait: Duration::from_secs(5),
        nak_delay: Duration::from_millis(100),
        max_deliveries: 10,
        fetch_expiry: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(20),
    };
    let validator = Runner::new(topology.clone(), ConsumerSpec::validator(), settings);
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { validator.run::<CandidateChunk, _>(handler, shutdown).await }
    });

    let request = GenerateRequest {
        run_id: "run-7".into(),
        per_tier: PER_TIER,
        seed: SEED,
        mode: GeneratorMode::Offline as i32,
        chunk_size: CHUNK,
        ..Default::default()
    };
    publisher
        .publish(subjects::GENERATE, &request, Some("run-7"))
        .await
        .expect("request");

    let mut generator = start_generator(&nats);
    let total = (PER_TIER.div_ceil(CHUNK) * 3) as usize;
    let started = wait_until(Duration::from_secs(60), || async {
        stored_chunks(dir.path()) >= 1
    })
    .await;
    assert!(started, "no chunk arrived");
    generator.kill().expect("SIGKILL the generator");
    generator.wait().expect("reaped");
    let at_kill = stored_chunks(dir.path());
    assert!(
        at_kill < total,
        "the kill must land mid-run ({at_kill} of {total} chunks)"
    );

    let mut generator = start_generator(&nats);
    let event = tokio::time::timeout(Duration::from_secs(120), ready_events.next())
        .await
        .expect("DatasetReady in time")
        .expect("event");
    generator.kill().expect("stop the generator");
    generator.wait().expect("reaped");
    shutdown.cancel();
    running.await.expect("validator task").expect("validator");

    let ready = DatasetReady::decode(event.payload).expect("DatasetReady");
    assert_eq!(stored_chunks(dir.path()), total);
    assert_eq!(ready.validation_count, 100);
    assert_eq!(
        ready.duplicates_removed, 0,
        "no duplicate reached the dataset"
    );

    let synthesizer = Synthesizer::default();
    let mut candidates = Vec::new();
    for tier in [Difficulty::Easy, Difficulty::Hard, Difficulty::Medium] {
        candidates.extend(generate_tier(&synthesizer, tier, PER_TIER as usize, SEED));
    }
    let expected = build(
        candidates,
        &ValidatorSettings {
            seed: SEED,
            ..ValidatorSettings::default()
        },
    );
    let reference = Storage::open("memory://", &S3Options::default()).expect("memory");
    let manifest = write_dataset(&reference, "", &expected)
        .await
        .expect("reference");
    assert_eq!(ready.manifest_sha256, manifest.dataset_sha256);
    assert_eq!(ready.train_count, manifest.files["train.jsonl"].records);
    for name in [
        "easy.jsonl",
        "medium.jsonl",
        "hard.jsonl",
        "train.jsonl",
        "validation.jsonl",
    ] {
        let produced = storage
            .get(&format!("datasets/run-7/{name}"))
            .await
            .expect(name);
        assert_eq!(produced, reference.get(name).await.expect(name), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_generate_request_uses_the_providers_key_from_the_generators_dotenv() {
    use aml_integration_tests::llm_standin::{KEY, anthropic_standin};
    use aml_integration_tests::mock_http::MockServer;

    let requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server = MockServer::start_with(Arc::new(anthropic_standin(Arc::clone(&requests)))).await;
    let nats = NatsServer::start().expect("nats-server");
    let client = nats.connect().await.expect("connects");
    let topology = Topology::new(client.clone());
    topology.ensure_streams().await.expect("streams");
    let publisher = Publisher::new(topology.jetstream().clone());

    let workdir = tempfile::tempdir().expect("generator's folder");
    std::fs::write(
        workdir.path().join(".env"),
        format!(
            "ANTHROPIC_API_KEY={KEY}\nANTHROPIC_BASE_URL={}\n",
            server.url
        ),
    )
    .expect(".env");
    let mut generator = Command::new(env!("CARGO_BIN_EXE_generator"))
        .current_dir(workdir.path())
        .env_clear()
        .env("AML_NATS__URL", nats.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("generator starts");
    let request = GenerateRequest {
        run_id: "llm-1".into(),
        per_tier: 9,
        seed: 4,
        mode: GeneratorMode::Llm as i32,
        provider: "anthropic".into(),
        model: "claude-standin".into(),
        chunk_size: 5,
    };
    publisher
        .publish(subjects::GENERATE, &request, Some("llm-1"))
        .await
        .expect("request");

    let validate = topology
        .consumer(&ConsumerSpec::validator(), Duration::from_secs(5))
        .await
        .expect("validator queue");
    let mut samples = Vec::new();
    let mut messages = validate.messages().await.expect("messages");
    while samples.len() < 27 {
        let message = tokio::time::timeout(Duration::from_secs(60), messages.next())
            .await
            .expect("chunks in time")
            .expect("a message")
            .expect("delivered");
        let chunk = CandidateChunk::decode(message.payload.clone()).expect("a chunk");
        assert_eq!(chunk.run_id, "llm-1");
        samples.extend(chunk.samples);
        message.ack().await.expect("acked");
    }
    generator.kill().expect("stop the generator");
    generator.wait().expect("reaped");
    assert_eq!(samples.len(), 27, "9 per tier");
    assert!(
        samples
            .iter()
            .all(|sample| !sample.output.starts_with("NO MATCH")),
        "decision words made canonical"
    );
    let seen = server.seen();
    assert!(
        seen.iter()
            .all(|request| request.body["model"] == "claude-standin")
    );
    assert!(
        seen.iter().all(|request| request
            .headers
            .iter()
            .any(|(name, value)| name == "x-api-key" && value == KEY)),
        "every request carries the key from the generator's .env"
    );
}
