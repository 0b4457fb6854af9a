//! Bus throughput: acked jobs/s through JetStream (file storage, 1 KiB payloads) with 1 and 4
//! workers, each a runner on its own connection. Prints a table and writes
//! `target/bench/bus.json` as `[{"workers": 1, "acked_per_s": ...}, ...]`, the median of 3 runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aml_bus::topology::subjects;
use aml_bus::{
    ConsumerSpec, Delivery, Handler, HandlerError, Publisher, Runner, RunnerSettings, Topology,
};
use aml_integration_tests::{NatsServer, job_id, scoring_job};
use aml_proto::v1::ScoringJob;
use clap::Parser;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Jobs per run.
    #[arg(long, default_value_t = 20_000)]
    jobs: u32,
    /// Runs per configuration; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Handlers in flight per worker.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Where to write the JSON.
    #[arg(long, default_value = "target/bench/bus.json")]
    out: std::path::PathBuf,
}

/// Counts handled jobs and stops every runner when all are done.
struct Count {
    handled: AtomicU64,
    target: u64,
    done: CancellationToken,
}

impl Handler<ScoringJob> for Count {
    async fn handle(&self, _delivery: Delivery<ScoringJob>) -> Result<(), HandlerError> {
        if self.handled.fetch_add(1, Ordering::Relaxed) + 1 >= self.target {
            self.done.cancel();
        }
        Ok(())
    }
}

async fn run_once(jobs: u32, workers: usize, concurrency: usize) -> anyhow::Result<f64> {
    let nats = NatsServer::start()?;
    let topology = Topology::new(nats.connect().await?);
    topology.ensure_streams().await?;
    let messages: Vec<ScoringJob> = (0..jobs)
        .map(|shard| scoring_job("bench", shard, 1024))
        .collect();
    let ids: Vec<String> = messages.iter().map(job_id).collect();
    Publisher::new(topology.jetstream().clone())
        .publish_all(
            subjects::SCORE,
            ids.iter().map(String::as_str).zip(messages.iter()),
        )
        .await?;
    let done = CancellationToken::new();
    let handler = Arc::new(Count {
        handled: AtomicU64::new(0),
        target: u64::from(jobs),
        done: done.clone(),
    });
    let settings = RunnerSettings {
        concurrency,
        ack_wait: Duration::from_secs(30),
        nak_delay: Duration::from_millis(100),
        max_deliveries: 10,
        fetch_expiry: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(20),
    };
    let started = Instant::now();
    let mut running = Vec::new();
    for _ in 0..workers {
        let runner = Runner::new(
            Topology::new(nats.connect().await?),
            ConsumerSpec::inference_worker(),
            settings.clone(),
        );
        let handler = Arc::clone(&handler);
        let done = done.clone();
        running.push(tokio::spawn(async move {
            runner.run::<ScoringJob, _>(handler, done).await
        }));
    }
    let mut acked = 0;
    for task in running {
        acked += task.await??.acked;
    }
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(acked == u64::from(jobs), "acked {acked} of {jobs}");
    Ok(acked as f64 / elapsed)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rows = Vec::new();
    println!("{:>8} | {:>14} | {:>10}", "workers", "acked jobs/s", "runs");
    println!("{:->8}-+-{:->14}-+-{:->10}", "", "", "");
    for workers in [1, 4] {
        let mut rates = Vec::new();
        for _ in 0..args.runs.max(1) {
            rates.push(run_once(args.jobs, workers, args.concurrency).await?);
        }
        let rate = median(rates.clone());
        println!("{workers:>8} | {rate:>14.0} | {:>10}", rates.len());
        rows.push(serde_json::json!({
            "workers": workers,
            "acked_per_s": rate.round(),
            "runs": rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
            "jobs": args.jobs,
            "payload_bytes": 1024,
            "concurrency_per_worker": args.concurrency,
        }));
    }
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&rows)?)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
