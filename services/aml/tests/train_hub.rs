//! The user's command line with everything it names working against local servers that
//! speak the real wire formats: `--model_id meta-llama/Llama-3.3-8B-Instruct` downloaded from
//! a Hub (with HF_TOKEN), `--judge_provider anthropic` grading each phase through the
//! Messages API, and `--push_to_hub` committing the run to a model repository.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aml_integration_tests::cli::{Cli, SMALL_CURRICULUM, train_command};
use aml_integration_tests::mock_http::{MockServer, Seen};
use serde_json::{Value, json};

const MODEL: &str = "meta-llama/Llama-3.3-8B-Instruct";

type BinaryReply = (u16, Vec<(String, String)>, Vec<u8>);

fn json_reply(status: u16, body: Value) -> BinaryReply {
    (status, Vec::new(), body.to_string().into_bytes())
}

/// The Hub (model files from `model_dir`, a write side recording the commit) and the
/// Anthropic Messages API on one local server.
fn services(model_dir: PathBuf, commit: Arc<Mutex<Vec<Value>>>) -> impl Fn(&Seen) -> BinaryReply {
    move |request: &Seen| {
        let path = request.path.as_str();
        if path == "/v1/messages" {
            let key = ("x-api-key".to_owned(), "sk-ant-test".to_owned());
            if !request.headers.contains(&key) {
                return json_reply(401, json!({"error": {"message": "invalid x-api-key"}}));
            }
            let text = r#"{"sufficiency": 1, "fabricated": null}"#;
            return json_reply(
                200,
                json!({"content": [{"type": "text", "text": text}], "stop_reason": "end_turn"}),
            );
        }
        let token = ("authorization".to_owned(), "Bearer hf_test".to_owned());
        if !request.headers.contains(&token) {
            return json_reply(401, json!({"error": "gated"}));
        }
        if path == format!("/api/models/{MODEL}/revision/main") {
            let siblings: Vec<Value> = std::fs::read_dir(&model_dir)
                .expect("model dir")
                .map(|entry| json!({"rfilename": entry.expect("entry").file_name().to_string_lossy()}))
                .collect();
            return json_reply(200, json!({"sha": "5eed", "siblings": siblings}));
        }
        if let Some(file) = path.strip_prefix(&format!("/{MODEL}/resolve/5eed/")) {
            return match std::fs::read(model_dir.join(file)) {
                Ok(bytes) => (200, Vec::new(), bytes),
                Err(_) => json_reply(404, json!({"error": "Entry not found"})),
            };
        }
        match path {
            "/api/repos/create" => json_reply(200, json!({"url": "bank-ml/aml-llama33"})),
            "/api/models/bank-ml/aml-llama33/preupload/main" => {
                let files: Vec<Value> = request.body["files"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|file| json!({"path": file["path"], "uploadMode": "regular"}))
                    .collect();
                json_reply(200, json!({ "files": files }))
            }
            "/api/models/bank-ml/aml-llama33/commit/main" => {
                let lines = String::from_utf8_lossy(&request.raw)
                    .lines()
                    .filter_map(|line| serde_json::from_str(line).ok())
                    .collect();
                *commit.lock().expect("commit") = lines;
                json_reply(
                    200,
                    json!({"commitUrl": "https://hub.local/bank-ml/aml-llama33/commit/9"}),
                )
            }
            _ => json_reply(404, json!({"error": format!("no route {path}")})),
        }
    }
}

fn path(root: &Path, name: &str) -> String {
    root.join(name).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_model_llm_judge_and_push_as_the_user_wrote_them() {
    let root = tempfile::tempdir().expect("dir");
    let cli = Cli::new(env!("CARGO_BIN_EXE_aml"));
    let (model, data) = cli.tiny_model_and_data(root.path());
    let commit = Arc::new(Mutex::new(Vec::new()));
    let server = MockServer::start_binary(Arc::new(services(
        PathBuf::from(&model),
        Arc::clone(&commit),
    )))
    .await;
    let out = path(root.path(), "outputs/llama33-8b-aml-curriculum");
    let cache = path(root.path(), "hub-cache");
    let url = server.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        let mut args = train_command(MODEL, &data, &out);
        args.extend(SMALL_CURRICULUM);
        args.extend([
            "--judge_provider",
            "anthropic",
            "--run_judge",
            "true",
            "--push_to_hub",
            "true",
            "--hub_model_id",
            "bank-ml/aml-llama33",
            "--merge_lora",
            "false",
            "--judge_items",
            "6",
            "--judge_max_new_tokens",
            "8",
            "--hub_cache",
            &cache,
        ]);
        cli.run(
            &args,
            &[
                ("HF_ENDPOINT", url.as_str()),
                ("HF_TOKEN", "hf_test"),
                ("ANTHROPIC_API_KEY", "sk-ant-test"),
                ("ANTHROPIC_BASE_URL", url.as_str()),
            ],
        )
    })
    .await
    .expect("joined");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("pushed to the Hub: https://hub.local/bank-ml/aml-llama33/commit/9")
    );
    assert!(
        root.path()
            .join("hub-cache")
            .join(MODEL)
            .join("5eed/model.safetensors")
            .exists()
    );

    let seen = server.seen();
    let judged = seen
        .iter()
        .filter(|request| request.path == "/v1/messages")
        .count();
    assert!(
        judged >= 6,
        "the Anthropic judge graded the phases ({judged} calls)"
    );
    let run = root.path().join("outputs/llama33-8b-aml-curriculum");
    for phase in ["easy", "medium", "hard"] {
        let report: Value = serde_json::from_str(
            &std::fs::read_to_string(run.join(phase).join("eval_report.json")).expect("report"),
        )
        .expect("JSON");
        assert!(
            report["judge"].as_str().unwrap_or("").contains("anthropic"),
            "{}",
            report["judge"]
        );
        assert_eq!(report["judge_error_rate"], 0.0);
    }
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).expect("config"))
            .expect("JSON");
    assert_eq!(config["judge_provider"], "anthropic");
    assert!(
        !std::fs::read_to_string(run.join("config.json"))
            .expect("config")
            .contains("sk-ant-test")
    );

    let lines = commit.lock().expect("commit").clone();
    let paths: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["value"]["path"].as_str())
        .collect();
    for expected in [
        "adapter/adapter_model.safetensors",
        "adapter/adapter_config.json",
        "README.md",
        "trainer_state.json",
        "hard/eval_report.json",
    ] {
        assert!(paths.contains(&expected), "{expected} pushed: {paths:?}");
    }
    assert!(
        !paths.iter().any(|path| path.starts_with("checkpoint")),
        "{paths:?}"
    );
}
