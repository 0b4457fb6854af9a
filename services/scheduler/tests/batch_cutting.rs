//! Cutting batches against a real NATS server and file storage: an alert id that an earlier
//! batch took is dropped even when the stream's 24-hour dedup window has passed (found in the
//! hashed dedup indexes), a cut that crashed before its manifest takes nothing, a batch resumed after a crash between its
//! manifest and the cursors still moves the cursors, so no alert lands in two batches, a
//! recreated ALERTS stream (sequences from 1 again) loses no alert, and a batch whose model
//! or adapter the store does not hold is refused before anything is taken.

use std::collections::BTreeSet;

use aml_batch::dedup::{decode_index, encode_index, id_hash};
use aml_batch::{BatchManifest, decode_shard, layout};
use aml_bus::topology::{ALERTS_STREAM, subjects};
use aml_bus::{Publisher, Topology};
use aml_core::rng::SeededRng;
use aml_core::{Difficulty, Label};
use aml_integration_tests::NatsServer;
use aml_proto::v1::Alert;
use aml_runtime::ScoringConfig;
use aml_scheduler::cut::{commit_cursors, cut_batch};
use aml_storage::{Fingerprinter, Storage};
use aml_synth::Synthesizer;

fn alert(bank: &str, id: &str, seed: u64) -> Alert {
    let mut rng = SeededRng::new(seed);
    let mut alert = Synthesizer::default()
        .case(&mut rng, Difficulty::Easy, Label::Match)
        .alert;
    alert.bank = bank.to_owned();
    alert.alert_id = id.to_owned();
    alert
}

/// Publishes alerts; `message_id: false` publishes without `Nats-Msg-Id`, as a repeat sent
/// after the stream's dedup window looks to the stream.
async fn push(publisher: &Publisher, bank: &str, ids: &[String], message_id: bool) {
    for (index, id) in ids.iter().enumerate() {
        let alert = alert(bank, id, index as u64);
        let message_id = message_id.then_some(id.as_str());
        publisher
            .publish(&subjects::alerts(bank), &alert, message_id)
            .await
            .expect("stored");
    }
}

/// A nats-server with the streams, its topology and a publisher.
async fn bus() -> (NatsServer, Topology, Publisher) {
    let nats = NatsServer::start().expect("nats-server");
    let topology = Topology::new(nats.connect().await.expect("connect"));
    topology.ensure_streams().await.expect("streams");
    let publisher = Publisher::new(topology.jetstream().clone());
    (nats, topology, publisher)
}

fn ids(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|index| format!("{prefix}-{index:03}")).collect()
}

