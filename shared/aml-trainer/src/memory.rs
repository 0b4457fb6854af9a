//! The peak memory a run needs, estimated before the model loads, and the check that it fits
//! the device, naming the flags that would make it fit when it does not.
//!
//! The estimate counts the frozen weights (FP8 projections at one byte plus a per-row scale),
//! the adapter with its gradient and optimiser moments in f32, the activations backpropagation
//! keeps (per token and layer: `10h + 2q + 4kv + 5i` values in the compute dtype plus `8h`
//! bytes of f32 norm temporaries; with recomputation only each layer's input plus one layer),
//! the logits with their f32 copy, log-softmax and gradient, and 1 GiB of CUDA context. On a
//! lent H200 this is within 10% of the card's peak for Llama-3-8B at seq 2048, batch 1 and 4,
//! with and without recomputation (`memory::tests`).

use aml_model::load::tensor_shapes;
use aml_model::{LoadOptions, LoraConfig, ModelConfig};
use tch::{Device, Kind};

use crate::TrainerConfig;
use crate::optim::OptimizerKind;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Where a run's memory goes, in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    /// The frozen base weights.
    pub weights: f64,
    /// The adapter's parameters, gradients and optimiser moments.
    pub adapter: f64,
    /// Activations kept for the backward pass.
    pub activations: f64,
    /// Logits, their f32 copy, log-softmax and gradient.
    pub logits: f64,
    /// Runtime overhead (CUDA context and allocator).
    pub overhead: f64,
}

impl MemoryEstimate {
    /// The whole estimate.
    pub fn total(&self) -> f64 {
        self.weights + self.adapter + self.activations + self.logits + self.overhead
    }

    /// `weights 15.0 GiB, adapter and optimiser 0.6 GiB, ...`.
    pub fn breakdown(&self) -> String {
        format!(
            "weights {}, adapter and optimiser {}, activations {}, logits {}, runtime {}",
            gib(self.weights),
            gib(self.adapter),
            gib(self.activations),
            gib(self.logits),
            gib(self.overhead)
        )
    }
}

/// Bytes as `12.3 GiB`.
pub fn gib(bytes: f64) -> String {
    format!("{:.1} GiB", bytes / GIB)
}

/// Trainable parameters LoRA adds to a model of `config`'s shape.
pub fn lora_parameters(config: &ModelConfig, lora: &LoraConfig) -> i64 {
    tensor_shapes(config)
        .iter()
        .filter(|(name, shape)| {
            shape.len() == 2
                && name.starts_with("model.layers.")
                && lora
                    .target_modules
                    .iter()
                    .any(|target| name.ends_with(&format!("{target}.weight")))
        })
        .map(|(_, shape)| lora.r * (shape[0] + shape[1]))
        .sum()
}

/// What a run of `config` on a `model`-shaped base needs at its peak, with micro-batches of
/// `rows` rows of `seq` tokens and `trainable` adapter parameters.
pub fn estimate(
    model: &ModelConfig,
    options: &LoadOptions,
    config: &TrainerConfig,
    trainable: i64,
    rows: usize,
    seq: usize,
) -> MemoryEstimate {
    let element = options.kind.elt_size_in_bytes() as f64;
    let weights: f64 = tensor_shapes(model)
        .iter()
        .map(|(name, shape)| {
            let values = shape.iter().product::<i64>() as f64;
            let projection = name.starts_with("model.layers.") && name.ends_with("proj.weight");
            if projection && options.fp8_weights {
                values + shape[0] as f64 * element
            } else {
                values * element
            }
        })
        .sum();
    let moments = match config.optimizer {
        OptimizerKind::Adamw => 2.0,
        OptimizerKind::Lion => 1.0,
    };
    let adapter = trainable as f64 * 4.0 * (2.0 + moments);
    let (hidden, inner) = (model.hidden_size as f64, model.intermediate_size as f64);
    let queries = (model.num_heads * model.head_dim) as f64;
    let keys = (model.num_kv_heads * model.head_dim) as f64;
    let per_token_layer =
        (10.0 * hidden + 2.0 * queries + 4.0 * keys + 5.0 * inner) * element + 8.0 * hidden;
    let tokens = (rows * seq) as f64;
    let layers = model.num_layers as f64;
    let activations = if config.recompute {
        tokens * layers * hidden * element + tokens * per_token_layer
    } else {
        tokens * layers * per_token_layer
    };
    let logits = tokens * model.vocab_size as f64 * (element + 12.0);
    let overhead = match options.device {
        Device::Cuda(_) => GIB,
        _ => 0.0,
    };
    MemoryEstimate {
        weights,
        adapter,
        activations,
        logits,
        overhead,
    }
}

