//! The scheduler's cut at a year's scale: 1M alerts over 10 banks pushed onto a real
//! nats-server (file storage), and cut by the release `scheduler` binary against 52 earlier
//! weekly batches of 100k alerts per bank (52M earlier ids in the dedup indexes), 1% of the
//! pushed alerts re-sent from the last of them. Measures the cut's wall time (BatchRequest
//! published to manifest written) and the scheduler's peak RSS (VmHWM), checks every
//! re-sent alert was dropped and every other taken, prints a table and writes
//! `target/bench/cut.json` as `{"alerts", "cut_s", "peak_rss_mb", "prior_ids", ...}`.
//! Targets (2 cores): cut <= 30 s, peak RSS <= 512 MB.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aml_batch::BatchManifest;
use aml_batch::dedup::{encode_index, id_hash};
use aml_batch::layout;
use aml_bus::topology::subjects;
use aml_bus::{Publisher, Topology};
use aml_core::rng::SeededRng;
use aml_integration_tests::NatsServer;
use aml_proto::v1::{Alert, BatchRequest};
use aml_storage::Storage;
use aml_synth::Synthesizer;
use anyhow::{Context, bail};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Banks.
    #[arg(long, default_value_t = 10)]
    banks: usize,
    /// Alerts pushed per bank.
    #[arg(long, default_value_t = 100_000)]
    alerts_per_bank: usize,
    /// Earlier weekly batches.
    #[arg(long, default_value_t = 52)]
    weeks: usize,
    /// Alerts per bank in each earlier batch.
    #[arg(long, default_value_t = 100_000)]
    prior_per_week: usize,
    /// Cuts of the same alerts, each by a fresh scheduler; the median time is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where to write the JSON.
    #[arg(long, default_value = "target/bench/cut.json")]
    out: PathBuf,
}

const WEEK_MS: i64 = 7 * 24 * 60 * 60 * 1000;

fn bank(index: usize) -> String {
    format!("bank{index:02}")
}

fn prior_id(bank: &str, week: usize, index: usize) -> String {
    format!("{bank}-w{week:02}-{index:06}")
}

/// The scheduler binary cargo built beside this one (`--release`).
fn scheduler_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let binary = exe.with_file_name("scheduler");
    if !binary.exists() {
        bail!(
            "{} is missing: `cargo build --release -p aml-scheduler` first (make bench-cut does)",
            binary.display()
        );
    }
    Ok(binary)
}

/// Writes the earlier batches: a manifest per week and a dedup index per bank and week,
/// hashed on both cores.
fn write_history(
    storage: &Storage,
    args: &Args,
    now_ms: i64,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    for week in 1..=args.weeks {
        let batch = format!("week-{week:02}");
        let created = now_ms - (args.weeks + 1 - week) as i64 * WEEK_MS;
        let indexes: Vec<(String, bytes::Bytes)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..args.banks)
                .map(|b| {
                    scope.spawn(move || {
                        let name = bank(b);
                        let hashes = (0..args.prior_per_week)
                            .map(|i| id_hash(&prior_id(&name, week, i)))
                            .collect();
                        (name, encode_index(hashes))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("hashing thread"))
                .collect()
        });
        runtime.block_on(async {
            for (name, index) in indexes {
                storage
                    .put(&layout::dedup_index(&name, &batch, created), index)
                    .await?;
            }
            let manifest = BatchManifest {
                batch_id: batch.clone(),
                created_unix_ms: created,
                model_url: String::new(),
                rationale: false,
                banks: Default::default(),
                shards: Vec::new(),
                cursors_after: Default::default(),
                stream_created: String::new(),
            };
            storage.put_json(&layout::manifest(&batch), &manifest).await
        })?;
    }
    Ok(())
}

/// One bank's pushed alerts: new ids, and every 100th one re-sent from the last earlier week.
fn bank_alerts(templates: &[Alert], name: &str, args: &Args) -> (Vec<Alert>, usize) {
    let mut resent = 0;
    let alerts = (0..args.alerts_per_bank)
        .map(|i| {
            let mut alert = templates[i % templates.len()].clone();
            alert.bank = name.to_owned();
            alert.alert_id = if i % 100 == 0 && args.weeks > 0 {
                resent += 1;
                prior_id(name, args.weeks, i % args.prior_per_week.max(1))
            } else {
                format!("{name}-new-{i:06}")
            };
            alert
        })
        .collect();
    (alerts, resent)
}

