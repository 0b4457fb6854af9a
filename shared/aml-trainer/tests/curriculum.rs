//! A full 3-phase curriculum on a tiny model and offline-generated data, on CPU: the loss
//! falls in every phase, each phase leaves an adapter (its best evaluation's weights), and
//! the final adapter loads in PEFT with the same logits as our runtime. Early stopping acts
//! within a phase. A caller that cannot take a finished phase stops the run, and the resumed
//! run tells of that phase again; a run asked to stop mid-phase (a service shutting down)
//! checkpoints there and the resumed run ends as an uninterrupted one.

use aml_integration_tests::datasets::write_offline_dataset;
use aml_integration_tests::oracle::hf_oracle;
use aml_model::tiny::init_tiny;
use aml_model::{Architecture, CausalLm, LoadOptions, Lora, TextTokenizer, TinySpec};
use aml_trainer::{
    Observer, PhaseSummary, PreparedData, RunPaths, TrainError, TrainerConfig, TrainerState,
    train_curriculum,
};
use tch::Tensor;

/// A tiny model, a small offline dataset and an output folder in a temporary directory.
struct Run {
    _root: tempfile::TempDir,
    model_dir: std::path::PathBuf,
    data_dir: std::path::PathBuf,
    out: std::path::PathBuf,
    tokenizer: TextTokenizer,
    model: CausalLm,
}

impl Run {
    fn prepare(architecture: Architecture) -> Self {
        let root = tempfile::tempdir().expect("dir");
        let (model_dir, data_dir, out) = (
            root.path().join("model"),
            root.path().join("data"),
            root.path().join("run"),
        );
        std::fs::create_dir_all(&data_dir).expect("data dir");
        init_tiny(&TinySpec::tiny(architecture), &model_dir, 5).expect("tiny model");
        write_offline_dataset(&data_dir, 15, 3, 9);
        let tokenizer = TextTokenizer::load(&model_dir).expect("tokenizer");
        let model = CausalLm::load(&model_dir, LoadOptions::cpu_f32()).expect("model");
        Run {
            _root: root,
            model_dir,
            data_dir,
            out,
            tokenizer,
            model,
        }
    }

    /// Runs the curriculum of `config` on the prepared folders with `self.model`, telling
    /// `observer`.
    fn train(
        &mut self,
        config: &TrainerConfig,
        observer: &mut dyn Observer,
    ) -> Result<TrainerState, TrainError> {
        let data = PreparedData::load(&self.tokenizer, &self.data_dir, config, 4096)?;
        let paths = RunPaths {
            base_dir: self.model_dir.clone(),
            base_name: "tiny".to_owned(),
            data_dir: self.data_dir.clone(),
            out: self.out.clone(),
        };
        train_curriculum(
            &mut self.model,
            &self.tokenizer,
            &data,
            config,
            &paths,
            observer,
        )
    }

    /// Loads the base model afresh, as a new process would.
    fn reload(&mut self) {
        self.model = CausalLm::load(&self.model_dir, LoadOptions::cpu_f32()).expect("model");
    }
}

