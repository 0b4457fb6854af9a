//! `aml train` with the user's command line as written, and a bad dataset that fails before
//! any training step, naming file and line.

use std::path::Path;
use std::process::{Command, Output};

fn aml(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aml"))
        .args(args)
        .output()
        .expect("aml runs")
}

fn prepare(root: &Path) -> (String, String) {
    let model = root.join("model").display().to_string();
    let data = root.join("data").display().to_string();
    assert!(
        aml(&["model", "init-tiny", "--arch", "llama", "--out", &model])
            .status
            .success()
    );
    assert!(
        aml(&[
            "generate",
            "--per-tier",
            "12",
            "--seed",
            "2",
            "--out",
            &data,
            "--validate"
        ])
        .status
        .success()
    );
    (model, data)
}

#[test]
fn the_users_command_line_works_as_written() {
    let root = tempfile::tempdir().expect("dir");
    let (model, data) = prepare(root.path());
    let out = root.path().join("out").display().to_string();
    let result = aml(&[
        "train",
        "--model_id",
        &model,
        "--data_dir",
        &data,
        "--output_dir",
        &out,
        "--max_seq_len",
        "512",
        "--epochs_easy",
        "1",
        "--epochs_medium",
        "1",
        "--epochs_hard",
        "1",
        "--lr",
        "1e-3",
        "--batch_size",
        "4",
        "--grad_accum",
        "2",
        "--merge_lora",
        "true",
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    for path in [
        "adapter/adapter_config.json",
        "easy/adapter/adapter_model.safetensors",
        "trainer_state.json",
        "config.json",
        "merged/config.json",
    ] {
        assert!(root.path().join("out").join(path).exists(), "{path}");
    }
    let smoke = aml(&[
        "train",
        "--model-id",
        &model,
        "--data-dir",
        &data,
        "--output-dir",
        &out,
        "--smoke",
    ]);
    assert!(
        String::from_utf8_lossy(&smoke.stdout).starts_with("smoke: one step"),
        "{}",
        String::from_utf8_lossy(&smoke.stderr)
    );
}

#[test]
fn a_bad_dataset_fails_before_any_step() {
    let root = tempfile::tempdir().expect("dir");
    let (model, data) = prepare(root.path());
    let hard = Path::new(&data).join("hard.jsonl");
    let mut text = std::fs::read_to_string(&hard).expect("hard");
    let lines = text.lines().count();
    text.push_str("\n{\"instruction\":\"i\",\"input\":\"x\",\"output\":\"o\",\"cot\":\"c\",\"difficulty\":\"hard\",\"label\":\"maybe\"}\n");
    std::fs::write(&hard, text).expect("write");
    let out = root.path().join("out");
    let result = aml(&[
        "train",
        "--model_id",
        &model,
        "--data_dir",
        &data,
        "--output_dir",
        &out.display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains(&format!("{}:{}: field `label`", hard.display(), lines + 2)),
        "{stderr}"
    );
    assert!(!out.join("easy").exists(), "no phase ran");
}
