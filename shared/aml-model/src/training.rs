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
    /// Several examples packed in each row: the example each token belongs to and its
    /// position within that example. `None`: one example per row, positions from 0.
    pub packing: Option<Packing>,
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
            packing: None,
        }
    }

    /// The batch on `device` (the same tensors when they are there already).
    pub fn to_device(&self, device: tch::Device) -> Self {
        TrainBatch {
            ids: self.ids.to_device(device),
            labels: self.labels.to_device(device),
            packing: self.packing.as_ref().map(|packing| Packing {
                segments: packing.segments.to_device(device),
                positions: packing.positions.to_device(device),
            }),
        }
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
        let loss = loss_from_logits(&model.head(&hidden), &batch.labels);
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
    let loss = loss_from_logits(&model.head(&top), &batch.labels);
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
