//! The LLM judge against a mock provider: a cache hit makes no second call; malformed JSON is
//! asked for again once, then counted as a judge error, never a crash.

use std::time::Duration;

use aml_core::{Difficulty, Label, SampleRecord};
use aml_integration_tests::mock_http::{MockServer, Reply};
use aml_judge::llm::LlmJudge;
use aml_judge::{Prediction, evaluate, join};
use aml_providers::{ProviderClient, ProviderKind, ProviderSettings};

fn openai(text: &str) -> Reply {
    let body = serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]});
    (200, Vec::new(), body.to_string())
}

fn judge(url: &str, cache: &std::path::Path) -> LlmJudge {
    let environment = vec![("OPENAI_API_KEY".to_owned(), "sk-test".to_owned())];
    let mut settings =
        ProviderSettings::from_environment(ProviderKind::OpenAi, "judge-model", &environment)
            .expect("settings");
    settings.base_url = Some(url.to_owned());
    settings.cache_dir = Some(cache.to_owned());
    settings.initial_backoff = Duration::from_millis(10);
    LlmJudge::new(ProviderClient::new(settings).expect("client"))
}

fn case(id: &str) -> (SampleRecord, Prediction) {
    let gold = SampleRecord {
        id: Some(id.to_owned()),
        instruction: "decide".into(),
        input: format!("Customer (person):\n  name: Case {id}\n  date of birth: 1980-01-02"),
        output: "MATCH — DOB".into(),
        cot: "DOB agrees".into(),
        difficulty: Difficulty::Easy,
        label: Label::Match,
    };
    let prediction = Prediction {
        id: Some(id.to_owned()),
        label: Label::Match,
        output: "MATCH — date of birth 1980-01-02 agrees".into(),
        cot: String::new(),
        score: None,
    };
    (gold, prediction)
}

#[tokio::test]
async fn cached_verdict_makes_no_second_call() {
    let server = MockServer::start(vec![openai(r#"{"sufficiency": 1, "fabricated": null}"#)]).await;
    let cache = tempfile::tempdir().expect("cache");
    let (gold, prediction) = case("a");
    let golds = vec![gold];
    let predictions = vec![prediction];
    let pairs = join(&golds, &predictions).expect("join");
    let first = evaluate(&pairs, &judge(&server.url, cache.path())).await;
    let second = evaluate(&pairs, &judge(&server.url, cache.path())).await;
    assert_eq!(first.rubric_mean, 1.0);
    assert_eq!(second.rubric_mean, 1.0);
    assert_eq!(
        server.seen().len(),
        1,
        "the second evaluation came from the cache"
    );
}

#[tokio::test]
async fn malformed_json_is_re_asked_once_then_counted_as_a_judge_error() {
    let server = MockServer::start(vec![
        openai("Sure! The rationale is good."),
        openai(r#"{"sufficiency": 0.5, "fabricated": "passport 123456 is invented"}"#),
        openai("not json"),
        openai("still not json"),
    ])
    .await;
    let cache = tempfile::tempdir().expect("cache");
    let (gold_a, prediction_a) = case("a");
    let (gold_b, prediction_b) = case("b");
    let golds = vec![gold_a, gold_b];
    let predictions = vec![prediction_a, prediction_b];
    let pairs = join(&golds, &predictions).expect("join");
    let report = evaluate(&pairs, &judge(&server.url, cache.path())).await;
    assert_eq!(server.seen().len(), 4, "each item asked at most twice");
    assert_eq!(
        report.items[0].rubric,
        Some(0.0),
        "a fabricated detail zeroes the item"
    );
    assert_eq!(
        report.items[0].fabricated.as_deref(),
        Some("passport 123456 is invented")
    );
    assert!(
        report.items[1]
            .judge_error
            .as_deref()
            .unwrap_or("")
            .contains("invalid JSON twice")
    );
    assert_eq!(report.judge_error_rate, 0.5);
    assert_eq!(report.classification.n, 2);
}
