//! Self-attention with grouped-query heads, a shared prefix and a per-sequence KV cache.
//!
//! Keys and values come in up to three segments: the shared prefix (encoded once, the same
//! for every sequence of a batch), the sequences' own cache, and the tokens of this step.
//! With one segment, attention is plain scaled-dot-product attention. With several, each
//! segment's attention is computed with its log-sum-exp and the parts are merged exactly
//! (cascade attention). The prefix part folds the whole batch into the query axis, so the
//! prefix keys and values are read once per batch and per key/value head, never copied per
//! sequence.

use tch::{Device, Kind, Tensor};

use crate::layers::{Linear, RmsNorm};
use crate::rope::apply_rotary;

/// Added to the scores of keys a query must not see; finite so no row becomes NaN.
const MASKED: f64 = -1e9;

/// Keys and values of one layer, `[batch (or 1), kv_heads, len, head_dim]`.
#[derive(Debug)]
pub struct LayerKv {
    /// Keys, after rotary embedding.
    pub k: Tensor,
    /// Values.
    pub v: Tensor,
}

impl LayerKv {
    fn shallow_clone(&self) -> LayerKv {
        LayerKv {
            k: self.k.shallow_clone(),
            v: self.v.shallow_clone(),
        }
    }
}

/// Which of this step's tokens a token may attend to.
#[derive(Debug)]
pub enum SelfMask {
    /// Each token sees itself and the tokens before it.
    Causal,
    /// An explicit `[batch, seq, seq]` boolean matrix: `true` where query row may see key column.
    Allowed(Tensor),
}

/// What one layer's attention reads besides this step's tokens.
pub struct AttentionContext<'a> {
    /// The shared prefix of this layer.
    pub prefix: Option<&'a LayerKv>,
    /// The sequences' cached keys and values of this layer.
    pub cache: Option<&'a LayerKv>,
    /// Which cached positions are real (`[batch, cached_len]`, `true` = visible).
    pub cache_valid: Option<&'a Tensor>,
    /// The mask among this step's tokens.
    pub self_mask: &'a SelfMask,
    /// Only these rows of the step (`[batch, rows]` positions) are queried and returned.
    pub query_rows: Option<&'a Tensor>,
}

/// The attention block of one decoder layer.
#[derive(Debug)]
pub struct Attention {
    /// Query projection.
    pub q_proj: Linear,
    /// Key projection.
    pub k_proj: Linear,
    /// Value projection.
    pub v_proj: Linear,
    /// Output projection.
    pub o_proj: Linear,
    /// Per-head query norm (Qwen3).
    pub q_norm: Option<RmsNorm>,
    /// Per-head key norm (Qwen3).
    pub k_norm: Option<RmsNorm>,
    /// Query heads.
    pub num_heads: i64,
    /// Key/value heads.
    pub num_kv_heads: i64,
    /// Width of one head.
    pub head_dim: i64,
}

fn additive(allowed: &Tensor, kind: Kind) -> Tensor {
    allowed.logical_not().to_kind(kind).multiply_scalar(MASKED)
}

/// Attention of `q [b, h, l, d]` over `k, v [b, h, t, d]` with an additive mask, returning the
/// output and the log-sum-exp of each query's scores (`[b, h, l]`, float32).
fn attend_with_lse(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    scale: f64,
) -> (Tensor, Tensor) {
    let fused = match q.device() {
        Device::Cpu => Tensor::f_internal_scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, false, mask, scale,
        )
        .ok(),
        Device::Cuda(_) => {
            let length = q.size()[2];
            let bias = mask
                .map(|mask| mask.expand([q.size()[0], q.size()[1], length, k.size()[2]], false));
            Tensor::f_internal_scaled_dot_product_efficient_attention(
                q,
                k,
                v,
                bias.as_ref(),
                true,
                0.0,
                false,
                scale,
            )
            .ok()
            .map(|(out, lse, _, _)| (out, lse.narrow(2, 0, length)))
        }
        _ => None,
    };
    if let Some((out, lse)) = fused {
        return (out, lse.to_kind(Kind::Float));
    }
    let mut scores = q
        .to_kind(Kind::Float)
        .matmul(&k.to_kind(Kind::Float).transpose(-2, -1))
        * scale;
    if let Some(mask) = mask {
        scores += mask.to_kind(Kind::Float);
    }
    let lse = scores.logsumexp([-1].as_slice(), false);
    let probabilities = (scores - lse.unsqueeze(-1)).exp();
    let out = probabilities
        .matmul(&v.to_kind(Kind::Float))
        .to_kind(q.kind());
    (out, lse)
}