async fn shard_ids(storage: &Storage, manifest: &BatchManifest) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for shard in &manifest.shards {
        let bytes = storage.get(&shard.shard_key).await.expect("shard");
        for alert in decode_shard(bytes).expect("decodes") {
            assert!(
                out.insert(alert.alert_id.clone()),
                "{} twice",
                alert.alert_id
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_alert_id_lands_in_two_batches() {
    let (_nats, topology, publisher) = bus().await;
    let jetstream = topology.jetstream().clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::open(
        &format!("file://{}", dir.path().display()),
        &Default::default(),
    )
    .unwrap();
    let config = ScoringConfig {
        banks: vec!["alpha".into(), "bravo".into()],
        shard_size: 8,
        ..Default::default()
    };
    let fingerprinter = Fingerprinter::default();
    let cut = |batch: &'static str| {
        let (jetstream, storage, config) = (&jetstream, &storage, &config);
        let fingerprinter = &fingerprinter;
        async move {
            cut_batch(
                jetstream,
                storage,
                fingerprinter,
                config,
                batch,
                &[],
                config.shard_size,
            )
            .await
            .expect("cut")
        }
    };

    push(&publisher, "alpha", &ids("alpha", 0..30), true).await;
    push(&publisher, "bravo", &ids("bravo", 0..10), true).await;
    let week1 = cut("week-1").await;
    commit_cursors(&storage, &week1).await.expect("cursors");
    assert_eq!(week1.banks["alpha"].alerts_in, 30);
    assert_eq!(week1.banks["bravo"].alerts_in, 10);
    assert_eq!(shard_ids(&storage, &week1).await.len(), 40);

    // A week later: ten alpha alerts come again (the stream's window is long past), five
    // are new, and one of the new ones is sent twice.
    let mut again = ids("alpha", 0..10);
    let new = ids("alpha-w2", 0..5);
    again.extend(new.iter().cloned());
    again.push(new[0].clone());
    push(&publisher, "alpha", &again, false).await;
    let week2 = cut("week-2").await;
    commit_cursors(&storage, &week2).await.expect("cursors");
    let alpha = &week2.banks["alpha"];
    assert_eq!(alpha.alerts_in, 5);
    assert_eq!(
        alpha.duplicates_dropped, 11,
        "10 from week 1, 1 within the batch"
    );
    assert!(!week2.banks.contains_key("bravo"), "bravo sent nothing new");
    assert_eq!(
        shard_ids(&storage, &week2).await,
        new.iter().cloned().collect::<BTreeSet<_>>()
    );
    let index_key = layout::dedup_index("alpha", "week-2", week2.created_unix_ms);
    let index = storage.get(&index_key).await.expect("dedup index");
    let hashes = decode_index(&index_key, &index).expect("decodes");
    let mut expected: Vec<_> = new.iter().map(|id| id_hash(id)).collect();
    expected.sort_unstable();
    assert_eq!(
        hashes, expected,
        "the week's index holds its five new ids, hashed"
    );

    // Week 3 is cut, then the scheduler dies before its cursors move; the redelivered
    // request resumes from the manifest, which moves them.
    push(&publisher, "alpha", &ids("alpha-w3", 0..3), true).await;
    let week3 = cut("week-3").await;
    assert_eq!(week3.banks["alpha"].alerts_in, 3);
    let resumed: BatchManifest = storage
        .get_json(&layout::manifest("week-3"))
        .await
        .expect("manifest");
    commit_cursors(&storage, &resumed).await.expect("cursors");

    // A cut that crashed before its manifest left a dedup index behind: it counts for
    // nothing, so the alert it names is taken by the next batch; an index that an earlier,
    // crashed cut of week 4 itself left is deleted when week 4 is cut.
    let stale = encode_index(vec![id_hash("alpha-w4-000")]);
    let crashed = layout::dedup_index("alpha", "crashed", week3.created_unix_ms);
    storage
        .put(&crashed, stale.clone())
        .await
        .expect("stale index");
    let own_orphan = layout::dedup_index("alpha", "week-4", week3.created_unix_ms + 1);
    storage.put(&own_orphan, stale).await.expect("orphan index");
    push(&publisher, "alpha", &ids("alpha-w4", 0..2), true).await;
    let week4 = cut("week-4").await;
    assert!(!storage.exists(&own_orphan).await.expect("exists"));
    assert!(
        storage
            .exists(&layout::dedup_index(
                "alpha",
                "week-4",
                week4.created_unix_ms
            ))
            .await
            .expect("exists")
    );
    commit_cursors(&storage, &week4).await.expect("cursors");
    let alpha = &week4.banks["alpha"];
    assert_eq!(alpha.alerts_in, 2);
    assert_eq!(
        alpha.duplicates_dropped, 0,
        "week 3's alerts were not read again"
    );
    assert_eq!(
        alpha.first_sequence,
        week3.banks["alpha"].last_sequence + 1,
        "the cursor moved past week 3 on resume"
    );

    // With the look-back switched off, only the stream's own window deduplicates.
    let forgetful = ScoringConfig {
        dedup_days: 0,
        ..config.clone()
    };
    push(&publisher, "bravo", &ids("bravo", 0..4), false).await;
    let week5 = cut_batch(
        &jetstream,
        &storage,
        &fingerprinter,
        &forgetful,
        "week-5",
        &[],
        8,
    )
    .await
    .expect("cut");
    assert_eq!(week5.banks["bravo"].alerts_in, 4);
    commit_cursors(&storage, &week5).await.expect("cursors");

    // The ALERTS stream is deleted and created again: its sequences start from 1, below the
    // stored cursors, and the next batches still take every new alert exactly once.
    jetstream
        .delete_stream(ALERTS_STREAM)
        .await
        .expect("stream deleted");
    topology.ensure_streams().await.expect("streams again");
    push(&publisher, "alpha", &ids("alpha-w6", 0..2), true).await;
    let week6 = cut("week-6").await;
    commit_cursors(&storage, &week6).await.expect("cursors");
    assert_eq!(week6.banks["alpha"].alerts_in, 2);
    assert_eq!(week6.banks["alpha"].first_sequence, 1);
    push(&publisher, "alpha", &ids("alpha-w7", 0..1), true).await;
    let week7 = cut("week-7").await;
    assert_eq!(week7.banks["alpha"].alerts_in, 1);
    assert_eq!(week7.banks["alpha"].duplicates_dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_model_or_adapter_is_not_in_the_store_is_refused_before_the_cut() {
    let (_nats, topology, publisher) = bus().await;
    let jetstream = topology.jetstream().clone();
    // A store whose URLs name its objects (as s3:// does); file:// URLs are local paths,
    // which may be the workers' own and are not checked.
    let storage = Storage::open("memory://", &Default::default()).unwrap();
    let config = ScoringConfig {
        model_url: storage.url_of("models/base"),
        adapter_url: storage.url_of("models/run-1/adapter"),
        shard_size: 8,
        ..Default::default()
    };
    let fingerprinter = Fingerprinter::default();
    let cut = |batch: &'static str| {
        let (jetstream, storage, config) = (&jetstream, &storage, &config);
        let fingerprinter = &fingerprinter;
        async move { cut_batch(jetstream, storage, fingerprinter, config, batch, &[], 8).await }
    };
    push(&publisher, "alpha", &ids("alpha", 0..5), true).await;

    let refused = cut("no-model").await.expect_err("refused").to_string();
    assert!(
        refused.contains("the model") && refused.contains("holds no objects"),
        "{refused}"
    );
    storage
        .put("models/base/config.json", "{}".into())
        .await
        .expect("put");
    let refused = cut("no-adapter").await.expect_err("refused").to_string();
    assert!(
        refused.contains("bank alpha's adapter") && refused.contains("holds no objects"),
        "{refused}"
    );
    assert!(
        !storage
            .exists(&layout::manifest("no-adapter"))
            .await
            .expect("exists"),
        "nothing was cut"
    );
    storage
        .put("models/run-1/adapter/adapter_config.json", "{}".into())
        .await
        .expect("put");
    let manifest = cut("both-there").await.expect("cut");
    assert_eq!(
        manifest.banks["alpha"].alerts_in, 5,
        "the alerts were left for it"
    );
}
