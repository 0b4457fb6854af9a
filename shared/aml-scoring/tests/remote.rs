//! The OpenAI-compatible backend against a local server that behaves as vLLM's V1 engine:
//! it speaks the completions wire format, computes log-probabilities and greedy text with the
//! same tiny model, keeps a prefix cache in 16-token blocks that it ignores when prompt
//! log-probabilities (echo) are asked for, and counts the prompt tokens it had to compute.
//! The scores equal the in-process engine's; each alert costs its own tokens, not the
//! policy's; a tokenizer whose answers share a first token falls back to echo and pays the
//! policy per answer; requests of different shards run at once; failures are named.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aml_core::Difficulty;
use aml_core::policy::DEFAULT_POLICY;
use aml_core::rng::SeededRng;
use aml_integration_tests::mock_http::{MockServer, Reply, Seen};
use aml_model::generate::{GenerationConfig, generate};
use aml_model::tiny::init_tiny;
use aml_model::{Architecture, CausalLm, LoadOptions, TextTokenizer, TinySpec};
use aml_proto::v1::Alert;
use aml_scoring::{RemoteEndpoint, RemoteScorer, ScoringEngine};
use aml_synth::Synthesizer;
use serde_json::{Value, json};
use tch::{Kind, Tensor};

/// vLLM's default KV block size.
const BLOCK: usize = 16;

fn alerts(count: usize) -> Vec<Alert> {
    let synthesizer = Synthesizer::default();
    let mut rng = SeededRng::new(8);
    (0..count)
        .map(|index| {
            let label = aml_core::Label::ALL[index % 3];
            synthesizer.case(&mut rng, Difficulty::Hard, label).alert
        })
        .collect()
}

/// What the stand-in counts.
#[derive(Default)]
struct Counters {
    /// Prompt tokens computed (not served from the prefix cache).
    computed: AtomicU64,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// A vLLM V1 stand-in around a tiny model.
struct Vllm {
    model: Mutex<CausalLm>,
    tokenizer: TextTokenizer,
    cache: Mutex<HashSet<Vec<i64>>>,
    counters: Arc<Counters>,
    /// How long each request takes, to show requests overlapping.
    latency: Duration,
}

impl Vllm {
    /// Prompt tokens this request makes the engine compute: all of them when prompt
    /// log-probabilities are asked for (V1 skips its prefix cache then), else those past the
    /// longest cached run of full blocks (at least the last token); full blocks are cached.
    fn account(&self, prompt: &[i64], prompt_logprobs: bool) {
        let mut cache = self.cache.lock().expect("cache");
        let computed = if prompt_logprobs {
            prompt.len()
        } else {
            let mut cached = 0;
            while cached + BLOCK < prompt.len() && cache.contains(&prompt[..cached + BLOCK]) {
                cached += BLOCK;
            }
            prompt.len() - cached
        };
        for end in (BLOCK..=prompt.len()).step_by(BLOCK) {
            cache.insert(prompt[..end].to_vec());
        }
        self.counters
            .computed
            .fetch_add(computed as u64, Ordering::SeqCst);
    }

    fn log_probs(&self, prompt: &[i64]) -> Tensor {
        let _no_grad = tch::no_grad_guard();
        let model = self.model.lock().expect("model");
        let ids = Tensor::from_slice(prompt).view([1, prompt.len() as i64]);
        model
            .forward(&ids)
            .expect("forward")
            .log_softmax(-1, Kind::Double)
            .squeeze_dim(0)
    }

