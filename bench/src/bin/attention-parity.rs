//! Cascade attention (a shared prefix read once for the batch, merged with each sequence's
//! causal part by log-sum-exp) against PyTorch's math attention over the concatenated keys in
//! float32, on seeded random inputs at Llama-3-8B's head shape (32 query heads over 8
//! key/value heads of width 128). On a GPU (`--device cuda`) this checks the CUDA kernels the
//! scorer uses; `scripts/gpu-train-8b.sh` runs it with a 30k-token prefix. Writes
//! `target/bench/attention-parity.json`.

use std::path::PathBuf;

use aml_bench::write_json;
use aml_core::{DeviceChoice, DtypeChoice};
use aml_model::LoadOptions;
use aml_model::attention::cascade_parity;
use clap::Parser;
use serde_json::json;
use tch::Kind;

#[derive(Parser)]
struct Args {
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Shared prefix tokens.
    #[arg(long, default_value_t = 2048)]
    prefix: i64,
    /// Tokens per sequence behind the prefix.
    #[arg(long, default_value_t = 200)]
    suffix: i64,
    /// Sequences in the batch.
    #[arg(long, default_value_t = 4)]
    batch: i64,
    /// Output JSON.
    #[arg(long, default_value = "target/bench/attention-parity.json")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let device = LoadOptions::resolve(args.device, DtypeChoice::F32, false)?.device;
    let (heads, kv_heads, head_dim) = (32, 8, 128);
    println!(
        "cascade vs math attention on {}: batch {} x {} tokens behind a {}-token prefix, {heads}/{kv_heads} heads of {head_dim}",
        args.device, args.batch, args.suffix, args.prefix
    );
    println!("{:<10} | {:>28}", "dtype", "max |diff| / max |reference|");
    let mut report = serde_json::Map::new();
    for (name, kind) in [("f32", Kind::Float), ("bf16", Kind::BFloat16)] {
        let relative = cascade_parity(
            device,
            kind,
            args.batch,
            args.prefix,
            args.suffix,
            heads,
            kv_heads,
            head_dim,
        );
        println!("{name:<10} | {relative:>28.3e}");
        report.insert(name.to_owned(), json!(relative));
    }
    report.insert("device".to_owned(), json!(args.device.to_string()));
    report.insert("prefix".to_owned(), json!(args.prefix));
    report.insert("suffix".to_owned(), json!(args.suffix));
    report.insert("batch".to_owned(), json!(args.batch));
    write_json(&args.out, &serde_json::Value::Object(report))
}