#[test]
fn three_phases_lower_the_loss_and_the_adapter_loads_in_peft() {
    let mut run = Run::prepare(Architecture::Llama);
    let config = TrainerConfig {
        lora_r: 8,
        lora_alpha: 16.0,
        lr: 5e-3,
        batch_size: 4,
        grad_accum: 1,
        epochs: [3, 3, 2],
        max_seq_len: 768,
        judge_items: 6,
        judge_max_new_tokens: 16,
        ..TrainerConfig::default()
    };
    let state = run.train(&config, &mut ()).expect("training");
    assert_eq!(state.phases.len(), 3);
    for phase in &state.phases {
        assert!(phase.last_epoch_loss < phase.first_epoch_loss, "{phase:?}");
        assert!(phase.padding_share < 0.1, "{phase:?}");
        assert!(
            run.out
                .join(&phase.phase)
                .join("adapter/adapter_model.safetensors")
                .exists()
        );
        let report_path = run.out.join(&phase.phase).join("eval_report.json");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(report_path).expect("eval report"))
                .expect("json");
        assert_eq!(
            report["n"], 6,
            "the judge graded a stratified sample after {}",
            phase.phase
        );
    }
    assert!(state.phases[1].learning_rate < state.phases[0].learning_rate);
    assert!(run.out.join("trainer_state.json").exists());
    for phase in &state.phases {
        let exported = Tensor::read_safetensors(
            run.out
                .join(&phase.phase)
                .join("adapter/adapter_model.safetensors"),
        )
        .expect("phase adapter");
        let evaluated = state
            .log_history
            .iter()
            .find(|entry| entry.step == phase.adapter_step && entry.eval_loss.is_some())
            .and_then(|entry| entry.eval_loss);
        assert_eq!(
            evaluated,
            Some(phase.best_eval_loss),
            "{}: the adapter holds the best evaluation's weights",
            phase.phase
        );
        assert!(!exported.is_empty());
        assert!(
            run.out
                .join(&phase.phase)
                .join("adapter/tokenizer.json")
                .exists()
                && run
                    .out
                    .join(&phase.phase)
                    .join("adapter/tokenizer_config.json")
                    .exists(),
            "every adapter folder carries the tokenizer and chat template"
        );
    }

    let ids: Vec<i64> = (1..40).collect();
    let ours = {
        let mut fresh = CausalLm::load(&run.model_dir, LoadOptions::cpu_f32()).expect("model");
        Lora::load(&mut fresh, &run.out.join("adapter")).expect("adapter");
        tch::no_grad(|| fresh.forward(&Tensor::from_slice(&ids).view([1, -1])))
            .expect("forward")
            .squeeze_dim(0)
    };
    let parsed = hf_oracle(&[
        "logits",
        "--model",
        &run.model_dir.display().to_string(),
        "--adapter",
        &run.out.join("adapter").display().to_string(),
        "--ids",
        &ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","),
    ]);
    let rows: Vec<Vec<f32>> = serde_json::from_value(parsed["logits"].clone()).expect("rows");
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let peft = Tensor::from_slice(&flat).view([rows.len() as i64, -1]);
    let diff = (&ours - &peft).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "trained adapter in PEFT vs ours: {diff}");
}

#[test]
fn a_failed_gate_stops_the_curriculum_with_a_clear_report() {
    let mut run = Run::prepare(Architecture::Qwen2);
    let config = TrainerConfig {
        lora_r: 4,
        lr: 1e-3,
        batch_size: 8,
        grad_accum: 1,
        epochs: [1, 1, 1],
        max_seq_len: 512,
        judge_items: 6,
        judge_max_new_tokens: 8,
        gate: aml_trainer::config::Gate {
            min_accuracy: Some(1.01),
            ..Default::default()
        },
        ..TrainerConfig::default()
    };
    let error = run
        .train(&config, &mut ())
        .expect_err("the gate cannot pass");
    let message = error.to_string();
    assert!(
        message.starts_with("phase easy failed the gate: accuracy"),
        "{message}"
    );
    assert!(message.contains("eval_report.json"), "{message}");
    assert!(run.out.join("easy/eval_report.json").exists());
    assert!(
        !run.out.join("medium").exists(),
        "the curriculum stopped after easy"
    );
}

/// Records the phases it is told of; refuses the first time it hears of `refuse`.
struct Announcements {
    heard: Vec<String>,
    refuse: Option<&'static str>,
}

impl Observer for Announcements {
    fn phase(&mut self, summary: &PhaseSummary) -> Result<(), TrainError> {
        if self.refuse == Some(summary.phase.as_str()) {
            self.refuse = None;
            return Err(TrainError::Stopped {
                phase: summary.phase.clone(),
                reason: "upload failed".into(),
            });
        }
        self.heard.push(summary.phase.clone());
        Ok(())
    }
}

#[test]
fn a_phase_the_caller_could_not_take_is_told_again_after_the_resume() {
    let mut run = Run::prepare(Architecture::Llama);
    let config = TrainerConfig {
        lora_r: 4,
        batch_size: 8,
        grad_accum: 1,
        epochs: [1, 1, 1],
        max_seq_len: 512,
        run_judge: false,
        ..TrainerConfig::default()
    };
    let mut observer = Announcements {
        heard: Vec::new(),
        refuse: Some("hard"),
    };
    let error = run
        .train(&config, &mut observer)
        .expect_err("the caller stops the run");
    assert_eq!(error.to_string(), "stopped in phase hard: upload failed");
    assert_eq!(observer.heard, ["easy", "medium"]);
    assert!(
        !run.out.join("adapter").exists(),
        "the run stopped before its final adapter"
    );

    run.reload();
    let rebatched = TrainerConfig {
        batch_size: 4,
        ..config.clone()
    };
    let refused = run
        .train(&rebatched, &mut observer)
        .expect_err("other batching flags cannot resume these checkpoints")
        .to_string();
    assert!(
        refused.contains("written with packing false, batch_size 8")
            && refused.contains("resumed with packing false, batch_size 4"),
        "{refused}"
    );
    run.reload();
    let state = run
        .train(&config, &mut observer)
        .expect("the resumed run ends");
    assert_eq!(
        observer.heard,
        ["easy", "medium", "hard"],
        "the resume tells of hard, which its checkpoint ended"
    );
    assert_eq!(state.phases.len(), 3);
    assert!(run.out.join("adapter/adapter_model.safetensors").exists());
}

