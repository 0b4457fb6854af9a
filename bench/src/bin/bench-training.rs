//! Training throughput: our LoRA training step against transformers + PEFT on the same tiny
//! model, LoRA config (r 16, alpha 32, dropout 0.05, all seven projections), batches,
//! sequence length and AdamW, on CPU, same threads, same run. The two sides take turns for
//! `--rounds` rounds (each from fresh weights), so a slow spell of the machine falls on both;
//! every step is timed, and each side's tokens/s is the median over rounds of its median
//! step (the mean over all steps is reported beside it). Writes
//! `target/bench/training.json` with `ours_tok_s`, `hf_peft_tok_s`, `ours_peak_rss_mb`,
//! `hf_peak_rss_mb`.
//!
//! Packing: on the same tiny model, examples of varied length (uniform between 1/8 of `--seq`
//! and `--seq`) trained once in length-bucketed batches of `--batch` rows and once packed into
//! rows of `--seq` tokens, `--rounds` interleaved rounds; reports real (non-padding) tokens/s
//! and the padding share of each (`packing` in the JSON).
//!
//! GPU (`--shape llama3-8b --device cuda --dtype bf16 --seq 2048`): Llama-3-8B-shaped random
//! weights, frozen, with the same LoRA; prints tokens/s and MFU (no reference). Model FLOPs
//! per step count the frozen base's forward and its input-gradient backward (2x the forward's
//! projections and head, 3x its attention) and exclude recomputation, so MFU is comparable
//! with and without `--recompute`. `scripts/gpu-bench-training.sh` runs both and samples
//! the card's peak memory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use aml_bench::{llama3_8b, median, peak_rss_mb, run_reference, small_llama, write_json};
use aml_core::rng::SeededRng;
use aml_model::tiny::init_tiny;
use aml_model::training::{TrainBatch, loss_and_backward};
use aml_model::{CausalLm, LoadOptions, Lora, LoraConfig, LoraInit, ModelConfig};
use aml_trainer::batching::{Batch, batch_tokens, buckets, collate, packed, padding_share};
use aml_trainer::data::Example;
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
    device: aml_core::DeviceChoice,
    /// `f32` or `bf16` (the frozen base's weights; LoRA weights stay f32).
    #[arg(long, default_value = "f32")]
    dtype: aml_core::DtypeChoice,
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
    /// Turns each side takes (the CPU comparison; the GPU shape runs once).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Activation recomputation on our side.
    #[arg(long)]
    recompute: bool,
    /// Output JSON.
    #[arg(long, default_value = "target/bench/training.json")]
    out: PathBuf,
}

/// One side's timed steps.
struct Round {
    step_seconds: Vec<f64>,
    last_loss: f64,
}

impl Round {
    fn median_tok_s(&self, tokens_per_step: f64) -> f64 {
        tokens_per_step / median(&self.step_seconds)
    }
}

/// Loads the model, attaches a fresh LoRA and runs the warm-up and timed steps.
fn our_round(
    args: &Args,
    options: LoadOptions,
    model_dir: &Path,
    batches: &[Vec<Vec<i64>>],
) -> anyhow::Result<(Round, ModelConfig)> {
    let device = options.device;
    let mut model = match args.shape.as_str() {
        "tiny" => CausalLm::load(model_dir, options)?,
        _ => CausalLm::random(llama3_8b()?, options, 1)?,
    };
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
        let batch = TrainBatch::unpacked(ids.copy(), ids);
        let loss = loss_and_backward(&model, &batch, args.recompute, index as i64)?;
        optimizer.update(&mut parameters, 1e-4);
        zero_gradients(&parameters);
        Ok(loss)
    };
    for (index, rows) in batches[..args.warmup].iter().enumerate() {
        step(index, rows)?;
    }
    let mut round = Round {
        step_seconds: Vec::with_capacity(args.steps),
        last_loss: 0.0,
    };
    for (index, rows) in batches[args.warmup..].iter().enumerate() {
        let start = Instant::now();
        round.last_loss = step(index, rows)?;
        if let Device::Cuda(_) = device {
            tch::Cuda::synchronize(0);
        }
        round.step_seconds.push(start.elapsed().as_secs_f64());
    }
    Ok((round, model.config.clone()))
}

/// transformers + PEFT on the same model and batches, in a Python process.
fn reference_round(
    args: &Args,
    model_dir: &Path,
    batches_file: &Path,
) -> anyhow::Result<(Round, f64)> {
    let reference = run_reference(
        "bench_hf_training.py",
        &[
            "--model".into(),
            model_dir.display().to_string(),
            "--batches".into(),
            batches_file.display().to_string(),
            "--threads".into(),
            args.threads.to_string(),
            "--warmup".into(),
            args.warmup.to_string(),
        ],
    )?;
    let step_seconds: Vec<f64> = serde_json::from_value(reference["step_seconds"].clone())
        .map_err(|error| anyhow::anyhow!("bench_hf_training.py: step_seconds: {error}"))?;
    let round = Round {
        step_seconds,
        last_loss: reference["last_loss"].as_f64().unwrap_or(f64::NAN),
    };
    Ok((round, reference["peak_rss_mb"].as_f64().unwrap_or(f64::NAN)))
}

