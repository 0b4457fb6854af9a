//! Scoring throughput: a shared prefix + many alerts, scored from the label probabilities.
//!
//! CPU (default): a small model (4 layers, hidden 512, GQA) and "2,048-token prefix + 256
//! alerts of 200 tokens", ours against transformers (a) naive full prompt per alert and
//! (b) reusing its past key values for the prefix: same weights, same threads, same run.
//! tokens/s counts the alert tokens scored per second. Writes `target/bench/scoring.json`.
//!
//! GPU (`--device cuda --shape llama3-8b --dtype bf16 --prefix 30000`): Llama-3-8B-shaped
//! random weights; prints tokens/s and achieved TFLOP/s over `--peak-tflops` (MFU).

use std::path::PathBuf;
use std::time::Instant;

use aml_bench::{llama3_8b, median, peak_rss_mb, run_reference, write_json};
use aml_model::scoring::score_answers;
use aml_model::tiny::init_tiny;
use aml_model::{Architecture, CausalLm, LoadOptions, ModelConfig, TextTokenizer, TinySpec};
use anyhow::bail;
use clap::Parser;
use serde_json::json;
use tch::{Device, Tensor};

#[derive(Parser)]
struct Args {
    /// `small` (the CPU workload, compared with transformers) or `llama3-8b` (random weights, no reference).
    #[arg(long, default_value = "small")]
    shape: String,
    /// `cpu` or `cuda`.
    #[arg(long, default_value = "cpu")]
    device: aml_core::DeviceChoice,
    /// `f32` or `bf16`.
    #[arg(long, default_value = "f32")]
    dtype: aml_core::DtypeChoice,
    /// Shared prefix tokens.
    #[arg(long, default_value_t = 2048)]
    prefix: i64,
    /// Alerts scored.
    #[arg(long, default_value_t = 256)]
    alerts: i64,
    /// Tokens per alert.
    #[arg(long, default_value_t = 200)]
    alert_len: i64,
    /// Alerts per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: i64,
    /// CPU threads for both sides.
    #[arg(long, default_value_t = 2)]
    threads: i32,
    /// Timed runs of ours; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Alerts the naive reference scores (its rate is per alert; the full 256 would take minutes).
    #[arg(long, default_value_t = 32)]
    naive_alerts: i64,
    /// Skip the transformers reference.
    #[arg(long)]
    skip_reference: bool,
    /// Peak dense TFLOP/s of the card, for MFU (H100 SXM bf16: 989).
    #[arg(long, default_value_t = 989.0)]
    peak_tflops: f64,
    /// Output JSON.
    #[arg(long, default_value = "target/bench/scoring.json")]
    out: PathBuf,
}

/// FLOPs of scoring: projections for every prefix and alert token, attention over the
/// context each token sees, and the output head at the scored positions.
fn scoring_flops(
    config: &ModelConfig,
    prefix: i64,
    alerts: i64,
    alert_len: i64,
    head_positions: i64,
) -> f64 {
    let hidden = config.hidden_size as f64;
    let linear = config.projection_flops_per_token();
    let attention_per_key = config.attention_flops_per_pair();
    let (p, a, l) = (prefix as f64, alerts as f64, alert_len as f64);
    let prefix_flops = p * linear + attention_per_key * p * p / 2.0;
    let alert_flops = a * (l * linear + attention_per_key * (l * p + l * l / 2.0));
    let head = a * head_positions as f64 * 2.0 * hidden * config.vocab_size as f64;
    prefix_flops + alert_flops + head
}

