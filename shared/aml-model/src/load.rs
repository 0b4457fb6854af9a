//! Loading a decoder: from a Hugging Face directory's safetensors, or with random weights
//! of a configuration's shape; the tensor names and shapes a configuration implies.

use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::attention::Attention;
use crate::config::ModelConfig;
use crate::error::Result;
use crate::layers::{Linear, Mlp, RmsNorm, Weight};
use crate::model::{CausalLm, DecoderLayer};
use crate::rope::Rotary;
use crate::safetensors_io::WeightFiles;

/// How to load a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadOptions {
    /// Where the weights live.
    pub device: Device,
    /// Compute dtype: `Float` (CPU tests), `BFloat16` (GPU default).
    pub kind: Kind,
    /// Store the projection weights as FP8 (e4m3, per-row scales), computing in `kind`.
    pub fp8_weights: bool,
}

impl LoadOptions {
    /// float32 on the CPU.
    pub fn cpu_f32() -> Self {
        LoadOptions {
            device: Device::Cpu,
            kind: Kind::Float,
            fp8_weights: false,
        }
    }
}

/// The tensor names and shapes a configuration implies, in `save_pretrained` order.
pub fn tensor_shapes(config: &ModelConfig) -> Vec<(String, Vec<i64>)> {
    let hidden = config.hidden_size;
    let q_width = config.num_heads * config.head_dim;
    let kv_width = config.num_kv_heads * config.head_dim;
    let inner = config.intermediate_size;
    let mut shapes = vec![(
        "model.embed_tokens.weight".to_owned(),
        vec![config.vocab_size, hidden],
    )];
    for layer in 0..config.num_layers {
        let prefix = format!("model.layers.{layer}");
        let mut push =
            |name: &str, shape: Vec<i64>| shapes.push((format!("{prefix}.{name}"), shape));
        push("input_layernorm.weight", vec![hidden]);
        push("self_attn.q_proj.weight", vec![q_width, hidden]);
        push("self_attn.k_proj.weight", vec![kv_width, hidden]);
        push("self_attn.v_proj.weight", vec![kv_width, hidden]);
        push("self_attn.o_proj.weight", vec![hidden, q_width]);
        if config.qkv_bias {
            push("self_attn.q_proj.bias", vec![q_width]);
            push("self_attn.k_proj.bias", vec![kv_width]);
            push("self_attn.v_proj.bias", vec![kv_width]);
        }
        if config.o_bias {
            push("self_attn.o_proj.bias", vec![hidden]);
        }
        if config.qk_norm {
            push("self_attn.q_norm.weight", vec![config.head_dim]);
            push("self_attn.k_norm.weight", vec![config.head_dim]);
        }
        push("post_attention_layernorm.weight", vec![hidden]);
        push("mlp.gate_proj.weight", vec![inner, hidden]);
        push("mlp.up_proj.weight", vec![inner, hidden]);
        push("mlp.down_proj.weight", vec![hidden, inner]);
        if config.mlp_bias {
            push("mlp.gate_proj.bias", vec![inner]);
            push("mlp.up_proj.bias", vec![inner]);
            push("mlp.down_proj.bias", vec![hidden]);
        }
    }
    shapes.push(("model.norm.weight".to_owned(), vec![hidden]));
    if !config.tie_word_embeddings {
        shapes.push(("lm_head.weight".to_owned(), vec![config.vocab_size, hidden]));
    }
    shapes
}

/// Where a model's tensors come from.
enum WeightSource<'a> {
    /// Safetensors files.
    Files(&'a WeightFiles),
    /// Random values drawn on the device (benchmarks of full-size shapes without files).
    Random,
}

struct Loader<'a> {
    source: WeightSource<'a>,
    options: LoadOptions,
}

impl Loader<'_> {
    fn tensor(&self, name: &str, shape: &[i64]) -> Result<Tensor> {
        match self.source {
            WeightSource::Files(files) => {
                files.load(name, Some(shape), self.options.kind, self.options.device)
            }
            WeightSource::Random => {
                let options = (self.options.kind, self.options.device);
                if name.ends_with("norm.weight") {
                    return Ok(Tensor::ones(shape, options));
                }
                let fan_in = shape.last().copied().unwrap_or(1) as f64;
                Ok(Tensor::randn(shape, options) / fan_in.sqrt())
            }
        }
    }

    fn linear(&self, name: &str, out: i64, input: i64, bias: bool) -> Result<Linear> {
        let dense = self.tensor(&format!("{name}.weight"), &[out, input])?;
        let weight = if self.options.fp8_weights {
            Weight::quantize_fp8(&dense)
        } else {
            Weight::Dense(dense)
        };
        let bias = if bias {
            Some(self.tensor(&format!("{name}.bias"), &[out])?)
        } else {
            None
        };
        Ok(Linear {
            weight,
            bias,
            lora: None,
        })
    }

    fn norm(&self, name: &str, dim: i64, eps: f64) -> Result<RmsNorm> {
        Ok(RmsNorm {
            weight: self.tensor(name, &[dim])?,
            eps,
        })
    }
}

