//! A training job as `aml train` and the trainer service run it: plan (read and tokenise the
//! data, resolve the device and dtype, estimate the peak memory and refuse a run that cannot
//! fit, all before the weights load), then train and merge.

use std::path::PathBuf;

use aml_core::Difficulty;
use aml_core::cascade::Calibration;
use aml_core::labelled::LabelledAlert;
use aml_core::record::TrainingRecord;
use aml_model::merge::merge_and_save;
use aml_model::{CausalLm, DeviceMemory, LoadOptions, ModelConfig, TextTokenizer, device_memory};
use aml_scoring::ScoringEngine;
use tch::Kind;

use crate::calibration::{calibrate_trained, read_calibration_file};
use crate::curriculum::{
    Observer, RunPaths, smoke_step, train_curriculum, training_record, write_file, write_record,
};
use crate::data::PreparedData;
use crate::distill::{
    DistillationReport, TEACHER_DIR, agreement, distillation_data, teacher_labels, tier_samples,
};
use crate::memory::{MemoryEstimate, estimate, gib, lora_parameters, suggestions};
use crate::state::{PhaseSummary, TrainerState};
use crate::{TrainError, TrainerConfig};

/// Largest shard of a merged model (as `save_pretrained`'s default).
const MERGED_SHARD_BYTES: u64 = 5_000_000_000;

/// A run to plan: where it reads and writes, and its settings.
#[derive(Debug, Clone)]
pub struct TrainingJob {
    /// Base model, data and output folders.
    pub paths: RunPaths,
    /// Hyper-parameters, device, precision and outputs.
    pub config: TrainerConfig,
}

/// A job checked and ready: its data tokenised, its device chosen and its memory estimated.
#[derive(Debug)]
pub struct TrainingPlan {
    /// The job.
    pub job: TrainingJob,
    /// Device, dtype and weight storage the model loads with.
    pub options: LoadOptions,
    /// The base model's configuration.
    pub model: ModelConfig,
    /// The base model's tokenizer.
    pub tokenizer: TextTokenizer,
    /// The run's data.
    pub data: PreparedData,
    /// Adapter parameters trained.
    pub trainable: i64,
    /// Peak memory the run needs.
    pub estimate: MemoryEstimate,
    /// The device's memory when the plan was made, when it could be read.
    pub memory: Option<DeviceMemory>,
    /// Rows per micro-batch and tokens per row the estimate assumes.
    pub batch_shape: (usize, usize),
    /// The labelled alerts of `--calibration_file` (none without one).
    pub calibration_alerts: Vec<LabelledAlert>,
}

/// What a finished run leaves besides its files.
#[derive(Debug)]
pub struct Outcome {
    /// The log and phase summaries.
    pub state: TrainerState,
    /// The merged model's folder and dtype, with `merge_lora`.
    pub merged: Option<(PathBuf, Kind)>,
    /// The cascade calibrated on the trained model (written as `calibration.json`), or why
    /// it could not be: the run's adapters and reports stand either way.
    pub calibration: Result<Calibration, String>,
    /// How the distilled scorer agrees with its CoT teacher, with `distill`.
    pub distillation: Option<DistillationReport>,
}

impl TrainingJob {
    /// Reads and tokenises the data (a bad line or an over-long prompt names its file and
    /// sample), resolves the device and dtype, and estimates the peak memory; a run whose
    /// estimate exceeds the device's free memory fails here, with the flags that would fit.
    pub fn plan(self) -> Result<TrainingPlan, TrainError> {
        let model = ModelConfig::from_dir(&self.paths.base_dir)?;
        let tokenizer = TextTokenizer::load(&self.paths.base_dir)?;
        let config = &self.config;
        let options = LoadOptions::resolve(config.device, config.dtype, config.fp8_base)?;
        let data = PreparedData::load(
            &tokenizer,
            &self.paths.data_dir,
            config,
            model.max_position_embeddings as usize,
        )?;
        let calibration_alerts = read_calibration_file(config)?;
        let lora = config.lora_config(&self.paths.base_name, config.lora_dropout)?;
        let trainable = lora_parameters(&model, &lora);
        let batch_shape = (
            config.batch_size.max(1),
            if config.packing {
                data.max_len
            } else {
                data.longest()
            },
        );
        let (rows, seq) = batch_shape;
        let estimate = estimate(&model, &options, config, trainable, rows, seq);
        let memory = device_memory(options.device);
        if let Some(memory) = &memory
            && estimate.total() > memory.free_bytes as f64
        {
            let offered = suggestions(&model, &options, config, trainable, rows, seq);
            return Err(TrainError::WontFit {
                device: format!("{} ({})", options.describe(), memory.name),
                needed: gib(estimate.total()),
                free: gib(memory.free_bytes as f64),
                breakdown: estimate.breakdown(),
                suggestions: if offered.is_empty() {
                    "a larger device".to_owned()
                } else {
                    offered.join(", or ")
                },
            });
        }
        Ok(TrainingPlan {
            job: self,
            options,
            model,
            tokenizer,
            data,
            trainable,
            estimate,
            memory,
            batch_shape,
            calibration_alerts,
        })
    }
}