/// Examples of lengths uniform in [seq / 8, seq], the prompt half masked, enough for
/// `warmup + steps` bucketed batches.
fn varied_examples(args: &Args, vocab: i64) -> Vec<Example> {
    let mut rng = SeededRng::new(17);
    (0..args.batch * (args.warmup + args.steps))
        .map(|index| {
            let low = (args.seq / 8).max(2);
            let len = low + (rng.uniform() * (args.seq - low) as f64) as usize;
            Example {
                ids: (0..len)
                    .map(|i| 5 + ((index * 7919 + i * 31) as i64) % (vocab - 5))
                    .collect(),
                target_start: len / 2,
                weight: 1.0,
                soft_target: Vec::new(),
            }
        })
        .collect()
}

/// One epoch of `examples` in `batches` (the first `warmup` untimed): real tokens/s.
fn packing_round(
    args: &Args,
    options: LoadOptions,
    model_dir: &Path,
    examples: &[Example],
    batches: &[Batch],
    packed_rows: bool,
) -> anyhow::Result<f64> {
    let mut model = CausalLm::load(model_dir, options)?;
    let lora = Lora::attach_new(&mut model, LoraConfig::default(), LoraInit::Standard(0))?;
    let mut parameters: Vec<Tensor> = lora.vars.trainable_variables();
    let mut optimizer = Optimizer::new(OptimizerKind::Adamw, 0.0, &parameters);
    let (mut tokens, mut seconds) = (0usize, 0.0);
    for (index, batch) in batches.iter().enumerate() {
        let start = Instant::now();
        let train_batch = collate(examples, batch, 0, packed_rows);
        loss_and_backward(&model, &train_batch, args.recompute, index as i64)?;
        optimizer.update(&mut parameters, 1e-4);
        zero_gradients(&parameters);
        if index >= args.warmup {
            seconds += start.elapsed().as_secs_f64();
            tokens += batch_tokens(examples, batch);
        }
    }
    Ok(tokens as f64 / seconds)
}

/// Bucketed against packed batches of the same examples, `--rounds` interleaved rounds:
/// the JSON of both sides (median real tokens/s, padding share, batches).
fn packing_comparison(
    args: &Args,
    options: LoadOptions,
    model_dir: &Path,
    vocab: i64,
) -> anyhow::Result<serde_json::Value> {
    let examples = varied_examples(args, vocab);
    let sides = [
        ("bucketed", false, buckets(&examples, args.batch)),
        ("packed", true, packed(&examples, args.seq, args.batch)),
    ];
    let mut rates = vec![Vec::new(); sides.len()];
    for _ in 0..args.rounds.max(1) {
        for (side, (_, packed_rows, batches)) in sides.iter().enumerate() {
            rates[side].push(packing_round(
                args,
                options,
                model_dir,
                &examples,
                batches,
                *packed_rows,
            )?);
        }
    }
    println!();
    println!(
        "{:<10} | {:>22} | {:>13} | {:>7}",
        "batching", "median real tok/s", "padding share", "batches"
    );
    let mut report = serde_json::Map::new();
    for ((name, _, batches), side_rates) in sides.iter().zip(&rates) {
        let share = padding_share(&examples, batches);
        println!(
            "{name:<10} | {:>22.0} | {:>12.1}% | {:>7}",
            median(side_rates),
            100.0 * share,
            batches.len()
        );
        report.insert(
            (*name).to_owned(),
            json!({"real_tok_s": median(side_rates), "round_tok_s": side_rates,
                   "padding_share": share, "batches": batches.len()}),
        );
    }
    let ratio = median(&rates[1]) / median(&rates[0]);
    println!(
        "packed / bucketed: {ratio:.2}x real tokens/s ({} examples of {}-{} tokens, rows of {})",
        examples.len(),
        (args.seq / 8).max(2),
        args.seq,
        args.seq
    );
    report.insert("ratio".to_owned(), json!(ratio));
    report.insert("examples".to_owned(), json!(examples.len()));
    Ok(serde_json::Value::Object(report))
}

