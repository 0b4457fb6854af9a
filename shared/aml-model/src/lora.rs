//! LoRA adapters on the attention and MLP projections, saved and loaded in the PEFT format,
//! and merged into full weights.
//!
//! The adapter's tensors live in a [`tch::nn::VarStore`] (so optimisers train them) under
//! PEFT's own key names, e.g. `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`
//! with A as `[r, in]` and B as `[out, r]`; the model's projections hold views of them.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};
use tch::nn::VarStore;
use tch::{Kind, Tensor};

use crate::error::{ModelError, Result, read_json, write_file};
use crate::layers::{Linear, LoraAdapter};
use crate::model::CausalLm;
use crate::random::uniform_tensor;
use crate::safetensors_io::{WeightFiles, save_file};
use aml_core::rng::SeededRng;

/// The projections LoRA can target, by their module names.
pub const TARGETABLE: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// LoRA hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraConfig {
    /// Rank.
    pub r: i64,
    /// Scaling numerator: updates are scaled by `alpha / r` (or `alpha / sqrt(r)` with rsLoRA).
    pub alpha: f64,
    /// Dropout on the adapter's input while training.
    pub dropout: f64,
    /// Target module names, from [`TARGETABLE`].
    pub target_modules: Vec<String>,
    /// Rank-stabilised scaling.
    pub use_rslora: bool,
    /// The base model's hub id or path, recorded in `adapter_config.json`.
    pub base_model: String,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            r: 16,
            alpha: 32.0,
            dropout: 0.05,
            target_modules: TARGETABLE.iter().map(|name| (*name).to_owned()).collect(),
            use_rslora: false,
            base_model: String::new(),
        }
    }
}

impl LoraConfig {
    /// `alpha / r`, or `alpha / sqrt(r)` with rsLoRA.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }

    /// Accepts `gate`, `up`, `down`, `q`, ... as short names and checks every target.
    pub fn normalise_targets(names: &[String]) -> Result<Vec<String>> {
        let mut targets = Vec::new();
        for name in names {
            let full = if name.ends_with("_proj") {
                name.clone()
            } else {
                format!("{name}_proj")
            };
            if !TARGETABLE.contains(&full.as_str()) {
                return Err(ModelError::Input(format!(
                    "unknown LoRA target `{name}`; expected some of {}",
                    TARGETABLE.join(", ")
                )));
            }
            if !targets.contains(&full) {
                targets.push(full);
            }
        }
        Ok(targets)
    }

    fn adapter_config_json(&self) -> Value {
        json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": self.base_model,
            "r": self.r,
            "lora_alpha": self.alpha,
            "lora_dropout": self.dropout,
            "target_modules": self.target_modules,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": true,
            "init_lora_weights": true,
            "modules_to_save": null,
            "layers_to_transform": null,
            "layers_pattern": null,
            "rank_pattern": {},
            "alpha_pattern": {},
            "use_rslora": self.use_rslora,
            "use_dora": false,
            "revision": null,
        })
    }

    fn from_adapter_config(path: &Path) -> Result<Self> {
        let raw = read_json(path, "the adapter configuration")?;
        let invalid = |reason: &str| ModelError::InvalidJson {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if raw.get("peft_type").and_then(Value::as_str) != Some("LORA") {
            return Err(invalid("peft_type is not LORA"));
        }
        if raw.get("use_dora").and_then(Value::as_bool) == Some(true) {
            return Err(ModelError::Unsupported {
                path: path.to_owned(),
                what: "DoRA adapters (use_dora = true)".to_owned(),
            });
        }
        let targets: Vec<String> = match raw.get("target_modules") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(single)) => vec![single.clone()],
            _ => return Err(invalid("missing target_modules")),
        };
        Ok(LoraConfig {
            r: raw
                .get("r")
                .and_then(Value::as_i64)
                .ok_or_else(|| invalid("missing r"))?,
            alpha: raw
                .get("lora_alpha")
                .and_then(Value::as_f64)
                .ok_or_else(|| invalid("missing lora_alpha"))?,
            dropout: raw
                .get("lora_dropout")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            target_modules: Self::normalise_targets(&targets)
                .map_err(|error| invalid(&error.to_string()))?,
            use_rslora: raw
                .get("use_rslora")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            base_model: raw
                .get("base_model_name_or_path")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }
}

/// How new adapter weights start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LoraInit {
    /// PEFT's default, seeded: A Kaiming-uniform, B zeros (the adapter starts as a no-op).
    Standard(u64),
    /// Both A and B random, seeded (tests: a non-trivial adapter).
    RandomBoth(u64),
}

/// The trainable adapter of a model, in PEFT key names.
pub struct Lora {
    /// The hyper-parameters.
    pub config: LoraConfig,
    /// Holds A and B of every adapted projection.
    pub vars: VarStore,
}

