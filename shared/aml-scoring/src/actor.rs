//! The local engine behind one owner thread: the model never leaves it, callers hold a
//! cloneable [`EngineHandle`] and send it commands, each with a oneshot reply (the shape of
//! text-generation-inference's router). Shards of several jobs queue their batches on the
//! same thread instead of contending for a lock.

use std::path::PathBuf;

use aml_model::LoadOptions;
use aml_proto::v1::Alert;
use tokio::sync::{mpsc, oneshot};

use crate::{LabelProbabilities, ScoringEngine, ScoringError};

/// What the owner thread can be asked.
enum Command {
    Score {
        policy: String,
        alerts: Vec<Alert>,
        reply: oneshot::Sender<Result<Vec<LabelProbabilities>, ScoringError>>,
    },
    Rationales {
        policy: String,
        alerts: Vec<Alert>,
        max_new_tokens: i64,
        reply: oneshot::Sender<Result<Vec<String>, ScoringError>>,
    },
    PrefixEncodes {
        reply: oneshot::Sender<u64>,
    },
}

/// A cloneable handle on an engine that lives on its own thread.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    commands: mpsc::Sender<Command>,
}

/// Where to load an engine from.
#[derive(Debug, Clone)]
pub struct EngineSource {
    /// The model folder (Hugging Face layout).
    pub model_dir: PathBuf,
    /// A PEFT adapter folder, if any.
    pub adapter_dir: Option<PathBuf>,
    /// Device and dtype.
    pub options: LoadOptions,
    /// Bytes the encoded prefixes may take together.
    pub prefix_budget_bytes: i64,
}

fn gone() -> ScoringError {
    ScoringError::EngineStopped("its thread has stopped".to_owned())
}

impl EngineHandle {
    /// Loads the engine on a new thread, which then serves commands until every handle is
    /// dropped; a load failure is returned here.
    pub async fn load(source: EngineSource) -> Result<Self, ScoringError> {
        let (loaded, loading) = oneshot::channel();
        let (commands, queue) = mpsc::channel(64);
        std::thread::Builder::new()
            .name("scoring-engine".to_owned())
            .spawn(move || {
                let engine = ScoringEngine::load(
                    &source.model_dir,
                    source.adapter_dir.as_deref(),
                    source.options,
                )
                .map(|engine| engine.with_prefix_budget(source.prefix_budget_bytes));
                match engine {
                    Ok(engine) => {
                        let _ = loaded.send(Ok(()));
                        serve(engine, queue);
                    }
                    Err(error) => {
                        let _ = loaded.send(Err(error));
                    }
                }
            })
            .map_err(|error| {
                ScoringError::EngineStopped(format!("cannot start its thread: {error}"))
            })?;
        loading.await.map_err(|_| gone())??;
        Ok(EngineHandle { commands })
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, ScoringError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())
    }

    /// Label probabilities of `alerts` behind `policy`, in one forward pass.
    pub async fn score(
        &self,
        policy: &str,
        alerts: &[Alert],
    ) -> Result<Vec<LabelProbabilities>, ScoringError> {
        self.ask(|reply| Command::Score {
            policy: policy.to_owned(),
            alerts: alerts.to_vec(),
            reply,
        })
        .await?
    }

    /// Rationales of `alerts` behind `policy`, in one batched generation.
    pub async fn rationales(
        &self,
        policy: &str,
        alerts: &[Alert],
        max_new_tokens: i64,
    ) -> Result<Vec<String>, ScoringError> {
        self.ask(|reply| Command::Rationales {
            policy: policy.to_owned(),
            alerts: alerts.to_vec(),
            max_new_tokens,
            reply,
        })
        .await?
    }

    /// How many prefixes the engine has encoded (each distinct policy once while cached).
    pub async fn prefix_encodes(&self) -> Result<u64, ScoringError> {
        self.ask(|reply| Command::PrefixEncodes { reply }).await
    }
}

/// Runs commands on `engine` until every handle is gone.
fn serve(mut engine: ScoringEngine, mut queue: mpsc::Receiver<Command>) {
    while let Some(command) = queue.blocking_recv() {
        match command {
            Command::Score {
                policy,
                alerts,
                reply,
            } => {
                let size = alerts.len();
                let _ = reply.send(engine.score(&policy, &alerts, size));
            }
            Command::Rationales {
                policy,
                alerts,
                max_new_tokens,
                reply,
            } => {
                let _ = reply.send(engine.rationales(&policy, &alerts, max_new_tokens));
            }
            Command::PrefixEncodes { reply } => {
                let _ = reply.send(engine.prefix_encodes());
            }
        }
    }
}
