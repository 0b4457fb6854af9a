//! `aml model push`: a model directory copied to object storage (S3 on moto), where the
//! workers and trainers fetch it; a second push replaces what was there; a folder that is
//! neither a model nor an adapter, or a URL outside the configured storage, is refused.

use aml_integration_tests::S3Server;
use aml_integration_tests::cli::Cli;
use aml_storage::Storage;

#[tokio::test]
async fn a_model_directory_lands_under_its_url_and_replaces_what_was_there() {
    let s3 = S3Server::start("aml-push").expect("moto");
    let env = s3.aml_env("aml-push");
    let bucket = Storage::open("s3://aml-push", &s3.options()).expect("s3");
    let cli = Cli::new(env!("CARGO_BIN_EXE_aml"));
    let temp = tempfile::tempdir().expect("tempdir");
    let model = temp.path().join("tiny");
    let model_arg = model.to_str().expect("UTF-8");
    let run = |args: &[&str]| {
        let output = cli.run(args, &env);
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, text) = run(&["model", "init-tiny", "--out", model_arg]);
    assert!(ok, "{text}");
    bucket
        .put("models/base/stale.bin", "old".into())
        .await
        .expect("put");

    let (ok, text) = run(&["model", "push", model_arg, "s3://aml-push/models/base"]);
    assert!(ok, "{text}");
    assert!(text.contains("1 objects there before removed"), "{text}");
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        let local = std::fs::read(model.join(file)).expect("local file");
        let stored = bucket
            .get(&format!("models/base/{file}"))
            .await
            .expect("uploaded");
        assert_eq!(stored.as_ref(), local.as_slice(), "{file}");
    }
    assert!(
        !bucket
            .exists("models/base/stale.bin")
            .await
            .expect("exists")
    );

    let (ok, text) = run(&[
        "model",
        "push",
        temp.path().to_str().unwrap(),
        "s3://aml-push/x",
    ]);
    assert!(!ok && text.contains("neither config.json"), "{text}");
    let (ok, text) = run(&["model", "push", model_arg, "s3://elsewhere/models/base"]);
    assert!(
        !ok && text.contains("not under the configured storage"),
        "{text}"
    );
}
