//! A batch survives losing its broker, as a bank operator would meet it: 10,000 alerts of
//! three banks, the scheduler, two worker processes and `aml batch run` waiting for the
//! report, and mid-batch the broker is SIGKILLed and brought back: a single nats-server on
//! file storage, or the JOBS stream's leader in a 3-node cluster with R3 streams. Every
//! client re-creates its consumers and resumes; the batch completes with every alert scored
//! or cleared exactly once, and `aml batch run` prints the report.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aml_batch::layout;
use aml_bus::topology::JOBS_STREAM;
use aml_bus::{Publisher, Topology};
use aml_integration_tests::{NatsCluster, NatsServer};
use aml_model::tiny::init_tiny;
use aml_model::{Architecture, TinySpec};
use aml_proto::v1::BatchReport;
use aml_runtime::AmlConfig;
use aml_storage::Storage;

mod common;
use common::{
    BANKS, InProcessScheduler, alerts, config, push_by_bank, spawn_worker, write_calibration,
};

/// Both tests load both cores; they run one at a time.
static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ALERTS: usize = 10_000;

/// The `aml` binary cargo built beside this test (`cargo build --workspace --bins`).
fn aml_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target folder")
        .join("aml");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        binary.display()
    );
    binary
}

/// What the brokers are, and how one is lost.
enum Broker {
    Single(NatsServer),
    Cluster(NatsCluster),
}

impl Broker {
    fn url(&self) -> String {
        match self {
            Broker::Single(server) => server.url(),
            Broker::Cluster(cluster) => cluster.urls(),
        }
    }

    /// SIGKILLs the server (the JOBS stream's leader in a cluster); returns which.
    async fn kill(&mut self, topology: &Topology) -> usize {
        match self {
            Broker::Single(server) => {
                server.kill();
                0
            }
            Broker::Cluster(cluster) => {
                let info = topology
                    .jetstream()
                    .get_stream(JOBS_STREAM)
                    .await
                    .expect("JOBS")
                    .info()
                    .await
                    .expect("info")
                    .clone();
                let leader = info
                    .cluster
                    .and_then(|cluster| cluster.leader)
                    .expect("JOBS has a leader");
                let index = cluster.index_of(&leader).expect("a server of ours");
                cluster.server(index).kill();
                index
            }
        }
    }

    fn start_again(&mut self, index: usize) {
        match self {
            Broker::Single(server) => server.start_again(),
            Broker::Cluster(cluster) => cluster.server(index).start_again(),
        }
        .expect("the server starts again on its store");
    }
}

/// Streams with `config`'s replicas, retried while a new cluster elects its leaders.
async fn topology(config: &AmlConfig) -> Topology {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let client = aml_bus::connect(&config.nats, "test").await?;
            let topology = Topology::new(client).with_limits((&config.bus).into());
            topology.apply_limits().await?;
            Ok::<_, aml_bus::BusError>(topology)
        };
        match attempt.await {
            Ok(topology) => return topology,
            Err(error) if Instant::now() < deadline => {
                eprintln!("streams not ready yet: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => panic!("streams: {error}"),
        }
    }
}

fn spawn_batch_run(config: &AmlConfig, batch: &str) -> Child {
    Command::new(aml_binary())
        .env("AML_NATS__URL", &config.nats.url)
        .env("AML_BUS__REPLICAS", config.bus.replicas.to_string())
        .args(["batch", "run", "--id", batch, "--timeout-secs", "600"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("aml batch run starts")
}

async fn scored_shards(storage: &Storage, batch: &str) -> usize {
    let mut done = 0;
    for bank in BANKS {
        done += storage
            .list(&layout::results_prefix(bank, batch))
            .await
            .expect("results")
            .iter()
            .filter(|key| !key.ends_with("cleared.jsonl"))
            .count();
    }
    done
}

async fn a_batch_survives_losing(mut broker: Broker, replicas: usize) {
    let _alone = ALONE.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let storage_dir = dir.path().join("store");
    let model_dir = dir.path().join("model");
    init_tiny(&TinySpec::tiny(Architecture::Llama), &model_dir, 3).expect("tiny model");
    let mut config = config(&broker.url(), &storage_dir, &model_dir);
    config.bus.replicas = replicas;
    let calibration_file = dir.path().join("calibration.json");
    write_calibration(&calibration_file, &model_dir, None);
    config.scoring.calibration_url = calibration_file.display().to_string();
    let storage = Storage::open(&config.storage.url, &Default::default()).expect("storage");

    let topology = topology(&config).await;
    let scheduler = InProcessScheduler::start(&config);
    let publisher = Publisher::new(topology.jetstream().clone());
    let alerts = alerts(ALERTS);
    push_by_bank(&publisher, &alerts).await;
    let mut workers = vec![
        spawn_worker(&config, "w1", &[]),
        spawn_worker(&config, "w2", &[]),
    ];
    let batch = "broker-lost";
    let waiter = spawn_batch_run(&config, batch);

    let deadline = Instant::now() + Duration::from_secs(300);
    while scored_shards(&storage, batch).await < 2 {
        assert!(
            Instant::now() < deadline,
            "no shard scored within 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let killed = broker.kill(&topology).await;
    let scored_at_kill = scored_shards(&storage, batch).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.start_again(killed);

    let waited = tokio::task::spawn_blocking(move || waiter.wait_with_output())
        .await
        .expect("joined")
        .expect("aml batch run ran");
    for worker in &mut workers {
        worker.kill().ok();
        worker.wait().ok();
    }
    scheduler.stop().await;
    let stderr = String::from_utf8_lossy(&waited.stderr);
    assert!(waited.status.success(), "aml batch run failed: {stderr}");
    let report: BatchReport =
        serde_json::from_slice(&waited.stdout).expect("aml batch run prints the report");
    assert_eq!(report.alerts_in, ALERTS as u64, "{report:?}");
    assert_eq!(report.completion_rate, 1.0, "{report:?}");
    assert!(
        scored_at_kill < report.shards as usize,
        "the broker was lost mid-batch ({scored_at_kill} of {} shards scored)",
        report.shards
    );

    let results = results_of(&storage, batch).await;
    let mut seen = HashSet::new();
    for result in &results {
        assert!(
            seen.insert(result.alert_id.clone()),
            "{} twice",
            result.alert_id
        );
    }
    assert_eq!(seen.len(), ALERTS, "every alert has exactly one result");
    println!(
        "{} shards, {} scored at the kill, {} republished; {} alerts/s",
        report.shards, scored_at_kill, report.shards_republished, report.alerts_per_s
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_server_killed_and_restarted_mid_batch_loses_no_alert() {
    let server = NatsServer::start().expect("nats-server");
    a_batch_survives_losing(Broker::Single(server), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_losing_the_jobs_leader_mid_batch_loses_no_alert() {
    let cluster = NatsCluster::start(3).expect("three nats-servers");
    a_batch_survives_losing(Broker::Cluster(cluster), 3).await;
}

/// Every result of `batch`, all banks: scored shards and cleared alerts.
pub async fn results_of(
    storage: &aml_storage::Storage,
    batch: &str,
) -> Vec<aml_proto::v1::ScoreResult> {
    let mut results = Vec::new();
    for bank in BANKS {
        for key in storage
            .list(&aml_batch::layout::results_prefix(bank, batch))
            .await
            .expect("results")
        {
            results.extend(storage.get_jsonl(&key).await.expect("jsonl"));
        }
    }
    results
}
