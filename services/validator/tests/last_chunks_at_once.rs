//! The last chunks of a run handled at once (as a runner with concurrency does) all find the
//! run complete; the dataset is built and announced once, not once per chunk.

use std::time::Duration;

use aml_bus::topology::subjects;
use aml_bus::{Delivery, Handler, Publisher, Topology};
use aml_core::Difficulty;
use aml_dataset::ValidatorSettings;
use aml_integration_tests::NatsServer;
use aml_proto::v1::{self, CandidateChunk};
use aml_storage::{S3Options, Storage};
use aml_synth::{Synthesizer, generate_tier};
use aml_validator::ValidateHandler;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_run_whose_chunks_arrive_together_is_built_once() {
    let nats = NatsServer::start().expect("nats-server");
    let client = nats.connect().await.expect("connects");
    let topology = Topology::new(client.clone());
    topology.ensure_streams().await.expect("streams");
    let mut ready = client
        .subscribe(subjects::dataset_ready("run-1"))
        .await
        .expect("subscribe");
    client.flush().await.expect("flush");
    let dir = tempfile::tempdir().expect("storage");
    let storage = Storage::open(
        &format!("file://{}", dir.path().display()),
        &S3Options::default(),
    )
    .expect("storage");
    let handler = ValidateHandler::new(
        storage,
        Publisher::new(topology.jetstream().clone()),
        ValidatorSettings::default(),
    );
    let synthesizer = Synthesizer::default();
    let chunks: Vec<CandidateChunk> = Difficulty::ALL
        .iter()
        .enumerate()
        .map(|(index, tier)| CandidateChunk {
            run_id: "run-1".into(),
            tier: v1::Difficulty::from(*tier) as i32,
            chunk: index as u32,
            total_chunks: 3,
            samples: generate_tier(&synthesizer, *tier, 60, 5)
                .iter()
                .map(v1::Sample::from)
                .collect(),
            seed: 5,
        })
        .collect();
    let handled = futures::future::join_all(chunks.into_iter().map(|chunk| {
        handler.handle(Delivery {
            message: chunk,
            subject: subjects::VALIDATE.into(),
            delivered: 1,
            stream_sequence: 1,
            shutdown: CancellationToken::new(),
        })
    }))
    .await;
    assert!(handled.iter().all(Result::is_ok), "{handled:?}");

    let mut announced = 0;
    while tokio::time::timeout(Duration::from_secs(2), ready.next())
        .await
        .ok()
        .flatten()
        .is_some()
    {
        announced += 1;
    }
    assert_eq!(announced, 1, "one build, one DatasetReady");
}
