//! Over NATS: a TrainRequest runs the curriculum (packed rows on the CPU, as its configuration
//! asks) and each phase is announced with PhaseCompleted and its real step count, its adapter
//! and judge report uploaded first. The upload waits for the
//! training thread (it used to race the next checkpoint's rotation and fail), and the store
//! keeps only the checkpoints that rotation kept.

use std::sync::Arc;
use std::time::Duration;

use aml_bus::topology::subjects;
use aml_bus::{ConsumerSpec, Publisher, Runner, RunnerSettings, Topology};
use aml_integration_tests::datasets::write_offline_dataset;
use aml_integration_tests::{NatsServer, checkpoints};
use aml_model::tiny::init_tiny;
use aml_model::{Architecture, TinySpec};
use aml_proto::v1::{PhaseCompleted, TrainRequest};
use aml_storage::{S3Options, Storage};
use aml_trainer_service::TrainHandler;
use futures::StreamExt;
use prost::Message;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn train_request_announces_every_phase() {
    let root = tempfile::tempdir().expect("dir");
    let (model_dir, data_dir, staging) = (
        root.path().join("model"),
        root.path().join("data"),
        root.path().join("staging"),
    );
    let storage = Storage::open("memory://", &S3Options::default()).expect("storage");
    init_tiny(&TinySpec::tiny(Architecture::Llama), &model_dir, 2).expect("tiny model");
    std::fs::create_dir_all(&data_dir).expect("data");
    write_offline_dataset(&data_dir, 12, 4, 9);

    let nats = NatsServer::start().expect("nats-server");
    let client = nats.connect().await.expect("connects");
    let topology = Topology::new(client.clone());
    topology.ensure_streams().await.expect("streams");
    let mut events = client
        .subscribe(subjects::PHASE_COMPLETED)
        .await
        .expect("subscribe");
    let publisher = Publisher::new(topology.jetstream().clone());
    let config = serde_json::json!({"lora_r": 4, "lr": 2e-3, "batch_size": 2, "grad_accum": 1, "epochs": [1, 1, 1],
        "max_seq_len": 1024, "judge_items": 3, "judge_max_new_tokens": 8, "device": "cpu",
        "packing": true, "cot": false});
    let request = TrainRequest {
        run_id: "run-1".into(),
        base_model: format!("file://{}", model_dir.display()),
        dataset_url: format!("file://{}", data_dir.display()),
        output_url: storage.url_of("models/run-1"),
        config: Some(
            serde_json::from_value::<aml_trainer::TrainerConfig>(config)
                .expect("a trainer configuration")
                .to_message(),
        ),
    };
    publisher
        .publish(subjects::TRAIN, &request, Some("run-1"))
        .await
        .expect("request");

    let shutdown = CancellationToken::new();
    let settings = RunnerSettings {
        concurrency: 1,
        ack_wait: Duration::from_secs(5),
        nak_delay: Duration::from_millis(100),
        max_deliveries: 3,
        fetch_expiry: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(20),
    };
    let runner = Runner::new(topology.clone(), ConsumerSpec::trainer(), settings);
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        let unused_hub = aml_hub::HubClient::new("http://127.0.0.1:9", None).expect("hub client");
        let handler = Arc::new(TrainHandler::new(
            publisher.clone(),
            storage.clone(),
            staging.clone(),
            unused_hub,
            Default::default(),
        ));
        async move { runner.run::<TrainRequest, _>(handler, shutdown).await }
    });
    let mut phases = Vec::new();
    for _ in 0..3 {
        let message = tokio::time::timeout(Duration::from_secs(180), events.next())
            .await
            .expect("phase in time")
            .expect("event");
        let phase = PhaseCompleted::decode(message.payload).expect("PhaseCompleted");
        let adapter = storage
            .key_of(&phase.adapter_url)
            .unwrap_or_else(|| panic!("{} is in the store", phase.adapter_url))
            .to_owned();
        assert!(
            storage
                .exists(&format!("{adapter}/adapter_model.safetensors"))
                .await
                .expect("exists"),
            "the phase's adapter is uploaded before its PhaseCompleted"
        );
        let report = storage
            .key_of(&phase.judge_report_url)
            .expect("in the store")
            .to_owned();
        assert!(storage.exists(&report).await.expect("exists"));
        if phase.phase() == aml_proto::v1::Difficulty::Hard {
            assert!(
                storage
                    .exists("models/run-1/adapter/adapter_config.json")
                    .await
                    .expect("exists"),
                "the hard phase ends the run: the final adapter is uploaded before it is announced"
            );
        }
        phases.push(phase);
    }
    shutdown.cancel();
    let stats = running.await.expect("runner task").expect("runner");
    assert_eq!(stats.acked, 1);
    assert_eq!(
        stats.nacked, 0,
        "no upload met a checkpoint being written or rotated away"
    );
    let names: Vec<i32> = phases.iter().map(|phase| phase.phase).collect();
    assert_eq!(names, vec![1, 2, 3], "easy, medium, hard in order");
    assert!(phases.iter().all(|phase| phase.gate_passed));
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(staging.join("models/run-1/trainer_state.json")).expect("state"),
    )
    .expect("json");
    for (phase, summary) in phases
        .iter()
        .zip(state["phases"].as_array().expect("phases"))
    {
        assert!(phase.steps > 0);
        assert_eq!(
            Some(phase.steps),
            summary["steps"].as_u64(),
            "PhaseCompleted carries the phase's real optimiser steps"
        );
    }
    assert!(
        storage
            .exists("models/run-1/adapter/adapter_config.json")
            .await
            .expect("exists"),
        "the final adapter is uploaded"
    );
    assert!(staging.join("models/run-1/trainer_state.json").exists());
    let calibration: serde_json::Value = serde_json::from_slice(
        &storage
            .get("models/run-1/calibration.json")
            .await
            .expect("the run's calibration is uploaded"),
    )
    .expect("json");
    assert_eq!(calibration["schema"], "aml.calibration/v1");
    let (stored, staged) =
        checkpoints::stored_and_staged(&storage, "models/run-1", &staging.join("models/run-1"))
            .await
            .expect("checkpoint folders");
    assert_eq!(
        stored, staged,
        "the store keeps the checkpoints that rotation kept, no more"
    );
    assert!(
        stored.len() <= 5,
        "the last two and each phase's best: {stored:?}"
    );
}
