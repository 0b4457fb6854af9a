//! `aml generate` + `aml validate` as a user runs them: the five files, a balanced
//! 100-record validation set, no duplicates, byte-identical output for a seed, and bad lines
//! that stop the run before anything is written.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Output};

fn aml(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aml"))
        .args(args)
        .output()
        .expect("aml runs")
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect()
}

const FILES: [&str; 6] = [
    "easy.jsonl",
    "medium.jsonl",
    "hard.jsonl",
    "train.jsonl",
    "validation.jsonl",
    "manifest.json",
];

#[test]
fn generate_then_validate_leaves_a_balanced_deterministic_dataset() {
    let first = tempfile::tempdir().expect("dir");
    let second = tempfile::tempdir().expect("dir");
    for dir in [first.path(), second.path()] {
        let out = dir.display().to_string();
        let generated = aml(&[
            "generate",
            "--per-tier",
            "100",
            "--seed",
            "7",
            "--out",
            &out,
        ]);
        assert!(
            generated.status.success(),
            "{}",
            String::from_utf8_lossy(&generated.stderr)
        );
        let validated = aml(&["validate", &out, "--seed", "7"]);
        assert!(
            validated.status.success(),
            "{}",
            String::from_utf8_lossy(&validated.stderr)
        );
    }
    for name in FILES {
        let a = std::fs::read(first.path().join(name)).expect(name);
        let b = std::fs::read(second.path().join(name)).expect(name);
        assert_eq!(a, b, "{name} differs between two runs with the same seed");
    }

    // One JSONL file of candidates validates into the folder it is in.
    let single = tempfile::tempdir().expect("dir");
    let file = single.path().join("mine.jsonl");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(first.path().join("candidates"))
        .expect("candidates")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    files.sort();
    let candidates = files
        .iter()
        .map(|path| std::fs::read_to_string(path).expect("candidates file"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&file, candidates).expect("one file");
    let validated = aml(&["validate", &file.display().to_string(), "--seed", "7"]);
    assert!(
        validated.status.success(),
        "{}",
        String::from_utf8_lossy(&validated.stderr)
    );
    assert_eq!(
        records(&single.path().join("validation.jsonl")),
        records(&first.path().join("validation.jsonl")),
        "the same candidates, the same dataset"
    );

    let validation = records(&first.path().join("validation.jsonl"));
    assert_eq!(validation.len(), 100);
    let mut cells: BTreeMap<(String, String), usize> = BTreeMap::new();
    for record in &validation {
        let key = (
            record["difficulty"].as_str().unwrap().to_owned(),
            record["label"].as_str().unwrap().to_owned(),
        );
        *cells.entry(key).or_default() += 1;
    }
    assert_eq!(cells.len(), 9, "every label x difficulty cell is present");
    let (low, high) = (cells.values().min().unwrap(), cells.values().max().unwrap());
    assert!(high - low <= 1, "cells {cells:?}");

    let train = records(&first.path().join("train.jsonl"));
    let tiers: usize = ["easy.jsonl", "medium.jsonl", "hard.jsonl"]
        .iter()
        .map(|name| records(&first.path().join(name)).len())
        .sum();
    assert_eq!(train.len(), tiers);
    let mut inputs = HashSet::new();
    let mut ids = HashSet::new();
    for record in train.iter().chain(&validation) {
        for field in ["instruction", "input", "output", "cot"] {
            assert!(
                !record[field].as_str().unwrap().trim().is_empty(),
                "{field} empty"
            );
        }
        assert!(["match", "no_match", "edge"].contains(&record["label"].as_str().unwrap()));
        assert!(["easy", "medium", "hard"].contains(&record["difficulty"].as_str().unwrap()));
        let normalised: String = record["input"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(inputs.insert(normalised), "duplicate input");
        assert!(
            ids.insert(record["id"].as_str().unwrap().to_owned()),
            "train and validation overlap"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(first.path().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["files"]["validation.jsonl"]["records"], 100);
}

#[test]
fn a_bad_line_stops_before_anything_is_written() {
    let cases = [
        ("{\"instruction\": ", "invalid JSON"),
        (
            r#"{"instruction":"i","input":"x","output":"MATCH — a","difficulty":"easy","label":"match"}"#,
            "missing field `cot`",
        ),
        (
            r#"{"instruction":"i","input":"x","output":"MATCH — a","cot":"c","difficulty":"easy","label":"maybe"}"#,
            "field `label`: unknown label `maybe`",
        ),
        (
            r#"{"instruction":"i","input":"x","output":"MATCH — a","cot":"","difficulty":"easy","label":"match"}"#,
            "field `cot` is empty",
        ),
    ];
    for (line, expected) in cases {
        let dir = tempfile::tempdir().expect("dir");
        let out = dir.path().display().to_string();
        assert!(
            aml(&[
                "generate",
                "--per-tier",
                "9",
                "--seed",
                "1",
                "--out",
                &out,
                "--validate"
            ])
            .status
            .success()
        );
        let before: Vec<Vec<u8>> = FILES
            .iter()
            .map(|name| std::fs::read(dir.path().join(name)).unwrap())
            .collect();
        let medium = dir.path().join("candidates/medium.jsonl");
        let mut text = std::fs::read_to_string(&medium).unwrap();
        text.push_str(line);
        text.push('\n');
        std::fs::write(&medium, text).unwrap();
        let result = aml(&["validate", &out]);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success());
        assert!(
            stderr.contains(&format!("{}:10: {expected}", medium.display())),
            "{stderr}"
        );
        let after: Vec<Vec<u8>> = FILES
            .iter()
            .map(|name| std::fs::read(dir.path().join(name)).unwrap())
            .collect();
        assert_eq!(before, after, "files already written are untouched");
    }
}