impl TrainingPlan {
    /// What the run will do, for its first lines: device, model and adapter sizes, data and
    /// the memory estimate.
    pub fn summary(&self) -> String {
        let config = &self.job.config;
        let free = match &self.memory {
            Some(memory) => format!(
                " ({}: {} of {} free)",
                memory.name,
                gib(memory.free_bytes as f64),
                gib(memory.total_bytes as f64)
            ),
            None => " (free memory unknown)".to_owned(),
        };
        let parameters = self.model.parameter_count();
        let tiers: Vec<String> = self
            .data
            .tiers
            .iter()
            .map(|(tier, examples): &(Difficulty, _)| format!("{tier} {}", examples.len()))
            .collect();
        let (rows, seq) = self.batch_shape;
        format!(
            "device  {}{free}\n\
             model   {}: {:.2} B parameters ({} layers); LoRA r {} on {}: {:.1} M trainable ({:.2}%)\n\
             data    {} examples, validation {}; longest {} tokens; micro-batches of {rows} x {seq} tokens{}\n\
             memory  peak about {} ({})",
            self.options.describe(),
            self.job.paths.base_name,
            parameters as f64 / 1e9,
            self.model.num_layers,
            config.lora_r,
            config.target_modules.join(","),
            self.trainable as f64 / 1e6,
            100.0 * self.trainable as f64 / parameters.max(1) as f64,
            tiers.join(", "),
            self.data.validation.len(),
            self.data.longest(),
            if config.packing { " (packed)" } else { "" },
            gib(self.estimate.total()),
            self.estimate.breakdown()
        )
    }

    /// Model FLOPs utilisation of a finished phase: its model FLOPs per second of training
    /// steps over the card's dense bf16 peak; `None` off CUDA or on a card the capacity table
    /// does not know.
    pub fn mfu(&self, phase: &PhaseSummary) -> Option<f64> {
        if !matches!(self.options.device, tch::Device::Cuda(_)) {
            return None;
        }
        let card = aml_core::capacity::gpu_of_device(&self.memory.as_ref()?.name)?;
        let flops = self
            .model
            .lora_training_flops(phase.tokens as f64, phase.attention_pairs as f64);
        Some(flops / phase.train_seconds.max(f64::MIN_POSITIVE) / (card.peak_tflops * 1e12))
    }

    /// Loads the base model with the plan's options.
    pub fn load_model(&self) -> Result<CausalLm, TrainError> {
        Ok(CausalLm::load(&self.job.paths.base_dir, self.options)?)
    }

    /// One optimisation step on two easy examples: the loss before and after.
    pub fn smoke(&self) -> Result<(f64, f64), TrainError> {
        let mut model = self.load_model()?;
        smoke_step(&mut model, &self.tokenizer, &self.data, &self.job.config)
    }

    /// Loads the model, trains the curriculum (resuming from a checkpoint in the output
    /// folder; with `distill`, the CoT teacher under `teacher/` and then the scorer distilled
    /// from it at the top level), with `merge_lora` writes the merged model to `merged/` in
    /// the base checkpoint's dtype, then calibrates the cascade on the trained model and
    /// writes `calibration.json` beside the final adapter (and into the last judge report).
    pub fn train(&self, observer: &mut dyn Observer) -> Result<Outcome, TrainError> {
        let mut model = self.load_model()?;
        let paths = &self.job.paths;
        let (state, record, distillation) = if self.job.config.distills() {
            self.train_distilled(&mut model, observer)?
        } else {
            let state = train_curriculum(
                &mut model,
                &self.tokenizer,
                &self.data,
                &self.job.config,
                paths,
                observer,
            )?;
            let record = training_record(
                &self.job.config,
                &paths.base_name,
                &self.tokenizer,
                &self.data,
            );
            (state, record, None)
        };
        let merged = if self.job.config.merge_lora {
            let folder = paths.out.join("merged");
            let kind = merge_and_save(&model, &paths.base_dir, &folder, MERGED_SHARD_BYTES)?;
            write_record(&folder, &record)?;
            Some((folder, kind))
        } else {
            None
        };
        let calibration = match record.refusal() {
            Some(reason) => Err(format!("the trained model cannot score: {reason}")),
            None => self.calibrate(model, merged.as_ref().map(|(folder, _)| folder.as_path())),
        };
        match &calibration {
            Ok(calibration) => {
                let text = serde_json::to_vec_pretty(calibration).unwrap_or_default();
                let file = paths.out.join("calibration.json");
                write_file(&file, &text)?;
                if let Some(last) = state.phases.last() {
                    attach_to_report(
                        &paths.out.join(&last.phase).join("eval_report.json"),
                        calibration,
                    )?;
                }
            }
            Err(reason) => tracing::warn!(%reason, "the trained model could not be calibrated"),
        }
        Ok(Outcome {
            state,
            merged,
            calibration,
            distillation,
        })
    }