/// Median over rounds of each round's median-step tokens/s, and the mean over all steps.
fn summarise(rounds: &[Round], tokens_per_step: f64) -> (f64, f64) {
    let medians: Vec<f64> = rounds
        .iter()
        .map(|round| round.median_tok_s(tokens_per_step))
        .collect();
    let steps: usize = rounds.iter().map(|round| round.step_seconds.len()).sum();
    let seconds: f64 = rounds.iter().flat_map(|round| &round.step_seconds).sum();
    (median(&medians), steps as f64 * tokens_per_step / seconds)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tch::set_num_threads(args.threads);
    let options = LoadOptions::resolve(args.device, args.dtype, false)?;
    let dir = tempfile::tempdir()?;
    let vocab = match args.shape.as_str() {
        "tiny" => init_tiny(&small_llama(), dir.path(), 3)?.vocab_size,
        "llama3-8b" => llama3_8b()?.vocab_size,
        other => bail!("unknown --shape {other}"),
    };
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
    let tokens_per_step = (args.batch * args.seq) as f64;

    if args.shape != "tiny" {
        let (round, config) = our_round(&args, options, dir.path(), &batches)?;
        let median_step = median(&round.step_seconds);
        let ours = tokens_per_step / median_step;
        let seq = args.seq as f64;
        let step_flops = config
            .lora_training_flops(args.batch as f64 * seq, args.batch as f64 * seq * seq / 2.0);
        let achieved_tflops = step_flops / median_step / 1e12;
        let last_loss = round.last_loss;
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
                "shape": args.shape, "device": args.device.to_string(), "dtype": args.dtype.to_string(),
                "ours_tok_s": ours, "achieved_tflops": achieved_tflops,
                "mfu": achieved_tflops / args.peak_tflops, "peak_tflops": args.peak_tflops,
                "ours_peak_rss_mb": peak_rss_mb(), "steps": args.steps, "batch": args.batch,
                "seq": args.seq, "recompute": args.recompute, "last_loss": last_loss,
            }),
        );
    }

    let batches_file = dir.path().join("batches.json");
    std::fs::write(&batches_file, serde_json::to_vec(&batches)?)?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut hf_rss: f64 = 0.0;
    println!(
        "{:<8} | {:>24} | {:>24}",
        "round", "ours median step tok/s", "HF+PEFT median step tok/s"
    );
    for index in 0..args.rounds.max(1) {
        ours.push(our_round(&args, options, dir.path(), &batches)?.0);
        let (round, rss) = reference_round(&args, dir.path(), &batches_file)?;
        theirs.push(round);
        hf_rss = hf_rss.max(rss);
        println!(
            "{:<8} | {:>24.0} | {:>24.0}",
            index + 1,
            ours[index].median_tok_s(tokens_per_step),
            theirs[index].median_tok_s(tokens_per_step)
        );
    }
    let ours_rss = peak_rss_mb();
    let (ours_tok_s, ours_mean) = summarise(&ours, tokens_per_step);
    let (hf_tok_s, hf_mean) = summarise(&theirs, tokens_per_step);
    let (ours_loss, hf_loss) = (ours[0].last_loss, theirs[0].last_loss);
    let packing = packing_comparison(&args, options, dir.path(), vocab)?;
    println!();
    println!(
        "{:<22} | {:>16} | {:>14} | {:>12} | {:>9}",
        "trainer", "median tok/s", "mean tok/s", "peak RSS MiB", "last loss"
    );
    println!(
        "{:-<22}-+-{:->16}-+-{:->14}-+-{:->12}-+-{:->9}",
        "", "", "", "", ""
    );
    println!(
        "{:<22} | {:>16.0} | {:>14.0} | {:>12.0} | {:>9.4}",
        "ours (tch, LoRA)", ours_tok_s, ours_mean, ours_rss, ours_loss
    );
    println!(
        "{:<22} | {:>16.0} | {:>14.0} | {:>12.0} | {:>9.4}",
        "transformers + PEFT", hf_tok_s, hf_mean, hf_rss, hf_loss
    );
    println!(
        "ratio ours / transformers+PEFT: {:.2}x (median), {:.2}x (mean), {} rounds",
        ours_tok_s / hf_tok_s,
        ours_mean / hf_mean,
        args.rounds.max(1)
    );
    write_json(
        &args.out,
        &json!({
            "ours_tok_s": ours_tok_s, "hf_peft_tok_s": hf_tok_s, "ratio": ours_tok_s / hf_tok_s,
            "ours_mean_tok_s": ours_mean, "hf_peft_mean_tok_s": hf_mean,
            "mean_ratio": ours_mean / hf_mean, "rounds": args.rounds.max(1),
            "ours_round_tok_s": ours.iter().map(|r| r.median_tok_s(tokens_per_step)).collect::<Vec<_>>(),
            "hf_peft_round_tok_s": theirs.iter().map(|r| r.median_tok_s(tokens_per_step)).collect::<Vec<_>>(),
            "ours_peak_rss_mb": ours_rss, "hf_peak_rss_mb": hf_rss,
            "ours_last_loss": ours_loss, "hf_peft_last_loss": hf_loss,
            "steps": args.steps, "batch": args.batch, "seq": args.seq, "threads": args.threads,
            "recompute": args.recompute, "model": "llama, 4 layers, hidden 256, GQA 8/2, vocab 2048",
            "packing": packing,
        }),
    )
}
