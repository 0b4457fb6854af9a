//! Shutting a service down mid-job against a real JetStream server: the runner stops taking
//! work at once; a handler that watches `Delivery::shutdown` stops (a checkpoint, in the
//! trainer) and its message is handed back; one that does not is stopped when
//! `shutdown_grace` is over and its message handed back too. Either way the runner returns
//! within the grace, and the next instance gets the job at once, not after the ack wait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aml_bus::topology::subjects;
use aml_bus::{
    ConsumerSpec, Delivery, Handler, HandlerError, Publisher, Runner, RunnerSettings, Topology,
};
use aml_integration_tests::{NatsServer, job_id, scoring_job};
use aml_proto::v1::ScoringJob;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A long job: tells `started`, then either stops when the service does (`cooperative`)
/// or works for a minute regardless.
struct LongJob {
    started: mpsc::UnboundedSender<i64>,
    cooperative: bool,
}

impl Handler<ScoringJob> for LongJob {
    async fn handle(&self, delivery: Delivery<ScoringJob>) -> Result<(), HandlerError> {
        let _ = self.started.send(delivery.delivered);
        if self.cooperative {
            delivery.shutdown.cancelled().await;
            return Err(HandlerError::transient("stopping: checkpointed at step 3"));
        }
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    }
}

/// Finishes at once, telling which delivery it was.
struct QuickJob(mpsc::UnboundedSender<i64>);

impl Handler<ScoringJob> for QuickJob {
    async fn handle(&self, delivery: Delivery<ScoringJob>) -> Result<(), HandlerError> {
        let _ = self.0.send(delivery.delivered);
        Ok(())
    }
}

fn settings(grace: Duration) -> RunnerSettings {
    RunnerSettings {
        concurrency: 1,
        ack_wait: Duration::from_secs(30),
        nak_delay: Duration::from_secs(30),
        max_deliveries: 1,
        fetch_expiry: Duration::from_millis(200),
        shutdown_grace: grace,
    }
}

async fn stop_mid_job_then_resume(cooperative: bool) -> Duration {
    let nats = NatsServer::start().expect("nats-server");
    let topology = Topology::new(nats.connect().await.expect("connects"));
    topology.ensure_streams().await.expect("streams");
    let job = scoring_job("batch", 0, 64);
    Publisher::new(topology.jetstream().clone())
        .publish(subjects::SCORE, &job, Some(&job_id(&job)))
        .await
        .expect("published");

    let grace = Duration::from_secs(2);
    let (started, mut first) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let runner = Runner::new(
        topology.clone(),
        ConsumerSpec::inference_worker(),
        settings(grace),
    );
    let handler = Arc::new(LongJob {
        started,
        cooperative,
    });
    let running = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { runner.run::<ScoringJob, _>(handler, shutdown).await }
    });
    assert_eq!(first.recv().await, Some(1), "the job started");
    let asked = Instant::now();
    shutdown.cancel();
    let stats = running.await.expect("joined").expect("runner ran");
    let stopped_in = asked.elapsed();
    assert_eq!(stats.released, 1, "{stats:?}");
    assert_eq!(
        (stats.acked, stats.nacked, stats.dead_lettered),
        (0, 0, 0),
        "handed back, not failed: max_deliveries 1 would have dead-lettered a failure"
    );

    let (told, mut second) = mpsc::unbounded_channel();
    let next = Runner::new(
        topology.clone(),
        ConsumerSpec::inference_worker(),
        settings(grace),
    );
    let done = CancellationToken::new();
    let resumed = tokio::spawn({
        let done = done.clone();
        async move {
            next.run::<ScoringJob, _>(Arc::new(QuickJob(told)), done)
                .await
        }
    });
    let delivered = tokio::time::timeout(Duration::from_secs(10), second.recv())
        .await
        .expect("the next instance gets the job well before the 30 s ack wait");
    assert_eq!(delivered, Some(2));
    done.cancel();
    let stats = resumed.await.expect("joined").expect("runner ran");
    assert_eq!(stats.acked, 1);
    stopped_in
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_watching_shutdown_stops_at_once_and_its_job_is_handed_back() {
    let stopped_in = stop_mid_job_then_resume(true).await;
    assert!(stopped_in < Duration::from_secs(1), "{stopped_in:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_ignoring_shutdown_is_stopped_after_the_grace() {
    let stopped_in = stop_mid_job_then_resume(false).await;
    assert!(
        stopped_in >= Duration::from_secs(2) && stopped_in < Duration::from_secs(4),
        "{stopped_in:?}"
    );
}
