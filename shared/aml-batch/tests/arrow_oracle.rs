//! pyarrow reads the Arrow IPC results file we write, column for column.

use aml_batch::write_results_arrow;
use aml_proto::v1::{Label, ScoreResult};

#[test]
fn pyarrow_reads_our_results_file() {
    let results: Vec<ScoreResult> = (0..4)
        .map(|index| ScoreResult {
            alert_id: format!("bank-a-{index}"),
            bank: "bank-a".to_owned(),
            p_match: 0.1 * index as f64,
            p_no_match: 1.0 - 0.15 * index as f64,
            p_edge: 0.05 * index as f64,
            score: 0.15 * index as f64,
            escalated: index >= 2,
            label: [Label::NoMatch, Label::Match, Label::Edge, Label::Match][index] as i32,
            rationale: if index == 3 {
                "DOB and passport agree.".to_owned()
            } else {
                String::new()
            },
            cleared_reason: if index == 0 {
                "name score 0.21 < 0.5".to_owned()
            } else {
                String::new()
            },
            prescreen_score: 0.21 + 0.2 * index as f64,
            answer_mass: if index == 0 { 0.0 } else { 0.9 },
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("00000.arrow");
    std::fs::write(&path, write_results_arrow(&results).unwrap()).unwrap();
    let python = std::env::var("ORACLE_PYTHON").expect("ORACLE_PYTHON (make test sets it)");
    let script = "import json, sys, pyarrow as pa\n\
        table = pa.ipc.open_file(sys.argv[1]).read_all()\n\
        print(json.dumps({'schema': [f'{f.name}:{f.type}' for f in table.schema], 'rows': table.to_pylist()}))";
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        read["schema"],
        serde_json::json!([
            "alert_id:string",
            "bank:string",
            "p_match:double",
            "p_no_match:double",
            "p_edge:double",
            "score:double",
            "escalated:bool",
            "label:string",
            "rationale:string",
            "cleared_reason:string",
            "prescreen_score:double",
            "answer_mass:double"
        ])
    );
    let rows = read["rows"].as_array().unwrap();
    assert_eq!(rows.len(), results.len());
    for (row, result) in rows.iter().zip(&results) {
        assert_eq!(row["alert_id"], result.alert_id.as_str());
        // serde_json's default float parsing may differ from Python's repr by one ulp.
        assert!((row["score"].as_f64().unwrap() - result.score).abs() < 1e-12);
        assert!((row["prescreen_score"].as_f64().unwrap() - result.prescreen_score).abs() < 1e-12);
        assert!((row["answer_mass"].as_f64().unwrap() - result.answer_mass).abs() < 1e-12);
        assert_eq!(row["escalated"], result.escalated);
        assert_eq!(
            row["label"],
            aml_proto::json::label::name(result.label).unwrap()
        );
        let optional = |text: &str| {
            if text.is_empty() {
                serde_json::Value::Null
            } else {
                text.into()
            }
        };
        assert_eq!(row["rationale"], optional(&result.rationale));
        assert_eq!(row["cleared_reason"], optional(&result.cleared_reason));
    }
}
