//! The shared crates depend only downward: each has a layer, and every workspace crate it
//! depends on (normal or build dependency) sits in a lower one; no shared crate depends on a
//! service. Read from `cargo metadata`, so a new dependency that runs upward fails here.

use std::collections::BTreeMap;
use std::process::Command;

/// Each shared crate's layer, lowest first. A crate may use crates of lower layers only.
const LAYERS: [&[&str]; 7] = [
    &["aml-proto", "aml-providers", "aml-torch-link"],
    &["aml-core"],
    &["aml-storage", "aml-model", "aml-prescreen", "aml-hub"],
    &["aml-runtime", "aml-dataset"],
    &["aml-bus", "aml-judge", "aml-scoring", "aml-synth"],
    &["aml-batch"],
    &["aml-trainer"],
];

#[test]
fn shared_crates_depend_only_downward() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let layer: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(index, names)| names.iter().map(move |name| (*name, index)))
        .collect();
    let packages = metadata["packages"].as_array().expect("packages");
    let workspace: Vec<&str> = packages
        .iter()
        .filter_map(|package| package["name"].as_str())
        .collect();
    let mut upward = Vec::new();
    for package in packages {
        let name = package["name"].as_str().expect("name");
        let manifest = package["manifest_path"].as_str().unwrap_or_default();
        if !manifest.contains("/shared/") {
            continue;
        }
        let Some(&own) = layer.get(name) else {
            upward.push(format!("{name} is a shared crate with no layer in LAYERS"));
            continue;
        };
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            let used = dependency["name"].as_str().expect("name");
            if dependency["kind"].as_str() == Some("dev") || !workspace.contains(&used) {
                continue;
            }
            match layer.get(used) {
                Some(&below) if below < own => {}
                Some(&other) => upward.push(format!(
                    "{name} (layer {own}) depends on {used} (layer {other})"
                )),
                None => upward.push(format!("{name} depends on {used}, which is not shared")),
            }
        }
    }
    assert!(
        upward.is_empty(),
        "dependencies that run upward: {upward:#?}"
    );
}
