//! `aml request generate|train|judge`: hand work to the running services over NATS and wait
//! for the event that says it is done, so a whole lifecycle can be driven through the six
//! service binaries (`aml batch run` does the same for the scheduler). Requests share the
//! JOBS stream's duplicate window, so each message id is prefixed with its kind.

use std::time::Duration;

use aml_bus::topology::subjects;
use aml_bus::{Publisher, Topology};
use aml_proto::v1::{
    self, DatasetReady, GenerateRequest, GeneratorMode, JudgeReport, JudgeRequest, PhaseCompleted,
    TrainRequest,
};
use aml_runtime::AmlConfig;
use anyhow::{Context, bail};
use prost::Message;

/// `id` when it can end its events' subjects (see [`aml_bus::topology::valid_id`]).
pub fn valid(id: &str) -> anyhow::Result<&str> {
    if !aml_bus::topology::valid_id(id) {
        bail!("`{id}`: an id is letters, digits, `-` and `_`, at most 128 characters");
    }
    Ok(id)
}

/// Events on one subject, read from the start of the stream so none published between the
/// request and the subscription is missed.
pub struct EventWaiter {
    events: aml_bus::EventFollower,
    subject: String,
    deadline: tokio::time::Instant,
    timeout: Duration,
}

impl EventWaiter {
    /// Connects as `client_name` and follows `subject` for at most `timeout`; returns the
    /// publisher to send the request with.
    pub async fn follow(
        config: &AmlConfig,
        client_name: &str,
        subject: &str,
        timeout: Duration,
    ) -> anyhow::Result<(Self, Publisher)> {
        let client = aml_bus::connect(&config.nats, client_name).await?;
        let topology = Topology::new(client).with_limits((&config.bus).into());
        topology.ensure_streams().await?;
        let events = aml_bus::EventFollower::start(topology.jetstream(), subject).await?;
        let waiter = EventWaiter {
            events,
            subject: subject.to_owned(),
            deadline: tokio::time::Instant::now() + timeout,
            timeout,
        };
        Ok((waiter, Publisher::new(topology.jetstream().clone())))
    }

    /// The next event `wanted` accepts.
    pub async fn next<E: Message + Default>(
        &mut self,
        wanted: impl Fn(&E) -> bool,
    ) -> anyhow::Result<E> {
        loop {
            let message = tokio::time::timeout_at(self.deadline, self.events.next())
                .await
                .with_context(|| {
                    format!(
                        "no awaited event on {} within {} s; are the services running?",
                        self.subject,
                        self.timeout.as_secs()
                    )
                })?;
            let event = E::decode(message.payload.clone())?;
            if wanted(&event) {
                return Ok(event);
            }
        }
    }
}

/// `aml request ...`.
#[derive(Debug, clap::Subcommand)]
pub enum RequestCommand {
    /// The generator synthesises a dataset, the validator builds it; waits for DatasetReady.
    Generate(GenerateArgs),
    /// The trainer runs the curriculum; waits for each phase's PhaseCompleted (a distilling
    /// run's teacher phases first, with `stage` `teacher`), until the scoring model's hard phase.
    Train(TrainArgs),
    /// The judge grades predictions against gold samples; waits for its JudgeReport.
    Judge(JudgeArgs),
}

/// Options of `aml request generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Run id: the dataset lands under `datasets/<run>/` of the validator's storage.
    #[arg(long)]
    run: String,
    /// Samples per difficulty tier.
    #[arg(long, default_value_t = 300)]
    per_tier: u32,
    /// Seed of the offline synthesis.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Seconds to wait for the dataset.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// Options of `aml request train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Run id.
    #[arg(long)]
    run: String,
    /// Base model: a Hub id, a folder under the trainer's storage (`s3://...`), or a
    /// directory or `file://` URL the trainer can read.
    #[arg(long)]
    base_model: String,
    /// The dataset folder (DatasetReady's `dataset_url`).
    #[arg(long)]
    dataset: String,
    /// Output folder (default: the trainer's `models/<run>`).
    #[arg(long, default_value = "")]
    output: String,
    /// Trainer settings as a JSON object with the fields of a run's config.json (`lora_r`,
    /// `lr`, `epochs`, `device`, ...); the rest keep their defaults. The request carries the
    /// whole configuration as a typed TrainingConfig.
    #[arg(long, default_value = "{}")]
    config_json: String,
    /// Seconds to wait for the whole curriculum.
    #[arg(long, default_value_t = 24 * 3600)]
    timeout_secs: u64,
}