/// The changes that would lower the estimate, each with what it would need: recomputation,
/// an FP8 base, one row per micro-batch, half the sequence length.
pub fn suggestions(
    model: &ModelConfig,
    options: &LoadOptions,
    config: &TrainerConfig,
    trainable: i64,
    rows: usize,
    seq: usize,
) -> Vec<String> {
    let needs = |options: &LoadOptions, config: &TrainerConfig, rows: usize, seq: usize| {
        gib(estimate(model, options, config, trainable, rows, seq).total())
    };
    let mut out = Vec::new();
    if !config.recompute {
        let recompute = TrainerConfig {
            recompute: true,
            ..config.clone()
        };
        out.push(format!(
            "--recompute (about {})",
            needs(options, &recompute, rows, seq)
        ));
    }
    if !options.fp8_weights && options.kind != Kind::Float {
        let fp8 = LoadOptions {
            fp8_weights: true,
            ..*options
        };
        out.push(format!(
            "--fp8_base true (about {})",
            needs(&fp8, config, rows, seq)
        ));
    }
    if rows > 1 {
        out.push(format!(
            "--batch_size 1 --grad_accum {} (about {})",
            config.grad_accum * rows,
            needs(options, config, 1, seq)
        ));
    }
    if seq > 512 {
        out.push(format!(
            "--max_seq_len {} (about {})",
            seq / 2,
            needs(options, config, rows, seq / 2)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn llama3_8b() -> ModelConfig {
        let raw = json!({
            "model_type": "llama", "vocab_size": 128256, "hidden_size": 4096,
            "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": false
        });
        ModelConfig::from_value(raw, std::path::Path::new("llama3-8b")).expect("config")
    }

    /// Peaks of the H200 runs in docs/training.md (GiB as nvidia-smi's MiB / 1024):
    /// LoRA r 16 on all seven projections, AdamW, seq 2048, bf16.
    #[test]
    fn the_estimate_is_within_ten_percent_of_the_measured_h200_peaks() {
        let model = llama3_8b();
        let options = LoadOptions {
            device: Device::Cuda(0),
            kind: Kind::BFloat16,
            fp8_weights: false,
        };
        let lora = TrainerConfig::default()
            .lora_config("llama3-8b", 0.05)
            .expect("lora");
        let trainable = lora_parameters(&model, &lora);
        assert_eq!(
            trainable, 41_943_040,
            "r 16 on the seven projections of 32 layers"
        );
        for (batch, recompute, measured_gib) in [
            (1, false, 36.5),
            (1, true, 21.0),
            (4, false, 95.7),
            (4, true, 34.9),
        ] {
            let config = TrainerConfig {
                recompute,
                ..TrainerConfig::default()
            };
            let estimate = estimate(&model, &options, &config, trainable, batch, 2048);
            let ratio = estimate.total() / GIB / measured_gib;
            assert!(
                (0.9..=1.1).contains(&ratio),
                "batch {batch}, recompute {recompute}: estimate {} against {measured_gib} GiB measured",
                gib(estimate.total())
            );
        }
    }

    #[test]
    fn fp8_halves_the_projections_and_suggestions_lower_the_need() {
        let model = llama3_8b();
        let bf16 = LoadOptions {
            device: Device::Cuda(0),
            kind: Kind::BFloat16,
            fp8_weights: false,
        };
        let fp8 = LoadOptions {
            fp8_weights: true,
            ..bf16
        };
        let config = TrainerConfig::default();
        let dense = estimate(&model, &bf16, &config, 0, 1, 2048).weights / GIB;
        let quantised = estimate(&model, &fp8, &config, 0, 1, 2048).weights / GIB;
        assert!((14.0..15.5).contains(&dense), "{dense}");
        assert!((8.0..9.5).contains(&quantised), "{quantised}");
        let recompute_fp8 = TrainerConfig {
            recompute: true,
            ..config.clone()
        };
        let small = estimate(&model, &fp8, &recompute_fp8, 41_943_040, 1, 2048).total() / GIB;
        assert!(
            small < 24.0,
            "batch 1, recompute, FP8 base fits a 24 GB card: {small}"
        );
        let offered = suggestions(&model, &bf16, &config, 41_943_040, 2, 4096);
        assert_eq!(offered.len(), 4, "{offered:?}");
        assert!(offered[0].starts_with("--recompute (about "), "{offered:?}");
        assert!(
            offered[2].starts_with("--batch_size 1 --grad_accum 32"),
            "{offered:?}"
        );
    }
}
