//! The Hub client against a local server that speaks the Hub's API: model info, file
//! resolution with a bearer token (gated repositories), repository creation, preupload, the
//! LFS batch API with upload and verify (single PUT, and multipart for large objects), and
//! the NDJSON commit.

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

/// Objects over this size go through the multipart transfer, in parts of `PART_BYTES`.
const MULTIPART_ABOVE: u64 = 6_000;
const PART_BYTES: u64 = 4_000;

/// The Hub's write side: keeps LFS uploads, multipart parts and the last commit's lines.
#[derive(Default)]
struct WriteSide {
    repos: Vec<String>,
    lfs: BTreeMap<String, Vec<u8>>,
    parts: BTreeMap<(String, u64), Vec<u8>>,
    multipart: Vec<String>,
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
        // Part URLs and the completion URL are presigned: no token goes there either.
        let presigned =
            request.path.starts_with("/lfs-part/") || request.path.starts_with("/lfs-complete/");
        if presigned && authorised(request) {
            return reply(403, json!({"error": "presigned URLs take no Hub token"}));
        }
        let declared = request
            .headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, value)| value.parse::<usize>().ok());
        if request.method == "PUT" && declared != Some(request.raw.len()) {
            return reply(
                411,
                json!({"error": "storage wants the exact content-length"}),
            );
        }
        if !to_storage && !presigned && !authorised(request) {
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
                let size = object["size"].as_u64().expect("mock hub");
                let multipart_offered = body["transfers"]
                    .as_array()
                    .is_some_and(|transfers| transfers.contains(&json!("multipart")));
                let upload = if size > MULTIPART_ABOVE && multipart_offered {
                    let mut header = serde_json::Map::new();
                    header.insert("chunk_size".to_owned(), json!(PART_BYTES.to_string()));
                    for part in 1..=size.div_ceil(PART_BYTES) {
                        header.insert(
                            format!("{part:05}"),
                            json!(format!("{url}/lfs-part/{oid}/{part}")),
                        );
                    }
                    json!({"href": format!("{url}/lfs-complete/{oid}"), "header": header})
                } else {
                    json!({"href": format!("{url}/lfs-store/{oid}"), "header": {"x-upload-ticket": "t1"}})
                };
                reply(
                    200,
                    json!({"objects": [{"oid": oid, "size": size, "actions": {
                        "upload": upload,
                        "verify": {"href": format!("{url}/lfs-verify"), "header": {}}
                    }}]}),
                )
            }
            ("PUT", _) if path.starts_with("/lfs-store/") => {
                let oid = path.trim_start_matches("/lfs-store/").to_owned();
                state.lfs.insert(oid, request.raw.clone());
                (200, Vec::new(), String::new())
            }
            ("PUT", _) if path.starts_with("/lfs-part/") => {
                let (oid, part) = path
                    .trim_start_matches("/lfs-part/")
                    .split_once('/')
                    .expect("mock hub");
                let part: u64 = part.parse().expect("mock hub");
                state
                    .parts
                    .insert((oid.to_owned(), part), request.raw.clone());
                let etag = ("etag".to_owned(), format!("\"etag-{part}\""));
                (200, vec![etag], String::new())
            }
            ("POST", _) if path.starts_with("/lfs-complete/") => {
                let oid = path.trim_start_matches("/lfs-complete/").to_owned();
                assert_eq!(request.body["oid"], oid.as_str());
                let mut object = Vec::new();
                for (index, part) in request.body["parts"]
                    .as_array()
                    .expect("mock hub")
                    .iter()
                    .enumerate()
                {
                    let number = index as u64 + 1;
                    assert_eq!(part["partNumber"], number);
                    assert_eq!(part["etag"], format!("\"etag-{number}\""));
                    object.extend(
                        state
                            .parts
                            .get(&(oid.clone(), number))
                            .expect("every part was uploaded"),
                    );
                }
                state.multipart.push(oid.clone());
                state.lfs.insert(oid, object);
                reply(200, json!({}))
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
    // Merged weights large enough for the multipart transfer: 3 parts, the last one short.
    let merged: Vec<u8> = (0..10_001u32).map(|i| (i * 13 % 241) as u8).collect();
    write("merged/model-00001-of-00001.safetensors", &merged);
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
        let sha = |bytes: &[u8]| -> String {
            Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let oid = sha(&weights);
        assert_eq!(
            state.lfs.get(&oid),
            Some(&weights),
            "the weights went through LFS, byte for byte"
        );
        let merged_oid = sha(&merged);
        assert_eq!(
            state.lfs.get(&merged_oid),
            Some(&merged),
            "the merged weights went through the multipart transfer, byte for byte"
        );
        assert_eq!(state.multipart, std::slice::from_ref(&merged_oid));
        assert_eq!(state.parts.len(), 3);
        assert_eq!(state.verified, [oid.clone(), merged_oid.clone()]);
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
                "merged/model-00001-of-00001.safetensors",
                "trainer_state.json"
            ],
            "checkpoints and hidden files stay local"
        );
        let lfs_line = &committed["adapter/adapter_model.safetensors"];
        assert_eq!(lfs_line["key"], "lfsFile");
        assert_eq!(lfs_line["value"]["oid"], oid.as_str());
        let merged_line = &committed["merged/model-00001-of-00001.safetensors"];
        assert_eq!(merged_line["value"]["oid"], merged_oid.as_str());
        assert_eq!(merged_line["value"]["size"], 10_001);
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
