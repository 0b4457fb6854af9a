//! Following a batch: publish a ScoringJob for every shard not completed yet, collect the
//! ShardCompleted events (the first per shard counts), publish again a shard whose job has
//! gone unanswered for the shard timeout, until every shard is done or the batch times out.
//! A ShardProgress from the worker holding a shard restarts its timeout: a long shard is not
//! published again while it is being worked on.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aml_batch::BatchManifest;
use aml_bus::Publisher;
use aml_bus::topology::subjects;
use aml_proto::v1::{ScoringJob, ShardCompleted, ShardProgress};
use aml_storage::Storage;
use async_nats::jetstream;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// What following a batch gave.
#[derive(Debug, Clone, Default)]
pub struct FollowOutcome {
    /// The first completion of each shard.
    pub completions: BTreeMap<u32, ShardCompleted>,
    /// Jobs published again after a timeout.
    pub republished: u32,
}

/// How long to wait.
#[derive(Debug, Clone, Copy)]
pub struct FollowTimeouts {
    /// A shard unanswered this long is published again.
    pub shard: Duration,
    /// Give up on the batch after this long.
    pub batch: Duration,
}

fn job_of(storage: &Storage, manifest: &BatchManifest, shard: u32) -> ScoringJob {
    let plan = &manifest.shards[shard as usize];
    let scoring = manifest.scoring_of(&plan.bank);
    ScoringJob {
        batch_id: manifest.batch_id.clone(),
        shard,
        shard_url: storage.url_of(&plan.shard_key),
        prefix_url: storage.url_of(&scoring.prefix_key),
        model_url: manifest.model_url.clone(),
        adapter_url: scoring.adapter_url,
        tau: scoring.tau,
        rationale: manifest.rationale,
        alert_count: plan.alerts,
        results_url: storage.url_of(&plan.results_key),
    }
}

/// Takes one event of the batch: a ShardProgress restarts its shard's timeout, the first
/// ShardCompleted of a shard is its completion.
fn take_event(
    message: &async_nats::jetstream::Message,
    manifest: &BatchManifest,
    outcome: &mut FollowOutcome,
    published: &mut HashMap<u32, (Instant, u32)>,
) {
    let batch = &manifest.batch_id;
    if message.subject.as_str() == subjects::shard_progress(batch) {
        match ShardProgress::decode(message.payload.clone()) {
            Ok(progress) if progress.batch_id == *batch => {
                if let Some((at, _)) = published.get_mut(&progress.shard) {
                    *at = Instant::now();
                }
            }
            Ok(_) => {}
            Err(error) => warn!(batch = %batch, %error, "undecodable ShardProgress"),
        }
        return;
    }
    match ShardCompleted::decode(message.payload.clone()) {
        Ok(done) if done.batch_id != *batch => {}
        Ok(done) if (done.shard as usize) < manifest.shards.len() => {
            outcome.completions.entry(done.shard).or_insert(done);
        }
        Ok(done) => warn!(batch = %batch, shard = done.shard, "completion of an unknown shard"),
        Err(error) => warn!(batch = %batch, %error, "undecodable ShardCompleted"),
    }
}

/// Publishes the batch's jobs and waits for its shards, as described in the module docs.
/// Stops within half a second of `shutdown` with an error: the batch is resumed from its
/// manifest by the scheduler that gets its request next.
pub async fn follow_batch(
    jetstream: &jetstream::Context,
    publisher: &Publisher,
    storage: &Storage,
    manifest: &BatchManifest,
    timeouts: FollowTimeouts,
    shutdown: &CancellationToken,
) -> Result<FollowOutcome, String> {
    let batch = &manifest.batch_id;
    let mut events = aml_bus::EventFollower::start(jetstream, &subjects::shard_events(batch))
        .await
        .map_err(|e| e.to_string())?;
    let mut outcome = FollowOutcome::default();
    let mut published: HashMap<u32, (Instant, u32)> = HashMap::new();
    let started = Instant::now();
    let mut caught_up = false;
    while outcome.completions.len() < manifest.shards.len() && started.elapsed() < timeouts.batch {
        if shutdown.is_cancelled() {
            return Err(format!(
                "stopping with {} of {} shards done; the batch resumes from its manifest",
                outcome.completions.len(),
                manifest.shards.len()
            ));
        }
        if caught_up {
            for plan in &manifest.shards {
                if outcome.completions.contains_key(&plan.shard) {
                    continue;
                }
                let attempt = match published.get(&plan.shard) {
                    None => 0,
                    Some((at, attempt)) if at.elapsed() >= timeouts.shard => attempt + 1,
                    Some(_) => continue,
                };
                if attempt > 0 {
                    warn!(batch = %batch, shard = plan.shard, attempt, "shard timed out; publishing it again");
                    outcome.republished += 1;
                }
                publisher
                    .publish(
                        subjects::SCORE,
                        &job_of(storage, manifest, plan.shard),
                        Some(&format!("{batch}.{}.{attempt}", plan.shard)),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                published.insert(plan.shard, (Instant::now(), attempt));
            }
        }
        let wait = if caught_up {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(300)
        };
        match tokio::time::timeout(wait, events.next()).await {
            Ok(message) => {
                take_event(&message, manifest, &mut outcome, &mut published);
                // Everything already delivered is read before any shard's timeout is judged:
                // after a stall, a queued ShardProgress must count before the clock does.
                while let Ok(message) = tokio::time::timeout(Duration::ZERO, events.next()).await {
                    take_event(&message, manifest, &mut outcome, &mut published);
                }
            }
            Err(_) => caught_up = true,
        }
    }
    info!(
        batch = %batch,
        completed = outcome.completions.len(),
        shards = manifest.shards.len(),
        republished = outcome.republished,
        "batch followed"
    );
    Ok(outcome)
}
