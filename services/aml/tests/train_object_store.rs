//! `aml train --output_dir s3://...`: the run is staged locally and uploaded after each
//! phase and at the end to an S3-compatible server (moto), checkpoints included, so another
//! machine can resume it (those rotated away are deleted there too); a URL outside the
//! configured storage is refused by name.

use aml_integration_tests::cli::{Cli, SMALL_CURRICULUM, train_command};
use aml_integration_tests::{S3Server, checkpoints};
use aml_storage::Storage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_output_is_in_s3_lands_there_phase_by_phase() {
    let s3 = S3Server::start("aml-train").expect("moto");
    let root = tempfile::tempdir().expect("dir");
    let path = |name: &str| root.path().join(name).display().to_string();
    let cli = Cli::new(env!("CARGO_BIN_EXE_aml"));
    let (model, data) = cli.tiny_model_and_data(root.path());
    let staging = path("staging");
    let envs = s3.aml_env("aml-train");
    let train = |output: &str| {
        let mut args = train_command(&model, &data, output);
        args.extend(["--staging_dir", &staging, "--run_judge", "false"]);
        args.extend(SMALL_CURRICULUM);
        cli.run(&args, &envs)
    };
    let output = tokio::task::block_in_place(|| train("s3://aml-train/models/run-s3"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    for phase in ["easy", "medium", "hard"] {
        assert!(
            stderr.contains(&format!("phase {phase}: ")),
            "uploaded after {phase}: {stderr}"
        );
    }

    let storage = Storage::open("s3://aml-train", &s3.options()).expect("s3");
    let keys = storage.list("models/run-s3").await.expect("list");
    for expected in [
        "models/run-s3/adapter/adapter_model.safetensors",
        "models/run-s3/adapter/adapter_config.json",
        "models/run-s3/easy/adapter/adapter_model.safetensors",
        "models/run-s3/trainer_state.json",
        "models/run-s3/config.json",
        "models/run-s3/loss_curve.svg",
    ] {
        assert!(
            keys.iter().any(|key| key == expected),
            "{expected} in {keys:?}"
        );
    }
    let (stored_checkpoints, staged_checkpoints) = checkpoints::stored_and_staged(
        &storage,
        "models/run-s3",
        &root.path().join("staging/models/run-s3"),
    )
    .await
    .expect("checkpoint folders");
    assert!(
        !stored_checkpoints.is_empty(),
        "checkpoints travel too, for a resume elsewhere: {keys:?}"
    );
    assert_eq!(
        stored_checkpoints, staged_checkpoints,
        "the store keeps only the checkpoints that rotation kept"
    );
    let local = std::fs::read(
        root.path()
            .join("staging/models/run-s3/adapter/adapter_model.safetensors"),
    )
    .expect("staged adapter");
    let stored = storage
        .get("models/run-s3/adapter/adapter_model.safetensors")
        .await
        .expect("adapter");
    assert_eq!(stored.as_ref(), local.as_slice());

    let outside = tokio::task::block_in_place(|| train("s3://another-bucket/run"));
    assert!(!outside.status.success());
    let message = String::from_utf8_lossy(&outside.stderr);
    assert!(
        message.contains("nor under the configured storage s3://aml-train"),
        "{message}"
    );
}
