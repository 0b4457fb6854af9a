//! The decoder: Llama, Mistral, Qwen2 and Qwen3 as configurations of one implementation.

use tch::{Device, Kind, Tensor};

use crate::attention::{Attention, AttentionContext, LayerKv, SelfMask, append};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::layers::{Linear, Mlp, RmsNorm, Weight};
use crate::rope::Rotary;

/// One decoder layer.
#[derive(Debug)]
pub struct DecoderLayer {
    /// Norm before attention.
    pub input_norm: RmsNorm,
    /// Self-attention.
    pub attention: Attention,
    /// Norm before the MLP.
    pub post_attention_norm: RmsNorm,
    /// The gated MLP.
    pub mlp: Mlp,
}

/// The keys and values of a shared prefix, encoded once and reused for every sequence.
#[derive(Debug)]
pub struct PrefixKv {
    layers: Vec<LayerKv>,
    len: i64,
}

impl PrefixKv {
    /// Number of prefix tokens.
    pub fn len(&self) -> i64 {
        self.len
    }

    /// Whether the prefix is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the cached keys and values occupy.
    pub fn bytes(&self) -> i64 {
        self.layers
            .iter()
            .map(|layer| {
                ((layer.k.numel() + layer.v.numel()) * layer.k.kind().elt_size_in_bytes()) as i64
            })
            .sum()
    }
}

/// Per-sequence keys and values accumulated during generation.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<LayerKv>,
    valid: Tensor,
}