impl Attention {
    /// Projects, rotates and attends; returns the output (for every token, or only for
    /// `context.query_rows`) and this step's keys and values.
    pub fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        context: &AttentionContext<'_>,
        train: bool,
    ) -> (Tensor, LayerKv) {
        let (batch, seq, width) = x.size3().unwrap_or((1, 1, 1));
        let heads = |projected: Tensor, len: i64, count: i64, norm: &Option<RmsNorm>| {
            let shaped = projected.view([batch, len, count, self.head_dim]);
            let shaped = match norm {
                Some(norm) => norm.forward(&shaped),
                None => shaped,
            };
            shaped.transpose(1, 2)
        };
        let k = heads(
            self.k_proj.forward(x, train),
            seq,
            self.num_kv_heads,
            &self.k_norm,
        );
        let v = heads(self.v_proj.forward(x, train), seq, self.num_kv_heads, &None);
        let k = apply_rotary(&k, cos, sin);
        let (q_input, q_cos, q_sin) = match context.query_rows {
            Some(rows) => {
                let len = rows.size()[1];
                let pick = |table: &Tensor| {
                    let dim = table.size()[3];
                    table.gather(
                        2,
                        &rows
                            .view([batch, 1, len, 1])
                            .expand([batch, 1, len, dim], false),
                        false,
                    )
                };
                let picked = x.gather(
                    1,
                    &rows.unsqueeze(2).expand([batch, len, width], false),
                    false,
                );
                (picked, pick(cos), pick(sin))
            }
            None => (x.shallow_clone(), cos.shallow_clone(), sin.shallow_clone()),
        };
        let q_len = q_input.size()[1];
        let q = heads(
            self.q_proj.forward(&q_input, train),
            q_len,
            self.num_heads,
            &self.q_norm,
        );
        let q = apply_rotary(&q, &q_cos, &q_sin);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let extra_segments = context.prefix.is_some() || context.cache.is_some();
        let attended = if extra_segments {
            cascade(&q, &k, &v, context, scale, self.num_kv_heads)
        } else if matches!(context.self_mask, SelfMask::Causal) && context.query_rows.is_none() {
            Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, true, scale, true)
        } else {
            let mask = additive(
                &self_allowed(context, batch, q_len, seq, q.device()).unsqueeze(1),
                q.kind(),
            );
            Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), 0.0, false, scale, true)
        };
        let merged = attended.transpose(1, 2).contiguous().view([
            batch,
            q_len,
            self.num_heads * self.head_dim,
        ]);
        (self.o_proj.forward(&merged, train), LayerKv { k, v })
    }
}

/// Cascade attention of `q [batch, heads, q_len, dim]` over the prefix, the cache and this
/// step's `k`, `v` (`[batch, kv_heads, k_len, dim]`): each part with its log-sum-exp, merged
/// exactly. The prefix part folds the batch into the query axis, so the prefix keys and values
/// are read once per batch.
fn cascade(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    context: &AttentionContext<'_>,
    scale: f64,
    kv_heads: i64,
) -> Tensor {
    let (batch, heads, q_len, dim) = q.size4().unwrap_or((1, 1, 1, 1));
    let k_len = k.size()[2];
    let group = heads / kv_heads;
    let rows = group * q_len;
    let grouped = q.reshape([batch, kv_heads, rows, dim]);
    let mut parts: Vec<(Tensor, Tensor)> = Vec::with_capacity(3);
    if let Some(prefix) = context.prefix {
        let folded = grouped
            .permute([1, 0, 2, 3])
            .reshape([1, kv_heads, batch * rows, dim]);
        let (out, lse) = attend_with_lse(&folded, &prefix.k, &prefix.v, None, scale);
        let out = out
            .reshape([kv_heads, batch, rows, dim])
            .permute([1, 0, 2, 3]);
        let lse = lse.reshape([kv_heads, batch, rows]).permute([1, 0, 2]);
        parts.push((out, lse));
    }
    if let Some(cache) = context.cache {
        let mask = context.cache_valid.map(|valid| {
            let allowed = valid
                .view([batch, 1, 1, -1])
                .expand([batch, 1, rows, valid.size()[1]], false);
            additive(&allowed, q.kind())
        });
        parts.push(attend_with_lse(
            &grouped,
            &cache.k,
            &cache.v,
            mask.as_ref(),
            scale,
        ));
    }
    let allowed = self_allowed(context, batch, q_len, k_len, q.device())
        .view([batch, 1, q_len, k_len])
        .repeat([1, 1, group, 1]);
    parts.push(attend_with_lse(
        &grouped,
        k,
        v,
        Some(&additive(&allowed, q.kind())),
        scale,
    ));
    let lses: Vec<&Tensor> = parts.iter().map(|(_, lse)| lse).collect();
    let total = Tensor::stack(&lses, 0).logsumexp([0].as_slice(), false);
    let mut merged = Tensor::zeros([batch, kv_heads, rows, dim], (Kind::Float, q.device()));
    for (out, lse) in &parts {
        merged += out.to_kind(Kind::Float) * (lse - &total).exp().unsqueeze(-1);
    }
    merged.to_kind(q.kind()).reshape([batch, heads, q_len, dim])
}

