//! The building blocks of a decoder layer: RMS norm, linear projections (optionally FP8 and
//! with a LoRA adapter), the gated MLP.

use tch::{Kind, Tensor};

/// A weight matrix, dense or stored as FP8 (e4m3) with one scale per output row.
#[derive(Debug)]
pub enum Weight {
    /// Kept in the compute dtype.
    Dense(Tensor),
    /// FP8 storage, dequantised to the compute dtype at use.
    Fp8 {
        /// e4m3 values `[out, in]`.
        data: Tensor,
        /// Per-row scales `[out, 1]`, in the compute dtype.
        scale: Tensor,
    },
}

/// Largest finite e4m3 value.
const FP8_E4M3_MAX: f64 = 448.0;

impl Weight {
    /// Quantises a dense weight to FP8 e4m3 with per-row absmax scales.
    pub fn quantize_fp8(dense: &Tensor) -> Weight {
        let kind = dense.kind();
        let scale = (dense.to_kind(Kind::Float).abs().amax([1].as_slice(), true) / FP8_E4M3_MAX)
            .clamp_min(1e-12);
        let data = (dense.to_kind(Kind::Float) / &scale).to_kind(Kind::Float8e4m3fn);
        Weight::Fp8 {
            data,
            scale: scale.to_kind(kind),
        }
    }

    /// The weight in `kind`.
    pub fn dense(&self, kind: Kind) -> Tensor {
        match self {
            Weight::Dense(tensor) => tensor.shallow_clone(),
            Weight::Fp8 { data, scale } => data.to_kind(kind) * scale,
        }
    }

    /// The shape `[out, in]`.
    pub fn size(&self) -> Vec<i64> {
        match self {
            Weight::Dense(tensor) => tensor.size(),
            Weight::Fp8 { data, .. } => data.size(),
        }
    }

    /// Bytes the weight occupies.
    pub fn bytes(&self) -> i64 {
        match self {
            Weight::Dense(tensor) => (tensor.numel() * tensor.kind().elt_size_in_bytes()) as i64,
            Weight::Fp8 { data, scale } => {
                (data.numel() + scale.numel() * scale.kind().elt_size_in_bytes()) as i64
            }
        }
    }
}

/// Low-rank update `B @ A * scale` on a projection.
#[derive(Debug)]
pub struct LoraAdapter {
    /// `[r, in]`.
    pub a: Tensor,
    /// `[out, r]`.
    pub b: Tensor,
    /// `alpha / r`.
    pub scale: f64,
    /// Dropout on the adapter's input while training.
    pub dropout: f64,
}

/// A projection `x @ W^T + b`, plus a LoRA update when one is attached.
#[derive(Debug)]
pub struct Linear {
    /// The frozen weight `[out, in]`.
    pub weight: Weight,
    /// Optional bias `[out]`.
    pub bias: Option<Tensor>,
    /// Optional LoRA adapter.
    pub lora: Option<LoraAdapter>,
}

impl Linear {
    /// Applies the projection; `train` switches on the adapter's dropout.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let weight = self.weight.dense(x.kind());
        let output = x.linear(&weight, self.bias.as_ref());
        match &self.lora {
            None => output,
            Some(lora) => {
                let input = if train && lora.dropout > 0.0 {
                    x.dropout(lora.dropout, true)
                } else {
                    x.shallow_clone()
                };
                // The scale goes on the small `[out, r]` factor, not on the activations, and
                // the update is added in place (the projection's backward needs no output).
                let b = lora.b.to_kind(x.kind()) * lora.scale;
                let mut output = output;
                output += input.matmul(&lora.a.to_kind(x.kind()).tr()).matmul(&b.tr());
                output
            }
        }
    }

    /// The weight with the adapter folded in: `W + scale * B @ A`.
    pub fn merged_weight(&self, kind: Kind) -> Tensor {
        let weight = self.weight.dense(Kind::Float);
        let merged = match &self.lora {
            None => weight,
            Some(lora) => {
                weight
                    + lora
                        .b
                        .to_kind(Kind::Float)
                        .matmul(&lora.a.to_kind(Kind::Float))
                        * lora.scale
            }
        };
        merged.to_kind(kind)
    }
}

/// Root-mean-square layer norm, computed in float32 as transformers does.
#[derive(Debug)]
pub struct RmsNorm {
    /// Scale `[dim]`.
    pub weight: Tensor,
    /// Epsilon.
    pub eps: f64,
}

impl RmsNorm {
    /// Normalises over the last dimension.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let kind = x.kind();
        let x32 = x.to_kind(Kind::Float);
        let variance = x32
            .pow_tensor_scalar(2)
            .mean_dim([-1].as_slice(), true, Kind::Float);
        let normed = (x32 * (variance + self.eps).rsqrt()).to_kind(kind);
        &self.weight * normed
    }
}

/// The gated MLP: `down(silu(gate(x)) * up(x))`.
#[derive(Debug)]
pub struct Mlp {
    /// Gate projection.
    pub gate: Linear,
    /// Up projection.
    pub up: Linear,
    /// Down projection.
    pub down: Linear,
}

impl Mlp {
    /// Applies the MLP.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let gated = self.gate.forward(x, train).silu() * self.up.forward(x, train);
        self.down.forward(&gated, train)
    }
}
