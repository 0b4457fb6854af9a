//! Training throughput: our LoRA training step against transformers + PEFT on the same tiny
//! model, LoRA config (r 16, alpha 32, dropout 0.05, all seven projections), batches,
//! sequence length and AdamW, on CPU, same threads, same run. Writes
//! `target/bench/training.json` with `ours_tok_s`, `hf_peft_tok_s`, `ours_peak_rss_mb`,
//! `hf_peak_rss_mb`.
//!
//! GPU (`--shape llama3-8b --device cuda --dtype bf16 --seq 2048`): Llama-3-8B-shaped random
//! weights, frozen, with the same LoRA; prints tokens/s and MFU (no reference). Model FLOPs
//! per step count the frozen base's forward and its input-gradient backward (2x the forward's
//! projections and head, 3x its attention) and exclude recomputation, so MFU is comparable
//! with and without `--recompute`. `scripts/gpu-bench-training.sh` runs both and samples
//! the card's peak memory.

use std::path::PathBuf;
use std::time::Instant;

use aml_bench::{
    attention_flops_per_pair, linear_flops_per_token, llama3_8b, load_options, peak_rss_mb,
    run_reference, small_llama, write_json,
};
use aml_model::tiny::init_tiny;
use aml_model::training::{TrainBatch, loss_and_backward};
use aml_model::{CausalLm, Lora, LoraConfig, LoraInit};
use aml_trainer::optim::{Optimizer, OptimizerKind, zero_gradients};
use anyhow::bail;
use clap::Parser;
use serde_json::json;
use tch::{Device, Tensor};

#[derive(Parser)]
struct Args {
    /// `tiny` (the CPU workload, compared with transformers + PEFT) or `llama3-8b` (random weights, no reference).
    #[arg(long, default_value = "tiny")]
    shape: String,
    /// `cpu` or `cuda`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// `f32` or `bf16` (the frozen base's weights; LoRA weights stay f32).
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Peak dense TFLOP/s of the card, for MFU (H100 SXM bf16: 989).
    #[arg(long, default_value_t = 989.0)]
    peak_tflops: f64,
    /// Timed optimisation steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Sequences per step.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 256)]
    seq: usize,
    /// CPU threads for both sides.
    #[arg(long, default_value_t = 2)]
    threads: i32,
    /// Activation recomputation on our side.
    #[arg(long)]
    recompute: bool,
    /// Output JSON.
    #[arg(long, default_value = "target/bench/training.json")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tch::set_num_threads(args.threads);
    let options = load_options(&args.device, &args.dtype)?;
    let device = options.device;
    let dir = tempfile::tempdir()?;
    let mut model = match args.shape.as_str() {
        "tiny" => {
            init_tiny(&small_llama(), dir.path(), 3)?;
            CausalLm::load(dir.path(), options)?
        }
        "llama3-8b" => CausalLm::random(llama3_8b()?, options, 1)?,
        other => bail!("unknown --shape {other}"),
    };
    let vocab = model.config.vocab_size;
    let batches: Vec<Vec<Vec<i64>>> = (0..args.warmup + args.steps)
        .map(|step| {
            (0..args.batch)
                .map(|row| {
                    (0..args.seq)
                        .map(|i| 5 + ((step * 7919 + row * 104_729 + i * 31) as i64) % (vocab - 5))
                        .collect()
                })
                .collect()
        })
        .collect();