impl KvCache {
    /// Cached positions per sequence.
    pub fn len(&self) -> i64 {
        self.valid.size()[1]
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One step of input: token ids and positions `[batch, seq]`, and the mask among them.
#[derive(Debug)]
pub struct Step {
    /// Token ids.
    pub ids: Tensor,
    /// Absolute positions, for rotary embeddings.
    pub positions: Tensor,
    /// Which of the step's tokens each token sees.
    pub self_mask: SelfMask,
    /// Which of the step's tokens are real (`[batch, seq]`), kept for later steps' cache masks.
    pub valid: Option<Tensor>,
    /// When set (`[batch, rows]` positions), only these rows' final hidden states are
    /// computed: the last layer queries just them.
    pub output_rows: Option<Tensor>,
}

impl Step {
    /// Sequences starting at position `start`, causal, all tokens real.
    pub fn causal(ids: Tensor, start: i64) -> Self {
        let (batch, seq) = ids.size2().unwrap_or((1, 1));
        let positions = (Tensor::arange(seq, (Kind::Int64, ids.device())) + start)
            .unsqueeze(0)
            .expand([batch, seq], true);
        Step {
            ids,
            positions,
            self_mask: SelfMask::Causal,
            valid: None,
            output_rows: None,
        }
    }
}

/// A causal language model.
#[derive(Debug)]
pub struct CausalLm {
    /// The configuration it was built from.
    pub config: ModelConfig,
    /// Token embeddings `[vocab, hidden]`.
    pub embed: Tensor,
    /// Decoder layers.
    pub layers: Vec<DecoderLayer>,
    /// Final norm.
    pub norm: RmsNorm,
    /// Output projection `[vocab, hidden]` (the embedding when tied).
    pub lm_head: Weight,
    pub(crate) rotary: Rotary,
    /// Device of the weights.
    pub device: Device,
    /// Compute dtype.
    pub kind: Kind,
}

impl CausalLm {
    /// Every projection with its module name, e.g. `model.layers.0.self_attn.q_proj`.
    pub fn linears(&self) -> Vec<(String, &Linear)> {
        let mut linears = Vec::with_capacity(self.layers.len() * 7);
        for (index, layer) in self.layers.iter().enumerate() {
            let attention = &layer.attention;
            let mlp = &layer.mlp;
            for (name, linear) in [
                ("self_attn.q_proj", &attention.q_proj),
                ("self_attn.k_proj", &attention.k_proj),
                ("self_attn.v_proj", &attention.v_proj),
                ("self_attn.o_proj", &attention.o_proj),
                ("mlp.gate_proj", &mlp.gate),
                ("mlp.up_proj", &mlp.up),
                ("mlp.down_proj", &mlp.down),
            ] {
                linears.push((format!("model.layers.{index}.{name}"), linear));
            }
        }
        linears
    }

    /// Every projection, mutably, with its module name.
    pub fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut linears = Vec::with_capacity(self.layers.len() * 7);
        for (index, layer) in self.layers.iter_mut().enumerate() {
            let attention = &mut layer.attention;
            let mlp = &mut layer.mlp;
            for (name, linear) in [
                ("self_attn.q_proj", &mut attention.q_proj),
                ("self_attn.k_proj", &mut attention.k_proj),
                ("self_attn.v_proj", &mut attention.v_proj),
                ("self_attn.o_proj", &mut attention.o_proj),
                ("mlp.gate_proj", &mut mlp.gate),
                ("mlp.up_proj", &mut mlp.up),
                ("mlp.down_proj", &mut mlp.down),
            ] {
                linears.push((format!("model.layers.{index}.{name}"), linear));
            }
        }
        linears
    }

    /// One weight under its Hugging Face name (as [`tensor_shapes`] lists them), the LoRA
    /// update folded into a projection, in `kind`, on the model's device.
    pub fn merged_tensor(&self, name: &str, kind: Kind) -> Result<Tensor> {
        let _no_grad = tch::no_grad_guard();
        let missing = || ModelError::Input(format!("the model has no tensor `{name}`"));
        match name {
            "model.embed_tokens.weight" => return Ok(self.embed.to_kind(kind)),
            "model.norm.weight" => return Ok(self.norm.weight.to_kind(kind)),
            "lm_head.weight" if !self.config.tie_word_embeddings => {
                return Ok(self.lm_head.dense(kind));
            }
            _ => {}
        }
        let rest = name.strip_prefix("model.layers.").ok_or_else(missing)?;
        let (index, inner) = rest.split_once('.').ok_or_else(missing)?;
        let layer = index
            .parse::<usize>()
            .ok()
            .and_then(|index| self.layers.get(index))
            .ok_or_else(missing)?;
        let attention = &layer.attention;
        let norm = match inner {
            "input_layernorm.weight" => Some(&layer.input_norm),
            "post_attention_layernorm.weight" => Some(&layer.post_attention_norm),
            "self_attn.q_norm.weight" => attention.q_norm.as_ref(),
            "self_attn.k_norm.weight" => attention.k_norm.as_ref(),
            _ => None,
        };
        if let Some(norm) = norm {
            return Ok(norm.weight.to_kind(kind));
        }
        let (module, part) = inner.rsplit_once('.').ok_or_else(missing)?;
        let linear = match module {
            "self_attn.q_proj" => &attention.q_proj,
            "self_attn.k_proj" => &attention.k_proj,
            "self_attn.v_proj" => &attention.v_proj,
            "self_attn.o_proj" => &attention.o_proj,
            "mlp.gate_proj" => &layer.mlp.gate,
            "mlp.up_proj" => &layer.mlp.up,
            "mlp.down_proj" => &layer.mlp.down,
            _ => return Err(missing()),
        };
        match (part, &linear.bias) {
            ("weight", _) => Ok(linear.merged_weight(kind)),
            ("bias", Some(bias)) => Ok(bias.to_kind(kind)),
            _ => Err(missing()),
        }
    }

    /// Checks that every id is inside the vocabulary.
    pub fn check_ids(&self, ids: &Tensor) -> Result<()> {
        if ids.numel() == 0 {
            return Err(ModelError::Input("no tokens".to_owned()));
        }
        let low = ids.min().int64_value(&[]);
        let high = ids.max().int64_value(&[]);
        if low < 0 || high >= self.config.vocab_size {
            return Err(ModelError::Input(format!(
                "token ids must lie in 0..{}, got {low}..={high}",
                self.config.vocab_size
            )));
        }
        Ok(())
    }

    /// Token embeddings of `ids`.
    pub fn embed(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.embed, ids, -1, false, false)
    }

    /// Rotary tables for a step's positions.
    pub fn rotary_tables(&self, positions: &Tensor) -> (Tensor, Tensor) {
        self.rotary.cos_sin(positions, self.kind)
    }

