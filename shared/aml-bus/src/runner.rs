//! The pull-consumer runner every service runs its handler under.
//!
//! At-least-once in, idempotent out: a message is acked (and the ack confirmed by the
//! server) only after the handler returned, that is after its output is durably written.
//! Handlers must key their outputs so that a redelivery overwrites instead of duplicating.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use aml_proto::Validate;
use aml_runtime::config::BusConfig;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::dlq::dead_letter;
use crate::metrics::{Counters, RunnerMetrics};
use crate::topology::{ConsumerSpec, Topology};
use crate::trace::extract_context;
use crate::{HandlerError, Result};

/// Most messages asked for in one pull request.
const MAX_FETCH: usize = 256;

/// A decoded, validated message handed to a [`Handler`].
#[derive(Debug, Clone)]
pub struct Delivery<M> {
    /// The message.
    pub message: M,
    /// The subject it was published on.
    pub subject: String,
    /// 1 on first delivery, more on redeliveries.
    pub delivered: i64,
    /// Its sequence number in the stream.
    pub stream_sequence: u64,
    /// Cancelled when the service is stopping: a long handler checkpoints what it has and
    /// returns a transient error, and the message is handed back for another instance (or
    /// this one, restarted) to resume. Handlers still running `bus.shutdown_grace_secs`
    /// after it fires are stopped and their messages handed back.
    pub shutdown: CancellationToken,
}

/// Handles one message type; returning `Ok` means the output is durable and the message may be acked.
pub trait Handler<M>: Send + Sync + 'static {
    /// Handles one delivery.
    fn handle(
        &self,
        delivery: Delivery<M>,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// The handler's own Prometheus text for the service's `/metrics` (none by default).
    fn metrics(&self) -> String {
        String::new()
    }
}

/// How a [`Runner`] pulls and acknowledges.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerSettings {
    /// Handlers running at once.
    pub concurrency: usize,
    /// How long the server waits for an ack before redelivering.
    pub ack_wait: Duration,
    /// Delay before a transiently failed message is redelivered.
    pub nak_delay: Duration,
    /// Deliveries after which a still-failing message goes to the DLQ.
    pub max_deliveries: u32,
    /// How long one pull request waits for messages.
    pub fetch_expiry: Duration,
    /// How long running handlers get to stop after shutdown is asked for.
    pub shutdown_grace: Duration,
}

impl From<&BusConfig> for RunnerSettings {
    fn from(config: &BusConfig) -> Self {
        RunnerSettings {
            concurrency: config.concurrency.max(1),
            ack_wait: Duration::from_secs(config.ack_wait_secs.max(1)),
            nak_delay: Duration::from_millis(config.nak_delay_ms),
            max_deliveries: config.max_deliveries.max(1),
            fetch_expiry: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
        }
    }
}

impl RunnerSettings {
    fn progress_interval(&self) -> Duration {
        (self.ack_wait / 3).max(Duration::from_millis(100))
    }
}

/// What a runner did, counted over its lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunnerStats {
    /// Messages handled and acked.
    pub acked: u64,
    /// Transient failures nak'ed for a later redelivery.
    pub nacked: u64,
    /// Messages sent to the DLQ and terminated.
    pub dead_lettered: u64,
    /// Fetched messages handed back unhandled at shutdown.
    pub released: u64,
}

struct Shared<H> {
    handler: Arc<H>,
    jetstream: jetstream::Context,
    settings: RunnerSettings,
    counters: Arc<Counters>,
    /// The service is stopping (handlers see it as [`Delivery::shutdown`]).
    shutdown: CancellationToken,
    /// The grace is over: handlers still running are stopped.
    stop_now: CancellationToken,
}

/// Runs a [`Handler`] over a durable pull consumer until shut down.
#[derive(Debug, Clone)]
pub struct Runner {
    topology: Topology,
    spec: ConsumerSpec,
    settings: RunnerSettings,
    counters: Arc<Counters>,
}

impl Runner {
    /// A runner for one consumer.
    pub fn new(topology: Topology, spec: ConsumerSpec, settings: RunnerSettings) -> Self {
        Runner {
            topology,
            spec,
            settings,
            counters: Arc::new(Counters::default()),
        }
    }

    /// The runner's counters, for a metrics endpoint.
    pub fn metrics(&self) -> RunnerMetrics {
        RunnerMetrics {
            counters: Arc::clone(&self.counters),
            consumer: self.spec.durable.clone(),
        }
    }

