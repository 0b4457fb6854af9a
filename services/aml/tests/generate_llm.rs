//! `aml generate --provider anthropic` against a stand-in of the Anthropic Messages API that
//! answers as a real model does on a first run: long samples (inputs near the prompt's 350
//! tokens), a preface and a code fence around the lines, `NO MATCH` written with a space, a
//! first answer whose long preface runs it into `max_tokens` mid-line (`stop_reason:
//! max_tokens`), a sample repeated within an answer (a duplicate validation rejects, asked for
//! again), a 429 with `retry-after` and a 529 overloaded error. The key is only in `./.env`. The run ends with at least 30 valid samples
//! per tier after validation and prints its spend.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use aml_core::{Difficulty, SampleRecord};
use aml_integration_tests::llm_standin::{KEY, anthropic_standin};
use aml_integration_tests::mock_http::MockServer;

fn count_lines(path: &std::path::Path) -> BTreeMap<Difficulty, usize> {
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let sample: SampleRecord = serde_json::from_str(line).expect("a dataset line");
        *counts.entry(sample.difficulty).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_llm_run_ends_with_thirty_valid_samples_per_tier_and_its_spend() {
    let requests = Arc::new(AtomicU64::new(0));
    let server = MockServer::start_with(Arc::new(anthropic_standin(Arc::clone(&requests)))).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "ANTHROPIC_API_KEY={KEY}\nANTHROPIC_BASE_URL={}\n",
            server.url
        ),
    )
    .expect(".env");
    let output = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || {
            Command::new(env!("CARGO_BIN_EXE_aml"))
                .current_dir(&dir)
                .env_remove("ANTHROPIC_API_KEY")
                .env_remove("ANTHROPIC_BASE_URL")
                .args(["generate", "--provider", "anthropic", "--per-tier", "30"])
                .args(["--out", "data", "--validate", "--seed", "3"])
                .output()
                .expect("aml runs")
        }
    })
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stderr.contains(KEY) && !stdout.contains(KEY),
        "the key is never printed"
    );

    let data = dir.path().join("data");
    let mut valid: BTreeMap<Difficulty, usize> = BTreeMap::new();
    for file in [
        "easy.jsonl",
        "medium.jsonl",
        "hard.jsonl",
        "validation.jsonl",
    ] {
        for (tier, count) in count_lines(&data.join(file)) {
            *valid.entry(tier).or_default() += count;
        }
    }
    for tier in Difficulty::ALL {
        assert!(
            valid.get(&tier).copied().unwrap_or(0) >= 30,
            "{tier}: {valid:?}\n{stdout}"
        );
    }
    let spend = stdout
        .lines()
        .find(|line| line.starts_with("spend: "))
        .expect("the spend is printed");
    let numbers: Vec<u64> = spend
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    assert!(
        numbers.len() == 3 && numbers.iter().all(|n| *n > 0),
        "{spend}"
    );
    assert!(!stdout.contains("missing after"), "{stdout}");

    let seen = server.seen();
    let statuses_faked = seen.len() as u64 - numbers[0];
    assert_eq!(
        statuses_faked, 2,
        "the 429 and the 529 were retried, not counted"
    );
    let budgets: Vec<u64> = seen
        .iter()
        .filter_map(|request| request.body["max_tokens"].as_u64())
        .collect();
    assert!(budgets.iter().all(|budget| *budget <= 8_192), "{budgets:?}");
    assert!(
        budgets[0] > 2_048,
        "the first request's budget fits its samples: {budgets:?}"
    );
    let counted = |what: &str| -> u64 {
        stdout
            .lines()
            .filter_map(|line| {
                let before = line.split(what).next().filter(|_| line.contains(what))?;
                before.split_whitespace().last()?.parse::<u64>().ok()
            })
            .sum()
    };
    assert!(counted(" answers cut at the token limit") >= 1, "{stdout}");
    assert!(counted(" decision words made canonical") >= 10, "{stdout}");
    assert!(
        stdout
            .lines()
            .filter(|line| line.starts_with("easy: "))
            .count()
            >= 2,
        "what validation rejected was asked for again: {stdout}"
    );
    println!("{stdout}");
}
