//! `aml train` with the user's command line as written, and a bad dataset that fails before
//! any training step, naming file and line.

use std::path::Path;
use std::process::{Command, Output};

use aml_integration_tests::cli::{Cli, NO_ENV, SMALL_CURRICULUM, train_command};
use aml_integration_tests::oracle::hf_oracle;

fn aml(args: &[&str]) -> Output {
    Cli::new(env!("CARGO_BIN_EXE_aml")).run(args, NO_ENV)
}

fn prepare(root: &Path) -> (String, String) {
    Cli::new(env!("CARGO_BIN_EXE_aml")).tiny_model_and_data(root)
}

#[test]
fn the_users_command_line_works_as_written() {
    let root = tempfile::tempdir().expect("dir");
    let (model, data) = prepare(root.path());
    let out = root.path().join("out").display().to_string();
    let mut args = vec![
        "train",
        "--model_id",
        &model,
        "--data_dir",
        &data,
        "--output_dir",
        &out,
    ];
    args.extend(SMALL_CURRICULUM);
    args.extend([
        "--merge_lora",
        "true",
        "--judge_items",
        "6",
        "--judge_max_new_tokens",
        "8",
    ]);
    let result = aml(&args);
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
        "loss_curve.svg",
        "README.md",
        "calibration.json",
    ] {
        assert!(root.path().join("out").join(path).exists(), "{path}");
    }
    let calibration: aml_core::cascade::Calibration = serde_json::from_slice(
        &std::fs::read(root.path().join("out/calibration.json")).expect("calibration"),
    )
    .expect("a calibration");
    assert_eq!(
        calibration.sha256.adapter,
        Some(aml_storage::fingerprint_dir(&root.path().join("out/adapter")).expect("fingerprint")),
        "it names the adapter it was made with"
    );
    assert_eq!(
        calibration.sha256.model,
        Some(aml_storage::fingerprint_dir(Path::new(&model)).expect("fingerprint"))
    );
    assert!(
        !calibration.certified && calibration.positives_needed == Some(299),
        "a validation set this small cannot certify 99%: {calibration:?}"
    );
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        stdout.contains("calibration.json: NOT certified")
            && stdout.contains("at least 299 positives"),
        "{stdout}"
    );
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.path().join("out/hard/eval_report.json")).expect("report"),
    )
    .expect("json");
    assert_eq!(
        report["calibration"]["schema"], "aml.calibration/v1",
        "the judge report shows it"
    );
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
fn a_bf16_packed_run_merges_in_the_base_dtype_and_each_adapter_folder_stands_alone() {
    let root = tempfile::tempdir().expect("dir");
    let (_, data) = prepare(root.path());
    let model = root.path().join("tiny-bf16").display().to_string();
    let init = aml(&[
        "model",
        "init-tiny",
        "--arch",
        "llama",
        "--dtype",
        "bfloat16",
        "--out",
        &model,
    ]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let out = root.path().join("out");
    let out_text = out.display().to_string();
    let mut args = train_command(&model, &data, &out_text);
    args.extend(SMALL_CURRICULUM);
    args.extend([
        "--device",
        "cpu",
        "--dtype",
        "bf16",
        "--packing",
        "true",
        "--merge_lora",
        "true",
        "--judge_items",
        "4",
        "--judge_max_new_tokens",
        "8",
    ]);
    let result = aml(&args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(stderr.contains("device  cpu, bf16"), "{stderr}");
    assert!(
        stderr.contains("(packed)") && stderr.contains("memory  peak about"),
        "{stderr}"
    );

    let merged = out.join("merged");
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(merged.join("config.json")).expect("config"))
            .expect("json");
    assert_eq!(
        config["torch_dtype"], "bfloat16",
        "the base checkpoint's dtype"
    );
    assert!(merged.join("model.safetensors.index.json").exists());
    let merged_text = merged.display().to_string();
    let loaded = hf_oracle(&[
        "logits",
        "--model",
        &merged_text,
        "--ids",
        "1,2,3,4",
        "--dtype",
        "auto",
    ]);
    assert_eq!(
        loaded["dtype"], "torch.bfloat16",
        "transformers loads it as bf16"
    );
    let finite = loaded["logits"][3]
        .as_array()
        .expect("logits")
        .iter()
        .all(|value| value.as_f64().is_some_and(f64::is_finite));
    assert!(finite);

    for adapter in ["adapter", "easy/adapter", "hard/adapter"] {
        let folder = out.join(adapter).display().to_string();
        let alone = hf_oracle(&["adapter-folder", "--model", &model, "--adapter", &folder]);
        assert!(
            alone["chat"].as_str().is_some_and(
                |chat| chat.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n")
            ),
            "{adapter}: AutoTokenizer reads the chat template from the folder: {alone}"
        );
        assert!(!alone["ids"].as_array().expect("ids").is_empty());
        assert_eq!(alone["logits_changed"], true, "{adapter}: PEFT applies it");
    }
}

#[test]
fn a_run_that_cannot_fit_fails_before_loading_with_the_flags_that_would_fit() {
    let root = tempfile::tempdir().expect("dir");
    let (model, data) = prepare(root.path());
    let out = root.path().join("out");
    let out_text = out.display().to_string();
    let mut args = train_command(&model, &data, &out_text);
    args.extend(["--device", "cpu", "--batch_size", "200000000"]);
    let result = aml(&args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains("this run needs about") && stderr.contains("GiB is free"),
        "{stderr}"
    );
    assert!(
        stderr.contains("to fit, try --recompute (about")
            && stderr.contains("--batch_size 1 --grad_accum"),
        "{stderr}"
    );
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
    assert!(!out.exists(), "nothing was written");
}

#[test]
fn a_calibration_file_that_cannot_be_read_fails_before_the_model_loads() {
    let root = tempfile::tempdir().expect("dir");
    let (model, data) = prepare(root.path());
    let labelled = root.path().join("past.jsonl");
    std::fs::write(
        &labelled,
        "{\"alert\": {\"alert_id\": \"a\"}, \"label\": \"match\"}\nnot json\n",
    )
    .expect("file");
    let out = root.path().join("out");
    let (out_text, labelled_text) = (out.display().to_string(), labelled.display().to_string());
    let mut args = train_command(&model, &data, &out_text);
    args.extend(["--calibration_file", &labelled_text]);
    let result = aml(&args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains(&format!("calibration_file: {}:2:", labelled.display())),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing was trained");
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
    let result = aml(&train_command(&model, &data, &out.display().to_string()));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains(&format!("{}:{}: field `label`", hard.display(), lines + 2)),
        "{stderr}"
    );
    assert!(!out.join("easy").exists(), "no phase ran");
}

#[test]
fn a_prompt_that_fills_max_seq_len_fails_before_any_step() {
    let root = tempfile::tempdir().expect("dir");
    let (model, data) = prepare(root.path());
    let policy = root.path().join("policy.txt");
    std::fs::write(&policy, "Screening policy. ".repeat(200)).expect("policy");
    let out = root.path().join("out");
    let (out_text, policy_text) = (out.display().to_string(), policy.display().to_string());
    let mut args = train_command(&model, &data, &out_text);
    args.extend(["--max_seq_len", "256", "--system_prompt_file", &policy_text]);
    let result = aml(&args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    let validation = Path::new(&data).join("validation.jsonl");
    assert!(
        stderr.contains(&format!("{}: sample ", validation.display()))
            && stderr.contains("max_seq_len is 256, which leaves no room for the answer"),
        "{stderr}"
    );
    assert!(!out.join("easy").exists(), "no phase ran");
}

fn train_args<'a>(model: &'a str, data: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut args = train_command(model, data, out);
    args.extend([
        "--max_seq_len",
        "512",
        "--epochs_easy",
        "3",
        "--epochs_medium",
        "3",
        "--epochs_hard",
        "2",
        "--lr",
        "5e-3",
        "--batch_size",
        "2",
        "--grad_accum",
        "1",
        "--eval_steps",
        "2",
        "--run_judge",
        "false",
    ]);
    args
}

fn tensors(path: &Path) -> Vec<(String, tch::Tensor)> {
    let files = aml_model::safetensors_io::WeightFiles::open_file(path).expect("safetensors");
    let mut names: Vec<String> = files.names().map(str::to_owned).collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let tensor = files
                .load(&name, None, tch::Kind::Float, tch::Device::Cpu)
                .expect("tensor");
            (name, tensor)
        })
        .collect()
}

