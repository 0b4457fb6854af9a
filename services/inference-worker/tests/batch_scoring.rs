//! The batch scoring job against a real NATS server and file storage: three banks push
//! 10,000 alerts (with duplicates and poison among them), the scheduler cuts a batch with the
//! thresholds of a calibration made for the batch's model and policy, two worker processes
//! score it while they are SIGKILLed and restarted, and the report and the per-bank results
//! show every alert scored exactly once. A calibration made for another model refuses the
//! batch.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aml_batch::layout;
use aml_bus::topology::{DLQ_STREAM, subjects};
use aml_bus::{DLQ_REASON_HEADER, Publisher, Topology};
use aml_core::Label;
use aml_core::rng::SeededRng;
use aml_integration_tests::NatsServer;
use aml_integration_tests::mock_http::{MockServer, Reply, Seen};
use aml_model::tiny::init_tiny;
use aml_model::{Architecture, TextTokenizer, TinySpec};
use aml_proto::v1::{Alert, BatchReport, BatchRequest, ScoreResult, ShardCompleted};
use aml_storage::Storage;
use prost::Message;
use serde_json::json;

mod common;
use common::{
    BANKS, InProcessScheduler, alerts, config, push_by_bank, spawn_worker, write_calibration,
};

/// Held by the tests whose timing matters (the slow shard) and by the one that loads both
/// cores (the 10,000 alerts with killed workers), so that they never run together.
static CPU_HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A results object's records, checked against its Arrow IPC twin.
async fn results_with_columnar_twin(storage: &Storage, key: &str) -> Vec<ScoreResult> {
    let results: Vec<ScoreResult> = storage.get_jsonl(key).await.expect("jsonl");
    let columnar = storage
        .get(&layout::columnar(key))
        .await
        .expect("an Arrow file beside every JSONL results object");
    let twin = aml_batch::read_results_arrow(&columnar).expect("arrow");
    assert_eq!(twin.len(), results.len(), "{key}: rows in the Arrow file");
    for (arrow, json) in twin.iter().zip(&results) {
        // JSON text may move a float by one ulp; Arrow keeps the bits.
        for (a, j) in [
            (arrow.score, json.score),
            (arrow.prescreen_score, json.prescreen_score),
            (arrow.answer_mass, json.answer_mass),
        ] {
            assert!((a - j).abs() < 1e-12, "{key}: {arrow:?} vs {json:?}");
        }
        let same = ScoreResult {
            p_match: json.p_match,
            p_no_match: json.p_no_match,
            p_edge: json.p_edge,
            score: json.score,
            prescreen_score: json.prescreen_score,
            answer_mass: json.answer_mass,
            ..arrow.clone()
        };
        assert_eq!(&same, json, "{key}: the Arrow file holds the same results");
    }
    results
}