impl std::fmt::Debug for Lora {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Lora")
            .field("config", &self.config)
            .finish()
    }
}

/// The PEFT key of a projection's A or B matrix.
pub fn peft_key(module: &str, matrix: &str) -> String {
    format!("base_model.model.{module}.{matrix}.weight")
}

fn var_path<'a>(vars: &'a VarStore, key: &str) -> (tch::nn::Path<'a>, String) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or("weight").to_owned();
    let mut path = vars.root();
    for part in parts {
        path = path.sub(part);
    }
    (path, last)
}

impl Lora {
    /// Creates a fresh adapter for `model` and attaches it.
    pub fn attach_new(model: &mut CausalLm, config: LoraConfig, init: LoraInit) -> Result<Self> {
        let vars = VarStore::new(model.device);
        let (mut rng, random_b) = match init {
            LoraInit::Standard(seed) => (SeededRng::new(seed), false),
            LoraInit::RandomBoth(seed) => (SeededRng::new(seed), true),
        };
        let device = model.device;
        for (module, linear) in model.linears_mut() {
            if !targets(&config, &module) {
                continue;
            }
            let (out, input) = linear_shape(linear);
            let bound = 1.0 / (input as f64).sqrt();
            let a_init = uniform_tensor(&mut rng, &[config.r, input], -bound, bound, device);
            let b_init = if random_b {
                uniform_tensor(&mut rng, &[out, config.r], -bound, bound, device)
            } else {
                Tensor::zeros([out, config.r], (Kind::Float, device))
            };
            let (a_path, a_name) = var_path(&vars, &peft_key(&module, "lora_A"));
            let a = a_path.var_copy(&a_name, &a_init);
            let (b_path, b_name) = var_path(&vars, &peft_key(&module, "lora_B"));
            let b = b_path.var_copy(&b_name, &b_init);
            linear.lora = Some(LoraAdapter {
                a,
                b,
                scale: config.scale(),
                dropout: config.dropout,
            });
        }
        Ok(Lora { config, vars })
    }

    /// Loads a PEFT adapter directory (`adapter_config.json`, `adapter_model.safetensors`) onto `model`.
    pub fn load(model: &mut CausalLm, dir: &Path) -> Result<Self> {
        let config = LoraConfig::from_adapter_config(&dir.join("adapter_config.json"))?;
        let weights_path = dir.join("adapter_model.safetensors");
        if !weights_path.exists() {
            return Err(ModelError::MissingFile {
                path: weights_path,
                what: "the adapter weights (adapter_model.safetensors)",
            });
        }
        let files = WeightFiles::open_file(&weights_path)?;
        let mut lora = Lora::attach_new(model, config, LoraInit::Standard(0))?;
        let _no_grad = tch::no_grad_guard();
        let mut variables = lora.vars.variables();
        for (key, variable) in &mut variables {
            let stored = [key.clone(), key.replace(".weight", ".default.weight")]
                .into_iter()
                .find(|candidate| files.contains(candidate))
                .ok_or_else(|| ModelError::MissingTensor {
                    path: weights_path.clone(),
                    name: key.clone(),
                })?;
            let tensor = files.load(&stored, Some(&variable.size()), Kind::Float, model.device)?;
            variable.copy_(&tensor);
        }
        lora.refresh_scale(model);
        Ok(lora)
    }

    fn refresh_scale(&mut self, model: &mut CausalLm) {
        for (_, linear) in model.linears_mut() {
            if let Some(adapter) = &mut linear.lora {
                adapter.scale = self.config.scale();
                adapter.dropout = self.config.dropout;
            }
        }
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` as PEFT does.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let mut tensors: Vec<(String, Tensor)> = self
            .vars
            .variables()
            .into_iter()
            .map(|(key, tensor)| (key, tensor.detach().to_kind(Kind::Float)))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let metadata: HashMap<String, String> = [("format".to_owned(), "pt".to_owned())].into();
        save_file(
            &dir.join("adapter_model.safetensors"),
            &tensors,
            Some(metadata),
        )?;
        let text = serde_json::to_string_pretty(&self.config.adapter_config_json())
            .map_err(|error| ModelError::Input(error.to_string()))?;
        write_file(&dir.join("adapter_config.json"), text.as_bytes())
    }

    /// The trainable tensors.
    pub fn trainable_parameters(&self) -> i64 {
        self.vars
            .variables()
            .values()
            .map(|tensor| tensor.numel() as i64)
            .sum()
    }
}

fn targets(config: &LoraConfig, module: &str) -> bool {
    let name = module.rsplit('.').next().unwrap_or(module);
    config.target_modules.iter().any(|target| target == name)
}

fn linear_shape(linear: &Linear) -> (i64, i64) {
    let size = linear.weight.size();
    (size[0], size[1])
}
