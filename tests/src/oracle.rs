//! The Python test oracle (`tests/oracle/hf_oracle.py`: transformers and PEFT) run from a
//! Rust test with the Python `make test` names in `ORACLE_PYTHON`.

use std::path::Path;
use std::process::Command;

/// Runs `hf_oracle.py` with `args` and parses what it prints (JSON; null when nothing).
pub fn hf_oracle(args: &[&str]) -> serde_json::Value {
    let python = std::env::var("ORACLE_PYTHON")
        .expect("ORACLE_PYTHON names the python with transformers (make test sets it)");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("oracle/hf_oracle.py");
    let output = Command::new(python)
        .arg(script)
        .args(args)
        .output()
        .expect("the oracle runs");
    assert!(
        output.status.success(),
        "hf_oracle.py {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.stdout.is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(&output.stdout).expect("the oracle prints JSON")
}
