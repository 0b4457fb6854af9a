//! Compiles `proto/aml/v1/*.proto` with the vendored `protoc`, so no system install is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let proto_file = proto_root.join("aml/v1/aml.proto");
    println!("cargo:rerun-if-changed={}", proto_file.display());
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Alerts and results travel as JSON too (files banks push, JSONL results, events `aml`
    // prints): serde on those messages, enums as their names.
    for message in [
        "DatasetReady",
        "JudgeReport",
        "Alert",
        "Party",
        "WatchlistEntry",
        "Identifier",
        "ScoreResult",
        "BatchReport",
        "BankSummary",
        "CalibrationFigures",
    ] {
        config.type_attribute(
            format!("aml.v1.{message}"),
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, deny_unknown_fields)]",
        );
    }
    for field in ["Party.kind", "WatchlistEntry.kind"] {
        config.field_attribute(
            format!("aml.v1.{field}"),
            "#[serde(with = \"crate::json::entity_kind\")]",
        );
    }
    config.field_attribute(
        "aml.v1.ScoreResult.label",
        "#[serde(with = \"crate::json::label\")]",
    );
    config.compile_protos(&[proto_file], &[proto_root])?;
    Ok(())
}
