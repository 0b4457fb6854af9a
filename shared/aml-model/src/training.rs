//! The causal-LM loss and its backward pass, with optional per-layer activation
//! recomputation (gradient checkpointing).
//!
//! tch has no custom autograd functions, so recomputation is layer-wise: the forward pass
//! runs every layer without a graph and keeps only each layer's input; the backward pass
//! recomputes one layer at a time with a graph and back-propagates
//! `(output * grad_output).sum()`, handing the input's gradient to the layer below. Dropout
//! draws from a per-layer seed, so the recomputed layer is the layer that ran.

use tch::{Kind, Reduction, Tensor};

use crate::attention::{AttentionContext, SelfMask};
use crate::error::{ModelError, Result};
use crate::model::{CausalLm, Step};

/// Serialises use of libtorch's process-wide generator, which dropout draws from and which
/// the per-layer seeds reset.
static TORCH_GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Label value of tokens that carry no loss (prompt and padding).
pub const IGNORE_INDEX: i64 = -100;

/// One training batch: right-padded ids and their labels (`IGNORE_INDEX` where no loss).
#[derive(Debug)]
pub struct TrainBatch {
    /// `[batch, seq]` token ids.
    pub ids: Tensor,
    /// `[batch, seq]` targets; position `t` is predicted from tokens before it.
    pub labels: Tensor,
    /// `[batch, seq]` f32 weight of each target in the loss (soft-target distillation);
    /// `None`: every labelled token weighs the same.
    pub weights: Option<Tensor>,
    /// Distributions over a few tokens as the targets of single positions (distillation).
    pub soft: Option<SoftTargets>,
    /// Several examples packed in each row: the example each token belongs to and its
    /// position within that example. `None`: one example per row, positions from 0.
    pub packing: Option<Packing>,
}

/// Target distributions over a few tokens at single positions: each replaces the label there
/// (which should be `IGNORE_INDEX`) and is predicted, as a label is, from the position before.
#[derive(Debug)]
pub struct SoftTargets {
    /// `[n]` flat index (`row * seq + position`) of each target's position, position >= 1.
    pub at: Tensor,
    /// `[n, k]` the tokens of each distribution.
    pub tokens: Tensor,
    /// `[n, k]` f32 their target probabilities.
    pub probabilities: Tensor,
    /// `[n]` f32 each target's weight in the loss, as a labelled token's.
    pub weights: Tensor,
}

impl SoftTargets {
    fn to_device(&self, device: tch::Device) -> Self {
        SoftTargets {
            at: self.at.to_device(device),
            tokens: self.tokens.to_device(device),
            probabilities: self.probabilities.to_device(device),
            weights: self.weights.to_device(device),
        }
    }
}

/// Where the examples of packed rows begin and end.
#[derive(Debug)]
pub struct Packing {
    /// `[batch, seq]`: tokens of one example share a number; attention never crosses two.
    pub segments: Tensor,
    /// `[batch, seq]`: positions restarting at 0 at each example, for rotary embeddings.
    pub positions: Tensor,
}

impl TrainBatch {
    /// One example per row.
    pub fn unpacked(ids: Tensor, labels: Tensor) -> Self {
        TrainBatch {
            ids,
            labels,
            weights: None,
            soft: None,
            packing: None,
        }
    }

    /// The batch on `device` (the same tensors when they are there already).
    pub fn to_device(&self, device: tch::Device) -> Self {
        TrainBatch {
            ids: self.ids.to_device(device),
            labels: self.labels.to_device(device),
            weights: self
                .weights
                .as_ref()
                .map(|weights| weights.to_device(device)),
            soft: self.soft.as_ref().map(|soft| soft.to_device(device)),
            packing: self.packing.as_ref().map(|packing| Packing {
                segments: packing.segments.to_device(device),
                positions: packing.positions.to_device(device),
            }),
        }
    }

    /// The batch's loss on `logits`: the mean cross-entropy of its labelled tokens, or, with
    /// weights or soft targets, the weighted mean over labelled tokens and soft targets (a
    /// soft target's cross-entropy is against its distribution).
    pub fn loss(&self, logits: &Tensor) -> Tensor {
        if self.weights.is_none() && self.soft.is_none() {
            return loss_from_logits(logits, &self.labels);
        }
        let (hard, hard_weight) = weighted_parts(logits, &self.labels, self.weights.as_ref());
        let (total, weight) = match &self.soft {
            None => (hard, hard_weight),
            Some(soft) => {
                let vocab = logits.size().last().copied().unwrap_or(1);
                let predicted = logits
                    .reshape([-1, vocab])
                    .index_select(0, &(&soft.at - 1))
                    .log_softmax(-1, Kind::Float)
                    .gather(1, &soft.tokens, false);
                let each =
                    -(predicted * &soft.probabilities).sum_dim_intlist(1, false, Kind::Float);
                (
                    hard + (each * &soft.weights).sum(Kind::Float),
                    hard_weight + soft.weights.sum(Kind::Float),
                )
            }
        };
        total / weight.clamp_min(1e-12)
    }

