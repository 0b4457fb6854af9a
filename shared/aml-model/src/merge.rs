//! `merge_and_save`: a complete Hugging Face model directory with the adapter folded in.

use std::path::Path;

use serde_json::Value;
use tch::Kind;

use crate::error::{ModelError, Result, write_file};
use crate::load::tensor_shapes;
use crate::model::CausalLm;
use crate::safetensors_io::{PlannedTensor, save_sharded_with};

/// Files copied from the base model directory next to the merged weights or an adapter: the
/// tokenizer, its configuration with the chat template, and the generation defaults.
pub const TOKENIZER_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
    "chat_template.jinja",
    "tokenizer.model",
];

/// Copies the [`TOKENIZER_FILES`] that `from` holds into `to`; returns how many.
pub fn copy_tokenizer_files(from: &Path, to: &Path) -> Result<usize> {
    let mut copied = 0;
    for name in TOKENIZER_FILES {
        let source = from.join(name);
        if source.exists() {
            std::fs::copy(&source, to.join(name)).map_err(|source_error| ModelError::Io {
                path: source.clone(),
                source: source_error,
            })?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// The `torch_dtype` name of a kind.
fn dtype_name(kind: Kind) -> &'static str {
    match kind {
        Kind::BFloat16 => "bfloat16",
        Kind::Half => "float16",
        _ => "float32",
    }
}

/// The kind of a `torch_dtype` name (float32 for names this runtime does not save).
pub fn kind_of_dtype_name(name: &str) -> Kind {
    match name {
        "bfloat16" => Kind::BFloat16,
        "float16" => Kind::Half,
        _ => Kind::Float,
    }
}

/// Writes the model with its LoRA merged, in the base checkpoint's own dtype (`torch_dtype`
/// of its config.json: bf16 for Llama 3 and Mistral), as sharded safetensors of at most
/// `max_shard_bytes` with their index, `config.json` and the tokenizer files of `base_dir`.
/// Tensors are merged and written one shard at a time.
pub fn merge_and_save(
    model: &CausalLm,
    base_dir: &Path,
    out: &Path,
    max_shard_bytes: u64,
) -> Result<Kind> {
    std::fs::create_dir_all(out).map_err(|source| ModelError::Io {
        path: out.to_owned(),
        source,
    })?;
    let kind = kind_of_dtype_name(&model.config.saved_dtype);
    let plan: Vec<PlannedTensor> = tensor_shapes(&model.config)
        .into_iter()
        .map(|(name, shape)| PlannedTensor {
            name,
            bytes: shape.iter().product::<i64>() as u64 * kind.elt_size_in_bytes() as u64,
        })
        .collect();
    save_sharded_with(out, &plan, max_shard_bytes, |position| {
        model.merged_tensor(&plan[position].name, kind)
    })?;
    let mut config = model.config.raw.clone();
    if let Value::Object(fields) = &mut config {
        fields.insert("torch_dtype".to_owned(), Value::from(dtype_name(kind)));
        fields.remove("dtype");
    }
    let text = serde_json::to_string_pretty(&config)
        .map_err(|error| ModelError::Input(error.to_string()))?;
    write_file(&out.join("config.json"), text.as_bytes())?;
    copy_tokenizer_files(base_dir, out)?;
    Ok(kind)
}
