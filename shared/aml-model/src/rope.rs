//! Rotary position embeddings, with Llama 3's frequency-dependent scaling, computed as
//! transformers does (frequencies in float32, `rotate_half` layout).

use std::f64::consts::PI;

use tch::{Device, Kind, Tensor};

use crate::config::{Llama3Scaling, ModelConfig};

/// The inverse frequencies of one model's rotary embedding.
#[derive(Debug)]
pub struct Rotary {
    inv_freq: Tensor,
}

fn llama3_scale(inv_freq: &[f64], scaling: &Llama3Scaling) -> Vec<f64> {
    let low_freq_wavelen = scaling.original_max_position_embeddings / scaling.low_freq_factor;
    let high_freq_wavelen = scaling.original_max_position_embeddings / scaling.high_freq_factor;
    inv_freq
        .iter()
        .map(|&frequency| {
            let wavelen = 2.0 * PI / frequency;
            if wavelen < high_freq_wavelen {
                frequency
            } else if wavelen > low_freq_wavelen {
                frequency / scaling.factor
            } else {
                let smooth = (scaling.original_max_position_embeddings / wavelen
                    - scaling.low_freq_factor)
                    / (scaling.high_freq_factor - scaling.low_freq_factor);
                (1.0 - smooth) * frequency / scaling.factor + smooth * frequency
            }
        })
        .collect()
}

impl Rotary {
    /// The frequencies for a configuration.
    pub fn new(config: &ModelConfig, device: Device) -> Self {
        let dim = config.head_dim;
        let inv_freq: Vec<f64> = (0..dim / 2)
            .map(|i| {
                let exponent = (2 * i) as f32 / dim as f32;
                f64::from(1.0 / (config.rope.theta as f32).powf(exponent))
            })
            .collect();
        let inv_freq = match &config.rope.llama3 {
            Some(scaling) => llama3_scale(&inv_freq, scaling),
            None => inv_freq,
        };
        let inv_freq: Vec<f32> = inv_freq.iter().map(|&frequency| frequency as f32).collect();
        Rotary {
            inv_freq: Tensor::from_slice(&inv_freq).to_device(device),
        }
    }

    /// Cosines and sines for positions `[batch, seq]`, shaped `[batch, 1, seq, head_dim]`, in `kind`.
    pub fn cos_sin(&self, positions: &Tensor, kind: Kind) -> (Tensor, Tensor) {
        let angles = positions.to_kind(Kind::Float).unsqueeze(-1) * self.inv_freq.view([1, 1, -1]);
        let angles = Tensor::cat(&[&angles, &angles], -1).unsqueeze(1);
        (angles.cos().to_kind(kind), angles.sin().to_kind(kind))
    }
}

fn rotate_half(x: &Tensor) -> Tensor {
    let half = x.size()[3] / 2;
    let first = x.narrow(3, 0, half);
    let second = x.narrow(3, half, half);
    Tensor::cat(&[&second.neg(), &first], 3)
}

/// Rotates queries or keys `[batch, heads, seq, head_dim]`.
pub fn apply_rotary(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    x * cos + rotate_half(x) * sin
}
