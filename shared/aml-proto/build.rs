//! Compiles `proto/aml/v1/*.proto` with the vendored `protoc`, so no system install is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let proto_file = proto_root.join("aml/v1/aml.proto");
    println!("cargo:rerun-if-changed={}", proto_file.display());
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    config.compile_protos(&[proto_file], &[proto_root])?;
    Ok(())
}