/// Options of `aml request judge`.
#[derive(Debug, clap::Args)]
pub struct JudgeArgs {
    /// Request id; the report defaults to `reports/<id>.json`.
    #[arg(long)]
    id: String,
    /// Gold samples (JSONL URL under the judge's storage).
    #[arg(long)]
    gold: String,
    /// Predictions (JSONL URL under the judge's storage).
    #[arg(long)]
    predictions: String,
    /// offline, anthropic, perplexity or openai.
    #[arg(long, default_value = "offline")]
    provider: String,
    /// Seconds to wait for the report.
    #[arg(long, default_value_t = 1800)]
    timeout_secs: u64,
}

/// Runs one `aml request` subcommand, printing the awaited events as JSON lines.
pub async fn run(config: &AmlConfig, command: &RequestCommand) -> anyhow::Result<()> {
    match command {
        RequestCommand::Generate(args) => {
            let timeout = Duration::from_secs(args.timeout_secs);
            let (mut events, publisher) = EventWaiter::follow(
                config,
                "aml-request",
                &subjects::dataset_ready(valid(&args.run)?),
                timeout,
            )
            .await?;
            let request = GenerateRequest {
                run_id: args.run.clone(),
                per_tier: args.per_tier,
                seed: args.seed,
                mode: GeneratorMode::Offline as i32,
                ..Default::default()
            };
            publisher
                .publish(
                    subjects::GENERATE,
                    &request,
                    Some(&format!("generate/{}", args.run)),
                )
                .await?;
            eprintln!(
                "generation of {} requested; waiting for the dataset",
                args.run
            );
            let ready: DatasetReady = events
                .next(|ready: &DatasetReady| ready.run_id == args.run)
                .await?;
            println!("{}", serde_json::to_string(&ready)?);
        }
        RequestCommand::Train(args) => {
            let timeout = Duration::from_secs(args.timeout_secs);
            let (mut events, publisher) = EventWaiter::follow(
                config,
                "aml-request",
                &subjects::phase_completed(valid(&args.run)?),
                timeout,
            )
            .await?;
            let settings: aml_trainer::TrainerConfig = serde_json::from_str(&args.config_json)
                .context("--config-json: not a trainer configuration")?;
            let request = TrainRequest {
                run_id: args.run.clone(),
                base_model: args.base_model.clone(),
                dataset_url: args.dataset.clone(),
                output_url: args.output.clone(),
                config: Some(settings.to_message()),
            };
            publisher
                .publish(
                    subjects::TRAIN,
                    &request,
                    Some(&format!("train/{}", args.run)),
                )
                .await?;
            eprintln!("training of {} requested; waiting for its phases", args.run);
            loop {
                let phase: PhaseCompleted = events
                    .next(|phase: &PhaseCompleted| phase.run_id == args.run)
                    .await?;
                let name = v1::Difficulty::try_from(phase.phase)
                    .map_or("unknown", |tier| tier.as_str_name());
                println!(
                    "{}",
                    serde_json::json!({
                        "run_id": phase.run_id,
                        "phase": name,
                        "adapter_url": phase.adapter_url,
                        "train_loss": phase.train_loss,
                        "validation_loss": phase.validation_loss,
                        "epochs": phase.epochs,
                        "gate_passed": phase.gate_passed,
                        "judge_report_url": phase.judge_report_url,
                        "stage": phase.stage,
                    })
                );
                if !phase.gate_passed {
                    bail!("run {}: the gate after phase {name} failed", args.run);
                }
                if phase.phase() == v1::Difficulty::Hard && phase.stage.is_empty() {
                    break;
                }
            }
        }
        RequestCommand::Judge(args) => {
            let timeout = Duration::from_secs(args.timeout_secs);
            let (mut events, publisher) = EventWaiter::follow(
                config,
                "aml-request",
                &subjects::judge_report(valid(&args.id)?),
                timeout,
            )
            .await?;
            let request = JudgeRequest {
                request_id: args.id.clone(),
                gold_url: args.gold.clone(),
                predictions_url: args.predictions.clone(),
                report_url: String::new(),
                provider: args.provider.clone(),
            };
            publisher
                .publish(
                    subjects::JUDGE,
                    &request,
                    Some(&format!("judge/{}", args.id)),
                )
                .await?;
            eprintln!("judging {} requested; waiting for the report", args.id);
            let report: JudgeReport = events
                .next(|report: &JudgeReport| report.request_id == args.id)
                .await?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}