fn ids(seed: i64, len: i64, vocab: i64) -> Vec<i64> {
    (0..len)
        .map(|i| 10 + (seed * 7919 + i * 104_729) % (vocab - 10))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tch::set_num_threads(args.threads);
    let options = LoadOptions::resolve(args.device, args.dtype, false)?;
    let device = options.device;
    let dir = tempfile::tempdir()?;
    let (model, answers, reference_model) = match args.shape.as_str() {
        "small" => {
            let spec = TinySpec {
                architecture: Architecture::Llama,
                vocab_size: 2048,
                hidden_size: 512,
                intermediate_size: 1408,
                num_layers: 4,
                num_heads: 8,
                num_kv_heads: 2,
                ..TinySpec::tiny(Architecture::Llama)
            };
            init_tiny(&spec, dir.path(), 1)?;
            let tokenizer = TextTokenizer::load(dir.path())?;
            let mut answers = Vec::new();
            for label in ["MATCH", "NO_MATCH", "EDGE"] {
                answers.push(tokenizer.encode(label, false)?);
            }
            (
                CausalLm::load(dir.path(), options)?,
                answers,
                Some(dir.path().to_owned()),
            )
        }
        "llama3-8b" => (
            CausalLm::random(llama3_8b()?, options, 1)?,
            vec![vec![44_290], vec![9173, 38_248], vec![82_080]],
            None,
        ),
        other => bail!("unknown --shape {other}"),
    };
    let vocab = model.config.vocab_size;
    let prefix_ids = ids(1, args.prefix, vocab);
    let alerts: Vec<Vec<i64>> = (0..args.alerts)
        .map(|alert| ids(alert + 2, args.alert_len, vocab))
        .collect();
    let head_positions: i64 = answers.iter().map(|answer| answer.len() as i64).sum();

    let warm = model.encode_prefix(
        &Tensor::from_slice(&prefix_ids[..64.min(prefix_ids.len())]).to_device(device),
    )?;
    score_answers(
        &model,
        Some(&warm),
        &alerts[..2.min(alerts.len())],
        &answers,
    )?;
    let mut rates = Vec::new();
    let mut seconds = Vec::new();
    for _ in 0..args.runs.max(1) {
        let start = Instant::now();
        let prefix = model.encode_prefix(&Tensor::from_slice(&prefix_ids).to_device(device))?;
        for chunk in alerts.chunks(args.batch as usize) {
            score_answers(&model, Some(&prefix), chunk, &answers)?;
        }
        if let Device::Cuda(_) = device {
            tch::Cuda::synchronize(0);
        }
        let elapsed = start.elapsed().as_secs_f64();
        seconds.push(elapsed);
        rates.push((args.alerts * args.alert_len) as f64 / elapsed);
    }
    let ours_tok_s = median(&rates);
    let elapsed = median(&seconds);
    let flops = scoring_flops(
        &model.config,
        args.prefix,
        args.alerts,
        args.alert_len,
        head_positions,
    );
    let achieved_tflops = flops / elapsed / 1e12;
    let mut report = json!({
        "shape": args.shape, "device": args.device.to_string(), "dtype": args.dtype.to_string(), "threads": args.threads,
        "prefix_tokens": args.prefix, "alerts": args.alerts, "alert_tokens": args.alert_len, "batch": args.batch,
        "ours_tok_s": ours_tok_s, "ours_runs_tok_s": rates, "ours_peak_rss_mb": peak_rss_mb(),
        "achieved_tflops": achieved_tflops,
    });
    if device != Device::Cpu {
        report["mfu"] = json!(achieved_tflops / args.peak_tflops);
        report["peak_tflops"] = json!(args.peak_tflops);
    }
    println!(
        "{:<34} | {:>12} | {:>8}",
        "scorer", "alert tok/s", "vs ours"
    );
    println!("{:-<34}-+-{:->12}-+-{:->8}", "", "", "");
    println!(
        "{:<34} | {:>12.0} | {:>8}",
        "ours (prefix cache, cascade)", ours_tok_s, "1.00x"
    );
    if let (Some(model_dir), false) = (reference_model, args.skip_reference) {
        let ids_file = dir.path().join("ids.json");
        std::fs::write(
            &ids_file,
            serde_json::to_vec(&json!({"prefix": prefix_ids, "alerts": alerts}))?,
        )?;
        let reference = run_reference(
            "bench_hf_scoring.py",
            &[
                "--model".into(),
                model_dir.display().to_string(),
                "--ids".into(),
                ids_file.display().to_string(),
                "--threads".into(),
                args.threads.to_string(),
                "--batch".into(),
                args.batch.to_string(),
                "--naive-alerts".into(),
                args.naive_alerts.to_string(),
            ],
        )?;
        let naive = reference["hf_naive_tok_s"].as_f64().unwrap_or(f64::NAN);
        let with_prefix = reference["hf_prefix_tok_s"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<34} | {:>12.0} | {:>7.2}x",
            "transformers (a) naive",
            naive,
            naive / ours_tok_s
        );
        println!(
            "{:<34} | {:>12.0} | {:>7.2}x",
            "transformers (b) prefix past_kv",
            with_prefix,
            with_prefix / ours_tok_s
        );
        println!(
            "speed-up: {:.1}x over (a), {:.2}x over (b)",
            ours_tok_s / naive,
            ours_tok_s / with_prefix
        );
        report["hf_naive_tok_s"] = json!(naive);
        report["hf_prefix_tok_s"] = json!(with_prefix);
        report["speedup_vs_naive"] = json!(ours_tok_s / naive);
        report["speedup_vs_prefix"] = json!(ours_tok_s / with_prefix);
        report["hf_peak_rss_mb"] = reference["hf_peak_rss_mb"].clone();
        report["hf_naive_alerts_measured"] = reference["hf_naive_alerts_measured"].clone();
    }
    println!(
        "achieved {achieved_tflops:.3} TFLOP/s; ours peak RSS {:.0} MiB",
        peak_rss_mb()
    );
    if let Some(mfu) = report.get("mfu").and_then(serde_json::Value::as_f64) {
        println!("MFU {:.1}% of {} TFLOP/s", mfu * 100.0, args.peak_tflops);
    }
    write_json(&args.out, &report)
}
