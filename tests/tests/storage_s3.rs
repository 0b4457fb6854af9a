//! Object storage against a real S3-compatible server: signed put/get/list, multipart JSONL
//! that appears only when complete, and the URL's prefix applied to every key.

use aml_integration_tests::S3Server;
use aml_storage::{Storage, StorageError};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Row {
    id: u32,
    text: String,
}

#[tokio::test]
async fn s3_storage_round_trips_and_applies_the_prefix() {
    let server = S3Server::start("aml-test").expect("moto");
    let storage = Storage::open("s3://aml-test/banks/alpha", &server.options()).expect("open");
    storage
        .put_json("batches/b1/report.json", &serde_json::json!({"scored": 3}))
        .await
        .expect("put");
    let report: serde_json::Value = storage
        .get_json("batches/b1/report.json")
        .await
        .expect("get");
    assert_eq!(report["scored"], 3);

    let root = Storage::open("s3://aml-test", &server.options()).expect("open root");
    assert_eq!(
        root.list("").await.expect("list"),
        vec!["banks/alpha/batches/b1/report.json".to_owned()]
    );
    assert!(matches!(
        storage.get("batches/b1/missing.json").await,
        Err(StorageError::NotFound { .. })
    ));
}

#[tokio::test]
async fn multipart_jsonl_is_invisible_until_finished() {
    let server = S3Server::start("aml-test").expect("moto");
    let storage = Storage::open("s3://aml-test/datasets", &server.options()).expect("open");
    let text = "n".repeat(4096);
    let mut writer = storage.jsonl_writer("run/train.jsonl").expect("writer");
    for id in 0..3_000 {
        writer
            .write(&Row {
                id,
                text: text.clone(),
            })
            .await
            .expect("write");
        if id % 1_000 == 999 {
            assert!(
                !storage.exists("run/train.jsonl").await.expect("head"),
                "half-written object visible"
            );
        }
    }
    assert_eq!(writer.finish().await.expect("finish"), 3_000);
    let rows: Vec<Row> = storage.get_jsonl("run/train.jsonl").await.expect("read");
    assert_eq!(rows.len(), 3_000);
    assert_eq!(rows[2_999], Row { id: 2_999, text });
}
