//! `merge_and_save`: a complete Hugging Face model directory with the adapter folded in.

use std::path::Path;

use serde_json::Value;
use tch::Kind;

use crate::error::{ModelError, Result, write_file};
use crate::model::CausalLm;
use crate::safetensors_io::save_sharded;

/// Files copied from the base model directory next to the merged weights.
const TOKENIZER_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "chat_template.jinja",
    "tokenizer.model",
];

fn dtype_name(kind: Kind) -> &'static str {
    match kind {
        Kind::BFloat16 => "bfloat16",
        Kind::Half => "float16",
        _ => "float32",
    }
}

/// Writes the model with its LoRA merged: sharded safetensors of at most `max_shard_bytes`
/// with their index, `config.json` (dtype updated) and the tokenizer files of `base_dir`.
pub fn merge_and_save(
    model: &CausalLm,
    base_dir: &Path,
    out: &Path,
    kind: Kind,
    max_shard_bytes: u64,
) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|source| ModelError::Io {
        path: out.to_owned(),
        source,
    })?;
    let tensors = model.merged_tensors(kind);
    save_sharded(out, &tensors, max_shard_bytes)?;
    let mut config = model.config.raw.clone();
    if let Value::Object(fields) = &mut config {
        fields.insert("torch_dtype".to_owned(), Value::from(dtype_name(kind)));
        fields.remove("dtype");
    }
    let text = serde_json::to_string_pretty(&config)
        .map_err(|error| ModelError::Input(error.to_string()))?;
    write_file(&out.join("config.json"), text.as_bytes())?;
    for name in TOKENIZER_FILES {
        let source = base_dir.join(name);
        if source.exists() {
            std::fs::copy(&source, out.join(name)).map_err(|source_error| ModelError::Io {
                path: source.clone(),
                source: source_error,
            })?;
        }
    }
    Ok(())
}
