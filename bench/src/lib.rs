//! Helpers shared by the benchmark binaries: the reference runner (Python oracle), peak
//! memory, and the table/JSON output every benchmark writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use aml_model::{Architecture, ModelConfig, TinySpec};
use anyhow::{Context, bail};
use serde_json::json;

/// Peak resident memory of this process so far, in MiB (Linux `VmHWM`).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The repository's `tests/oracle` folder.
pub fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oracle")
}

/// Runs a reference script with the oracle Python (`ORACLE_PYTHON`, set by the Makefile) and
/// parses the JSON it prints last.
pub fn run_reference(script: &str, args: &[String]) -> anyhow::Result<serde_json::Value> {
    let python = std::env::var("ORACLE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let output = Command::new(&python)
        .arg(oracle_dir().join(script))
        .args(args)
        .output()
        .with_context(|| format!("failed to run {python} {script}"))?;
    if !output.status.success() {
        bail!(
            "{script} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or("{}");
    serde_json::from_str(last).with_context(|| format!("{script} printed no JSON: {stdout}"))
}

/// Writes `target/bench/<name>.json` (or `path`) and says where.
pub fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(value)?)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Median of measurements.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// The Llama-3-8B shape (config only; benchmarks draw random weights for it).
pub fn llama3_8b() -> anyhow::Result<ModelConfig> {
    let raw = json!({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": 128256,
        "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        "tie_word_embeddings": false, "torch_dtype": "bfloat16", "bos_token_id": 128000,
        "eos_token_id": [128001, 128009]
    });
    Ok(ModelConfig::from_value(
        raw,
        std::path::Path::new("llama3-8b (built in)"),
    )?)
}

/// The small Llama the CPU training and pipeline benchmarks use: 4 layers, hidden 256, GQA
/// 8/2, vocabulary 2048.
pub fn small_llama() -> TinySpec {
    TinySpec {
        architecture: Architecture::Llama,
        vocab_size: 2048,
        hidden_size: 256,
        intermediate_size: 704,
        num_layers: 4,
        num_heads: 8,
        num_kv_heads: 2,
        ..TinySpec::tiny(Architecture::Llama)
    }
}
