//! The adapters against a local HTTP server that speaks each provider's wire format:
//! success, cache hit without a second call, 429 with Retry-After honoured, 500 retried
//! then success, 401 not retried.

use std::time::{Duration, Instant};

use aml_integration_tests::mock_http::{MockServer, Reply, Seen};
use aml_providers::{
    CompletionRequest, ProviderClient, ProviderError, ProviderKind, ProviderSettings,
};

fn anthropic_ok(text: &str) -> Reply {
    let body = serde_json::json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5}});
    (200, Vec::new(), body.to_string())
}

fn openai_ok(text: &str) -> Reply {
    let body = serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]});
    (200, Vec::new(), body.to_string())
}

fn settings(kind: ProviderKind, url: &str, cache: Option<&std::path::Path>) -> ProviderSettings {
    let environment = vec![
        ("ANTHROPIC_API_KEY".to_owned(), "sk-ant-test".to_owned()),
        ("PERPLEXITY_API_KEY".to_owned(), "pplx-test".to_owned()),
        ("OPENAI_API_KEY".to_owned(), "sk-test".to_owned()),
        ("OPENAI_BASE_URL".to_owned(), format!("{url}/v1")),
    ];
    let mut settings =
        ProviderSettings::from_environment(kind, "test-model", &environment).expect("settings");
    settings.base_url = Some(match kind {
        ProviderKind::OpenAi => format!("{url}/v1"),
        _ => url.to_owned(),
    });
    settings.cache_dir = cache.map(std::path::Path::to_owned);
    settings.initial_backoff = Duration::from_millis(20);
    settings.seed = Some(7);
    settings
}

fn request() -> CompletionRequest {
    CompletionRequest {
        system: Some("You judge AML alerts.".to_owned()),
        prompt: "Is Ivan Petrov the listed Iwan Petrow?".to_owned(),
        max_tokens: None,
    }
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[tokio::test]
async fn each_wire_format_succeeds_and_a_cache_hit_makes_no_second_call() {
    let server = MockServer::start(vec![
        anthropic_ok("MATCH"),
        openai_ok("EDGE"),
        openai_ok("NO_MATCH"),
    ])
    .await;
    let cache = tempfile::tempdir().expect("cache dir");

    let anthropic = ProviderClient::new(settings(
        ProviderKind::Anthropic,
        &server.url,
        Some(cache.path()),
    ))
    .expect("client");
    let first = anthropic.complete(&request()).await.expect("anthropic");
    assert_eq!((first.text.as_str(), first.cached), ("MATCH", false));
    let again = anthropic.complete(&request()).await.expect("cached");
    assert_eq!(
        (again.text.as_str(), again.cached, again.attempts),
        ("MATCH", true, 0)
    );

    let perplexity =
        ProviderClient::new(settings(ProviderKind::Perplexity, &server.url, None)).expect("client");
    assert_eq!(
        perplexity
            .complete(&request())
            .await
            .expect("perplexity")
            .text,
        "EDGE"
    );
    let openai =
        ProviderClient::new(settings(ProviderKind::OpenAi, &server.url, None)).expect("client");
    assert_eq!(
        openai.complete(&request()).await.expect("openai").text,
        "NO_MATCH"
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 3, "the cache hit made no HTTP call");
    assert_eq!(seen[0].path, "/v1/messages");
    assert_eq!(header(&seen[0], "x-api-key"), Some("sk-ant-test"));
    assert_eq!(header(&seen[0], "anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen[0].body["system"], "You judge AML alerts.");
    assert_eq!(seen[0].body["messages"][0]["role"], "user");
    assert!(seen[0].body["max_tokens"].as_u64().is_some());
    assert_eq!(seen[1].path, "/chat/completions");
    assert_eq!(header(&seen[1], "authorization"), Some("Bearer pplx-test"));
    assert_eq!(seen[1].body["messages"][0]["role"], "system");
    assert_eq!(seen[2].path, "/v1/chat/completions");
    assert_eq!(header(&seen[2], "authorization"), Some("Bearer sk-test"));
    assert_eq!(seen[2].body["seed"], 7);
}

#[tokio::test]
async fn rate_limited_request_waits_for_retry_after() {
    let limited = (
        429,
        vec![("retry-after".to_owned(), "1".to_owned())],
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#.to_owned(),
    );
    let server = MockServer::start(vec![limited, anthropic_ok("MATCH")]).await;
    let client =
        ProviderClient::new(settings(ProviderKind::Anthropic, &server.url, None)).expect("client");
    let started = Instant::now();
    let answer = client
        .complete(&request())
        .await
        .expect("answer after the wait");
    assert_eq!((answer.text.as_str(), answer.attempts), ("MATCH", 2));
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn server_error_is_retried_then_succeeds() {
    let failing = (
        500,
        Vec::new(),
        r#"{"error":{"message":"upstream overloaded"}}"#.to_owned(),
    );
    let server = MockServer::start(vec![failing.clone(), failing, openai_ok("EDGE")]).await;
    let client =
        ProviderClient::new(settings(ProviderKind::OpenAi, &server.url, None)).expect("client");
    let answer = client
        .complete(&request())
        .await
        .expect("third attempt succeeds");
    assert_eq!((answer.text.as_str(), answer.attempts), ("EDGE", 3));
    assert_eq!(server.seen().len(), 3);
}

#[tokio::test]
async fn unauthorised_fails_at_once_with_a_clear_message() {
    let denied = (
        401,
        Vec::new(),
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#
            .to_owned(),
    );
    let server = MockServer::start(vec![denied, anthropic_ok("MATCH")]).await;
    let client =
        ProviderClient::new(settings(ProviderKind::Anthropic, &server.url, None)).expect("client");
    let error = client.complete(&request()).await.expect_err("401 is final");
    assert!(matches!(error, ProviderError::Auth { status: 401, .. }));
    assert_eq!(
        error.to_string(),
        "anthropic rejected the API key (HTTP 401): invalid x-api-key"
    );
    assert_eq!(server.seen().len(), 1, "not retried");
}

#[test]
fn missing_key_names_the_variable() {
    let error = ProviderSettings::from_environment(ProviderKind::Perplexity, "sonar", &[])
        .expect_err("no key");
    assert_eq!(error.to_string(), "no API key: set PERPLEXITY_API_KEY");
}
