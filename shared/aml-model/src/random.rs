//! Random tensors drawn from a caller-owned [`SeededRng`].
//!
//! libtorch's generator is global to the process, so two threads seeding it race; weights of
//! tiny models and LoRA initialisation draw from a `SeededRng` instead and are reproducible
//! for a seed whatever else runs.

use aml_core::rng::SeededRng;
use tch::{Device, Tensor};

/// A float32 tensor of standard normals times `std`.
pub fn normal_tensor(rng: &mut SeededRng, shape: &[i64], std: f64, device: Device) -> Tensor {
    let count: i64 = shape.iter().product();
    let values: Vec<f32> = (0..count).map(|_| (rng.normal() * std) as f32).collect();
    Tensor::from_slice(&values).view(shape).to_device(device)
}

/// A float32 tensor uniform in [low, high).
pub fn uniform_tensor(
    rng: &mut SeededRng,
    shape: &[i64],
    low: f64,
    high: f64,
    device: Device,
) -> Tensor {
    let count: i64 = shape.iter().product();
    let values: Vec<f32> = (0..count)
        .map(|_| (low + (high - low) * rng.uniform()) as f32)
        .collect();
    Tensor::from_slice(&values).view(shape).to_device(device)
}