/// Asks the run to stop after `after` optimiser steps (a service shutting down).
struct StopAfter {
    steps: usize,
    after: usize,
}

impl Observer for StopAfter {
    fn step(&mut self, _progress: &aml_trainer::StepProgress) {
        self.steps += 1;
    }

    fn stop_requested(&self) -> bool {
        self.steps >= self.after
    }
}

#[test]
fn a_run_asked_to_stop_mid_phase_checkpoints_and_resumes_to_the_same_end() {
    let config = TrainerConfig {
        lora_r: 4,
        batch_size: 4,
        grad_accum: 1,
        epochs: [1, 1, 1],
        max_seq_len: 512,
        run_judge: false,
        ..TrainerConfig::default()
    };
    let mut whole = Run::prepare(Architecture::Llama);
    let uninterrupted = whole.train(&config, &mut ()).expect("a whole run");

    let mut run = Run::prepare(Architecture::Llama);
    let error = run
        .train(&config, &mut StopAfter { steps: 0, after: 2 })
        .expect_err("the run stops when asked");
    let message = error.to_string();
    assert!(
        message.starts_with("stopped in phase easy: asked to stop; a checkpoint at step 2"),
        "{message}"
    );
    assert!(!run.out.join("easy/adapter").exists(), "easy had not ended");
    run.reload();
    let resumed = run.train(&config, &mut ()).expect("the resumed run ends");
    assert_eq!(resumed.global_step, uninterrupted.global_step);
    let losses = |state: &TrainerState| -> Vec<f64> {
        state
            .log_history
            .iter()
            .filter_map(|entry| entry.loss)
            .collect()
    };
    let (whole_losses, resumed_losses) = (losses(&uninterrupted), losses(&resumed));
    assert_eq!(whole_losses.len(), resumed_losses.len());
    for (a, b) in whole_losses.iter().zip(&resumed_losses) {
        assert!(
            (a - b).abs() < 1e-4,
            "the resumed run trains as the whole one: {a} vs {b}"
        );
    }
}

#[test]
fn early_stopping_fires_inside_a_two_epoch_phase() {
    let mut run = Run::prepare(Architecture::Llama);
    // With no learning the validation loss stands still: the fourth evaluation (patience 3)
    // sees less than 5% improvement, in the second of the phase's two epochs.
    let config = TrainerConfig {
        lora_r: 4,
        lr: 0.0,
        batch_size: 2,
        grad_accum: 1,
        epochs: [2, 1, 1],
        max_seq_len: 512,
        run_judge: false,
        ..TrainerConfig::default()
    };
    let state = run.train(&config, &mut ()).expect("training");
    let easy = &state.phases[0];
    assert!(easy.early_stopped, "{easy:?}");
    assert_eq!(easy.evaluations, 4, "{easy:?}");
    assert_eq!(easy.epochs, 2, "it stopped in its second epoch: {easy:?}");
    let first_epoch_steps = state
        .log_history
        .iter()
        .filter(|entry| entry.phase == "easy" && entry.epoch == 1 && entry.loss.is_some())
        .count() as i64;
    assert!(
        first_epoch_steps < easy.steps && easy.steps < 2 * first_epoch_steps,
        "stopped inside the second epoch: {easy:?}, {first_epoch_steps} steps per epoch"
    );
    assert!(
        run.out
            .join("easy/adapter/adapter_model.safetensors")
            .exists()
    );
}

#[test]
fn a_loss_that_blows_up_stops_the_run_before_any_checkpoint_holds_it() {
    let mut run = Run::prepare(Architecture::Llama);
    let config = TrainerConfig {
        lora_r: 4,
        lr: 1e30,
        warmup_ratio: 0.0,
        max_grad_norm: 0.0,
        batch_size: 4,
        grad_accum: 1,
        epochs: [1, 1, 1],
        max_seq_len: 512,
        run_judge: false,
        ..TrainerConfig::default()
    };
    let error = run
        .train(&config, &mut ())
        .expect_err("a learning rate of 1e30 blows up");
    assert!(matches!(error, TrainError::NonFinite { .. }), "{error}");
    assert!(error.to_string().contains("lower --lr"), "{error}");
}