    /// One decoder layer: returns its output and the step's keys and values.
    pub fn layer_forward(
        &self,
        index: usize,
        hidden: &Tensor,
        tables: &(Tensor, Tensor),
        context: &AttentionContext<'_>,
        train: bool,
    ) -> (Tensor, LayerKv) {
        let layer = &self.layers[index];
        let normed = layer.input_norm.forward(hidden);
        let (attended, kv) = layer
            .attention
            .forward(&normed, &tables.0, &tables.1, context, train);
        let hidden = match context.query_rows {
            Some(rows) => {
                let (batch, len, width) = (rows.size()[0], rows.size()[1], hidden.size()[2]);
                hidden.gather(
                    1,
                    &rows.unsqueeze(2).expand([batch, len, width], false),
                    false,
                )
            }
            None => hidden.shallow_clone(),
        };
        let hidden = hidden + attended;
        let mlp = layer
            .mlp
            .forward(&layer.post_attention_norm.forward(&hidden), train);
        (hidden + mlp, kv)
    }

    /// Final norm and output projection: logits `[batch, seq, vocab]` in float32.
    pub fn head(&self, hidden: &Tensor) -> Tensor {
        let normed = self.norm.forward(hidden);
        normed
            .linear(&self.lm_head.dense(self.kind), None::<Tensor>)
            .to_kind(Kind::Float)
    }

    /// Runs one step over the prefix (if any), the cache (if any) and the step's tokens;
    /// returns the final hidden states and the step's keys and values per layer.
    pub fn run(
        &self,
        step: &Step,
        prefix: Option<&PrefixKv>,
        cache: Option<&KvCache>,
        train: bool,
    ) -> Result<(Tensor, Vec<LayerKv>)> {
        self.check_ids(&step.ids)?;
        if let Some(prefix) = prefix
            && prefix.layers.len() != self.layers.len()
        {
            return Err(ModelError::Input(
                "the prefix cache belongs to another model".to_owned(),
            ));
        }
        let tables = self.rotary_tables(&step.positions);
        let mut hidden = self.embed(&step.ids);
        let mut step_kv = Vec::with_capacity(self.layers.len());
        let last = self.layers.len().saturating_sub(1);
        for index in 0..self.layers.len() {
            let context = AttentionContext {
                prefix: prefix.map(|prefix| &prefix.layers[index]),
                cache: cache.map(|cache| &cache.layers[index]),
                cache_valid: cache.map(|cache| &cache.valid),
                self_mask: &step.self_mask,
                query_rows: if index == last {
                    step.output_rows.as_ref()
                } else {
                    None
                },
            };
            let (next, kv) = self.layer_forward(index, &hidden, &tables, &context, train);
            hidden = next;
            step_kv.push(kv);
        }
        Ok((hidden, step_kv))
    }

    /// Logits `[batch, seq, vocab]` of causal sequences starting at position 0.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let step = Step::causal(ids.shallow_clone(), 0);
        let (hidden, _) = self.run(&step, None, None, false)?;
        Ok(self.head(&hidden))
    }

    /// Encodes a shared prefix `[1, len]` once; its keys and values serve every later batch.
    pub fn encode_prefix(&self, ids: &Tensor) -> Result<PrefixKv> {
        let _no_grad = tch::no_grad_guard();
        let len = ids.size().last().copied().unwrap_or(0);
        let step = Step::causal(ids.view([1, len]), 0);
        let (_, layers) = self.run(&step, None, None, false)?;
        Ok(PrefixKv { layers, len })
    }

    /// Runs a step and appends its keys and values to the cache (creating it on the first step).
    pub fn run_cached(
        &self,
        step: &Step,
        prefix: Option<&PrefixKv>,
        cache: Option<KvCache>,
    ) -> Result<(Tensor, KvCache)> {
        let (hidden, step_kv) = self.run(step, prefix, cache.as_ref(), false)?;
        let step_valid = step
            .valid
            .as_ref()
            .map(Tensor::shallow_clone)
            .unwrap_or_else(|| Tensor::ones(step.ids.size(), (Kind::Bool, self.device)));
        let cache = match cache {
            None => KvCache {
                layers: step_kv,
                valid: step_valid,
            },
            Some(cache) => KvCache {
                layers: cache
                    .layers
                    .iter()
                    .zip(&step_kv)
                    .map(|(cached, new)| append(Some(cached), new))
                    .collect(),
                valid: Tensor::cat(&[&cache.valid, &step_valid], 1),
            },
        };
        Ok((hidden, cache))
    }
}