    let lora_config = LoraConfig {
        r: 16,
        alpha: 32.0,
        dropout: 0.05,
        ..LoraConfig::default()
    };
    let lora = Lora::attach_new(&mut model, lora_config, LoraInit::Standard(0))?;
    let mut parameters: Vec<Tensor> = lora.vars.trainable_variables();
    let mut optimizer = Optimizer::new(OptimizerKind::Adamw, 0.0, &parameters);
    let mut step = |index: usize, rows: &[Vec<i64>]| -> anyhow::Result<f64> {
        let flat: Vec<i64> = rows.iter().flatten().copied().collect();
        let ids = Tensor::from_slice(&flat)
            .view([rows.len() as i64, -1])
            .to_device(device);
        let batch = TrainBatch {
            labels: ids.copy(),
            ids,
        };
        let loss = loss_and_backward(&model, &batch, args.recompute, index as i64)?;
        optimizer.update(&mut parameters, 1e-4);
        zero_gradients(&parameters);
        Ok(loss)
    };
    for (index, rows) in batches[..args.warmup].iter().enumerate() {
        step(index, rows)?;
    }
    let start = Instant::now();
    let mut last_loss = 0.0;
    for (index, rows) in batches[args.warmup..].iter().enumerate() {
        last_loss = step(index, rows)?;
    }
    if let Device::Cuda(_) = device {
        tch::Cuda::synchronize(0);
    }
    let seconds = start.elapsed().as_secs_f64();
    let tokens = (args.steps * args.batch * args.seq) as f64;
    let ours = tokens / seconds;
    let ours_rss = peak_rss_mb();
    let config = &model.config;
    let (seq, rows) = (args.seq as f64, (args.steps * args.batch) as f64);
    let head = 2.0 * (config.hidden_size * config.vocab_size) as f64;
    let model_flops = rows
        * (2.0 * seq * (linear_flops_per_token(config) + head)
            + 3.0 * attention_flops_per_pair(config) * seq * seq / 2.0);
    let achieved_tflops = model_flops / seconds / 1e12;
    if args.shape != "tiny" {
        println!(
            "{} on {} ({}), batch {} x seq {}, recompute {}: {ours:.0} tok/s, {achieved_tflops:.1} TFLOP/s, MFU {:.1}% of {} TFLOP/s, last loss {last_loss:.4}",
            args.shape,
            args.device,
            args.dtype,
            args.batch,
            args.seq,
            args.recompute,
            100.0 * achieved_tflops / args.peak_tflops,
            args.peak_tflops
        );
        return write_json(
            &args.out,
            &json!({
                "shape": args.shape, "device": args.device, "dtype": args.dtype,
                "ours_tok_s": ours, "achieved_tflops": achieved_tflops,
                "mfu": achieved_tflops / args.peak_tflops, "peak_tflops": args.peak_tflops,
                "ours_peak_rss_mb": ours_rss, "steps": args.steps, "batch": args.batch,
                "seq": args.seq, "recompute": args.recompute, "last_loss": last_loss,
            }),
        );
    }

    let batches_file = dir.path().join("batches.json");
    std::fs::write(&batches_file, serde_json::to_vec(&batches)?)?;
    let reference = run_reference(
        "bench_hf_training.py",
        &[
            "--model".into(),
            dir.path().display().to_string(),
            "--batches".into(),
            batches_file.display().to_string(),
            "--threads".into(),
            args.threads.to_string(),
            "--warmup".into(),
            args.warmup.to_string(),
        ],
    )?;
    let hf = reference["hf_peft_tok_s"].as_f64().unwrap_or(f64::NAN);
    println!(
        "{:<28} | {:>10} | {:>12} | {:>9}",
        "trainer", "tok/s", "peak RSS MiB", "last loss"
    );
    println!("{:-<28}-+-{:->10}-+-{:->12}-+-{:->9}", "", "", "", "");
    println!(
        "{:<28} | {:>10.0} | {:>12.0} | {:>9.4}",
        "ours (tch, LoRA)", ours, ours_rss, last_loss
    );
    println!(
        "{:<28} | {:>10.0} | {:>12.0} | {:>9.4}",
        "transformers + PEFT",
        hf,
        reference["hf_peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
        reference["hf_last_loss"].as_f64().unwrap_or(f64::NAN)
    );
    println!("ratio ours / transformers+PEFT: {:.2}x", ours / hf);
    write_json(
        &args.out,
        &json!({
            "ours_tok_s": ours, "hf_peft_tok_s": hf, "ratio": ours / hf,
            "ours_peak_rss_mb": ours_rss, "hf_peak_rss_mb": reference["hf_peak_rss_mb"],
            "steps": args.steps, "batch": args.batch, "seq": args.seq, "threads": args.threads,
            "recompute": args.recompute, "model": "llama, 4 layers, hidden 256, GQA 8/2, vocab 2048",
        }),
    )
}
