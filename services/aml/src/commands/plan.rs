//! `aml plan`: GPU-hours, GPUs, cost and memory for a scoring batch, cached vs uncached.

use aml_core::capacity::{GPUS, Workload, gpu};
use anyhow::bail;

/// Options of `aml plan`; defaults reproduce the user's workload.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Alerts in the batch.
    #[arg(long, default_value_t = 100_000.0)]
    jobs: f64,
    /// Tokens per alert.
    #[arg(long, default_value_t = 200.0)]
    tokens_per_job: f64,
    /// Shared prefix tokens.
    #[arg(long, default_value_t = 30_000.0)]
    prefix_tokens: f64,
    /// Model size, billions of parameters (Llama-3-8B's shape is assumed for attention and KV).
    #[arg(long, default_value_t = 8.0)]
    params_b: f64,
    /// a100-80gb, h100, rtx-3090 or rtx-4090.
    #[arg(long, default_value = "a100-80gb")]
    gpu: String,
    /// USD per GPU-hour (default: the card's typical marketplace price).
    #[arg(long)]
    price_per_hour: Option<f64>,
    /// Share of peak FLOP/s reached.
    #[arg(long, default_value_t = 0.4)]
    mfu: f64,
    /// Deadline, hours.
    #[arg(long, default_value_t = 12.0)]
    deadline_hours: f64,
    /// Sequences in flight per GPU.
    #[arg(long, default_value_t = 32.0)]
    batch: f64,
    /// FP8 weights and KV (1 byte) instead of bf16.
    #[arg(long)]
    fp8: bool,
    /// Print JSON: {"cached": {...}, "uncached": {...}, ...}.
    #[arg(long)]
    json: bool,
}

/// Prints the plan.
pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let Some(card) = gpu(&args.gpu) else {
        let known: Vec<&str> = GPUS.iter().map(|gpu| gpu.name).collect();
        bail!(
            "unknown --gpu `{}`: expected one of {}",
            args.gpu,
            known.join(", ")
        );
    };
    let bytes = if args.fp8 { 1.0 } else { 2.0 };
    let workload = Workload {
        jobs: args.jobs,
        tokens_per_job: args.tokens_per_job,
        prefix_tokens: args.prefix_tokens,
        params_billion: args.params_b,
        weight_bytes: bytes,
        kv_bytes: bytes,
        batch: args.batch,
        mfu: args.mfu,
        deadline_hours: args.deadline_hours,
        ..Workload::default()
    };
    let comparison = workload.compare(card, args.price_per_hour.unwrap_or(card.price_per_hour));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "inputs": workload, "gpu": comparison.gpu, "price_per_hour": comparison.price_per_hour,
                "cached": comparison.cached, "uncached": comparison.uncached,
            }))?
        );
        return Ok(());
    }
    println!(
        "{} jobs x {} tokens, {}-token shared prefix, {}B model on {} at ${:.2}/h, {:.0}% MFU, {} h deadline",
        workload.jobs,
        workload.tokens_per_job,
        workload.prefix_tokens,
        workload.params_billion,
        card.name,
        comparison.price_per_hour,
        workload.mfu * 100.0,
        workload.deadline_hours
    );
    println!(
        "{:<10} | {:>10} | {:>9} | {:>5} | {:>9} | {:>8} | {:>11} | {:>9}",
        "", "TFLOP/job", "GPU-hours", "GPUs", "cost USD", "wall h", "memory GB", "fits"
    );
    for (name, plan) in [
        ("cached", &comparison.cached),
        ("uncached", &comparison.uncached),
    ] {
        println!(
            "{name:<10} | {:>10.2} | {:>9.2} | {:>5} | {:>9.2} | {:>8.2} | {:>11.1} | {:>9}",
            plan.tflop_per_job,
            plan.gpu_hours,
            plan.gpus_needed,
            plan.cost_usd,
            plan.wall_hours,
            plan.memory_needed_gb,
            if plan.prefix_fits { "yes" } else { "no" }
        );
    }
    println!("prefix KV: {:.2} GB", comparison.cached.prefix_kv_gb);
    Ok(())
}
