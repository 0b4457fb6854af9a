//! Work-queue delivery through a real JetStream server and real worker processes:
//! nothing lost, nothing duplicated, with a worker killed mid-run or shut down gracefully.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aml_bus::topology::subjects;
use aml_bus::{ConsumerSpec, Publisher, Topology};
use aml_integration_tests::{NatsServer, job_id, scoring_job, wait_until};
use aml_proto::v1::ScoringJob;

fn spawn_worker(
    nats: &NatsServer,
    storage_dir: &Path,
    log: &Path,
    concurrency: usize,
    work_ms: u64,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_bus-test-worker"))
        .args(["--nats-url", &nats.url()])
        .args([
            "--storage-url",
            &format!("file://{}", storage_dir.display()),
        ])
        .arg("--log")
        .arg(log)
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--ack-wait-ms", "2000"])
        .args(["--work-ms", &work_ms.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("worker starts")
}

fn terminate(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

fn result_count(storage_dir: &Path) -> usize {
    std::fs::read_dir(storage_dir.join("results"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
                .count()
        })
        .unwrap_or(0)
}

fn result_ids(storage_dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(storage_dir.join("results"))
        .expect("results folder")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect()
}

fn handled_counts(logs: &[std::path::PathBuf]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for id in text.lines() {
            *counts.entry(id.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

async fn publish_jobs(nats: &NatsServer, count: u32) -> Vec<String> {
    let topology = Topology::new(nats.connect().await.expect("connects"));
    topology.ensure_streams().await.expect("streams");
    let jobs: Vec<ScoringJob> = (0..count)
        .map(|shard| scoring_job("batch", shard, 1024))
        .collect();
    let ids: Vec<String> = jobs.iter().map(job_id).collect();
    let summary = Publisher::new(topology.jetstream().clone())
        .publish_all(
            subjects::SCORE,
            ids.iter().map(String::as_str).zip(jobs.iter()),
        )
        .await
        .expect("published");
    assert_eq!(summary.stored, u64::from(count));
    ids
}

async fn assert_queue_drained(nats: &NatsServer) {
    let topology = Topology::new(nats.connect().await.expect("connects"));
    let mut consumer = topology
        .consumer(&ConsumerSpec::inference_worker(), Duration::from_secs(2))
        .await
        .expect("consumer");
    let mut outstanding = (u64::MAX, usize::MAX);
    for _ in 0..100 {
        let info = consumer.info().await.expect("consumer info");
        outstanding = (info.num_pending, info.num_ack_pending);
        if outstanding == (0, 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("queue not drained: (pending, ack-pending) = {outstanding:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_jobs_survive_a_killed_worker() {
    let nats = NatsServer::start().expect("nats-server");
    let storage = tempfile::tempdir().expect("storage dir");
    let logs_dir = tempfile::tempdir().expect("logs dir");
    let ids = publish_jobs(&nats, 10_000).await;

    let logs: Vec<_> = (0..4)
        .map(|n| logs_dir.path().join(format!("worker-{n}.log")))
        .collect();
    let mut workers: Vec<Child> = logs
        .iter()
        .map(|log| spawn_worker(&nats, storage.path(), log, 8, 1))
        .collect();

    let started = wait_until(Duration::from_secs(60), || async {
        result_count(storage.path()) >= 1_500
    })
    .await;
    assert!(started, "workers made no progress");
    workers[0].kill().expect("SIGKILL worker 0");
    workers[0].wait().expect("worker 0 reaped");
    let killed_at = result_count(storage.path());
    assert!(
        killed_at < 10_000,
        "the kill must land mid-run, it landed after {killed_at}"
    );

    let finished = wait_until(Duration::from_secs(180), || async {
        result_count(storage.path()) >= 10_000
    })
    .await;
    for worker in workers.iter_mut().skip(1) {
        terminate(worker);
        assert!(worker.wait().expect("worker exits").success());
    }
    assert!(
        finished,
        "only {} of 10000 results",
        result_count(storage.path())
    );

    let expected: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(
        result_ids(storage.path()),
        expected,
        "each job exactly once in the results"
    );
    let handled = handled_counts(&logs);
    assert_eq!(handled.len(), 10_000, "every job was handled");
    assert_queue_drained(&nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_and_restart_loses_nothing() {
    let nats = NatsServer::start().expect("nats-server");
    let storage = tempfile::tempdir().expect("storage dir");
    let logs_dir = tempfile::tempdir().expect("logs dir");
    let ids = publish_jobs(&nats, 1_500).await;
    let first_log = logs_dir.path().join("first.log");
    let second_log = logs_dir.path().join("second.log");

    let mut first = spawn_worker(&nats, storage.path(), &first_log, 16, 20);
    let started = wait_until(Duration::from_secs(60), || async {
        result_count(storage.path()) >= 200
    })
    .await;
    assert!(started, "worker made no progress");
    terminate(&mut first);
    assert!(
        first.wait().expect("worker exits").success(),
        "graceful exit"
    );
    let after_first = result_count(storage.path());
    assert!(after_first < 1_500, "SIGTERM must land mid-run");
    let first_handled = handled_counts(std::slice::from_ref(&first_log));
    assert_eq!(
        first_handled.len(),
        after_first,
        "every result written was logged"
    );

    let mut second = spawn_worker(&nats, storage.path(), &second_log, 16, 0);
    let finished = wait_until(Duration::from_secs(120), || async {
        result_count(storage.path()) >= 1_500
    })
    .await;
    terminate(&mut second);
    assert!(second.wait().expect("worker exits").success());
    assert!(
        finished,
        "only {} of 1500 results",
        result_count(storage.path())
    );

    let handled = handled_counts(&[first_log, second_log]);
    assert_eq!(handled.len(), 1_500, "nothing lost");
    let twice: Vec<_> = handled.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        twice.is_empty(),
        "handled twice after a graceful stop: {twice:?}"
    );
    let expected: BTreeSet<String> = ids.into_iter().collect();
    assert_eq!(result_ids(storage.path()), expected);
    assert_queue_drained(&nats).await;
}
