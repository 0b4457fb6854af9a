//! The OpenAI-compatible backend against a local server that speaks the completions wire
//! format and computes echoed prompt log-probabilities with the same tiny model: its
//! probabilities equal the in-process engine's, and server failures are named clearly.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aml_core::Difficulty;
use aml_core::rng::SeededRng;
use aml_integration_tests::mock_http::{MockServer, Reply, Seen};
use aml_model::tiny::init_tiny;
use aml_model::{Architecture, CausalLm, LoadOptions, TinySpec};
use aml_proto::v1::Alert;
use aml_scoring::{RemoteEndpoint, RemoteScorer, ScoringEngine};
use aml_synth::Synthesizer;
use serde_json::{Value, json};
use tch::{Kind, Tensor};

const POLICY: &str = "Screening policy: escalate when identifiers agree.";

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

/// What vLLM returns for `echo: true, logprobs: 1, max_tokens: 1`: the prompt's tokens with
/// their log-probabilities (none for the first), then one generated token.
fn echo_choice(model: &CausalLm, index: usize, prompt: &[i64]) -> Value {
    let _no_grad = tch::no_grad_guard();
    let ids = Tensor::from_slice(prompt).view([1, prompt.len() as i64]);
    let log_probs = model
        .forward(&ids)
        .expect("forward")
        .log_softmax(-1, Kind::Double)
        .squeeze_dim(0);
    let mut token_logprobs = vec![Value::Null];
    for (position, &token) in prompt.iter().enumerate().skip(1) {
        let value = log_probs.get(position as i64 - 1).double_value(&[token]);
        token_logprobs.push(json!(value));
    }
    let last = log_probs.get(prompt.len() as i64 - 1);
    let next = last.argmax(0, false).int64_value(&[]);
    token_logprobs.push(json!(last.double_value(&[next])));
    let tokens: Vec<String> = prompt
        .iter()
        .chain([&next])
        .map(|id| format!("<{id}>"))
        .collect();
    json!({
        "index": index,
        "text": tokens.concat(),
        "logprobs": {"tokens": tokens, "token_logprobs": token_logprobs, "top_logprobs": null},
        "finish_reason": "length",
    })
}

fn vllm_like(model: CausalLm) -> impl Fn(&Seen) -> Reply + Send + Sync {
    let model = Mutex::new(model);
    move |request: &Seen| {
        let model = model.lock().expect("model");
        let body = &request.body;
        if body["echo"] != json!(true) {
            let reply = json!({"choices": [{"index": 0, "text": "  Names and DOB agree. ", "finish_reason": "length"}]});
            return (200, Vec::new(), reply.to_string());
        }
        let prompts: Vec<Vec<i64>> =
            serde_json::from_value(body["prompt"].clone()).expect("prompt is lists of ids");
        // Answer out of order: the client must sort by `index`.
        let choices: Vec<Value> = prompts
            .iter()
            .enumerate()
            .rev()
            .map(|(index, prompt)| echo_choice(&model, index, prompt))
            .collect();
        let reply =
            json!({"object": "text_completion", "model": body["model"], "choices": choices});
        (200, Vec::new(), reply.to_string())
    }
}

fn endpoint(url: &str) -> RemoteEndpoint {
    RemoteEndpoint {
        base_url: url.to_owned(),
        model: "aml-screening".to_owned(),
        api_key: Some("vllm-key".to_owned()),
        timeout: Duration::from_secs(30),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_scores_equal_the_local_engine() {
    let dir = tempfile::tempdir().unwrap();
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).unwrap();
    let alerts = alerts(7);
    let mut engine = ScoringEngine::load(dir.path(), None, LoadOptions::cpu_f32()).unwrap();
    let local = engine.score(POLICY, &alerts, 4).unwrap();

    let model = CausalLm::load(dir.path(), LoadOptions::cpu_f32()).unwrap();
    let server = MockServer::start_with(Arc::new(vllm_like(model))).await;
    let mut remote = RemoteScorer::new(dir.path(), endpoint(&server.url)).unwrap();
    let scored = remote.score(POLICY, &alerts, 3).await.unwrap();
    assert_eq!(scored.len(), alerts.len());
    for (index, (a, b)) in scored.iter().zip(&local).enumerate() {
        for (x, y) in [
            (a.p_match, b.p_match),
            (a.p_no_match, b.p_no_match),
            (a.p_edge, b.p_edge),
        ] {
            assert!(
                (x - y).abs() < 1e-5,
                "alert {index}: remote {x} vs local {y}"
            );
        }
    }
    assert_eq!(remote.prefix_encodes(), 1);

    let seen = server.seen();
    assert_eq!(seen.len(), 3, "7 alerts at 3 per request");
    let first = &seen[0];
    assert_eq!(first.path, "/v1/completions");
    assert!(
        first
            .headers
            .contains(&("authorization".to_owned(), "Bearer vllm-key".to_owned()))
    );
    assert_eq!(first.body["model"], "aml-screening");
    assert_eq!(first.body["logprobs"], 1);
    let prompts: Vec<Vec<i64>> = serde_json::from_value(first.body["prompt"].clone()).unwrap();
    assert_eq!(prompts.len(), 9, "three answers for each of three alerts");
    let shared = prompts
        .iter()
        .map(|prompt| {
            prompts[0]
                .iter()
                .zip(prompt)
                .take_while(|(a, b)| a == b)
                .count()
        })
        .min()
        .unwrap();
    assert!(
        shared > 10,
        "every prompt starts with the policy tokens, so the server can cache them"
    );

    let rationale = remote.rationale(POLICY, &alerts[0], 48).await.unwrap();
    assert_eq!(rationale, "Names and DOB agree.");
    let last = server.seen().pop().unwrap();
    assert_eq!(last.body["max_tokens"], 48);
}

#[tokio::test]
async fn server_failures_name_the_endpoint_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).unwrap();
    let choices: Vec<Value> = (0..3)
        .map(|index| json!({"index": index, "text": "x"}))
        .collect();
    let no_logprobs = json!({ "choices": choices });
    let server = MockServer::start(vec![
        (
            503,
            Vec::new(),
            r#"{"error":"model is loading"}"#.to_owned(),
        ),
        (200, Vec::new(), no_logprobs.to_string()),
        (200, Vec::new(), "not json".to_owned()),
    ])
    .await;
    let mut remote = RemoteScorer::new(dir.path(), endpoint(&server.url)).unwrap();
    let alerts = alerts(1);
    let unavailable = remote
        .score(POLICY, &alerts, 8)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        unavailable.contains(&format!("{}/v1/completions", server.url))
            && unavailable.contains("503")
            && unavailable.contains("model is loading"),
        "{unavailable}"
    );
    let without = remote
        .score(POLICY, &alerts, 8)
        .await
        .unwrap_err()
        .to_string();
    assert!(without.contains("echo with logprobs"), "{without}");
    let garbage = remote
        .score(POLICY, &alerts, 8)
        .await
        .unwrap_err()
        .to_string();
    assert!(garbage.contains("not a completions response"), "{garbage}");
}
