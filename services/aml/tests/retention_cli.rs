//! The PII retention controls, as an operator uses them: `aml setup` creates the streams with
//! the configured age and size limits and brings existing streams to new ones (read back from
//! a real nats-server); `aml retention` lists what object storage holds past
//! `storage.retention_days`, deletes it with `--apply` bank by bank, and keeps the batch
//! records and dedup indexes until `scoring.dedup_days`, on files and on S3 (moto).

use std::time::Duration;

use aml_batch::dedup::{encode_index, id_hash};
use aml_batch::layout;
use aml_bus::topology::{ALERTS_STREAM, DLQ_STREAM, EVENTS_STREAM, JOBS_STREAM};
use aml_integration_tests::cli::Cli;
use aml_integration_tests::{NatsServer, S3Server};
use aml_storage::Storage;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[tokio::test]
async fn setup_gives_new_and_existing_streams_the_configured_limits() {
    let nats = NatsServer::start().expect("nats-server");
    let cli = Cli::new(env!("CARGO_BIN_EXE_aml"));
    let url = nats.url();
    let setup = |envs: &[(&str, &str)]| {
        let mut all = vec![("AML_NATS__URL", url.as_str())];
        all.extend_from_slice(envs);
        let output = cli.run(&["setup"], &all);
        assert!(
            output.status.success(),
            "aml setup: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let jetstream = async_nats::jetstream::new(nats.connect().await.expect("connect"));
    let config_of = |name: &'static str| {
        let jetstream = jetstream.clone();
        async move {
            jetstream
                .get_stream(name)
                .await
                .expect("stream")
                .info()
                .await
                .expect("info")
                .config
                .clone()
        }
    };

    setup(&[]);
    let alerts = config_of(ALERTS_STREAM).await;
    assert_eq!(
        alerts.max_age,
        DAY * 35,
        "bus.alerts_max_age_days by default"
    );
    assert_eq!(alerts.duplicate_window, DAY);
    let events = config_of(EVENTS_STREAM).await;
    assert_eq!(events.max_age, DAY * 90);
    assert_eq!(events.max_bytes, 1 << 30);
    let dlq = config_of(DLQ_STREAM).await;
    assert_eq!(dlq.max_age, DAY * 35);
    assert_eq!(dlq.max_bytes, 1 << 30);
    assert_eq!(config_of(JOBS_STREAM).await.max_age, Duration::ZERO);

    setup(&[
        ("AML_BUS__ALERTS_MAX_AGE_DAYS", "7"),
        ("AML_BUS__EVENTS_MAX_BYTES", "50000000"),
        ("AML_BUS__DLQ_MAX_AGE_DAYS", "14"),
    ]);
    let alerts = config_of(ALERTS_STREAM).await;
    assert_eq!(alerts.max_age, DAY * 7, "the existing stream was updated");
    assert_eq!(config_of(EVENTS_STREAM).await.max_bytes, 50_000_000);
    assert_eq!(config_of(DLQ_STREAM).await.max_age, DAY * 14);
}

/// A batch's objects as a cut and the workers leave them, for `banks`.
async fn write_batch(storage: &Storage, batch: &str, banks: &[&str], created_unix_ms: i64) {
    for bank in banks {
        for key in [
            layout::bank_prefix(bank, batch),
            layout::shard(bank, batch, 0),
            layout::results(bank, batch, 0),
            layout::cleared(bank, batch),
        ] {
            storage.put(&key, "x".into()).await.expect("put");
        }
        let index = encode_index(vec![id_hash(&format!("{bank}-1"))]);
        storage
            .put(&layout::dedup_index(bank, batch, created_unix_ms), index)
            .await
            .expect("index");
    }
    for key in [layout::manifest(batch), layout::report(batch)] {
        storage.put(&key, "{}".into()).await.expect("put");
    }
}

fn day_from_now(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// Runs the retention story against `storage`, reached by the CLI with `envs`.
async fn retention_story<V: AsRef<std::ffi::OsStr>>(storage: &Storage, envs: &[(&str, V)]) {
    let cli = Cli::new(env!("CARGO_BIN_EXE_aml"));
    let now = chrono::Utc::now().timestamp_millis();
    write_batch(storage, "week-1", &["alpha", "bravo"], now).await;
    let retention = |args: &[&str]| {
        let mut all = vec!["retention"];
        all.extend_from_slice(args);
        let output = cli.run(&all, envs);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "aml {}: {}{stdout}",
            all.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let everything = storage.list("").await.expect("list");
    assert_eq!(everything.len(), 2 * 5 + 2);

    let today = retention(&["--dry-run"]);
    assert!(
        today.contains("0 objects (0 bytes) past retention"),
        "{today}"
    );

    let in_40_days = day_from_now(40);
    let listed = retention(&["--as-of", &in_40_days]);
    assert!(
        listed.contains("8 objects"),
        "both banks' batch folders:\n{listed}"
    );
    assert!(
        listed.contains("alpha") && listed.contains("bravo"),
        "{listed}"
    );
    assert_eq!(
        storage.list("").await.expect("list"),
        everything,
        "a dry run deletes nothing"
    );

    let applied = retention(&["--apply", "--bank", "alpha", "--as-of", &in_40_days]);
    assert!(applied.contains("deleted 4 objects"), "{applied}");
    let left = storage.list("").await.expect("list");
    assert!(
        left.iter()
            .all(|key| !key.starts_with("banks/alpha/batches/")),
        "{left:?}"
    );
    assert!(
        left.contains(&layout::shard("bravo", "week-1", 0)),
        "{left:?}"
    );
    assert!(
        left.contains(&layout::manifest("week-1")),
        "records stay for dedup_days"
    );
    assert!(
        left.iter()
            .any(|key| key.starts_with(&layout::dedup_prefix("alpha"))),
        "the dedup index stays for dedup_days: {left:?}"
    );

    let applied = retention(&["--apply", "--as-of", &day_from_now(401)]);
    assert!(
        applied.contains("deleted 8 objects"),
        "bravo's folder, two indexes, two records:\n{applied}"
    );
    assert!(storage.list("").await.expect("list").is_empty());

    let refused = cli.run(&["retention", "--as-of", "next tuesday"], envs);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--as-of `next tuesday`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_lists_then_deletes_what_is_past_it_on_files_and_s3() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("file://{}", dir.path().display());
    let files = Storage::open(&url, &Default::default()).expect("files");
    retention_story(&files, &[("AML_STORAGE__URL", url.as_str())]).await;

    let s3 = S3Server::start("aml-retention").expect("moto");
    let bucket = Storage::open("s3://aml-retention", &s3.options()).expect("s3");
    retention_story(&bucket, &s3.aml_env("aml-retention")).await;
}
