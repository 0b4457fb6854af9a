//! `config.json` of a Hugging Face model, normalised for the decoder.
//!
//! Reads both layouts: the hub's (`rope_theta` + `rope_scaling`) and transformers 5's
//! (`rope_parameters`), and an explicit `head_dim` where given.

use std::path::Path;

use serde_json::{Value, json};

use crate::error::{ModelError, Result, read_json};

/// The decoder families this runtime implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama 3.0 - 3.3 (`LlamaForCausalLM`).
    Llama,
    /// Mistral 7B (`MistralForCausalLM`).
    Mistral,
    /// Qwen2 / Qwen2.5: biases on q, k, v.
    Qwen2,
    /// Qwen3: RMS norms on q and k per head.
    Qwen3,
}

impl Architecture {
    /// The `model_type` of config.json.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mistral => "mistral",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
        }
    }

    /// The class name in `architectures`.
    pub fn class_name(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Mistral => "MistralForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
            Architecture::Qwen3 => "Qwen3ForCausalLM",
        }
    }

    /// Parses a `model_type` or command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(Architecture::Llama),
            "mistral" => Some(Architecture::Mistral),
            "qwen2" => Some(Architecture::Qwen2),
            "qwen3" => Some(Architecture::Qwen3),
            _ => None,
        }
    }
}

/// Llama 3 frequency-dependent RoPE scaling (`rope_type = "llama3"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Llama3Scaling {
    /// Overall factor (8 for Llama 3.1).
    pub factor: f64,
    /// Low-frequency factor (1).
    pub low_freq_factor: f64,
    /// High-frequency factor (4).
    pub high_freq_factor: f64,
    /// Context length of the original training (8192).
    pub original_max_position_embeddings: f64,
}

/// Rotary position embedding settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeConfig {
    /// Base of the frequencies.
    pub theta: f64,
    /// Llama 3 scaling, when configured.
    pub llama3: Option<Llama3Scaling>,
}

/// The normalised configuration the decoder is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Decoder family.
    pub architecture: Architecture,
    /// Vocabulary size.
    pub vocab_size: i64,
    /// Model width.
    pub hidden_size: i64,
    /// MLP width.
    pub intermediate_size: i64,
    /// Decoder layers.
    pub num_layers: i64,
    /// Query heads.
    pub num_heads: i64,
    /// Key/value heads (grouped-query attention when fewer than query heads).
    pub num_kv_heads: i64,
    /// Width of one head.
    pub head_dim: i64,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary embedding.
    pub rope: RopeConfig,
    /// Longest context the model supports.
    pub max_position_embeddings: i64,
    /// Whether the output projection shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Biases on q, k, v projections.
    pub qkv_bias: bool,
    /// Bias on the output projection.
    pub o_bias: bool,
    /// Biases on the MLP projections.
    pub mlp_bias: bool,
    /// RMS norms on queries and keys per head (Qwen3).
    pub qk_norm: bool,
    /// Beginning-of-sequence token.
    pub bos_token_id: Option<i64>,
    /// End-of-sequence tokens.
    pub eos_token_ids: Vec<i64>,
    /// The dtype the weights were saved in (`torch_dtype` / `dtype`).
    pub saved_dtype: String,
    /// The file as read, written back unchanged when the model is merged or copied.
    pub raw: Value,
}

fn invalid(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidJson {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn int(raw: &Value, key: &str, path: &Path) -> Result<i64> {
    raw.get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid(path, format!("missing or non-integer `{key}`")))
}

fn float(value: Option<&Value>, default: f64) -> f64 {
    value.and_then(Value::as_f64).unwrap_or(default)
}

fn token_ids(value: Option<&Value>) -> Vec<i64> {
    match value {
        Some(Value::Number(number)) => number.as_i64().into_iter().collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_i64).collect(),
        _ => Vec::new(),
    }
}

