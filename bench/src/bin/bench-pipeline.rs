//! End-to-end batch scoring on CPU: alerts pushed by two banks, a batch cut by the scheduler,
//! scored by one inference worker (in-process, same runtime code as the service) against a
//! real nats-server and file storage, with a small model (4 layers, hidden 256). Every alert
//! goes to the model (prescreen off) so the figure is the pipeline's. Reports alerts/s from
//! the BatchRequest to the report, and the share of that wall time spent outside the scoring
//! engine (broker, storage, serialisation, scheduling): target < 5%. Median of 3 batches.
//! Then the same with rationales for the escalated alerts (96 tokens at most, generated in
//! batches behind the shared prefix). Writes `target/bench/pipeline.json` with
//! `alerts_per_s`, `overhead_share` and the same under `rationales`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aml_batch::layout;
use aml_bench::{median, small_llama, write_json};
use aml_bus::topology::subjects;
use aml_bus::{ConsumerSpec, Publisher, Runner, RunnerSettings, Topology};
use aml_core::rng::SeededRng;
use aml_core::{Difficulty, Label};
use aml_inference_worker::{Backend, ScoreHandler, WorkerSettings};
use aml_integration_tests::NatsServer;
use aml_model::tiny::init_tiny;
use aml_proto::v1::{Alert, BatchReport, BatchRequest, ScoringJob};
use aml_runtime::AmlConfig;
use aml_storage::Storage;
use aml_synth::Synthesizer;
use clap::Parser;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Alerts per batch.
    #[arg(long, default_value_t = 2000)]
    alerts: usize,
    /// Alerts per shard.
    #[arg(long, default_value_t = 500)]
    shard_size: u32,
    /// Alerts per forward pass.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Batches timed; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Output JSON.
    #[arg(long, default_value = "target/bench/pipeline.json")]
    out: PathBuf,
}

/// What the timed batches of one mode gave.
struct Measured {
    rates: Vec<f64>,
    shares: Vec<f64>,
    model_seconds: Vec<f64>,
    escalated: Vec<u64>,
    /// The model scores of the last batch in 20 bins on [0, 1].
    histogram: Vec<u64>,
}

/// The escalation threshold that escalates about half the alerts of `histogram`: the upper
/// edge of the bin where the cumulative count reaches half.
fn median_threshold(histogram: &[u64]) -> f64 {
    let total: u64 = histogram.iter().sum();
    let mut seen = 0;
    for (index, count) in histogram.iter().enumerate() {
        seen += count;
        if 2 * seen >= total {
            return index as f64 / histogram.len() as f64;
        }
    }
    1.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tch::set_num_threads(2);
    let nats = NatsServer::start()?;
    let dir = tempfile::tempdir()?;
    let model_dir = dir.path().join("model");
    init_tiny(&small_llama(), &model_dir, 5)?;
    let off = measure(&args, &nats, dir.path(), None).await?;
    // Rationales for about half the alerts, as a batch with half of them escalated would have.
    let tau = median_threshold(&off.histogram);
    let on = measure(&args, &nats, dir.path(), Some(tau)).await?;
    let overhead_share = median(&off.shares);
    println!(
        "{:<44} | {:>10} | {:>10}",
        "pipeline (CPU, small model, 1 worker)", "no rationale", "rationales"
    );
    println!("{:-<44}-+-{:->12}-+-{:->10}", "", "", "");
    println!(
        "{:<44} | {:>12.1} | {:>10.1}",
        "alerts/s, BatchRequest to report",
        median(&off.rates),
        median(&on.rates)
    );
    println!(
        "{:<44} | {:>11.2}% | {:>9.2}%",
        "wall time outside the model",
        overhead_share * 100.0,
        median(&on.shares) * 100.0
    );
    println!(
        "{:<44} | {:>12} | {:>10}",
        "escalated alerts per batch (median)",
        median_u64(&off.escalated),
        median_u64(&on.escalated)
    );
    println!(
        "target overhead < 5% (no rationale): {}",
        if overhead_share < 0.05 {
            "met"
        } else {
            "missed"
        }
    );
    write_json(
        &args.out,
        &json!({
            "alerts_per_s": median(&off.rates), "overhead_share": overhead_share,
            "runs_alerts_per_s": off.rates, "runs_overhead_share": off.shares,
            "runs_model_seconds": off.model_seconds,
            "rationales": {
                "alerts_per_s": median(&on.rates), "overhead_share": median(&on.shares),
                "runs_alerts_per_s": on.rates, "runs_model_seconds": on.model_seconds,
                "runs_escalated": on.escalated, "rationale_tokens": aml_scoring::RATIONALE_TOKENS, "tau": tau,
            },
            "alerts": args.alerts,
            "shard_size": args.shard_size, "batch": args.batch, "threads": 2,
            "model": "llama, 4 layers, hidden 256, GQA 8/2, vocab 2048",
            "first_batch_untimed": true,
        }),
    )
}

