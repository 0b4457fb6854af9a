//! What the batch tests share: synthetic alerts of three banks, a calibration for a tiny
//! model, the configuration, worker processes and the scheduler in the test's runtime.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use aml_core::cascade::{
    Calibration, CalibrationTarget, CascadeItem, Fingerprints, calibrate_cascade,
};
use aml_core::rng::SeededRng;
use aml_core::{Difficulty, Label};
use aml_proto::v1::Alert;
use aml_runtime::AmlConfig;
use aml_synth::Synthesizer;

pub const BANKS: [&str; 3] = ["alpha", "bravo", "charlie"];

/// `total` synthetic alerts spread over [`BANKS`].
pub fn alerts(total: usize) -> Vec<Alert> {
    aml_synth::bank_alerts(
        &Synthesizer::default(),
        &mut SeededRng::new(21),
        &BANKS,
        total,
    )
    .into_iter()
    .map(|(alert, _)| alert)
    .collect()
}

/// A calibration for `model_dir` under the built-in policy, written to `path`: the labelled
/// alerts' prescreen scores with one constant model score, so the cutoff it chooses is the
/// highest that keeps recall certified (`model_sha256` overrides the model's fingerprint).
pub fn write_calibration(path: &Path, model_dir: &Path, model_sha256: Option<&str>) -> Calibration {
    let synthesizer = Synthesizer::default();
    let mut rng = SeededRng::new(5);
    let items: Vec<CascadeItem> = (0..1200)
        .map(|index| {
            let label = Label::ALL[(index / 3) % 3];
            let alert = synthesizer
                .case(&mut rng, Difficulty::ALL[index % 3], label)
                .alert;
            CascadeItem {
                prescreen: Some(aml_prescreen::prescreen_alert(&alert).score),
                model: Some(0.5),
                positive: label.is_positive(),
            }
        })
        .collect();
    let target = CalibrationTarget {
        recall: 0.99,
        confidence: 0.95,
    };
    let mut calibration = calibrate_cascade(&items, target).expect("calibrated");
    calibration.sha256 = Fingerprints {
        model: Some(match model_sha256 {
            Some(sha256) => sha256.to_owned(),
            None => aml_storage::fingerprint_dir(model_dir).expect("fingerprint"),
        }),
        adapter: None,
        merged: None,
        policy: Some(aml_core::digest::sha256_hex(
            aml_core::policy::DEFAULT_POLICY.as_bytes(),
        )),
        labelled_set: None,
    };
    std::fs::write(path, serde_json::to_vec(&calibration).expect("json")).expect("written");
    calibration
}

/// The configuration of a batch test on `nats_url` (comma-separated for a cluster).
pub fn config(nats_url: &str, storage_dir: &Path, model_dir: &Path) -> AmlConfig {
    let mut config = AmlConfig::default();
    config.nats.url = nats_url.to_owned();
    config.storage.url = format!("file://{}", storage_dir.display());
    config.bus.ack_wait_secs = 4;
    config.scoring.banks = BANKS.iter().map(|bank| (*bank).to_owned()).collect();
    config.scoring.shard_size = 400;
    config.scoring.schedule = String::new();
    config.scoring.model_url = model_dir.display().to_string();
    config.scoring.max_alert_bytes = 16 * 1024;
    config.scoring.shard_timeout_secs = 120;
    config.scoring.batch_timeout_secs = 900;
    config
}

pub fn spawn_worker(config: &AmlConfig, id: &str, extra_env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_inference-worker"));
    let s3 = &config.storage.s3;
    if let Some(endpoint) = &s3.endpoint {
        command
            .env("AML_STORAGE__S3__ENDPOINT", endpoint)
            .env("AML_STORAGE__S3__REGION", "us-east-1")
            .env("AML_STORAGE__S3__ACCESS_KEY_ID", "test-key")
            .env("AML_STORAGE__S3__SECRET_ACCESS_KEY", "test-secret")
            .env("AML_STORAGE__S3__ALLOW_HTTP", "true");
    }
    command
        .env("AML_NATS__URL", &config.nats.url)
        .env("AML_STORAGE__URL", &config.storage.url)
        .env(
            "AML_BUS__ACK_WAIT_SECS",
            config.bus.ack_wait_secs.to_string(),
        )
        .env("AML_BUS__CONCURRENCY", "1")
        .env("AML_SCORING__WORKER_BATCH_SIZE", "32")
        .envs(extra_env.iter().copied())
        .args(["--worker-id", id])
        .arg("--model-cache")
        .arg(std::env::temp_dir().join(format!("aml-model-cache-{}-{id}", std::process::id())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("worker starts")
}

/// The scheduler service running in this test's runtime.
pub struct InProcessScheduler {
    shutdown: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl InProcessScheduler {
    pub fn start(config: &AmlConfig) -> Self {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (config, token) = (config.clone(), shutdown.clone());
        let task =
            tokio::spawn(
                async move { aml_scheduler::service::run_scheduler(&config, token).await },
            );
        InProcessScheduler { shutdown, task }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("joined").expect("scheduler ran");
    }
}

/// Publishes `alerts` bank by bank, each with its id as message id; returns them per bank.
pub async fn push_by_bank<'a>(
    publisher: &aml_bus::Publisher,
    alerts: &'a [Alert],
) -> Vec<(&'static str, Vec<&'a Alert>)> {
    let mut pushed = Vec::new();
    for bank in BANKS {
        let mine: Vec<&Alert> = alerts.iter().filter(|alert| alert.bank == bank).collect();
        let summary = publisher
            .publish_all(
                &aml_bus::topology::subjects::alerts(bank),
                mine.iter().map(|alert| (alert.alert_id.as_str(), *alert)),
            )
            .await
            .expect("published");
        assert_eq!(summary.stored as usize, mine.len());
        pushed.push((bank, mine));
    }
    pushed
}