impl ModelConfig {
    /// Reads `config.json` of a model directory.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        Self::from_file(&dir.join("config.json"))
    }

    /// Reads a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let raw = read_json(path, "the model configuration")?;
        Self::from_value(raw, path)
    }

    /// Normalises a parsed `config.json`; `path` names it in errors.
    pub fn from_value(raw: Value, path: &Path) -> Result<Self> {
        let model_type = raw
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(path, "missing `model_type`"))?;
        let architecture =
            Architecture::from_name(model_type).ok_or_else(|| ModelError::Unsupported {
                path: path.to_owned(),
                what: format!(
                    "architecture `{model_type}` (supported: llama, mistral, qwen2, qwen3)"
                ),
            })?;
        let hidden_size = int(&raw, "hidden_size", path)?;
        let num_heads = int(&raw, "num_attention_heads", path)?;
        let num_kv_heads = raw
            .get("num_key_value_heads")
            .and_then(Value::as_i64)
            .unwrap_or(num_heads);
        let head_dim = raw
            .get("head_dim")
            .and_then(Value::as_i64)
            .unwrap_or(hidden_size / num_heads.max(1));
        if num_heads <= 0 || num_kv_heads <= 0 || num_heads % num_kv_heads != 0 {
            return Err(invalid(
                path,
                format!(
                    "num_attention_heads {num_heads} is not a multiple of num_key_value_heads {num_kv_heads}"
                ),
            ));
        }
        if head_dim % 2 != 0 {
            return Err(invalid(
                path,
                format!("head_dim {head_dim} must be even for rotary embeddings"),
            ));
        }
        let rope = rope_config(&raw, path)?;
        if raw.get("use_sliding_window").and_then(Value::as_bool) == Some(true) {
            return Err(ModelError::Unsupported {
                path: path.to_owned(),
                what: "sliding-window attention (use_sliding_window = true)".to_owned(),
            });
        }
        let attention_bias = raw.get("attention_bias").and_then(Value::as_bool);
        let qkv_bias = match architecture {
            Architecture::Qwen2 => true,
            _ => attention_bias.unwrap_or(false),
        };
        let o_bias = match architecture {
            Architecture::Qwen2 => false,
            _ => attention_bias.unwrap_or(false),
        };
        let saved_dtype = raw
            .get("torch_dtype")
            .or_else(|| raw.get("dtype"))
            .and_then(Value::as_str)
            .unwrap_or("float32")
            .to_owned();
        Ok(ModelConfig {
            architecture,
            vocab_size: int(&raw, "vocab_size", path)?,
            hidden_size,
            intermediate_size: int(&raw, "intermediate_size", path)?,
            num_layers: int(&raw, "num_hidden_layers", path)?,
            num_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: float(raw.get("rms_norm_eps"), 1e-6),
            rope,
            max_position_embeddings: raw
                .get("max_position_embeddings")
                .and_then(Value::as_i64)
                .unwrap_or(4096),
            tie_word_embeddings: raw
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            qkv_bias,
            o_bias,
            mlp_bias: raw
                .get("mlp_bias")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            qk_norm: architecture == Architecture::Qwen3,
            bos_token_id: raw.get("bos_token_id").and_then(Value::as_i64),
            eos_token_ids: token_ids(raw.get("eos_token_id")),
            saved_dtype,
            raw,
        })
    }

    /// Query heads per key/value head.
    pub fn group_size(&self) -> i64 {
        self.num_heads / self.num_kv_heads
    }

    /// FLOPs of the attention and MLP projections per token, forward only.
    pub fn projection_flops_per_token(&self) -> f64 {
        let hidden = self.hidden_size as f64;
        let width = (self.num_heads * self.head_dim) as f64;
        let kv_width = (self.num_kv_heads * self.head_dim) as f64;
        let per_layer =
            hidden * (2.0 * width + 2.0 * kv_width) + 3.0 * hidden * self.intermediate_size as f64;
        2.0 * self.num_layers as f64 * per_layer
    }

    /// FLOPs of the output projection (the head) per token, forward only.
    pub fn head_flops_per_token(&self) -> f64 {
        2.0 * (self.hidden_size * self.vocab_size) as f64
    }

    /// Attention FLOPs (scores and weighted values) per query-key pair, forward only.
    pub fn attention_flops_per_pair(&self) -> f64 {
        4.0 * self.num_layers as f64 * (self.num_heads * self.head_dim) as f64
    }

    /// Model FLOPs of LoRA training (frozen base) on `tokens` tokens with `pairs` causal
    /// query-key pairs: the forward and the input-gradient backward, twice the forward's
    /// projections and head and three times its attention; adapter and recomputation excluded,
    /// so the figure compares across `--recompute`.
    pub fn lora_training_flops(&self, tokens: f64, pairs: f64) -> f64 {
        2.0 * tokens * (self.projection_flops_per_token() + self.head_flops_per_token())
            + 3.0 * pairs * self.attention_flops_per_pair()
    }

    /// Number of parameters of the base model.
    pub fn parameter_count(&self) -> i64 {
        let attention =
            self.hidden_size * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads);
        let mlp = 3 * self.hidden_size * self.intermediate_size;
        let norms = 2 * self.hidden_size;
        let embeddings = self.vocab_size * self.hidden_size;
        let head = if self.tie_word_embeddings {
            0
        } else {
            embeddings
        };
        self.num_layers * (attention + mlp + norms) + embeddings + head + self.hidden_size
    }
}