    fn choice(&self, body: &Value, index: usize, prompt: &[i64]) -> Value {
        let echo = body["echo"] == json!(true);
        self.account(prompt, echo);
        let max_tokens = body["max_tokens"].as_i64().unwrap_or(16);
        if echo {
            let log_probs = self.log_probs(prompt);
            let mut token_logprobs = vec![Value::Null];
            for (position, &token) in prompt.iter().enumerate().skip(1) {
                token_logprobs.push(json!(
                    log_probs.get(position as i64 - 1).double_value(&[token])
                ));
            }
            let last = log_probs.get(prompt.len() as i64 - 1);
            let next = last.argmax(0, false).int64_value(&[]);
            token_logprobs.push(json!(last.double_value(&[next])));
            return json!({"index": index, "text": "", "finish_reason": "length",
                "logprobs": {"token_logprobs": token_logprobs, "top_logprobs": null}});
        }
        if max_tokens == 1 {
            let last = self.log_probs(prompt).get(prompt.len() as i64 - 1);
            let count = body["logprobs"].as_i64().unwrap_or(0).min(last.size()[0]);
            let (values, ids) = last.topk(count, 0, true, true);
            let as_ids = body["return_tokens_as_token_ids"] == json!(true);
            let mut top = serde_json::Map::new();
            for rank in 0..count {
                let id = ids.int64_value(&[rank]);
                let key = if as_ids {
                    format!("token_id:{id}")
                } else {
                    self.tokenizer.decode(&[id]).expect("token")
                };
                top.insert(key, json!(values.double_value(&[rank])));
            }
            let first = ids.int64_value(&[0]);
            return json!({"index": index, "text": self.tokenizer.decode(&[first]).expect("token"),
                "finish_reason": "length", "logprobs": {"top_logprobs": [top]}});
        }
        let model = self.model.lock().expect("model");
        let config = GenerationConfig {
            max_new_tokens: max_tokens,
            stop_ids: self.tokenizer.eos_ids().to_vec(),
            ..GenerationConfig::default()
        };
        let generated = generate(&model, None, &[prompt.to_vec()], &config).expect("generated");
        json!({"index": index, "text": self.tokenizer.decode(&generated[0]).expect("text"),
            "finish_reason": "length"})
    }

    fn reply(&self, request: &Seen) -> Reply {
        let now = self.counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.counters
            .most_in_flight
            .fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.latency);
        let body = &request.body;
        let prompts: Vec<Vec<i64>> =
            serde_json::from_value(body["prompt"].clone()).expect("prompt is lists of ids");
        // Answer out of order: the client must sort by `index`.
        let choices: Vec<Value> = prompts
            .iter()
            .enumerate()
            .rev()
            .map(|(index, prompt)| self.choice(body, index, prompt))
            .collect();
        self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
        let reply =
            json!({"object": "text_completion", "model": body["model"], "choices": choices});
        (200, Vec::new(), reply.to_string())
    }
}

async fn vllm(dir: &Path, latency: Duration) -> (MockServer, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let server = Vllm {
        model: Mutex::new(CausalLm::load(dir, LoadOptions::cpu_f32()).expect("model")),
        tokenizer: TextTokenizer::load(dir).expect("tokenizer"),
        cache: Mutex::new(HashSet::new()),
        counters: Arc::clone(&counters),
        latency,
    };
    let server =
        MockServer::start_with(Arc::new(move |request: &Seen| server.reply(request))).await;
    (server, counters)
}

fn endpoint(url: &str) -> RemoteEndpoint {
    RemoteEndpoint {
        base_url: url.to_owned(),
        model: "aml-screening".to_owned(),
        api_key: Some("vllm-key".to_owned()),
        timeout: Duration::from_secs(60),
        top_logprobs: 20,
    }
}

/// The tiny model's vocabulary: with every log-probability listed, none is a floor.
const TINY_VOCAB: usize = 512;

fn assert_close(
    remote: &[aml_scoring::LabelProbabilities],
    local: &[aml_scoring::LabelProbabilities],
) {
    assert_eq!(remote.len(), local.len());
    for (index, (a, b)) in remote.iter().zip(local).enumerate() {
        for (x, y) in [
            (a.p_match, b.p_match),
            (a.p_no_match, b.p_no_match),
            (a.p_edge, b.p_edge),
            (a.answer_mass, b.answer_mass),
        ] {
            assert!(
                (x - y).abs() < 1e-5,
                "alert {index}: remote {x} vs local {y}"
            );
        }
    }
}