    /// Pulls, decodes, validates and handles messages until `shutdown` is cancelled, then
    /// stops fetching, hands back fetched-but-unstarted messages and gives in-flight handlers
    /// the shutdown grace to finish (or checkpoint and stop); the messages of those still
    /// running after it are handed back. A pull that fails (the server restarted, the
    /// consumer is gone) is retried with the consumer found or created again.
    pub async fn run<M, H>(
        &self,
        handler: Arc<H>,
        shutdown: CancellationToken,
    ) -> Result<RunnerStats>
    where
        M: prost::Message + Default + Validate + Send + 'static,
        H: Handler<M>,
    {
        let mut consumer = self
            .topology
            .consumer(&self.spec, self.settings.ack_wait)
            .await?;
        let shared = Arc::new(Shared {
            handler,
            jetstream: self.topology.jetstream().clone(),
            settings: self.settings.clone(),
            counters: Arc::clone(&self.counters),
            shutdown: shutdown.clone(),
            stop_now: CancellationToken::new(),
        });
        let semaphore = Arc::new(Semaphore::new(self.settings.concurrency));
        let mut tasks = JoinSet::new();
        info!(consumer = %self.spec.durable, concurrency = self.settings.concurrency, "runner started");
        'fetching: loop {
            let first = tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'fetching,
                permit = Arc::clone(&semaphore).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break 'fetching,
                },
            };
            let mut permits = vec![first];
            while permits.len() < MAX_FETCH {
                match Arc::clone(&semaphore).try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            let batch = consumer
                .batch()
                .max_messages(permits.len())
                .expires(self.settings.fetch_expiry)
                .messages()
                .await;
            let mut batch = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    warn!(consumer = %self.spec.durable, %error, "pull request failed");
                    tokio::select! {
                        () = shutdown.cancelled() => break 'fetching,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    match self
                        .topology
                        .consumer(&self.spec, self.settings.ack_wait)
                        .await
                    {
                        Ok(again) => consumer = again,
                        Err(error) => {
                            warn!(consumer = %self.spec.durable, %error, "consumer not found or created yet")
                        }
                    }
                    continue 'fetching;
                }
            };
            loop {
                let next = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => {
                        release_unstarted(&mut batch, &shared.counters).await;
                        break 'fetching;
                    }
                    next = batch.next() => next,
                };
                match next {
                    None => break,
                    Some(Err(error)) => {
                        debug!(consumer = %self.spec.durable, %error, "pull request ended");
                        break;
                    }
                    Some(Ok(message)) => match permits.pop() {
                        Some(permit) => {
                            tasks.spawn(process::<M, H>(message, Arc::clone(&shared), permit));
                        }
                        None => release(&message, &shared.counters).await,
                    },
                }
            }
            while let Some(finished) = tasks.try_join_next() {
                report_panic(finished);
            }
        }
        info!(consumer = %self.spec.durable, in_flight = tasks.len(), "runner draining");
        let drained = tokio::time::timeout(self.settings.shutdown_grace, async {
            while let Some(finished) = tasks.join_next().await {
                report_panic(finished);
            }
        })
        .await;
        if drained.is_err() {
            warn!(consumer = %self.spec.durable, in_flight = tasks.len(), "shutdown grace over: handing back unfinished messages");
            shared.stop_now.cancel();
            while let Some(finished) = tasks.join_next().await {
                report_panic(finished);
            }
        }
        let stats = shared.counters.snapshot();
        info!(consumer = %self.spec.durable, acked = stats.acked, dead_lettered = stats.dead_lettered, "runner stopped");
        Ok(stats)
    }
}

fn report_panic(finished: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished {
        warn!(%error, "handler task failed; its message will be redelivered");
    }
}

async fn release(message: &jetstream::Message, counters: &Counters) {
    if let Err(error) = message.ack_with(AckKind::Nak(None)).await {
        warn!(%error, "could not hand back a message; it is redelivered after the ack wait");
    }
    counters.released.fetch_add(1, Ordering::Relaxed);
}

async fn release_unstarted(batch: &mut jetstream::consumer::pull::Batch, counters: &Counters) {
    while let Some(Ok(message)) = batch.next().await {
        release(&message, counters).await;
    }
}

