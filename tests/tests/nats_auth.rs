//! Against a real nats-server started with the generated users: a bank publishes only its
//! own alerts and reads nothing; a worker cannot publish alerts but can pull its jobs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aml_bus::auth::{NatsUser, Users, server_config};
use aml_bus::topology::{ALERTS_STREAM, EVENTS_STREAM, JOBS_STREAM, subjects};
use aml_bus::{ConsumerSpec, Topology};
use aml_integration_tests::{NatsServer, wait_until};
use futures::StreamExt;

fn user(name: &str) -> NatsUser {
    NatsUser {
        name: name.to_owned(),
        password: format!("{name}-pw-7f3a"),
    }
}

async fn connect(
    nats: &NatsServer,
    user: &NatsUser,
    errors: Arc<Mutex<Vec<String>>>,
) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .user_and_password(user.name.clone(), user.password.clone())
        .event_callback(move |event| {
            let errors = Arc::clone(&errors);
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    errors.lock().expect("lock").push(error.to_string());
                }
            }
        })
        .connect(nats.url())
        .await
        .expect("connects with its credentials")
}

async fn violation(errors: &Arc<Mutex<Vec<String>>>, fragment: &str) -> bool {
    wait_until(Duration::from_secs(3), || {
        let found = errors
            .lock()
            .expect("lock")
            .iter()
            .any(|error| error.contains(fragment));
        async move { found }
    })
    .await
}

#[tokio::test]
async fn banks_and_workers_are_confined_to_their_subjects() {
    let users = Users {
        services: user("services"),
        worker: user("worker"),
        banks: vec![
            ("alpha".to_owned(), user("bank-alpha")),
            ("beta".to_owned(), user("bank-beta")),
        ],
    };
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("auth.conf");
    std::fs::write(&config, server_config(&users)).expect("config");
    let nats = NatsServer::start_with_config(Some(config)).expect("nats-server with auth");

    let none = Arc::new(Mutex::new(Vec::new()));
    let services = Topology::new(connect(&nats, &users.services, Arc::clone(&none)).await);
    services.ensure_streams().await.expect("streams");
    services
        .consumer(&ConsumerSpec::inference_worker(), Duration::from_secs(5))
        .await
        .expect("consumer");

    let bank_errors = Arc::new(Mutex::new(Vec::new()));
    let bank = connect(&nats, &users.banks[0].1, Arc::clone(&bank_errors)).await;
    let jetstream = async_nats::jetstream::new(bank.clone());
    let ack = jetstream
        .publish("aml.alerts.alpha", "alert".into())
        .await
        .expect("sent")
        .await;
    assert!(ack.is_ok(), "a bank publishes its own alerts: {ack:?}");
    bank.publish("aml.alerts.beta", "forged".into())
        .await
        .expect("sent");
    bank.flush().await.expect("flush");
    assert!(
        violation(&bank_errors, "aml.alerts.beta").await,
        "bank alpha cannot publish to beta: {:?}",
        bank_errors.lock().unwrap()
    );
    let mut snooping = bank.subscribe("aml.events.>").await.expect("request sent");
    assert!(
        violation(&bank_errors, "aml.events.>").await,
        "bank alpha cannot read events"
    );
    bank.subscribe(subjects::SCORE).await.expect("request sent");
    assert!(
        violation(&bank_errors, subjects::SCORE).await,
        "bank alpha cannot read jobs"
    );
    services
        .jetstream()
        .publish("aml.events.batch_report", "report".into())
        .await
        .expect("sent")
        .await
        .expect("stored");
    let leaked = tokio::time::timeout(Duration::from_millis(300), snooping.next()).await;
    assert!(!matches!(leaked, Ok(Some(_))), "no event reached the bank");

    let worker_errors = Arc::new(Mutex::new(Vec::new()));
    let worker = connect(&nats, &users.worker, Arc::clone(&worker_errors)).await;
    worker
        .publish("aml.alerts.alpha", "forged".into())
        .await
        .expect("sent");
    worker.flush().await.expect("flush");
    assert!(
        violation(&worker_errors, "aml.alerts.alpha").await,
        "a worker cannot publish alerts"
    );
    let completed = subjects::shard_completed("batch-1");
    worker
        .publish(completed.clone(), "done".into())
        .await
        .expect("sent");
    worker.flush().await.expect("flush");
    let stored = services
        .jetstream()
        .get_stream(EVENTS_STREAM)
        .await
        .expect("EVENTS")
        .get_last_raw_message_by_subject(&completed)
        .await;
    assert!(
        stored.is_ok_and(|message| message.payload.as_ref() == b"done"),
        "a worker's ShardCompleted on {completed} reaches the EVENTS stream the scheduler follows: {:?}",
        worker_errors.lock().expect("lock")
    );
    services
        .jetstream()
        .publish(subjects::SCORE, "job".into())
        .await
        .expect("sent")
        .await
        .expect("stored");
    let consumer = Topology::new(worker)
        .jetstream()
        .get_stream(JOBS_STREAM)
        .await
        .expect("stream info")
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>("inference-worker")
        .await
        .expect("consumer info");
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .messages()
        .await
        .expect("fetch");
    let job = batch.next().await.expect("a job").expect("message");
    job.ack().await.expect("ack");
    assert_eq!(job.payload.as_ref(), b"job");

    let mut alerts = services
        .jetstream()
        .get_stream(ALERTS_STREAM)
        .await
        .expect("alerts");
    assert_eq!(
        alerts.info().await.expect("info").state.messages,
        1,
        "only the bank's own alert was stored"
    );
}