    /// The step the model runs: causal from position 0, or, for packed rows, causal within
    /// each example (a block-diagonal mask) with positions restarting per example.
    fn step(&self) -> Step {
        match &self.packing {
            None => Step::causal(self.ids.shallow_clone(), 0),
            Some(packing) => {
                let seq = self.ids.size()[1];
                let same = packing
                    .segments
                    .unsqueeze(2)
                    .eq_tensor(&packing.segments.unsqueeze(1));
                let causal = Tensor::ones([seq, seq], (Kind::Bool, self.ids.device()))
                    .tril(0)
                    .unsqueeze(0);
                Step {
                    ids: self.ids.shallow_clone(),
                    positions: packing.positions.shallow_clone(),
                    self_mask: SelfMask::Allowed(same.logical_and(&causal)),
                    valid: None,
                    output_rows: None,
                }
            }
        }
    }
}

/// Mean cross-entropy of `logits` (`[batch, seq, vocab]`) predicting each next token of
/// `labels`, skipping [`IGNORE_INDEX`].
pub fn loss_from_logits(logits: &Tensor, labels: &Tensor) -> Tensor {
    let (batch, seq, vocab) = logits.size3().unwrap_or((1, 1, 1));
    let predicted = logits
        .narrow(1, 0, seq - 1)
        .reshape([batch * (seq - 1), vocab]);
    let targets = labels.narrow(1, 1, seq - 1).reshape([batch * (seq - 1)]);
    predicted.cross_entropy_loss::<Tensor>(&targets, None, Reduction::Mean, IGNORE_INDEX, 0.0)
}

/// The weighted sum of the labelled tokens' cross-entropy and the sum of their weights (each
/// weighs 1 without `weights`).
fn weighted_parts(logits: &Tensor, labels: &Tensor, weights: Option<&Tensor>) -> (Tensor, Tensor) {
    let (batch, seq, vocab) = logits.size3().unwrap_or((1, 1, 1));
    let predicted = logits
        .narrow(1, 0, seq - 1)
        .reshape([batch * (seq - 1), vocab]);
    let targets = labels.narrow(1, 1, seq - 1).reshape([batch * (seq - 1)]);
    let labelled = targets.ne(IGNORE_INDEX).to_kind(Kind::Float);
    let weights = match weights {
        Some(weights) => {
            weights
                .narrow(1, 1, seq - 1)
                .reshape([batch * (seq - 1)])
                .to_kind(Kind::Float)
                * &labelled
        }
        None => labelled,
    };
    let each =
        predicted.cross_entropy_loss::<Tensor>(&targets, None, Reduction::None, IGNORE_INDEX, 0.0);
    (
        (each.to_kind(Kind::Float) * &weights).sum(Kind::Float),
        weights.sum(Kind::Float),
    )
}

fn layer_context(mask: &SelfMask) -> AttentionContext<'_> {
    AttentionContext {
        prefix: None,
        cache: None,
        cache_valid: None,
        self_mask: mask,
        query_rows: None,
    }
}