async fn process<M, H>(
    message: jetstream::Message,
    shared: Arc<Shared<H>>,
    permit: OwnedSemaphorePermit,
) where
    M: prost::Message + Default + Validate + Send + 'static,
    H: Handler<M>,
{
    let (delivered, stream_sequence) = message
        .info()
        .map(|info| (info.delivered, info.stream_sequence))
        .unwrap_or((1, 0));
    let subject = message.subject.to_string();
    let decoded = match M::decode(message.payload.clone()) {
        Ok(decoded) => decoded,
        Err(error) => {
            send_to_dlq(
                &message,
                &shared,
                delivered,
                &format!("undecodable payload: {error}"),
            )
            .await;
            return;
        }
    };
    if let Err(error) = decoded.validate() {
        send_to_dlq(
            &message,
            &shared,
            delivered,
            &format!("invalid message: {error}"),
        )
        .await;
        return;
    }
    let span = info_span!("aml.handle", subject = %subject, stream_sequence, delivered);
    if let Some(headers) = &message.headers
        && let Err(error) = span.set_parent(extract_context(headers))
    {
        debug!(%error, "trace context not attached");
    }
    let delivery = Delivery {
        message: decoded,
        subject,
        delivered,
        stream_sequence,
        shutdown: shared.shutdown.clone(),
    };
    let handling = shared.handler.handle(delivery).instrument(span.clone());
    let started = std::time::Instant::now();
    let outcome = tokio::select! {
        outcome = with_progress_acks(handling, &message, shared.settings.progress_interval()) => Some(outcome),
        () = shared.stop_now.cancelled() => None,
    };
    shared.counters.observe(started.elapsed());
    let _entered = span.enter();
    let Some(outcome) = outcome else {
        release(&message, &shared.counters).await;
        return;
    };
    match outcome {
        // Stopped by the shutdown, not failed: handed back at once, and a delivery that
        // hit the limit this way is not dead-lettered.
        Err(HandlerError::Transient(reason)) if shared.shutdown.is_cancelled() => {
            info!(%reason, "handler stopped at shutdown; handing its message back");
            release(&message, &shared.counters).await;
        }
        Ok(()) => match message.double_ack().await {
            Ok(()) => {
                shared.counters.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => warn!(%error, "ack not confirmed; the message may be redelivered"),
        },
        Err(HandlerError::Transient(reason))
            if delivered >= i64::from(shared.settings.max_deliveries) =>
        {
            let reason = format!("gave up after {delivered} deliveries: {reason}");
            send_to_dlq(&message, &shared, delivered, &reason).await;
        }
        Err(HandlerError::Transient(reason)) => {
            warn!(%reason, delivered, "transient failure; redelivering later");
            let nak = AckKind::Nak(Some(shared.settings.nak_delay));
            if let Err(error) = message.ack_with(nak).await {
                warn!(%error, "nak failed; the message is redelivered after the ack wait");
            }
            shared.counters.nacked.fetch_add(1, Ordering::Relaxed);
        }
        Err(HandlerError::Invalid(reason)) => {
            send_to_dlq(
                &message,
                &shared,
                delivered,
                &format!("invalid message: {reason}"),
            )
            .await;
        }
    }
    drop(permit);
}

async fn with_progress_acks<F>(
    handling: F,
    message: &jetstream::Message,
    interval: Duration,
) -> F::Output
where
    F: Future,
{
    let mut handling = pin!(handling);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    loop {
        tokio::select! {
            outcome = &mut handling => return outcome,
            _ = ticker.tick() => {
                if let Err(error) = message.ack_with(AckKind::Progress).await {
                    debug!(%error, "progress ack failed");
                }
            }
        }
    }
}

async fn send_to_dlq<H>(
    message: &jetstream::Message,
    shared: &Shared<H>,
    delivered: i64,
    reason: &str,
) {
    warn!(subject = %message.subject, %reason, "sending message to the DLQ");
    let stored = dead_letter(
        &shared.jetstream,
        &message.subject,
        message.headers.as_ref(),
        message.payload.clone(),
        delivered,
        reason,
    )
    .await;
    match stored {
        Ok(()) => {
            if let Err(error) = message.double_ack_with(AckKind::Term).await {
                warn!(%error, "terminate not confirmed; the message may reach the DLQ twice");
            }
            shared
                .counters
                .dead_lettered
                .fetch_add(1, Ordering::Relaxed);
        }
        Err(error) => {
            warn!(%error, "DLQ publish failed; redelivering later");
            if let Err(error) = message
                .ack_with(AckKind::Nak(Some(shared.settings.nak_delay)))
                .await
            {
                warn!(%error, "nak failed; the message is redelivered after the ack wait");
            }
        }
    }
}