#[test]
fn sigkill_mid_run_resumes_to_the_same_final_state() {
    let root = tempfile::tempdir().expect("dir");
    let (model, data) = prepare(root.path());
    let straight = root.path().join("straight").display().to_string();
    let result = aml(&train_args(&model, &data, &straight));
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );

    let interrupted = root.path().join("interrupted");
    let interrupted_arg = interrupted.display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aml"))
        .args(train_args(&model, &data, &interrupted_arg))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("training starts");
    let checkpoints = interrupted.join("checkpoints");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let done = std::fs::read_dir(&checkpoints)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .any(|entry| entry.path().join("progress.json").exists())
            })
            .unwrap_or(false);
        if done || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert!(
        !interrupted.join("adapter").exists(),
        "the kill landed before the end"
    );
    let resumed = aml(&train_args(&model, &data, &interrupted_arg));
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );

    let a = tensors(&Path::new(&straight).join("adapter/adapter_model.safetensors"));
    let b = tensors(&interrupted.join("adapter/adapter_model.safetensors"));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let diff = (x - y).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: {diff}");
    }

    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(interrupted.join("trainer_state.json")).expect("state"),
    )
    .expect("json");
    let evals: Vec<(String, i64, f64)> = state["log_history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|entry| {
            Some((
                entry["phase"].as_str()?.to_owned(),
                entry["step"].as_i64()?,
                entry["eval_loss"].as_f64()?,
            ))
        })
        .collect();
    let evaluations: u64 = state["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter_map(|phase| phase["evaluations"].as_u64())
        .sum();
    assert_eq!(evals.len() as u64, evaluations);
    assert!(
        evaluations > 8,
        "evaluations (and checkpoints) fall inside epochs: {evaluations}"
    );
    let mut expected: Vec<String> = evals[evals.len() - 2..]
        .iter()
        .map(|(_, step, _)| format!("step-{step:08}"))
        .collect();
    for phase in ["easy", "medium", "hard"] {
        let best = evals
            .iter()
            .filter(|(name, _, _)| name == phase)
            .reduce(|best, next| if next.2 < best.2 { next } else { best })
            .expect("evaluated");
        expected.push(format!("step-{:08}", best.1));
    }
    expected.sort();
    expected.dedup();
    let mut kept: Vec<String> = std::fs::read_dir(&checkpoints)
        .expect("checkpoints")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(
        kept, expected,
        "exactly the last two checkpoints and each phase's best"
    );
}