/// Mean cross-entropy over labelled tokens; runs backward so the LoRA weights get gradients.
/// With `recompute`, activations are recomputed layer by layer instead of kept. Returns the loss.
pub fn loss_and_backward(
    model: &CausalLm,
    batch: &TrainBatch,
    recompute: bool,
    seed: i64,
) -> Result<f64> {
    let batch = &batch.to_device(model.device);
    model.check_ids(&batch.ids)?;
    let _generator = TORCH_GENERATOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let packing_fits = batch.packing.as_ref().is_none_or(|packing| {
        packing.segments.size() == batch.ids.size() && packing.positions.size() == batch.ids.size()
    });
    if batch.ids.size() != batch.labels.size()
        || batch.ids.size().len() != 2
        || batch.ids.size()[1] < 2
        || !packing_fits
    {
        return Err(ModelError::Input(
            "ids, labels (and packed segments and positions) must be [batch, seq] with seq >= 2"
                .to_owned(),
        ));
    }
    let step = batch.step();
    let tables = model.rotary_tables(&step.positions);
    let context = layer_context(&step.self_mask);
    let embedded = model.embed(&step.ids);
    if !recompute {
        let mut hidden = embedded;
        for index in 0..model.layers.len() {
            tch::manual_seed(seed + index as i64);
            hidden = model
                .layer_forward(index, &hidden, &tables, &context, true)
                .0;
        }
        let loss = batch.loss(&model.head(&hidden));
        loss.backward();
        return Ok(loss.double_value(&[]));
    }
    let mut inputs = Vec::with_capacity(model.layers.len());
    let mut hidden = embedded.detach();
    tch::no_grad(|| {
        for index in 0..model.layers.len() {
            tch::manual_seed(seed + index as i64);
            let output = model
                .layer_forward(index, &hidden, &tables, &context, true)
                .0;
            inputs.push(std::mem::replace(&mut hidden, output));
        }
    });
    let top = hidden.detach().set_requires_grad(true);
    let loss = batch.loss(&model.head(&top));
    loss.backward();
    let mut grad_output = top.grad();
    for index in (0..model.layers.len()).rev() {
        let input = inputs[index].detach().set_requires_grad(true);
        tch::manual_seed(seed + index as i64);
        let output = model
            .layer_forward(index, &input, &tables, &context, true)
            .0;
        (output * grad_output.detach()).sum(Kind::Float).backward();
        grad_output = input.grad();
    }
    Ok(loss.double_value(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Soft targets as weighted examples: three rows share a context and end in different
    /// answers weighted by q; the weighted loss's minimiser over free logits is q.
    #[test]
    fn weighted_answers_are_a_soft_target_cross_entropy() {
        let q = [0.2f32, 0.7, 0.1];
        let mut logits =
            Tensor::zeros([1, 1, 6], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
        let labels =
            Tensor::from_slice(&[IGNORE_INDEX, 3, IGNORE_INDEX, 4, IGNORE_INDEX, 5]).view([3, 2]);
        let weights = Tensor::from_slice(&[0.0, q[0], 0.0, q[1], 0.0, q[2]]).view([3, 2]);
        for _ in 0..500 {
            let batch = TrainBatch {
                weights: Some(weights.shallow_clone()),
                ..TrainBatch::unpacked(labels.zeros_like(), labels.shallow_clone())
            };
            let loss = batch.loss(&logits.expand([3, 2, 6], false));
            loss.backward();
            tch::no_grad(|| {
                let _ = logits.f_sub_(&(logits.grad() * 5.0)).unwrap();
            });
            let _ = logits.grad().zero_();
        }
        let p = logits.softmax(-1, Kind::Float).view([6]);
        for (index, target) in q.iter().enumerate() {
            let got = p.double_value(&[index as i64 + 3]);
            assert!((got - f64::from(*target)).abs() < 1e-3, "{got} vs {target}");
        }
    }

    /// A soft target at one position: its loss is the cross-entropy against the distribution,
    /// beside an ordinary labelled token, each weighing 1.
    #[test]
    fn a_soft_target_is_a_cross_entropy_against_its_distribution() {
        let logits = Tensor::randn([1, 3, 6], (Kind::Float, tch::Device::Cpu));
        let labels = Tensor::from_slice(&[IGNORE_INDEX, 2, IGNORE_INDEX]).view([1, 3]);
        let batch = TrainBatch {
            soft: Some(SoftTargets {
                at: Tensor::from_slice(&[2i64]),
                tokens: Tensor::from_slice(&[3i64, 4, 5]).view([1, 3]),
                probabilities: Tensor::from_slice(&[0.2f32, 0.7, 0.1]).view([1, 3]),
                weights: Tensor::from_slice(&[1.0f32]),
            }),
            ..TrainBatch::unpacked(
                Tensor::zeros([1, 3], (Kind::Int64, tch::Device::Cpu)),
                labels,
            )
        };
        let log_p = logits.log_softmax(-1, Kind::Float);
        let hard = -log_p.double_value(&[0, 0, 2]);
        let soft = -(0.2 * log_p.double_value(&[0, 1, 3])
            + 0.7 * log_p.double_value(&[0, 1, 4])
            + 0.1 * log_p.double_value(&[0, 1, 5]));
        let got = batch.loss(&logits).double_value(&[]);
        assert!(
            (got - (hard + soft) / 2.0).abs() < 1e-5,
            "{got} vs {}",
            (hard + soft) / 2.0
        );
    }
}