/// Tokens of each alert's own part of the prompt (user message and template close).
fn own_tokens(dir: &Path, alerts: &[Alert]) -> Vec<usize> {
    let tokenizer = TextTokenizer::load(dir).expect("tokenizer");
    alerts
        .iter()
        .map(|alert| {
            tokenizer
                .encode(&aml_core::format::alert_user_message(alert), false)
                .expect("ids")
                .len()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_prompt_per_alert_scores_as_the_engine_and_computes_only_the_alert() {
    let dir = tempfile::tempdir().unwrap();
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).unwrap();
    let alerts = alerts(7);
    let mut engine = ScoringEngine::load(dir.path(), None, LoadOptions::cpu_f32()).unwrap();
    let local = engine.score(DEFAULT_POLICY, &alerts, 4).unwrap();
    let prefix_tokens = engine.prefix(DEFAULT_POLICY).unwrap().tokens;

    let (server, counters) = vllm(dir.path(), Duration::ZERO).await;
    let remote = RemoteScorer::new(
        dir.path(),
        None,
        RemoteEndpoint {
            top_logprobs: TINY_VOCAB,
            ..endpoint(&server.url)
        },
    )
    .unwrap();
    assert!(
        remote.first_token_requests(),
        "MATCH, NO_MATCH and EDGE start differently"
    );
    let mut scored = remote.score(DEFAULT_POLICY, &alerts[..1]).await.unwrap();
    let first_request = counters.computed.swap(0, Ordering::SeqCst);
    assert!(
        first_request as usize >= prefix_tokens,
        "the first request computes the policy"
    );
    scored.extend(remote.score(DEFAULT_POLICY, &alerts[1..4]).await.unwrap());
    scored.extend(remote.score(DEFAULT_POLICY, &alerts[4..]).await.unwrap());
    assert_close(&scored, &local);
    assert_eq!(remote.prefix_encodes(), 1);

    let computed = counters.computed.load(Ordering::SeqCst) as f64 / 6.0;
    let own = own_tokens(dir.path(), &alerts[1..]);
    let own_mean = own.iter().sum::<usize>() as f64 / own.len() as f64;
    println!(
        "prefix {prefix_tokens} tokens, alert {own_mean:.0}, computed per alert {computed:.0}"
    );
    assert!(
        computed <= own_mean + BLOCK as f64 + 8.0,
        "per alert the server computes about the alert's own tokens ({own_mean:.0}), not the policy's {prefix_tokens}: {computed:.0}"
    );
    assert!(
        prefix_tokens as f64 > 2.0 * computed,
        "the policy dominates a prompt"
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 3, "one request per batch");
    let request = &seen[1].body;
    assert_eq!(request["max_tokens"], 1);
    assert_eq!(request["logprobs"], TINY_VOCAB);
    assert_eq!(request["return_tokens_as_token_ids"], true);
    assert!(
        request.get("echo").is_none(),
        "no echo: it would bypass the cache"
    );
    let prompts: Vec<Vec<i64>> = serde_json::from_value(request["prompt"].clone()).unwrap();
    assert_eq!(prompts.len(), 3, "one prompt per alert");
    assert!(
        seen[0]
            .headers
            .contains(&("authorization".to_owned(), "Bearer vllm-key".to_owned()))
    );

    let rationales = remote
        .rationales(DEFAULT_POLICY, &alerts[..3], 6)
        .await
        .unwrap();
    assert_eq!(rationales.len(), 3);
    let last = server.seen().pop().unwrap();
    assert_eq!(last.body["max_tokens"], 6);
    let prompts: Vec<Vec<i64>> = serde_json::from_value(last.body["prompt"].clone()).unwrap();
    assert_eq!(prompts.len(), 3, "three rationales, one request");
    let local_rationales = engine.rationales(DEFAULT_POLICY, &alerts[..3], 6).unwrap();
    assert_eq!(
        rationales, local_rationales,
        "greedy text as the engine writes it"
    );

    // vLLM's default of 20: this random model ranks no answer that high, so each is scored at
    // the lowest listed value, an upper bound on its own: never a lower escalation score.
    let capped = RemoteScorer::new(dir.path(), None, endpoint(&server.url)).unwrap();
    let floored = capped.score(DEFAULT_POLICY, &alerts[..2]).await.unwrap();
    for (floor, exact) in floored.iter().zip(&local) {
        assert!(floor.answer_mass >= exact.answer_mass);
        assert!((floor.p_match - 1.0 / 3.0).abs() < 1e-9, "{floor:?}");
    }
    assert_eq!(server.seen().pop().unwrap().body["logprobs"], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_sharing_a_first_token_fall_back_to_echo_and_pay_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).unwrap();
    // A SentencePiece-style word-start marker put before every text: each answer then
    // starts with the same token, as with tokenizers that split off the marker.
    let file = dir.path().join("tokenizer.json");
    let mut tokenizer: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    tokenizer["normalizer"] = json!({"type": "Prepend", "prepend": "\u{2581}"});
    std::fs::write(&file, tokenizer.to_string()).unwrap();
    let alerts = alerts(4);
    let mut engine = ScoringEngine::load(dir.path(), None, LoadOptions::cpu_f32()).unwrap();
    let local = engine.score(DEFAULT_POLICY, &alerts, 4).unwrap();
    let prefix_tokens = engine.prefix(DEFAULT_POLICY).unwrap().tokens as u64;

    let (server, counters) = vllm(dir.path(), Duration::ZERO).await;
    let remote = RemoteScorer::new(dir.path(), None, endpoint(&server.url)).unwrap();
    assert!(!remote.first_token_requests());
    let scored = remote.score(DEFAULT_POLICY, &alerts).await.unwrap();
    assert_close(&scored, &local);
    let request = &server.seen()[0].body;
    assert_eq!(request["echo"], true);
    let prompts: Vec<Vec<i64>> = serde_json::from_value(request["prompt"].clone()).unwrap();
    assert_eq!(prompts.len(), 12, "three prompts per alert");
    assert!(
        counters.computed.load(Ordering::SeqCst) >= 12 * prefix_tokens,
        "echo recomputes the policy for every answer of every alert"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_of_different_shards_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).unwrap();
    let (server, counters) = vllm(dir.path(), Duration::from_millis(400)).await;
    let remote = Arc::new(RemoteScorer::new(dir.path(), None, endpoint(&server.url)).unwrap());
    let alerts = alerts(4);
    let (a, b) = tokio::join!(
        remote.score(DEFAULT_POLICY, &alerts[..2]),
        remote.score(DEFAULT_POLICY, &alerts[2..]),
    );
    assert_eq!(a.unwrap().len() + b.unwrap().len(), 4);
    assert_eq!(
        counters.most_in_flight.load(Ordering::SeqCst),
        2,
        "the two shards' requests were at the server together"
    );
}

#[tokio::test]
async fn server_failures_name_the_endpoint_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).unwrap();
    let no_logprobs = json!({ "choices": [{"index": 0, "text": "x"}] });
    let two_choices = json!({ "choices": [{"index": 0, "text": "x"}, {"index": 1, "text": "y"}] });
    let server = MockServer::start(vec![
        (
            503,
            Vec::new(),
            r#"{"error":"model is loading"}"#.to_owned(),
        ),
        (200, Vec::new(), no_logprobs.to_string()),
        (200, Vec::new(), "not json".to_owned()),
        (200, Vec::new(), two_choices.to_string()),
    ])
    .await;
    let remote = RemoteScorer::new(dir.path(), None, endpoint(&server.url)).unwrap();
    let alerts = alerts(1);
    let mut errors = Vec::new();
    for _ in 0..4 {
        errors.push(
            remote
                .score(DEFAULT_POLICY, &alerts)
                .await
                .unwrap_err()
                .to_string(),
        );
    }
    assert!(
        errors[0].contains(&format!("{}/v1/completions", server.url))
            && errors[0].contains("503")
            && errors[0].contains("model is loading"),
        "{}",
        errors[0]
    );
    assert!(errors[1].contains("no top_logprobs"), "{}", errors[1]);
    assert!(
        errors[2].contains("not a completions response"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3].contains("2 choices for 1 prompts"),
        "{}",
        errors[3]
    );
}
