//! A small seeded random generator (SplitMix64), owned by its caller.
//!
//! libtorch's generator is global to the process, so two threads seeding it race; weights of
//! tiny models, LoRA initialisation and sampling draw from this instead and are reproducible
//! for a seed whatever else runs.

use tch::{Device, Kind, Tensor};

/// SplitMix64: fast, statistically sound for initialisation and sampling, reproducible.
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator for a seed.
    pub fn new(seed: u64) -> Self {
        SeededRng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// A float32 tensor of standard normals times `std`.
    pub fn normal_tensor(&mut self, shape: &[i64], std: f64, device: Device) -> Tensor {
        let count: i64 = shape.iter().product();
        let values: Vec<f32> = (0..count).map(|_| (self.normal() * std) as f32).collect();
        Tensor::from_slice(&values).view(shape).to_device(device)
    }

    /// A float32 tensor uniform in [low, high).
    pub fn uniform_tensor(&mut self, shape: &[i64], low: f64, high: f64, device: Device) -> Tensor {
        let count: i64 = shape.iter().product();
        let values: Vec<f32> = (0..count)
            .map(|_| (low + (high - low) * self.uniform()) as f32)
            .collect();
        Tensor::from_slice(&values)
            .view(shape)
            .to_device(device)
            .to_kind(Kind::Float)
    }

    /// An index drawn with the given (unnormalised, non-negative) weights.
    pub fn weighted_index(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut target = self.uniform() * total;
        for (index, weight) in weights.iter().enumerate() {
            if target < *weight {
                return index;
            }
            target -= weight;
        }
        weights
            .iter()
            .rposition(|weight| *weight > 0.0)
            .unwrap_or(0)
    }
}
