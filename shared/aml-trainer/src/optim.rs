//! AdamW and Lion on the LoRA tensors, with state kept as tensors (so a checkpoint can hold
//! it), global-norm gradient clipping, and the cosine schedule with linear warmup.

use tch::{Kind, Tensor};

/// Which optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// AdamW (decoupled weight decay).
    Adamw,
    /// Lion (sign of the interpolated momentum).
    Lion,
}

/// Optimiser state for a list of parameters.
#[derive(Debug)]
pub struct Optimizer {
    kind: OptimizerKind,
    weight_decay: f64,
    /// First moments.
    pub first: Vec<Tensor>,
    /// Second moments (AdamW only).
    pub second: Vec<Tensor>,
    /// Steps taken.
    pub step: i64,
}

impl Optimizer {
    /// Fresh state for `parameters`.
    pub fn new(kind: OptimizerKind, weight_decay: f64, parameters: &[Tensor]) -> Self {
        let zeros = |p: &Tensor| Tensor::zeros_like(p).to_kind(Kind::Float);
        Optimizer {
            kind,
            weight_decay,
            first: parameters.iter().map(zeros).collect(),
            second: parameters.iter().map(zeros).collect(),
            step: 0,
        }
    }

    /// One update at learning rate `lr`; gradients are read from the parameters.
    pub fn update(&mut self, parameters: &mut [Tensor], lr: f64) {
        let _no_grad = tch::no_grad_guard();
        self.step += 1;
        let (beta1, beta2, eps) = match self.kind {
            OptimizerKind::Adamw => (0.9, 0.999, 1e-8),
            OptimizerKind::Lion => (0.9, 0.99, 0.0),
        };
        for (index, parameter) in parameters.iter_mut().enumerate() {
            let grad = parameter.grad();
            if !grad.defined() {
                continue;
            }
            let grad = grad.to_kind(Kind::Float);
            if self.weight_decay > 0.0 {
                let _ = parameter.g_mul_scalar_(1.0 - lr * self.weight_decay);
            }
            match self.kind {
                OptimizerKind::Adamw => {
                    self.first[index] = &self.first[index] * beta1 + &grad * (1.0 - beta1);
                    self.second[index] =
                        &self.second[index] * beta2 + grad.square() * (1.0 - beta2);
                    let correction1 = 1.0 - beta1.powi(self.step as i32);
                    let correction2 = 1.0 - beta2.powi(self.step as i32);
                    let update = (&self.first[index] / correction1)
                        / ((&self.second[index] / correction2).sqrt() + eps);
                    let _ = parameter.g_sub_(&(update * lr).to_kind(parameter.kind()));
                }
                OptimizerKind::Lion => {
                    let direction = (&self.first[index] * beta1 + &grad * (1.0 - beta1)).sign();
                    let _ = parameter.g_sub_(&(direction * lr).to_kind(parameter.kind()));
                    self.first[index] = &self.first[index] * beta2 + &grad * (1.0 - beta2);
                }
            }
        }
    }
}

/// Scales gradients so their global L2 norm is at most `max_norm`; returns the norm before.
pub fn clip_gradients(parameters: &[Tensor], max_norm: f64) -> f64 {
    let _no_grad = tch::no_grad_guard();
    let squares: f64 = parameters
        .iter()
        .map(Tensor::grad)
        .filter(Tensor::defined)
        .map(|grad| {
            grad.to_kind(Kind::Float)
                .square()
                .sum(Kind::Float)
                .double_value(&[])
        })
        .sum();
    let norm = squares.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for parameter in parameters {
            let mut grad = parameter.grad();
            if grad.defined() {
                let _ = grad.g_mul_scalar_(scale);
            }
        }
    }
    norm
}

/// Zeroes every gradient.
pub fn zero_gradients(parameters: &[Tensor]) {
    for parameter in parameters {
        let mut grad = parameter.grad();
        if grad.defined() {
            let _ = grad.zero_();
        }
    }
}

/// Learning rate at `step` of `total`: linear warmup over `warmup` steps, then cosine to 0.
pub fn cosine_with_warmup(base: f64, step: i64, total: i64, warmup: i64) -> f64 {
    if warmup > 0 && step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let span = (total - warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).clamp(0.0, 1.0);
    base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        assert!((cosine_with_warmup(1.0, 0, 100, 10) - 0.1).abs() < 1e-12);
        assert!((cosine_with_warmup(1.0, 9, 100, 10) - 1.0).abs() < 1e-12);
        assert!((cosine_with_warmup(1.0, 10, 100, 10) - 1.0).abs() < 1e-12);
        assert!(cosine_with_warmup(1.0, 55, 100, 10) < 0.6);
        assert!(cosine_with_warmup(1.0, 100, 100, 10).abs() < 1e-12);
    }

    #[test]
    fn adamw_moves_against_the_gradient() {
        let mut parameters = vec![Tensor::from_slice(&[1.0f32, -1.0]).set_requires_grad(true)];
        let loss = (&parameters[0] * &parameters[0]).sum(Kind::Float);
        loss.backward();
        let mut optimizer = Optimizer::new(OptimizerKind::Adamw, 0.0, &parameters);
        optimizer.update(&mut parameters, 0.1);
        let values: Vec<f32> = Vec::try_from(&parameters[0].detach()).unwrap();
        assert!(
            (values[0] - 0.9).abs() < 1e-4 && (values[1] + 0.9).abs() < 1e-4,
            "{values:?}"
        );
    }
}
