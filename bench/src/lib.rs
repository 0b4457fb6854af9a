//! Helpers shared by the benchmark binaries: the reference runner (Python oracle), peak
//! memory, and the table/JSON output every benchmark writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

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
