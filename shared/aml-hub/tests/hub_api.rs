//! The Hub client against a local server that speaks the Hub's API: model info, file
//! resolution with a bearer token (gated repositories), repository creation, preupload, the
//! LFS batch API with upload and verify, and the NDJSON commit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aml_hub::{HubClient, HubError};
use aml_integration_tests::mock_http::{MockServer, Reply, Seen};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use sha2::{Digest, Sha256};

const TOKEN: &str = "hf_test_token";

fn reply(status: u16, body: serde_json::Value) -> Reply {
    (status, Vec::new(), body.to_string())
}

/// A gated model repository `meta-llama/Tiny-Instruct` at commit `c0ffee`.
fn model_files() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("config.json", r#"{"model_type":"llama"}"#),
        ("tokenizer.json", r#"{"version":"1.0"}"#),
        ("model-00001-of-00002.safetensors", "weights one"),
        ("model-00002-of-00002.safetensors", "weights two"),
        ("model.safetensors.index.json", r#"{"weight_map":{}}"#),
        ("pytorch_model.bin", "pickled weights"),
        ("original/consolidated.00.pth", "meta format"),
    ])
}

fn authorised(request: &Seen) -> bool {
    request
        .headers
        .contains(&("authorization".to_owned(), format!("Bearer {TOKEN}")))
}

fn hub(request: &Seen) -> Reply {
    if !authorised(request) {
        return reply(
            401,
            json!({"error": "Access to model meta-llama/Tiny-Instruct is restricted."}),
        );
    }
    let files = model_files();
    if request.path == "/api/models/meta-llama/Tiny-Instruct/revision/main" {
        let siblings: Vec<_> = files
            .keys()
            .map(|name| json!({"rfilename": name}))
            .collect();
        return reply(
            200,
            json!({"id": "meta-llama/Tiny-Instruct", "sha": "c0ffee", "siblings": siblings}),
        );
    }
    if let Some(file) = request
        .path
        .strip_prefix("/meta-llama/Tiny-Instruct/resolve/c0ffee/")
        && let Some(content) = files.get(file)
    {
        return (200, Vec::new(), (*content).to_owned());
    }
    reply(404, json!({"error": "Entry not found"}))
}

#[tokio::test]
async fn downloads_a_gated_snapshot_with_the_token_and_reuses_it() {
    let server = MockServer::start_with(Arc::new(hub)).await;
    let cache = tempfile::tempdir().unwrap();
    let anonymous = HubClient::new(&server.url, None).unwrap();
    let refused = anonymous
        .download_model("meta-llama/Tiny-Instruct", "main", cache.path())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, HubError::Unauthorized { status: 401, .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("HF_TOKEN"), "{refused}");

    let environment = vec![
        ("HF_ENDPOINT".to_owned(), server.url.clone()),
        ("HF_TOKEN".to_owned(), TOKEN.to_owned()),
    ];
    let client = HubClient::from_environment(&environment).unwrap();
    let folder = client
        .download_model("meta-llama/Tiny-Instruct", "main", cache.path())
        .await
        .unwrap();
    assert_eq!(folder, cache.path().join("meta-llama/Tiny-Instruct/c0ffee"));
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".complete",
            "config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "tokenizer.json"
        ],
        "weights in safetensors and the top-level JSON only"
    );
    assert_eq!(
        std::fs::read_to_string(folder.join("model-00002-of-00002.safetensors")).unwrap(),
        "weights two"
    );
    let requests = server.seen().len();
    client
        .download_model("meta-llama/Tiny-Instruct", "main", cache.path())
        .await
        .unwrap();
    assert_eq!(
        server.seen().len(),
        requests + 1,
        "a finished snapshot is only re-checked"
    );

    let missing = client
        .download_model("meta-llama/Llama-3.3-8B-Instruct", "main", cache.path())
        .await
        .unwrap_err();
    assert!(matches!(missing, HubError::NotFound { .. }), "{missing}");
    assert!(matches!(
        client
            .download_model("not a repo", "main", cache.path())
            .await,
        Err(HubError::RepoId(_))
    ));
}

/// The Hub's write side: keeps LFS uploads and the last commit's lines.
#[derive(Default)]
struct WriteSide {
    repos: Vec<String>,
    lfs: BTreeMap<String, Vec<u8>>,
    verified: Vec<String>,
    commit: Vec<serde_json::Value>,
}

