//! `aml`: one CLI for the AML/KYC screening platform.

mod commands;

use aml_runtime::{CommonArgs, Startup};
use clap::{Parser, Subcommand};

/// Fine-tune and run an open LLM that judges sanctions / PEP screening alerts.
#[derive(Debug, Parser)]
#[command(name = "aml", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the JetStream streams (ALERTS, JOBS, EVENTS, DLQ) and service consumers.
    Setup,
    /// Generate synthetic screening cases: offline (deterministic for a seed) or through an LLM (--provider).
    Generate(commands::dataset::GenerateArgs),
    /// Validate candidate samples into easy/medium/hard/train/validation files and a manifest.
    Validate(commands::dataset::ValidateArgs),
    /// Curriculum LoRA fine-tuning: easy -> medium -> hard (the user's command line works as written).
    Train(Box<commands::train::TrainArgs>),
    /// Grade predictions against gold samples: rubric, metrics, tau at 99% recall, pictures.
    Judge(commands::judge::JudgeArgs),
    /// Cost and capacity of a scoring batch: GPU-hours, GPUs, USD, memory; cached vs uncached prefix.
    Plan(commands::plan::PlanArgs),
    /// Security: generate NATS users with per-bank permissions.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// List what is in the dead-letter queue, with the reasons.
    Dlq(commands::dlq::DlqArgs),
    /// Model runtime: build tiny models, print logits, score and generate; push a model to object storage.
    #[command(subcommand)]
    Model(commands::model::ModelCommand),
    /// Banks' alerts: push a JSONL file onto aml.alerts.<bank>.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Hand work to the running services (generator + validator, trainer, judge) and wait for it.
    #[command(subcommand)]
    Request(commands::request::RequestCommand),
    /// Score a JSONL file of alerts with a model (and adapter) as the workers do, without the bus.
    Score(Box<commands::score::ScoreArgs>),
    /// Scoring batches: ask the scheduler for one now and wait for its report.
    #[command(subcommand)]
    Batch(BatchCommand),
    /// Prescreen: score name pairs from a CSV, or calibrate the cutoff on labelled alerts.
    Prescreen(commands::prescreen::PrescreenArgs),
    /// Pick tau on labelled results for a recall target and report the false-positive rate there.
    Calibrate(commands::calibrate::CalibrateArgs),
    /// Object-storage retention: list (--dry-run) or delete (--apply) batch objects past storage.retention_days.
    Retention(commands::retention::RetentionArgs),
    /// The lifecycle's summary table: data, training, judge, batch, calibration, plan.
    Summary(commands::summary::SummaryArgs),
}

#[derive(Debug, Subcommand)]
enum AlertsCommand {
    /// Publish a bank's alerts (JSONL) with their ids as message ids (duplicates dropped).
    Push(commands::alerts::PushArgs),
    /// Write synthetic alerts per bank and their gold labels (for demos and calibration).
    Synth(commands::alerts::SynthArgs),
}

#[derive(Debug, Subcommand)]
enum BatchCommand {
    /// Publish a BatchRequest and print the batch's report when it comes.
    Run(commands::batch::RunArgs),
    /// Print the built-in policy document, the shared prefix when `scoring.policy_url` is
    /// empty (train under it with `aml train --system_prompt_file`).
    Policy,
}

#[derive(Debug, Subcommand)]
enum AuthCommand {
    /// nats-server users: each bank publishes only aml.alerts.<bank>; workers cannot publish alerts.
    Nats(commands::auth::AuthArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let Startup::Run(config, _telemetry) = aml_runtime::start("aml", &cli.common)? else {
        return Ok(());
    };
    match cli.command {
        Some(Command::Setup) => commands::setup::run(&config).await,
        Some(Command::Generate(args)) => commands::dataset::generate(&config, &args).await,
        Some(Command::Validate(args)) => commands::dataset::validate(&config, &args).await,
        Some(Command::Judge(args)) => commands::judge::run(&config, &args).await,
        Some(Command::Train(args)) => commands::train::run(&config, &args).await,
        Some(Command::Plan(args)) => commands::plan::run(&args),
        Some(Command::Auth(AuthCommand::Nats(args))) => commands::auth::run(&args),
        Some(Command::Dlq(args)) => commands::dlq::run(&config, &args).await,
        Some(Command::Model(command)) => commands::model::run(&config, command).await,
        Some(Command::Alerts(AlertsCommand::Push(args))) => {
            commands::alerts::push(&config, &args).await
        }
        Some(Command::Batch(BatchCommand::Run(args))) => {
            commands::batch::run(&config, &args).await.map(|_| ())
        }
        Some(Command::Batch(BatchCommand::Policy)) => {
            print!("{}", aml_core::policy::DEFAULT_POLICY);
            Ok(())
        }
        Some(Command::Alerts(AlertsCommand::Synth(args))) => commands::alerts::synth(&args),
        Some(Command::Request(command)) => commands::request::run(&config, &command).await,
        Some(Command::Score(args)) => commands::score::run(&args).await,
        Some(Command::Prescreen(args)) => commands::prescreen::run(&args),
        Some(Command::Calibrate(args)) => commands::calibrate::run(&args),
        Some(Command::Summary(args)) => commands::summary::run(&config, &args).await,
        Some(Command::Retention(args)) => commands::retention::run(&config, &args).await,
        None => {
            use clap::CommandFactory;
            Cli::command().print_help()?;
            Ok(())
        }
    }
}
