//! Batched generation with the KV cache: greedy or temperature / top-p sampling, stopping
//! at an end-of-sequence token or after `max_new_tokens`. Prompts are left-padded; padded
//! positions are masked out of every later step.

use tch::{Kind, Tensor};

use crate::attention::SelfMask;
use crate::error::{ModelError, Result};
use crate::model::{CausalLm, PrefixKv, Step};
use aml_core::rng::SeededRng;

/// How to pick tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Most tokens generated per prompt.
    pub max_new_tokens: i64,
    /// 0 picks the most likely token (greedy); above 0 samples at that temperature.
    pub temperature: f64,
    /// Nucleus sampling: sample among the most likely tokens whose mass reaches `top_p`.
    pub top_p: f64,
    /// Seed of the sampler.
    pub seed: u64,
    /// Tokens that end a sequence.
    pub stop_ids: Vec<i64>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        GenerationConfig {
            max_new_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            seed: 0,
            stop_ids: Vec::new(),
        }
    }
}

fn pick(logits: &Tensor, config: &GenerationConfig, rng: &mut SeededRng) -> Result<Vec<i64>> {
    if config.temperature <= 0.0 {
        return Vec::<i64>::try_from(&logits.argmax(-1, false).to_device(tch::Device::Cpu))
            .map_err(ModelError::Torch);
    }
    let probabilities = (logits / config.temperature).softmax(-1, Kind::Double);
    let (sorted, order) = probabilities.sort(-1, true);
    let before = sorted.cumsum(-1, Kind::Double) - &sorted;
    let kept = sorted.multiply(&before.lt(config.top_p).to_kind(Kind::Double));
    let kept =
        Vec::<Vec<f64>>::try_from(&kept.to_device(tch::Device::Cpu)).map_err(ModelError::Torch)?;
    let order =
        Vec::<Vec<i64>>::try_from(&order.to_device(tch::Device::Cpu)).map_err(ModelError::Torch)?;
    Ok(kept
        .iter()
        .zip(&order)
        .map(|(weights, tokens)| tokens[rng.weighted_index(weights)])
        .collect())
}

/// Generates a continuation for each prompt; returns the new tokens, stop token excluded.
pub fn generate(
    model: &CausalLm,
    prefix: Option<&PrefixKv>,
    prompts: &[Vec<i64>],
    config: &GenerationConfig,
) -> Result<Vec<Vec<i64>>> {
    if prompts.iter().any(Vec::is_empty) {
        return Err(ModelError::Input(
            "every prompt needs at least one token".to_owned(),
        ));
    }
    if prompts.is_empty() {
        return Ok(Vec::new());
    }
    let _no_grad = tch::no_grad_guard();
    let mut rng = SeededRng::new(config.seed);
    let device = model.device;
    let batch = prompts.len() as i64;
    let width = prompts.iter().map(Vec::len).max().unwrap_or(1) as i64;
    let base = prefix.map_or(0, PrefixKv::len);
    let mut ids = Vec::with_capacity((batch * width) as usize);
    let mut positions = Vec::with_capacity(ids.capacity());
    let mut valid = Vec::with_capacity(ids.capacity());
    for prompt in prompts {
        let padding = width as usize - prompt.len();
        ids.extend(std::iter::repeat_n(0, padding));
        ids.extend(prompt);
        positions.extend(std::iter::repeat_n(base, padding));
        positions.extend((0..prompt.len() as i64).map(|index| base + index));
        valid.extend(std::iter::repeat_n(false, padding));
        valid.extend(std::iter::repeat_n(true, prompt.len()));
    }
    let shape = [batch, width];
    let valid = Tensor::from_slice(&valid).view(shape).to_device(device);
    let causal = Tensor::ones([width, width], (Kind::Bool, device))
        .tril(0)
        .unsqueeze(0);
    let diagonal = Tensor::eye(width, (Kind::Bool, device)).unsqueeze(0);
    let allowed = causal
        .logical_and(&valid.unsqueeze(1))
        .logical_or(&diagonal);
    let step = Step {
        ids: Tensor::from_slice(&ids).view(shape).to_device(device),
        positions: Tensor::from_slice(&positions).view(shape).to_device(device),
        self_mask: SelfMask::Allowed(allowed),
        valid: Some(valid),
        output_rows: None,
    };
    let (hidden, mut cache) = model.run_cached(&step, prefix, None)?;
    let mut next_position: Vec<i64> = prompts
        .iter()
        .map(|prompt| base + prompt.len() as i64)
        .collect();
    let mut last_hidden = hidden.narrow(1, width - 1, 1);
    let mut outputs: Vec<Vec<i64>> = vec![Vec::new(); prompts.len()];
    let mut finished = vec![false; prompts.len()];
    for _ in 0..config.max_new_tokens {
        let logits = model.head(&last_hidden).squeeze_dim(1);
        let chosen = pick(&logits, config, &mut rng)?;
        for (row, &token) in chosen.iter().enumerate() {
            if finished[row] {
                continue;
            }
            if config.stop_ids.contains(&token) {
                finished[row] = true;
            } else {
                outputs[row].push(token);
            }
        }
        if finished.iter().all(|done| *done) {
            break;
        }
        let step = Step {
            ids: Tensor::from_slice(&chosen)
                .view([batch, 1])
                .to_device(device),
            positions: Tensor::from_slice(&next_position)
                .view([batch, 1])
                .to_device(device),
            self_mask: SelfMask::Allowed(Tensor::ones([batch, 1, 1], (Kind::Bool, device))),
            valid: None,
            output_rows: None,
        };
        let (hidden, grown) = model.run_cached(&step, prefix, Some(cache))?;
        cache = grown;
        last_hidden = hidden;
        for position in &mut next_position {
            *position += 1;
        }
    }
    Ok(outputs)
}
