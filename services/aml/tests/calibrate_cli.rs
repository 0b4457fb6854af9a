//! `aml calibrate` certifies or refuses exactly at the Clopper-Pearson boundary (299 positives
//! with no miss certify 99% recall at 95%, 298 do not), writes `calibration.json` only when it
//! may, and `aml prescreen --pairs` reads the public name pairs with every FollowTheMoney
//! schema and prints nothing when a row is bad.

use std::path::Path;
use std::process::Output;

use aml_integration_tests::cli::Cli;

fn aml(args: &[&str]) -> Output {
    Cli::new(env!("CARGO_BIN_EXE_aml")).run(args, &[("RUST_BACKTRACE", "0")])
}

/// `positives` positives and 200 negatives: results (model scores, prescreen scores; the
/// negatives with a low prescreen score cleared) and their gold labels.
fn labelled_results(dir: &Path, positives: usize) -> (String, String) {
    let (mut results, mut gold) = (String::new(), String::new());
    for index in 0..positives + 200 {
        let positive = index < positives;
        let id = format!("a-{index:04}");
        let prescreen = if positive {
            0.8
        } else {
            0.3 + 0.5 * (index % 10) as f64 / 10.0
        };
        let cleared = !positive && prescreen < 0.4;
        let score = if cleared {
            0.0
        } else if positive {
            0.9
        } else {
            0.2 + 0.07 * (index % 10) as f64
        };
        let reason = if cleared { "below the cutoff" } else { "" };
        results.push_str(&format!(
            "{{\"alert_id\":\"{id}\",\"bank\":\"alpha\",\"score\":{score},\"prescreen_score\":{prescreen},\"cleared_reason\":\"{reason}\"}}\n"
        ));
        let label = if positive { "match" } else { "no_match" };
        gold.push_str(&format!(
            "{{\"alert_id\":\"{id}\",\"label\":\"{label}\"}}\n"
        ));
    }
    let (results_path, gold_path) = (dir.join("results.jsonl"), dir.join("gold.jsonl"));
    std::fs::write(&results_path, results).expect("results");
    std::fs::write(&gold_path, gold).expect("gold");
    (
        results_path.display().to_string(),
        gold_path.display().to_string(),
    )
}

#[test]
fn certifies_at_299_clean_positives_and_refuses_at_298_unless_asked() {
    let root = tempfile::tempdir().expect("dir");
    let out = root.path().join("calibration.json");
    let out_text = out.display().to_string();
    let (results, gold) = labelled_results(root.path(), 299);
    let certified = aml(&[
        "calibrate",
        "--results",
        &results,
        "--gold",
        &gold,
        "--out",
        &out_text,
    ]);
    let stderr = String::from_utf8_lossy(&certified.stderr);
    assert!(certified.status.success(), "{stderr}");
    assert!(
        stderr.contains("certified: recall 1.0000 >= 0.9900"),
        "{stderr}"
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("written")).expect("json");
    assert_eq!(written["schema"], "aml.calibration/v1");
    assert_eq!(written["certified"], true);
    assert_eq!(written["positives"], 299);
    assert!(written["recall_lower_bound"].as_f64().expect("bound") >= 0.99);
    assert!(
        written["prescreen_cutoff"].as_f64().expect("cutoff") >= 0.4,
        "{written}"
    );
    assert!(written["sha256"]["labelled_set"].is_string());
    std::fs::remove_file(&out).expect("removed");

    let few = tempfile::tempdir().expect("dir");
    let (results, gold) = labelled_results(few.path(), 298);
    let refused = aml(&[
        "calibrate",
        "--results",
        &results,
        "--gold",
        &gold,
        "--out",
        &out_text,
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("it holds 298 positives; at least 299 positives, all found, are needed"),
        "{stderr}"
    );
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
    assert!(
        !out.exists(),
        "nothing written for a set that cannot certify"
    );
    let anyway = aml(&[
        "calibrate",
        "--results",
        &results,
        "--gold",
        &gold,
        "--out",
        &out_text,
        "--uncertified",
    ]);
    assert!(
        anyway.status.success(),
        "{}",
        String::from_utf8_lossy(&anyway.stderr)
    );
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("written")).expect("json");
    assert_eq!(written["certified"], false);
    assert_eq!(written["positives_needed"], 299);
}

#[test]
fn prescreen_pairs_reads_every_schema_and_prints_nothing_for_a_bad_row() {
    let public = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/aml-prescreen/data/name-bench/cases.csv")
        .display()
        .to_string();
    let scored = aml(&["prescreen", "--pairs", &public]);
    assert!(
        scored.status.success(),
        "{}",
        String::from_utf8_lossy(&scored.stderr)
    );
    let lines: Vec<String> = String::from_utf8_lossy(&scored.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 827, "a header and one score per pair");
    assert_eq!(lines[0], "score");

    let root = tempfile::tempdir().expect("dir");
    let bad = root.path().join("pairs.csv");
    std::fs::write(
        &bad,
        "name1,name2,schema,is_match\nIvan Petrov,Ivan Petrov,Person,true\nMV Sea Star,Sea Star,Vessel,true\nAcme Ltd,Acme,Company,true\nx,y,Airplane,perhaps\n",
    )
    .expect("pairs");
    let failed = aml(&["prescreen", "--pairs", &bad.display().to_string()]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        stderr.contains(&format!("{}", bad.display()))
            && stderr.contains("line 5: field `is_match`"),
        "{stderr}"
    );
    assert!(failed.stdout.is_empty(), "nothing partial on stdout");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
}