fn rope_config(raw: &Value, path: &Path) -> Result<RopeConfig> {
    let parameters = raw.get("rope_parameters").filter(|value| value.is_object());
    let scaling = parameters.or_else(|| raw.get("rope_scaling").filter(|value| value.is_object()));
    let theta = parameters
        .and_then(|parameters| parameters.get("rope_theta"))
        .or_else(|| raw.get("rope_theta"))
        .and_then(Value::as_f64)
        .unwrap_or(10_000.0);
    let Some(scaling) = scaling else {
        return Ok(RopeConfig {
            theta,
            llama3: None,
        });
    };
    let rope_type = scaling
        .get("rope_type")
        .or_else(|| scaling.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    match rope_type {
        "default" => Ok(RopeConfig {
            theta,
            llama3: None,
        }),
        "llama3" => Ok(RopeConfig {
            theta,
            llama3: Some(Llama3Scaling {
                factor: float(scaling.get("factor"), 8.0),
                low_freq_factor: float(scaling.get("low_freq_factor"), 1.0),
                high_freq_factor: float(scaling.get("high_freq_factor"), 4.0),
                original_max_position_embeddings: float(
                    scaling.get("original_max_position_embeddings"),
                    8192.0,
                ),
            }),
        }),
        other => Err(ModelError::Unsupported {
            path: path.to_owned(),
            what: format!("rope scaling type `{other}` (supported: default, llama3)"),
        }),
    }
}

/// The shape of a small random model, for tests and the demo.
#[derive(Debug, Clone, PartialEq)]
pub struct TinySpec {
    /// Decoder family.
    pub architecture: Architecture,
    /// Vocabulary size (the trained tokenizer's size is used when smaller).
    pub vocab_size: i64,
    /// Model width.
    pub hidden_size: i64,
    /// MLP width.
    pub intermediate_size: i64,
    /// Decoder layers.
    pub num_layers: i64,
    /// Query heads.
    pub num_heads: i64,
    /// Key/value heads.
    pub num_kv_heads: i64,
    /// Use Llama 3 RoPE scaling (Llama only).
    pub llama3_rope: bool,
    /// Longest context (`max_position_embeddings`).
    pub max_position_embeddings: i64,
    /// The dtype the weights are saved in (`torch_dtype`): `float32` or `bfloat16`.
    pub torch_dtype: &'static str,
    /// Keep `vocab_size` in config.json even when the trained tokenizer is smaller (a
    /// full-size shape with a small tokenizer); otherwise the tokenizer's size is used.
    pub keep_vocab_size: bool,
    /// A SentencePiece-style tokenizer (Metaspace: `▁` for spaces and before the first word,
    /// as Llama 2 and Mistral) instead of byte-level BPE (as Llama 3).
    pub sentencepiece: bool,
}

impl TinySpec {
    /// A 2-layer, 64-wide model with grouped-query attention.
    pub fn tiny(architecture: Architecture) -> Self {
        TinySpec {
            architecture,
            vocab_size: 512,
            hidden_size: 64,
            intermediate_size: 128,
            num_layers: 2,
            num_heads: 4,
            num_kv_heads: 2,
            llama3_rope: architecture == Architecture::Llama,
            max_position_embeddings: 4096,
            torch_dtype: "float32",
            keep_vocab_size: false,
            sentencepiece: false,
        }
    }

    /// Llama-3-8B's shape (Llama 3.1 RoPE scaling, 128k context) in bf16, for GPU runs of
    /// the real size with random weights and the tiny tokenizer.
    pub fn llama3_8b() -> Self {
        TinySpec {
            architecture: Architecture::Llama,
            vocab_size: 128_256,
            hidden_size: 4096,
            intermediate_size: 14_336,
            num_layers: 32,
            num_heads: 32,
            num_kv_heads: 8,
            llama3_rope: true,
            max_position_embeddings: 131_072,
            torch_dtype: "bfloat16",
            keep_vocab_size: true,
            sentencepiece: false,
        }
    }

    /// The hub-style `config.json` of this shape.
    pub fn config_json(&self, vocab_size: i64, bos: i64, eos: &[i64]) -> Value {
        let head_dim = self.hidden_size / self.num_heads;
        let mut config = json!({
            "architectures": [self.architecture.class_name()],
            "model_type": self.architecture.model_type(),
            "vocab_size": vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "tie_word_embeddings": false,
            "torch_dtype": self.torch_dtype,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "attention_dropout": 0.0,
            "initializer_range": 0.02,
            "use_cache": true,
        });
        if self.llama3_rope && self.architecture == Architecture::Llama {
            config["rope_scaling"] = json!({
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                // Llama 3.1's 8k for a full-size context; 64 for tiny models, so that short
                // test sequences cross the scaled frequencies.
                "original_max_position_embeddings": if self.max_position_embeddings > 8192 { 8192 } else { 64 },
            });
        }
        match self.architecture {
            Architecture::Llama => {
                config["attention_bias"] = json!(false);
                config["mlp_bias"] = json!(false);
            }
            Architecture::Mistral => config["sliding_window"] = Value::Null,
            Architecture::Qwen2 => {
                config["use_sliding_window"] = json!(false);
                config["sliding_window"] = Value::Null;
            }
            Architecture::Qwen3 => {
                config["attention_bias"] = json!(false);
                config["use_sliding_window"] = json!(false);
                config["sliding_window"] = Value::Null;
            }
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_and_transformers5_rope_layouts_agree() {
        let hub = json!({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
            "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}});
        let v5 = json!({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
            "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}});
        let path = Path::new("config.json");
        let a = ModelConfig::from_value(hub, path).unwrap();
        let b = ModelConfig::from_value(v5, path).unwrap();
        assert_eq!(a.rope, b.rope);
        assert_eq!(a.rope.theta, 500000.0);
        assert_eq!(a.rope.llama3.unwrap().factor, 8.0);
        assert_eq!(a.head_dim, 16);
    }

    #[test]
    fn unsupported_architecture_names_the_file() {
        let raw = json!({"model_type": "gpt2"});
        let error = ModelConfig::from_value(raw, Path::new("/m/config.json")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/m/config.json: unsupported architecture `gpt2` (supported: llama, mistral, qwen2, qwen3)"
        );
    }

    #[test]
    fn qwen2_has_qkv_bias_and_qwen3_has_qk_norm() {
        let base = |model_type: &str| {
            json!({"model_type": model_type, "hidden_size": 64, "intermediate_size": 128, "head_dim": 32,
                "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100})
        };
        let qwen2 = ModelConfig::from_value(base("qwen2"), Path::new("c")).unwrap();
        assert!(qwen2.qkv_bias && !qwen2.o_bias && !qwen2.qk_norm);
        let qwen3 = ModelConfig::from_value(base("qwen3"), Path::new("c")).unwrap();
        assert!(!qwen3.qkv_bias && qwen3.qk_norm);
        assert_eq!(
            qwen3.head_dim, 32,
            "explicit head_dim wins over hidden/heads"
        );
        assert_eq!(qwen3.num_kv_heads, 4);
    }
}
