//! The trainer configuration on the bus: [`TrainerConfig`] to and from the `TrainingConfig`
//! message a TrainRequest carries.

use aml_proto::v1::{Optimizer, TrainingConfig};

use crate::TrainError;
use crate::config::{Gate, TrainerConfig};
use crate::optim::OptimizerKind;

/// The `TrainingConfig` schema version this trainer reads and writes.
pub const TRAINING_CONFIG_VERSION: u32 = 1;

fn invalid(field: &'static str, reason: impl ToString) -> TrainError {
    TrainError::Config {
        field,
        reason: reason.to_string(),
    }
}

fn count(field: &'static str, value: u32) -> Result<usize, TrainError> {
    if value == 0 {
        return Err(invalid(field, "must be at least 1"));
    }
    Ok(value as usize)
}

impl TrainerConfig {
    /// The whole configuration as a message, every field set (the judge's credentials stay
    /// behind: the trainer takes its own).
    pub fn to_message(&self) -> TrainingConfig {
        TrainingConfig {
            version: TRAINING_CONFIG_VERSION,
            lora_r: Some(self.lora_r),
            lora_alpha: Some(self.lora_alpha),
            lora_dropout: Some(self.lora_dropout),
            target_modules: self.target_modules.clone(),
            lr: Some(self.lr),
            phase_lr_factor: Some(self.phase_lr_factor),
            batch_size: Some(self.batch_size as u32),
            grad_accum: Some(self.grad_accum as u32),
            epochs: self.epochs.iter().map(|epochs| *epochs as u32).collect(),
            max_seq_len: Some(self.max_seq_len as u32),
            warmup_ratio: Some(self.warmup_ratio),
            weight_decay: Some(self.weight_decay),
            max_grad_norm: Some(self.max_grad_norm),
            optimizer: match self.optimizer {
                OptimizerKind::Adamw => Optimizer::Adamw,
                OptimizerKind::Lion => Optimizer::Lion,
            } as i32,
            cot: Some(self.cot),
            distill: Some(self.distill),
            distill_gold_weight: Some(self.distill_gold_weight),
            distill_max_new_tokens: Some(self.distill_max_new_tokens),
            recompute: Some(self.recompute),
            device: Some(self.device.to_string()),
            dtype: Some(self.dtype.to_string()),
            fp8_base: Some(self.fp8_base),
            packing: Some(self.packing),
            eval_steps: self.eval_steps.map(|steps| steps as u32),
            load_best_at_end: Some(self.load_best_at_end),
            merge_lora: Some(self.merge_lora),
            calibration_file: self
                .calibration_file
                .as_ref()
                .map(|file| file.to_string_lossy().into_owned()),
            calibration_recall: Some(self.calibration_recall),
            calibration_confidence: Some(self.calibration_confidence),
            hub_model_id: self.hub_model_id.clone(),
            patience: Some(self.patience as u32),
            min_improvement: Some(self.min_improvement),
            seed: Some(self.seed),
            run_judge: Some(self.run_judge),
            judge_items: Some(self.judge_items as u32),
            judge_max_new_tokens: Some(self.judge_max_new_tokens),
            judge_provider: Some(self.judge_provider.clone()),
            judge_model: Some(self.judge_model.clone()),
            system_prompt: self.system_prompt.clone(),
            gate_min_positive_recall: self.gate.min_positive_recall,
            gate_min_accuracy: self.gate.min_accuracy,
            gate_min_rubric: self.gate.min_rubric,
        }
    }