/// Publishes a BatchRequest and waits for its report.
async fn run_batch(
    publisher: &Publisher,
    storage: &Storage,
    batch: &str,
    within: Duration,
) -> BatchReport {
    publisher
        .publish(
            subjects::BATCH,
            &BatchRequest {
                batch_id: batch.into(),
                ..Default::default()
            },
            Some(batch),
        )
        .await
        .expect("batch requested");
    let report_key = layout::report(batch);
    let deadline = Instant::now() + within;
    while !storage.exists(&report_key).await.expect("exists") {
        assert!(
            Instant::now() < deadline,
            "no report for {batch} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    storage.get_json(&report_key).await.expect("report")
}

async fn dlq_reasons(topology: &Topology) -> Vec<String> {
    let stream = topology
        .jetstream()
        .get_stream(DLQ_STREAM)
        .await
        .expect("DLQ");
    let mut reasons = Vec::new();
    let mut sequence = 1;
    while let Ok(message) = stream.get_raw_message(sequence).await {
        let reason = message
            .headers
            .get(DLQ_REASON_HEADER)
            .map(|value| value.as_str().to_owned())
            .unwrap_or_default();
        reasons.push(format!("{}: {reason}", message.subject));
        sequence += 1;
    }
    reasons
}

async fn completions(topology: &Topology, batch: &str) -> Vec<ShardCompleted> {
    let mut events =
        aml_bus::EventFollower::start(topology.jetstream(), &subjects::shard_completed(batch))
            .await
            .expect("events");
    let mut out = Vec::new();
    while let Ok(message) = tokio::time::timeout(Duration::from_secs(1), events.next()).await {
        out.push(ShardCompleted::decode(message.payload.clone()).expect("decodes"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_alerts_from_three_banks_survive_killed_workers_and_poison() {
    let _alone = CPU_HEAVY.lock().await;
    let nats = NatsServer::start().expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let storage_dir = dir.path().join("store");
    let model_dir = dir.path().join("model");
    init_tiny(&TinySpec::tiny(Architecture::Llama), &model_dir, 3).expect("tiny model");
    let mut config = config(&nats.url(), &storage_dir, &model_dir);
    let calibration_file = dir.path().join("calibration.json");
    let calibration = write_calibration(&calibration_file, &model_dir, None);
    assert!(calibration.prescreen_cutoff > 0.0, "{calibration:?}");
    config.scoring.calibration_url = calibration_file.display().to_string();
    let storage = Storage::open(&config.storage.url, &Default::default()).expect("storage");

    let scheduler = InProcessScheduler::start(&config);
    let topology = Topology::new(nats.connect().await.expect("connect"));
    topology.ensure_streams().await.expect("streams");
    let publisher = Publisher::new(topology.jetstream().clone());

    let alerts = alerts(10_000);
    for (bank, mine) in push_by_bank(&publisher, &alerts).await {
        let again = publisher
            .publish_all(
                &subjects::alerts(bank),
                mine.iter()
                    .take(20)
                    .map(|alert| (alert.alert_id.as_str(), *alert)),
            )
            .await
            .expect("published again");
        assert_eq!(again.duplicates, 20, "the same alert ids are dropped");
    }
    let client = nats.connect().await.expect("connect");
    let jetstream = async_nats::jetstream::new(client);
    jetstream
        .publish(subjects::alerts("alpha"), vec![0xff, 0x01, 0x02].into())
        .await
        .expect("sent")
        .await
        .expect("stored");
    let mut stranger = alerts[0].clone();
    stranger.bank = "evil".into();
    stranger.alert_id = "evil-1".into();
    publisher
        .publish(&subjects::alerts("evil"), &stranger, Some("evil-1"))
        .await
        .expect("stored");
    let mut huge = alerts[1].clone();
    huge.alert_id = "bravo-huge".into();
    huge.bank = "bravo".into();
    huge.context = "x".repeat(20_000);
    publisher
        .publish(&subjects::alerts("bravo"), &huge, Some("bravo-huge"))
        .await
        .expect("stored");

    let mut workers = vec![
        spawn_worker(&config, "w1", &[]),
        spawn_worker(&config, "w2", &[]),
    ];
    publisher
        .publish(
            subjects::BATCH,
            &BatchRequest {
                batch_id: "chaos".into(),
                ..Default::default()
            },
            Some("chaos"),
        )
        .await
        .expect("batch requested");

    let mut rng = SeededRng::new(99);
    let mut kills = 0;
    let mut started = 2;
    let deadline = Instant::now() + Duration::from_secs(600);
    let report_key = layout::report("chaos");
    while !storage.exists(&report_key).await.expect("exists") {
        assert!(Instant::now() < deadline, "no report within 10 minutes");
        if kills < 3 {
            tokio::time::sleep(Duration::from_millis(
                1500 + (rng.uniform() * 2500.0) as u64,
            ))
            .await;
            if storage.exists(&report_key).await.expect("exists") {
                break;
            }
            let victim = kills % workers.len();
            workers[victim].kill().expect("SIGKILL");
            workers[victim].wait().expect("reaped");
            started += 1;
            workers[victim] = spawn_worker(&config, &format!("w{started}"), &[]);
            kills += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    for worker in &mut workers {
        worker.kill().ok();
        worker.wait().ok();
    }
    scheduler.stop().await;

    let report: BatchReport = storage.get_json(&report_key).await.expect("report");
    assert!(
        kills >= 3,
        "the workers were killed {kills} times before the batch ended"
    );
    assert_eq!(report.alerts_in, 10_000);
    assert_eq!(report.completion_rate, 1.0, "{report:?}");
    for bank in BANKS {
        assert_eq!(
            report.per_bank[bank].alerts_in,
            alerts.iter().filter(|a| a.bank == bank).count() as u64
        );
    }
    assert!(!report.per_bank.contains_key("evil"));

    let mut seen = HashSet::new();
    let mut per_bank: BTreeMap<String, usize> = BTreeMap::new();
    for bank in BANKS {
        for key in storage
            .list(&layout::results_prefix(bank, "chaos"))
            .await
            .expect("results")
        {
            for result in results_with_columnar_twin(&storage, &key).await {
                assert_eq!(result.bank, bank, "{key} holds only {bank}'s alerts");
                assert!(
                    seen.insert(result.alert_id.clone()),
                    "{} scored twice",
                    result.alert_id
                );
                *per_bank.entry(result.bank).or_default() += 1;
            }
        }
    }
    assert_eq!(seen.len(), 10_000, "every alert has exactly one result");
    let cleared: u64 = report
        .per_bank
        .values()
        .map(|bank| bank.cleared_by_prescreen)
        .sum();
    assert!(cleared > 0 && report.scored + cleared == 10_000);
    for bank in BANKS {
        let summary = &report.per_bank[bank];
        assert_eq!(summary.prescreen_cutoff, calibration.prescreen_cutoff);
        assert_eq!(summary.tau, calibration.tau);
        let figures = summary
            .calibration
            .as_ref()
            .expect("the calibration's figures");
        assert_eq!(figures.recall_lower_bound, calibration.recall_lower_bound);
        assert_eq!(
            summary.score_histogram.iter().sum::<u64>(),
            summary.scored,
            "every scored alert is in the histogram"
        );
        assert!(summary.psi.is_some() && summary.answer_mass_mean > 0.0);
    }

    let done = completions(&topology, "chaos").await;
    assert!(!done.is_empty());
    for completion in &done {
        assert_eq!(
            completion.prefix_encodes, 1,
            "worker {} encoded the prefix more than once",
            completion.worker_id
        );
    }
    let workers_that_scored: HashSet<&str> = done.iter().map(|c| c.worker_id.as_str()).collect();
    assert!(
        report.prefix_encodes >= 1 && report.prefix_encodes as usize <= workers_that_scored.len()
    );

    let reasons = dlq_reasons(&topology).await;
    let joined = reasons.join("\n");
    assert!(joined.contains("unknown bank `evil`"), "{joined}");
    assert!(joined.contains("over the limit"), "{joined}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("aml.dlq.alerts.alpha: undecodable")),
        "{joined}"
    );
    println!(
        "report: {} alerts, {} scored, {} cleared, {} escalated, {} shards ({} republished), {:.0} alerts/s, prefix encodes {}; {kills} kills",
        report.alerts_in,
        report.scored,
        cleared,
        report.escalated,
        report.shards,
        report.shards_republished,
        report.alerts_per_s,
        report.prefix_encodes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_on_s3_storage_loads_the_model_from_the_bucket_and_partitions_results() {
    let nats = NatsServer::start().expect("nats-server");
    let s3 = aml_integration_tests::S3Server::start("aml-batch").expect("moto");
    let dir = tempfile::tempdir().expect("tempdir");
    let model_dir = dir.path().join("model");
    init_tiny(&TinySpec::tiny(Architecture::Llama), &model_dir, 4).expect("tiny model");
    let mut config = config(&nats.url(), dir.path(), &model_dir);
    config.storage.url = "s3://aml-batch".into();
    config.storage.s3 = aml_runtime::config::S3Config {
        endpoint: Some(s3.endpoint()),
        region: Some("us-east-1".into()),
        access_key_id: Some("test-key".into()),
        secret_access_key: Some(aml_runtime::Secret::new("test-secret")),
        allow_http: true,
    };
    config.scoring.shard_size = 100;
    let storage = config.storage.open(&config.storage.url).expect("s3");
    for entry in std::fs::read_dir(&model_dir).expect("model files") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        storage
            .put(
                &format!("models/tiny/{name}"),
                std::fs::read(&path).expect("read").into(),
            )
            .await
            .expect("uploaded");
    }
    config.scoring.model_url = storage.url_of("models/tiny");

    let scheduler = InProcessScheduler::start(&config);
    let topology = Topology::new(nats.connect().await.expect("connect"));
    topology.ensure_streams().await.expect("streams");
    let publisher = Publisher::new(topology.jetstream().clone());
    let alerts: Vec<Alert> = alerts(600)
        .into_iter()
        .filter(|a| a.bank != "charlie")
        .collect();
    for bank in ["alpha", "bravo"] {
        let mine: Vec<&Alert> = alerts.iter().filter(|alert| alert.bank == bank).collect();
        publisher
            .publish_all(
                &subjects::alerts(bank),
                mine.iter().map(|a| (a.alert_id.as_str(), *a)),
            )
            .await
            .expect("published");
    }
    let mut worker = spawn_worker(&config, "s3-worker", &[]);
    let report = run_batch(&publisher, &storage, "on-s3", Duration::from_secs(300)).await;
    worker.kill().ok();
    worker.wait().ok();
    scheduler.stop().await;
    assert_eq!(report.completion_rate, 1.0);
    assert_eq!(report.alerts_in as usize, alerts.len());
    let mut count = 0;
    for bank in ["alpha", "bravo"] {
        for key in storage
            .list(&layout::results_prefix(bank, "on-s3"))
            .await
            .expect("list")
        {
            let results = results_with_columnar_twin(&storage, &key).await;
            assert!(results.iter().all(|r| r.bank == bank));
            count += results.len();
        }
    }
    assert_eq!(count, alerts.len());
}

/// The log-probabilities [`first_token_server`] gives the first tokens of MATCH, NO_MATCH
/// and EDGE.
const FIRST_TOKEN_LOGPROBS: [f64; 3] = [-1.0, -0.5, -2.0];

/// Answers like vLLM: a scoring request (`max_tokens: 1`, `logprobs`, token ids as keys)
/// gets the answers' first tokens among its top log-probabilities, a rationale request a
/// sentence per prompt.
fn first_token_server(firsts: Vec<i64>) -> impl Fn(&Seen) -> Reply + Send + Sync {
    move |request: &Seen| {
        let body = &request.body;
        let prompts: Vec<Vec<i64>> = serde_json::from_value(body["prompt"].clone()).expect("ids");
        let choices: Vec<serde_json::Value> = (0..prompts.len())
            .map(|index| {
                if body["max_tokens"] != json!(1) {
                    return json!({"index": index, "text": " Identifiers agree. "});
                }
                let mut top = serde_json::Map::new();
                for (id, value) in firsts.iter().zip(FIRST_TOKEN_LOGPROBS) {
                    top.insert(format!("token_id:{id}"), json!(value));
                }
                top.insert("token_id:3".to_owned(), json!(-3.0));
                json!({"index": index, "text": "x", "logprobs": {"top_logprobs": [top]}})
            })
            .collect();
        (200, Vec::new(), json!({ "choices": choices }).to_string())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_the_openai_backend_scores_from_the_servers_log_probabilities() {
    let nats = NatsServer::start().expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let model_dir = dir.path().join("model");
    init_tiny(&TinySpec::tiny(Architecture::Llama), &model_dir, 5).expect("tiny model");
    let tokenizer_dir = dir.path().join("no-weights");
    std::fs::create_dir_all(&tokenizer_dir).expect("dir");
    for name in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(model_dir.join(name), tokenizer_dir.join(name)).expect("copied");
    }
    let mut config = config(&nats.url(), &dir.path().join("store"), &tokenizer_dir);
    config.scoring.shard_size = 40;
    config.scoring.rationale = true;
    let storage = Storage::open(&config.storage.url, &Default::default()).expect("storage");
    let tokenizer = TextTokenizer::load(&tokenizer_dir).expect("tokenizer");
    let firsts: Vec<i64> = Label::ALL
        .iter()
        .map(|label| tokenizer.encode(label.decision_word(), false).expect("ids")[0])
        .collect();
    let server = MockServer::start_with(Arc::new(first_token_server(firsts))).await;

    let scheduler = InProcessScheduler::start(&config);
    let topology = Topology::new(nats.connect().await.expect("connect"));
    topology.ensure_streams().await.expect("streams");
    let publisher = Publisher::new(topology.jetstream().clone());
    let alerts: Vec<Alert> = alerts(270)
        .into_iter()
        .filter(|alert| alert.bank == "alpha")
        .collect();
    publisher
        .publish_all(
            &subjects::alerts("alpha"),
            alerts.iter().map(|alert| (alert.alert_id.as_str(), alert)),
        )
        .await
        .expect("published");
    let mut worker = spawn_worker(
        &config,
        "remote",
        &[
            ("AML_SCORING__BACKEND", "openai"),
            ("AML_SCORING__OPENAI_URL", &server.url),
            ("AML_SCORING__OPENAI_MODEL", "aml-screening"),
            ("AML_SCORING__OPENAI_API_KEY", "worker-key"),
        ],
    );
    let report = run_batch(&publisher, &storage, "remote", Duration::from_secs(180)).await;
    worker.kill().ok();
    worker.wait().ok();
    scheduler.stop().await;
    assert_eq!(report.completion_rate, 1.0, "{report:?}");
    assert_eq!(report.scored as usize, alerts.len());
    assert_eq!(report.shards, 3);

    let expected = aml_model::scoring::renormalise(&FIRST_TOKEN_LOGPROBS);
    let mut scored = 0;
    for key in storage
        .list(&layout::results_prefix("alpha", "remote"))
        .await
        .expect("list")
    {
        for result in results_with_columnar_twin(&storage, &key).await {
            assert!((result.p_match - expected[0]).abs() < 1e-12, "{result:?}");
            assert!((result.p_no_match - expected[1]).abs() < 1e-12);
            assert!((result.p_edge - expected[2]).abs() < 1e-12);
            assert_eq!(result.escalated, result.score >= config.scoring.tau);
            let rationale = if result.escalated {
                "Identifiers agree."
            } else {
                ""
            };
            assert_eq!(result.rationale, rationale);
            scored += 1;
        }
    }
    assert_eq!(scored, alerts.len());
    let seen = server.seen();
    let scoring_requests = seen
        .iter()
        .filter(|request| request.body["max_tokens"] == json!(1) && request.body["echo"].is_null());
    assert_eq!(
        scoring_requests.count(),
        2 + 2 + 1,
        "shards of 40, 40 and 10 alerts at 32 alerts per request"
    );
    assert!(seen.iter().all(|request| {
        request.body["model"] == "aml-screening"
            && request
                .headers
                .contains(&("authorization".to_owned(), "Bearer worker-key".to_owned()))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_model_differs_from_the_calibration_is_refused_with_the_reason() {
    let nats = NatsServer::start().expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let model_dir = dir.path().join("model");
    init_tiny(&TinySpec::tiny(Architecture::Llama), &model_dir, 3).expect("tiny model");
    let mut config = config(&nats.url(), &dir.path().join("store"), &model_dir);
    let calibration_file = dir.path().join("calibration.json");
    write_calibration(&calibration_file, &model_dir, Some("0123abcd"));
    config.scoring.calibration_url = calibration_file.display().to_string();
    let storage = Storage::open(&config.storage.url, &Default::default()).expect("storage");
    let scheduler = InProcessScheduler::start(&config);
    let topology = Topology::new(nats.connect().await.expect("connect"));
    topology.ensure_streams().await.expect("streams");
    let publisher = Publisher::new(topology.jetstream().clone());
    let few = alerts(30);
    publisher
        .publish_all(
            &subjects::alerts("alpha"),
            few.iter()
                .filter(|alert| alert.bank == "alpha")
                .map(|alert| (alert.alert_id.as_str(), alert)),
        )
        .await
        .expect("published");
    let report = run_batch(&publisher, &storage, "refused", Duration::from_secs(60)).await;
    scheduler.stop().await;
    assert!(
        report.refused.starts_with(&format!(
            "bank alpha: the calibration {} does not hold for this batch: model: the calibration holds for sha256 0123abcd, {} has ",
            calibration_file.display(),
            model_dir.display()
        )),
        "{}",
        report.refused
    );
    assert_eq!(report.scored, 0);
    assert!(
        !storage
            .exists(&layout::manifest("refused"))
            .await
            .expect("exists"),
        "nothing was cut"
    );
    let reasons = dlq_reasons(&topology).await;
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("does not hold for this batch")),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cot_model_is_refused_and_a_slow_shard_is_not_published_again() {
    let nats = NatsServer::start().expect("nats-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let model_dir = dir.path().join("model");
    init_tiny(&TinySpec::tiny(Architecture::Llama), &model_dir, 5).expect("tiny model");
    let cot_dir = dir.path().join("cot");
    aml_integration_tests::datasets::copy_as_reasoning_first(&model_dir, &cot_dir);

    // The CoT model: every delivery of its job is refused, to the DLQ with the reason.
    let mut config = config(&nats.url(), &dir.path().join("store"), &cot_dir);
    config.scoring.shard_timeout_secs = 2;
    config.scoring.batch_timeout_secs = 8;
    let storage = Storage::open(&config.storage.url, &Default::default()).expect("storage");
    let scheduler = InProcessScheduler::start(&config);
    let topology = Topology::new(nats.connect().await.expect("connect"));
    topology.ensure_streams().await.expect("streams");
    let publisher = Publisher::new(topology.jetstream().clone());
    let push = |prefix: &'static str, count: usize| {
        let publisher = publisher.clone();
        async move {
            let alerts: Vec<Alert> = alerts(count * 3)
                .into_iter()
                .filter(|alert| alert.bank == "alpha")
                .map(|mut alert| {
                    alert.alert_id = format!("{prefix}-{}", alert.alert_id);
                    alert
                })
                .collect();
            publisher
                .publish_all(
                    &subjects::alerts("alpha"),
                    alerts.iter().map(|alert| (alert.alert_id.as_str(), alert)),
                )
                .await
                .expect("published");
        }
    };
    push("cot", 10).await;
    let mut worker = spawn_worker(&config, "cot", &[]);
    let report = run_batch(&publisher, &storage, "cot", Duration::from_secs(60)).await;
    worker.kill().ok();
    worker.wait().ok();
    scheduler.stop().await;
    assert_eq!(report.scored, 0, "{report:?}");
    let reasons = dlq_reasons(&topology).await;
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains(&cot_dir.display().to_string())
                && reason.contains("trained with --cot true")),
        "{reasons:?}"
    );

    // A shard that takes several shard timeouts (a rationale for every alert, one alert per
    // batch, each batch well within the timeout) reports progress and is never published again.
    // Its batches must stay within the timeout, so it does not share the cores.
    let _alone = CPU_HEAVY.lock().await;
    let mut config = config.clone();
    config.scoring.model_url = model_dir.display().to_string();
    config.scoring.tau = 0.0;
    config.scoring.rationale = true;
    config.scoring.batch_timeout_secs = 300;
    let scheduler = InProcessScheduler::start(&config);
    config.scoring.shard_timeout_secs = 3;
    push("slow", 150).await;
    let mut worker = spawn_worker(&config, "slow", &[("AML_SCORING__WORKER_BATCH_SIZE", "1")]);
    let report = run_batch(&publisher, &storage, "slow", Duration::from_secs(300)).await;
    // A later batch on the same bus waits for its own shards, not the earlier batch's.
    push("later", 10).await;
    let later = run_batch(&publisher, &storage, "later", Duration::from_secs(120)).await;
    worker.kill().ok();
    worker.wait().ok();
    scheduler.stop().await;
    assert_eq!(
        (later.scored, later.completion_rate),
        (10, 1.0),
        "{later:?}"
    );
    assert!(later.gpu_seconds > 0.0, "{later:?}");
    let later_results = storage
        .list(&layout::results_prefix("alpha", "later"))
        .await
        .expect("list");
    assert_eq!(
        later_results.len(),
        1,
        "its one shard's results: {later_results:?}"
    );
    assert_eq!(report.completion_rate, 1.0, "{report:?}");
    assert_eq!(report.escalated, 150, "tau 0 escalates every alert");
    let done = completions(&topology, "slow").await;
    let seconds: f64 = done.iter().map(|shard| shard.gpu_seconds).sum();
    println!("slow shard: {seconds:.1} s of model time, shard timeout 3 s");
    assert!(
        seconds > 6.0,
        "the shard outlasted two shard timeouts: {seconds:.1} s"
    );
    assert_eq!(report.shards_republished, 0, "{report:?}");
    assert_eq!(done.len(), 1, "one completion: the shard was scored once");
}