/// `[batch, q_len, k_len]`: which of the step's tokens each query (row) may see.
fn self_allowed(
    context: &AttentionContext<'_>,
    batch: i64,
    q_len: i64,
    k_len: i64,
    device: Device,
) -> Tensor {
    let full = match context.self_mask {
        SelfMask::Causal => Tensor::ones([k_len, k_len], (Kind::Bool, device))
            .tril(0)
            .unsqueeze(0)
            .expand([batch, k_len, k_len], false),
        SelfMask::Allowed(allowed) => allowed.expand([batch, k_len, k_len], false),
    };
    match context.query_rows {
        Some(rows) => full.gather(
            1,
            &rows.unsqueeze(2).expand([batch, q_len, k_len], false),
            false,
        ),
        None => full,
    }
}

/// Appends this step's keys and values to a layer's cache.
pub(crate) fn append(cache: Option<&LayerKv>, step: &LayerKv) -> LayerKv {
    match cache {
        None => step.shallow_clone(),
        Some(cache) => LayerKv {
            k: Tensor::cat(&[&cache.k, &step.k], 2),
            v: Tensor::cat(&[&cache.v, &step.v], 2),
        },
    }
}

/// How far cascade attention is from PyTorch's math attention over the concatenated keys, on
/// seeded random inputs: a batch of `batch` sequences of `suffix` tokens (causal among
/// themselves) behind a shared prefix of `prefix` tokens, `heads` query heads over
/// `kv_heads` key/value heads of width `head_dim`, cascade computed in `kind` on `device`, the
/// reference in float32. Returns the largest absolute difference over the largest absolute
/// reference output.
#[allow(clippy::too_many_arguments)]
pub fn cascade_parity(
    device: Device,
    kind: Kind,
    batch: i64,
    prefix: i64,
    suffix: i64,
    heads: i64,
    kv_heads: i64,
    head_dim: i64,
) -> f64 {
    let _no_grad = tch::no_grad_guard();
    tch::manual_seed(7);
    let f32 = (Kind::Float, device);
    let q = Tensor::randn([batch, heads, suffix, head_dim], f32);
    let k = Tensor::randn([batch, kv_heads, suffix, head_dim], f32);
    let v = Tensor::randn([batch, kv_heads, suffix, head_dim], f32);
    let prefix_k = Tensor::randn([1, kv_heads, prefix, head_dim], f32);
    let prefix_v = Tensor::randn([1, kv_heads, prefix, head_dim], f32);
    let scale = 1.0 / (head_dim as f64).sqrt();
    let prefix_kv = LayerKv {
        k: prefix_k.to_kind(kind),
        v: prefix_v.to_kind(kind),
    };
    let context = AttentionContext {
        prefix: Some(&prefix_kv),
        cache: None,
        cache_valid: None,
        self_mask: &SelfMask::Causal,
        query_rows: None,
    };
    let ours = cascade(
        &q.to_kind(kind),
        &k.to_kind(kind),
        &v.to_kind(kind),
        &context,
        scale,
        kv_heads,
    )
    .to_kind(Kind::Float);
    let group = heads / kv_heads;
    let widen = |prefix_part: &Tensor, own: &Tensor| {
        Tensor::cat(
            &[
                &prefix_part.expand([batch, kv_heads, prefix, head_dim], false),
                own,
            ],
            2,
        )
        .repeat_interleave_self_int(group, 1, None)
    };
    let allowed = Tensor::cat(
        &[
            Tensor::ones([suffix, prefix], (Kind::Bool, device)),
            Tensor::ones([suffix, suffix], (Kind::Bool, device)).tril(0),
        ],
        1,
    );
    // The private math kernel adds its mask as it is (the public entry point converts a
    // boolean one): blocked positions get -inf.
    let blocked = Tensor::zeros([suffix, prefix + suffix], f32)
        .masked_fill(&allowed.logical_not(), f64::NEG_INFINITY);
    let reference = Tensor::f_internal_scaled_dot_product_attention_math(
        &q,
        &widen(&prefix_k, &k),
        &widen(&prefix_v, &v),
        Some(blocked.view([1, 1, suffix, prefix + suffix])),
        0.0,
        false,
        None::<Tensor>,
        scale,
        false,
    )
    .map(|(out, _)| out)
    .unwrap_or_else(|_| Tensor::full([1], f64::NAN, f32));
    let largest = reference
        .abs()
        .max()
        .double_value(&[])
        .max(f64::MIN_POSITIVE);
    (ours - reference).abs().max().double_value(&[]) / largest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cascade_attention_equals_math_attention_over_the_whole_sequence() {
        let f32 = cascade_parity(Device::Cpu, Kind::Float, 3, 64, 12, 4, 2, 16);
        assert!(f32 < 1e-5, "f32: {f32}");
        let bf16 = cascade_parity(Device::Cpu, Kind::BFloat16, 3, 64, 12, 4, 2, 16);
        assert!(bf16 < 2e-2, "bf16: {bf16}");
    }
}