    /// Trains the CoT teacher under `teacher/`, writes its reasoning and label distribution
    /// for every training and validation input (`teacher/labels.jsonl`), then trains the
    /// scorer from the base on them (the run's top-level folders) and reports how the two
    /// agree (`distillation.json`). `model` ends as the scorer.
    fn train_distilled(
        &self,
        model: &mut CausalLm,
        observer: &mut dyn Observer,
    ) -> Result<(TrainerState, TrainingRecord, Option<DistillationReport>), TrainError> {
        let config = &self.job.config;
        let paths = &self.job.paths;
        let teacher_paths = RunPaths {
            out: paths.out.join(TEACHER_DIR),
            ..paths.clone()
        };
        train_curriculum(
            model,
            &self.tokenizer,
            &self.data,
            config,
            &teacher_paths,
            &mut TeacherObserver { inner: observer },
        )?;
        let context = self.model.max_position_embeddings.max(0) as usize;
        let samples = tier_samples(&paths.data_dir)?;
        let mut teacher = Vec::with_capacity(samples.len());
        for tier in &samples {
            teacher.push(teacher_labels(
                model,
                &self.tokenizer,
                tier,
                config,
                context,
            )?);
        }
        let validation = teacher_labels(
            model,
            &self.tokenizer,
            &self.data.validation_samples,
            config,
            context,
        )?;
        let mut lines = String::new();
        for (tier, labels) in Difficulty::ALL.iter().zip(&teacher) {
            for label in labels {
                lines.push_str(
                    &serde_json::json!({"tier": tier.as_str(), "label": label}).to_string(),
                );
                lines.push('\n');
            }
        }
        for label in &validation {
            lines.push_str(&serde_json::json!({"tier": "validation", "label": label}).to_string());
            lines.push('\n');
        }
        write_file(&teacher_paths.out.join("labels.jsonl"), lines.as_bytes())?;

        *model = self.load_model()?;
        let scorer_config = TrainerConfig {
            cot: false,
            ..config.clone()
        };
        let gold = PreparedData::load(&self.tokenizer, &paths.data_dir, &scorer_config, context)?;
        let data = distillation_data(&self.tokenizer, gold, &samples, &teacher, &scorer_config)?;
        let state = train_curriculum(
            model,
            &self.tokenizer,
            &data,
            &scorer_config,
            paths,
            observer,
        )?;
        let report = agreement(
            model,
            &self.tokenizer,
            &self.data.validation_samples,
            &validation,
            &scorer_config,
        )?;
        write_file(
            &paths.out.join("distillation.json"),
            &serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )?;
        let record = training_record(&scorer_config, &paths.base_name, &self.tokenizer, &data);
        Ok((state, record, Some(report)))
    }
}

/// Tells an observer of the teacher's steps and phases as `teacher/<phase>`.
struct TeacherObserver<'a> {
    inner: &'a mut dyn Observer,
}

impl Observer for TeacherObserver<'_> {
    fn step(&mut self, progress: &crate::StepProgress) {
        self.inner.step(&crate::StepProgress {
            phase: format!("{TEACHER_DIR}/{}", progress.phase),
            ..progress.clone()
        });
    }

    fn phase(&mut self, summary: &PhaseSummary) -> Result<(), TrainError> {
        self.inner.phase(&PhaseSummary {
            phase: format!("{TEACHER_DIR}/{}", summary.phase),
            ..summary.clone()
        })
    }
}

impl TrainingPlan {
    /// Calibrates the cascade on the trained model; a failure is reported, not fatal.
    fn calibrate(
        &self,
        model: CausalLm,
        merged: Option<&std::path::Path>,
    ) -> Result<Calibration, String> {
        let mut engine =
            ScoringEngine::new(model, self.tokenizer.clone()).map_err(|error| error.to_string())?;
        calibrate_trained(
            &mut engine,
            &self.data,
            &self.calibration_alerts,
            &self.job.config,
            &self.job.paths,
            merged,
        )
        .map_err(|error| error.to_string())
    }
}

/// Adds the calibration to a judge report, when the phase was judged.
fn attach_to_report(report: &std::path::Path, calibration: &Calibration) -> Result<(), TrainError> {
    let Ok(text) = std::fs::read(report) else {
        return Ok(());
    };
    let mut value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|error| TrainError::Checkpoint {
            path: report.to_owned(),
            reason: error.to_string(),
        })?;
    value["calibration"] = serde_json::to_value(calibration).unwrap_or_default();
    write_file(
        report,
        &serde_json::to_vec_pretty(&value).unwrap_or_default(),
    )
}