fn median_u64(values: &[u64]) -> u64 {
    let floats: Vec<f64> = values.iter().map(|&value| value as f64).collect();
    median(&floats) as u64
}

/// Runs a scheduler and a worker on their own store, and times `args.runs` batches after an
/// untimed first one; with `rationale_tau`, escalating at that threshold with rationales.
async fn measure(
    args: &Args,
    nats: &NatsServer,
    dir: &std::path::Path,
    rationale_tau: Option<f64>,
) -> anyhow::Result<Measured> {
    let rationale = rationale_tau.is_some();
    let mode = if rationale { "rationales" } else { "scores" };
    let mut config = AmlConfig::default();
    config.nats.url = nats.url();
    config.storage.url = format!("file://{}", dir.join(mode).display());
    config.scoring.schedule = String::new();
    config.scoring.shard_size = args.shard_size;
    config.scoring.model_url = dir.join("model").display().to_string();
    config.scoring.worker_batch_size = args.batch;
    config.scoring.rationale = rationale;
    if let Some(tau) = rationale_tau {
        config.scoring.tau = tau;
    }
    config.bus.concurrency = 1;
    let storage = Storage::open(&config.storage.url, &Default::default())?;

    let shutdown = CancellationToken::new();
    let scheduler = {
        let config = config.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { aml_scheduler::service::run_scheduler(&config, shutdown).await })
    };
    let topology = Topology::new(nats.connect().await?);
    topology.ensure_streams().await?;
    let publisher = Publisher::new(topology.jetstream().clone());
    let worker = {
        let handler = Arc::new(ScoreHandler::new(
            storage.clone(),
            publisher.clone(),
            WorkerSettings {
                worker_id: "bench".into(),
                batch_size: args.batch,
                model_cache: dir.join("cache"),
                backend: Backend::Local(aml_model::LoadOptions::cpu_f32()),
                prefix_cache_bytes: config.scoring.prefix_cache_bytes,
                progress_interval: Duration::from_secs(1),
            },
        ));
        let runner = Runner::new(
            topology.clone(),
            ConsumerSpec::inference_worker(),
            RunnerSettings::from(&config.bus),
        );
        let shutdown = shutdown.clone();
        tokio::spawn(async move { runner.run::<ScoringJob, _>(handler, shutdown).await })
    };

    let synthesizer = Synthesizer::default();
    let mut rng = SeededRng::new(3);
    let mut measured = Measured {
        rates: Vec::new(),
        shares: Vec::new(),
        model_seconds: Vec::new(),
        escalated: Vec::new(),
        histogram: Vec::new(),
    };
    for run in 0..args.runs.max(1) + 1 {
        let alerts: Vec<Alert> = (0..args.alerts)
            .map(|index| {
                let mut alert = synthesizer
                    .case(&mut rng, Difficulty::ALL[index % 3], Label::ALL[index % 3])
                    .alert;
                alert.bank = ["north", "south"][index % 2].to_owned();
                alert.alert_id = format!("{mode}-r{run}-{index}");
                alert
            })
            .collect();
        for bank in ["north", "south"] {
            let mine: Vec<&Alert> = alerts.iter().filter(|alert| alert.bank == bank).collect();
            publisher
                .publish_all(
                    &subjects::alerts(bank),
                    mine.iter().map(|alert| (alert.alert_id.as_str(), *alert)),
                )
                .await?;
        }
        let batch_id = format!("bench-{mode}-{run}");
        let start = Instant::now();
        publisher
            .publish(
                subjects::BATCH,
                &BatchRequest {
                    batch_id: batch_id.clone(),
                    ..Default::default()
                },
                Some(&batch_id),
            )
            .await?;
        let report_key = layout::report(&batch_id);
        while !storage.exists(&report_key).await? {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wall = start.elapsed().as_secs_f64();
        let report: BatchReport = storage.get_json(&report_key).await?;
        anyhow::ensure!(report.completion_rate == 1.0, "batch {batch_id} incomplete");
        if run == 0 {
            continue;
        }
        measured.rates.push(args.alerts as f64 / wall);
        measured.shares.push(1.0 - report.gpu_seconds / wall);
        measured.model_seconds.push(report.gpu_seconds);
        measured.escalated.push(report.escalated);
        measured.histogram = vec![0; 20];
        for bank in report.per_bank.values() {
            for (total, count) in measured.histogram.iter_mut().zip(&bank.score_histogram) {
                *total += count;
            }
        }
    }
    shutdown.cancel();
    scheduler.await??;
    worker.await??;
    Ok(measured)
}