    /// The configuration a message asks for: the defaults, with each field the message sets
    /// over them. A version this trainer does not know, or a value it cannot use, is an
    /// error naming the field.
    pub fn from_message(message: &TrainingConfig) -> Result<Self, TrainError> {
        if message.version != TRAINING_CONFIG_VERSION {
            return Err(invalid(
                "version",
                format!(
                    "{} is not the version this trainer reads ({TRAINING_CONFIG_VERSION})",
                    message.version
                ),
            ));
        }
        let mut config = TrainerConfig::default();
        macro_rules! set {
            ($($field:ident),* $(,)?) => {
                $(if let Some(value) = message.$field.clone() {
                    config.$field = value;
                })*
            };
        }
        set!(
            lora_r,
            lora_alpha,
            lora_dropout,
            lr,
            phase_lr_factor,
            warmup_ratio,
            weight_decay,
            max_grad_norm,
            cot,
            distill,
            distill_gold_weight,
            distill_max_new_tokens,
            recompute,
            fp8_base,
            packing,
            load_best_at_end,
            merge_lora,
            calibration_recall,
            calibration_confidence,
            min_improvement,
            seed,
            run_judge,
            judge_max_new_tokens,
            judge_provider,
            judge_model,
        );
        if !message.target_modules.is_empty() {
            config.target_modules = message.target_modules.clone();
        }
        if let Some(value) = message.batch_size {
            config.batch_size = count("batch_size", value)?;
        }
        if let Some(value) = message.grad_accum {
            config.grad_accum = count("grad_accum", value)?;
        }
        if let Some(value) = message.max_seq_len {
            config.max_seq_len = count("max_seq_len", value)?;
        }
        if let Some(value) = message.judge_items {
            config.judge_items = value as usize;
        }
        if let Some(value) = message.patience {
            config.patience = value as usize;
        }
        match message.epochs.as_slice() {
            [] => {}
            [easy, medium, hard] => {
                config.epochs = [*easy as usize, *medium as usize, *hard as usize];
            }
            other => {
                return Err(invalid(
                    "epochs",
                    format!(
                        "{} values; give the easy, medium and hard phases' three",
                        other.len()
                    ),
                ));
            }
        }
        config.optimizer = match Optimizer::try_from(message.optimizer) {
            Ok(Optimizer::Unspecified) => config.optimizer,
            Ok(Optimizer::Adamw) => OptimizerKind::Adamw,
            Ok(Optimizer::Lion) => OptimizerKind::Lion,
            Err(_) => {
                return Err(invalid(
                    "optimizer",
                    format!("unknown value {}", message.optimizer),
                ));
            }
        };
        if let Some(device) = &message.device {
            config.device = device.parse().map_err(|error| invalid("device", error))?;
        }
        if let Some(dtype) = &message.dtype {
            config.dtype = dtype.parse().map_err(|error| invalid("dtype", error))?;
        }
        if let Some(steps) = message.eval_steps {
            config.eval_steps = Some(count("eval_steps", steps)?);
        }
        if let Some(file) = &message.calibration_file {
            config.calibration_file = Some(file.into());
        }
        if message.hub_model_id.is_some() {
            config.hub_model_id = message.hub_model_id.clone();
        }
        if message.system_prompt.is_some() {
            config.system_prompt = message.system_prompt.clone();
        }
        config.gate = Gate {
            min_positive_recall: message.gate_min_positive_recall,
            min_accuracy: message.gate_min_accuracy,
            min_rubric: message.gate_min_rubric,
        };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use aml_core::DeviceChoice;

    use super::*;

    #[test]
    fn a_configuration_survives_the_message_and_unset_fields_keep_the_defaults() {
        let mut config = TrainerConfig {
            lora_r: 4,
            lr: 2e-3,
            epochs: [1, 2, 3],
            optimizer: OptimizerKind::Lion,
            device: DeviceChoice::Cuda(1),
            eval_steps: Some(5),
            hub_model_id: Some("bank/screening".into()),
            system_prompt: Some("policy".into()),
            gate: Gate {
                min_accuracy: Some(0.5),
                ..Gate::default()
            },
            ..TrainerConfig::default()
        };
        config.calibration_file = Some("gold.jsonl".into());
        let back = TrainerConfig::from_message(&config.to_message()).expect("valid");
        assert_eq!(back, config);

        let sparse = TrainingConfig {
            version: TRAINING_CONFIG_VERSION,
            lora_r: Some(8),
            ..Default::default()
        };
        let config = TrainerConfig::from_message(&sparse).expect("valid");
        assert_eq!(config.lora_r, 8);
        assert_eq!(
            TrainerConfig {
                lora_r: 8,
                ..config.clone()
            },
            TrainerConfig {
                lora_r: 8,
                ..TrainerConfig::default()
            }
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let message = |edit: fn(&mut TrainingConfig)| {
            let mut message = TrainerConfig::default().to_message();
            edit(&mut message);
            TrainerConfig::from_message(&message)
                .expect_err("refused")
                .to_string()
        };
        assert!(message(|m| m.version = 2).contains("`version`"));
        assert!(message(|m| m.epochs = vec![1, 1]).contains("`epochs`"));
        assert!(message(|m| m.device = Some("tpu".into())).contains("`device`"));
        assert!(message(|m| m.batch_size = Some(0)).contains("`batch_size`"));
        assert!(message(|m| m.optimizer = 9).contains("`optimizer`"));
    }
}