fn write_side(url: String, state: Arc<Mutex<WriteSide>>) -> impl Fn(&Seen) -> Reply + Send + Sync {
    move |request: &Seen| {
        // LFS objects go to storage with the batch answer's headers, never the Hub token.
        let to_storage = request.path.starts_with("/lfs-store/");
        let ticket = ("x-upload-ticket".to_owned(), "t1".to_owned());
        if to_storage && (!request.headers.contains(&ticket) || authorised(request)) {
            return reply(
                403,
                json!({"error": "storage wants the ticket, not the Hub token"}),
            );
        }
        if !to_storage && !authorised(request) {
            return reply(401, json!({"error": "Invalid credentials"}));
        }
        let mut state = state.lock().expect("mock hub");
        let path = request.path.as_str();
        match (request.method.as_str(), path) {
            ("POST", "/api/repos/create") => {
                let name = format!(
                    "{}/{}",
                    request.body["organization"].as_str().expect("mock hub"),
                    request.body["name"].as_str().expect("mock hub")
                );
                if state.repos.contains(&name) {
                    return reply(409, json!({"error": "You already created this model repo"}));
                }
                state.repos.push(name.clone());
                reply(200, json!({"url": format!("{url}/{name}")}))
            }
            ("POST", "/api/models/bank-ml/aml-screening/preupload/main") => {
                let files: Vec<_> = request.body["files"]
                    .as_array()
                    .expect("mock hub")
                    .iter()
                    .map(|file| {
                        let path = file["path"].as_str().expect("mock hub");
                        let mode = if path.ends_with(".safetensors") {
                            "lfs"
                        } else {
                            "regular"
                        };
                        json!({"path": path, "uploadMode": mode})
                    })
                    .collect();
                reply(200, json!({ "files": files }))
            }
            ("POST", "/bank-ml/aml-screening.git/info/lfs/objects/batch") => {
                let body: serde_json::Value =
                    serde_json::from_slice(&request.raw).expect("mock hub");
                let object = &body["objects"][0];
                let oid = object["oid"].as_str().expect("mock hub");
                reply(
                    200,
                    json!({"objects": [{"oid": oid, "size": object["size"], "actions": {
                        "upload": {"href": format!("{url}/lfs-store/{oid}"), "header": {"x-upload-ticket": "t1"}},
                        "verify": {"href": format!("{url}/lfs-verify"), "header": {}}
                    }}]}),
                )
            }
            ("PUT", _) if path.starts_with("/lfs-store/") => {
                let oid = path.trim_start_matches("/lfs-store/").to_owned();
                state.lfs.insert(oid, request.raw.clone());
                (200, Vec::new(), String::new())
            }
            ("POST", "/lfs-verify") => {
                state
                    .verified
                    .push(request.body["oid"].as_str().expect("mock hub").to_owned());
                reply(200, json!({}))
            }
            ("POST", "/api/models/bank-ml/aml-screening/commit/main") => {
                state.commit = String::from_utf8(request.raw.clone())
                    .expect("mock hub")
                    .lines()
                    .map(|line| serde_json::from_str(line).expect("mock hub"))
                    .collect();
                reply(
                    200,
                    json!({"commitUrl": format!("{url}/bank-ml/aml-screening/commit/1a2b"), "commitOid": "1a2b"}),
                )
            }
            _ => reply(
                404,
                json!({"error": format!("no route {} {path}", request.method)}),
            ),
        }
    }
}

#[tokio::test]
async fn pushes_a_training_run_in_one_commit_with_weights_through_lfs() {
    let state = Arc::new(Mutex::new(WriteSide::default()));
    let slot: Arc<Mutex<String>> = Arc::default();
    let url_slot = Arc::clone(&slot);
    let shared = Arc::clone(&state);
    let server = MockServer::start_with(Arc::new(move |request: &Seen| {
        let url = url_slot.lock().unwrap().clone();
        write_side(url, Arc::clone(&shared))(request)
    }))
    .await;
    *slot.lock().unwrap() = server.url.clone();

    let run = tempfile::tempdir().unwrap();
    let write = |path: &str, bytes: &[u8]| {
        let path = run.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    let weights: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    write("adapter/adapter_model.safetensors", &weights);
    write("adapter/adapter_config.json", br#"{"r": 16}"#);
    write("README.md", b"# AML screening adapter\n");
    write("trainer_state.json", br#"{"log_history": []}"#);
    write("checkpoint-2/optimizer.pt", b"local only");
    write(".lock", b"local only");

    let client = HubClient::new(&server.url, Some(TOKEN.to_owned())).unwrap();
    let commit = client
        .push_folder("bank-ml/aml-screening", run.path(), "Curriculum LoRA run")
        .await
        .unwrap();
    assert_eq!(
        commit,
        format!("{}/bank-ml/aml-screening/commit/1a2b", server.url)
    );

    {
        let state = state.lock().unwrap();
        assert_eq!(state.repos, ["bank-ml/aml-screening"]);
        let oid: String = Sha256::digest(&weights)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            state.lfs.get(&oid),
            Some(&weights),
            "the weights went through LFS, byte for byte"
        );
        assert_eq!(state.verified, std::slice::from_ref(&oid));
        assert_eq!(state.commit[0]["value"]["summary"], "Curriculum LoRA run");
        let mut committed = BTreeMap::new();
        for line in &state.commit[1..] {
            let path = line["value"]["path"].as_str().unwrap().to_owned();
            committed.insert(path, line.clone());
        }
        assert_eq!(
            committed.keys().collect::<Vec<_>>(),
            [
                "README.md",
                "adapter/adapter_config.json",
                "adapter/adapter_model.safetensors",
                "trainer_state.json"
            ],
            "checkpoints and hidden files stay local"
        );
        let lfs_line = &committed["adapter/adapter_model.safetensors"];
        assert_eq!(lfs_line["key"], "lfsFile");
        assert_eq!(lfs_line["value"]["oid"], oid.as_str());
        let readme = &committed["README.md"];
        assert_eq!(readme["key"], "file");
        assert_eq!(
            BASE64
                .decode(readme["value"]["content"].as_str().unwrap())
                .unwrap(),
            b"# AML screening adapter\n"
        );
    }

    client
        .push_folder("bank-ml/aml-screening", run.path(), "again")
        .await
        .expect("an existing repository is fine");
    let refused = HubClient::new(&server.url, Some("hf_wrong".to_owned()))
        .unwrap()
        .push_folder("bank-ml/aml-screening", run.path(), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(refused, HubError::Unauthorized { .. }),
        "{refused}"
    );
}