impl CausalLm {
    /// Loads a Hugging Face model directory (`config.json` + safetensors).
    pub fn load(dir: &Path, options: LoadOptions) -> Result<Self> {
        let config = ModelConfig::from_dir(dir)?;
        let files = WeightFiles::open(dir)?;
        Self::from_files(config, &files, options)
    }

    /// Builds the model from a configuration and indexed weight files.
    pub fn from_files(
        config: ModelConfig,
        files: &WeightFiles,
        options: LoadOptions,
    ) -> Result<Self> {
        Self::build(config, WeightSource::Files(files), options)
    }

    /// A model of `config`'s shape with random weights drawn on the device (for benchmarks of
    /// full-size shapes; libtorch's generator, seeded).
    pub fn random(config: ModelConfig, options: LoadOptions, seed: i64) -> Result<Self> {
        tch::manual_seed(seed);
        Self::build(config, WeightSource::Random, options)
    }

    fn build(config: ModelConfig, source: WeightSource<'_>, options: LoadOptions) -> Result<Self> {
        let _no_grad = tch::no_grad_guard();
        let loader = Loader { source, options };
        let hidden = config.hidden_size;
        let eps = config.rms_norm_eps;
        let q_width = config.num_heads * config.head_dim;
        let kv_width = config.num_kv_heads * config.head_dim;
        let inner = config.intermediate_size;
        let embed = loader.tensor("model.embed_tokens.weight", &[config.vocab_size, hidden])?;
        let mut layers = Vec::with_capacity(config.num_layers as usize);
        for index in 0..config.num_layers {
            let prefix = format!("model.layers.{index}");
            let attention = Attention {
                q_proj: loader.linear(
                    &format!("{prefix}.self_attn.q_proj"),
                    q_width,
                    hidden,
                    config.qkv_bias,
                )?,
                k_proj: loader.linear(
                    &format!("{prefix}.self_attn.k_proj"),
                    kv_width,
                    hidden,
                    config.qkv_bias,
                )?,
                v_proj: loader.linear(
                    &format!("{prefix}.self_attn.v_proj"),
                    kv_width,
                    hidden,
                    config.qkv_bias,
                )?,
                o_proj: loader.linear(
                    &format!("{prefix}.self_attn.o_proj"),
                    hidden,
                    q_width,
                    config.o_bias,
                )?,
                q_norm: if config.qk_norm {
                    Some(loader.norm(
                        &format!("{prefix}.self_attn.q_norm.weight"),
                        config.head_dim,
                        eps,
                    )?)
                } else {
                    None
                },
                k_norm: if config.qk_norm {
                    Some(loader.norm(
                        &format!("{prefix}.self_attn.k_norm.weight"),
                        config.head_dim,
                        eps,
                    )?)
                } else {
                    None
                },
                num_heads: config.num_heads,
                num_kv_heads: config.num_kv_heads,
                head_dim: config.head_dim,
            };
            let mlp = Mlp {
                gate: loader.linear(
                    &format!("{prefix}.mlp.gate_proj"),
                    inner,
                    hidden,
                    config.mlp_bias,
                )?,
                up: loader.linear(
                    &format!("{prefix}.mlp.up_proj"),
                    inner,
                    hidden,
                    config.mlp_bias,
                )?,
                down: loader.linear(
                    &format!("{prefix}.mlp.down_proj"),
                    hidden,
                    inner,
                    config.mlp_bias,
                )?,
            };
            layers.push(DecoderLayer {
                input_norm: loader.norm(
                    &format!("{prefix}.input_layernorm.weight"),
                    hidden,
                    eps,
                )?,
                attention,
                post_attention_norm: loader.norm(
                    &format!("{prefix}.post_attention_layernorm.weight"),
                    hidden,
                    eps,
                )?,
                mlp,
            });
        }
        let norm = loader.norm("model.norm.weight", hidden, eps)?;
        let lm_head = if config.tie_word_embeddings {
            Weight::Dense(embed.shallow_clone())
        } else {
            Weight::Dense(loader.tensor("lm_head.weight", &[config.vocab_size, hidden])?)
        };
        let rotary = Rotary::new(&config, options.device);
        Ok(CausalLm {
            config,
            embed,
            layers,
            norm,
            lm_head,
            rotary,
            device: options.device,
            kind: options.kind,
        })
    }
}