fn peak_rss_mb(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/<pid>/status")?;
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?;
    Ok(kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let scheduler = scheduler_binary()?;
    let nats = NatsServer::start()?;
    let dir = tempfile::tempdir()?;
    let storage_url = format!("file://{}", dir.path().display());
    let storage = Storage::open(&storage_url, &Default::default())?;
    let now_ms = now_unix_ms();

    let started = Instant::now();
    write_history(&storage, &args, now_ms, runtime.handle())?;
    let prior_ids = args.weeks * args.banks * args.prior_per_week;
    eprintln!(
        "history: {prior_ids} earlier ids in {} indexes, {:.1} s",
        args.weeks * args.banks,
        started.elapsed().as_secs_f64()
    );

    let templates: Vec<Alert> = aml_synth::bank_alerts(
        &Synthesizer::default(),
        &mut SeededRng::new(11),
        &["t"],
        5_000,
    )
    .into_iter()
    .map(|(alert, _)| alert)
    .collect();
    let started = Instant::now();
    let resent_total = runtime.block_on(async {
        let topology = Topology::new(nats.connect().await?);
        topology.ensure_streams().await?;
        let publisher = Publisher::new(topology.jetstream().clone());
        let mut resent_total = 0;
        for b in 0..args.banks {
            let name = bank(b);
            let (alerts, resent) = bank_alerts(&templates, &name, &args);
            resent_total += resent;
            publisher
                .publish_all(
                    &subjects::alerts(&name),
                    alerts.iter().map(|alert| (alert.alert_id.as_str(), alert)),
                )
                .await?;
        }
        anyhow::Ok(resent_total)
    })?;
    let alerts = args.banks * args.alerts_per_bank;
    eprintln!(
        "pushed {alerts} alerts in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut cuts = Vec::new();
    for run in 0..args.runs.max(1) {
        let batch = format!("bench-cut-{run}");
        let cut = cut_once(&runtime, &scheduler, &nats, &storage, &storage_url, &batch)?;
        let dropped: u64 = cut
            .manifest
            .banks
            .values()
            .map(|plan| plan.duplicates_dropped)
            .sum();
        let taken = cut.manifest.alerts_in();
        if dropped != resent_total as u64 || taken != (alerts - resent_total) as u64 {
            bail!(
                "run {run}: the cut took {taken} and dropped {dropped}; expected {} and {resent_total}",
                alerts - resent_total
            );
        }
        eprintln!(
            "run {run}: cut in {:.1} s, peak RSS {:.0} MB",
            cut.seconds, cut.peak_rss_mb
        );
        runtime.block_on(forget(&storage, &args, &batch, &cut.manifest))?;
        cuts.push(cut);
    }
    let mut seconds: Vec<f64> = cuts.iter().map(|cut| cut.seconds).collect();
    seconds.sort_by(f64::total_cmp);
    let cut_s = seconds[seconds.len() / 2];
    let peak_rss_mb = cuts.iter().map(|cut| cut.peak_rss_mb).fold(0.0, f64::max);
    let idle_rss_mb = cuts.iter().map(|cut| cut.idle_rss_mb).fold(0.0, f64::max);
    let dropped = resent_total;
    let manifest = &cuts[0].manifest;
    println!(
        "| alerts | banks | earlier ids | cut (s), median of {} | target | scheduler peak RSS (MB), max | target | idle RSS (MB) | dropped as earlier |",
        cuts.len()
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {alerts} | {} | {prior_ids} | {cut_s:.1} | <= 30 | {peak_rss_mb:.0} | <= 512 | {idle_rss_mb:.0} | {dropped} |",
        args.banks
    );
    let json = serde_json::json!({
        "alerts": alerts,
        "cut_s": cut_s,
        "peak_rss_mb": peak_rss_mb,
        "prior_ids": prior_ids,
        "banks": args.banks,
        "idle_rss_mb": idle_rss_mb,
        "dropped_as_earlier": dropped,
        "shards": manifest.shards.len(),
        "runs_cut_s": seconds,
    });
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&json)?)?;
    Ok(())
}

/// One cut by a fresh scheduler process.
struct Cut {
    seconds: f64,
    peak_rss_mb: f64,
    idle_rss_mb: f64,
    manifest: BatchManifest,
}

/// Starts the scheduler, asks for `batch`, and measures until its manifest is written.
fn cut_once(
    runtime: &tokio::runtime::Runtime,
    scheduler: &std::path::Path,
    nats: &NatsServer,
    storage: &Storage,
    storage_url: &str,
    batch: &str,
) -> anyhow::Result<Cut> {
    let mut child = Command::new(scheduler)
        .env("AML_NATS__URL", nats.url())
        .env("AML_STORAGE__URL", storage_url)
        .env("AML_SCORING__SCHEDULE", "")
        .env("AML_SCORING__ALLOW_UNCALIBRATED", "true")
        .env("AML_SCORING__MODEL_URL", "/nonexistent/model")
        .env("AML_TELEMETRY__LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", scheduler.display()))?;
    let measured = runtime.block_on(async {
        let topology = Topology::new(nats.connect().await?);
        let publisher = Publisher::new(topology.jetstream().clone());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle_rss_mb = peak_rss_mb(child.id())?;
        let started = Instant::now();
        publisher
            .publish(
                subjects::BATCH,
                &BatchRequest {
                    batch_id: batch.into(),
                    ..Default::default()
                },
                Some(batch),
            )
            .await?;
        let manifest_key = layout::manifest(batch);
        while !storage.exists(&manifest_key).await? {
            if started.elapsed() > Duration::from_secs(600) {
                bail!("no manifest within 10 minutes");
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("the scheduler exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let peak_rss_mb = peak_rss_mb(child.id())?;
        let manifest: BatchManifest = storage.get_json(&manifest_key).await?;
        anyhow::Ok(Cut {
            seconds,
            peak_rss_mb,
            idle_rss_mb,
            manifest,
        })
    });
    child.kill().ok();
    child.wait().ok();
    // The killed scheduler's BatchRequest would come back to the next one: it goes.
    runtime.block_on(async {
        let jetstream = async_nats::jetstream::new(nats.connect().await?);
        jetstream
            .get_stream(aml_bus::topology::JOBS_STREAM)
            .await?
            .purge()
            .await?;
        anyhow::Ok(())
    })?;
    measured
}

/// Removes what a cut left (its manifest, indexes, shards and the cursors), so the next run
/// cuts the same alerts against the same history.
async fn forget(
    storage: &Storage,
    args: &Args,
    batch: &str,
    manifest: &BatchManifest,
) -> anyhow::Result<()> {
    storage.delete(layout::CURSORS).await?;
    storage.delete(&layout::manifest(batch)).await?;
    for b in 0..args.banks {
        let name = bank(b);
        storage
            .delete(&layout::dedup_index(&name, batch, manifest.created_unix_ms))
            .await?;
        for key in storage
            .list(&layout::bank_batch_prefix(&name, batch))
            .await?
        {
            storage.delete(&key).await?;
        }
    }
    Ok(())
}

fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
