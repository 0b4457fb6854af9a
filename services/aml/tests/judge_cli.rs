//! `aml judge` grades a predictions file against gold samples and writes its report; a
//! prediction line that does not parse is named by file and line, with nothing written.

use std::process::Output;

use aml_integration_tests::cli::Cli;

fn aml(args: &[&str]) -> Output {
    Cli::new(env!("CARGO_BIN_EXE_aml")).run(args, &[("RUST_BACKTRACE", "0")])
}

#[test]
fn grades_predictions_and_names_a_bad_line() {
    let root = tempfile::tempdir().expect("dir");
    let (gold, predictions, out) = (
        root.path().join("gold.jsonl"),
        root.path().join("predictions.jsonl"),
        root.path().join("report/report.json"),
    );
    let mut gold_lines = Vec::new();
    let mut prediction_lines = Vec::new();
    for (index, (label, word)) in [
        ("match", "MATCH"),
        ("no_match", "NO_MATCH"),
        ("edge", "EDGE"),
    ]
    .iter()
    .enumerate()
    {
        gold_lines.push(
            serde_json::json!({"id": format!("s{index}"), "instruction": "Decide.",
            "input": "Customer: A\nEntry: B", "output": format!("{word} — date of birth decides"),
            "cot": "The date of birth decides.", "difficulty": "easy", "label": label})
            .to_string(),
        );
        prediction_lines.push(
            serde_json::json!({"id": format!("s{index}"), "label": label,
            "output": format!("{word} — date of birth decides"), "cot": "", "score": 0.5})
            .to_string(),
        );
    }
    std::fs::write(&gold, gold_lines.join("\n")).expect("gold");
    std::fs::write(&predictions, prediction_lines.join("\n")).expect("predictions");
    let (gold_text, predictions_text, out_text) = (
        gold.display().to_string(),
        predictions.display().to_string(),
        out.display().to_string(),
    );
    let graded = aml(&[
        "judge",
        "--gold",
        &gold_text,
        "--predictions",
        &predictions_text,
        "--out",
        &out_text,
    ]);
    assert!(
        graded.status.success(),
        "{}",
        String::from_utf8_lossy(&graded.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("report")).expect("json");
    assert_eq!(report["accuracy"], 1.0, "{report}");
    assert_eq!(report["n"], 3);

    std::fs::write(
        &predictions,
        format!(
            "{}\n{{\"id\": \"s1\", \"label\": \"maybe\"}}\n",
            prediction_lines[0]
        ),
    )
    .expect("bad predictions");
    std::fs::remove_file(&out).expect("removed");
    let refused = aml(&[
        "judge",
        "--gold",
        &gold_text,
        "--predictions",
        &predictions_text,
        "--out",
        &out_text,
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(&format!("{predictions_text}:2:")),
        "{stderr}"
    );
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
    assert!(!out.exists(), "nothing written");
}
