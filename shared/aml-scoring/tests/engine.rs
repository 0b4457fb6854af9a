//! The scoring engine on a tiny random model: batching never changes a score, the prefix is
//! encoded once per policy, rationales come out as text.

use aml_core::Difficulty;
use aml_core::rng::SeededRng;
use aml_integration_tests::datasets::write_reasoning_first_record;
use aml_model::tiny::init_tiny;
use aml_model::{Architecture, LoadOptions, TinySpec};
use aml_proto::v1::Alert;
use aml_scoring::ScoringEngine;
use aml_synth::Synthesizer;

fn alerts(count: usize) -> Vec<Alert> {
    let synthesizer = Synthesizer::default();
    let mut rng = SeededRng::new(5);
    (0..count)
        .map(|index| {
            let label = aml_core::Label::ALL[index % 3];
            synthesizer.case(&mut rng, Difficulty::Medium, label).alert
        })
        .collect()
}

#[test]
fn batched_scores_equal_one_by_one_and_the_prefix_is_encoded_once() {
    let dir = tempfile::tempdir().unwrap();
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).unwrap();
    let mut engine = ScoringEngine::load(dir.path(), None, LoadOptions::cpu_f32()).unwrap();
    let policy = "Screening policy: cite the fields that decide it.";
    let alerts = alerts(12);
    assert!(engine.prefix(policy).unwrap().tokens > 0);
    let batched = engine.score(policy, &alerts, 5).unwrap();
    let one_by_one = engine.score(policy, &alerts, 1).unwrap();
    assert_eq!(
        engine.prefix_encodes(),
        1,
        "the same policy is encoded once"
    );
    for (a, b) in batched.iter().zip(&one_by_one) {
        for (x, y) in [
            (a.p_match, b.p_match),
            (a.p_no_match, b.p_no_match),
            (a.p_edge, b.p_edge),
        ] {
            assert!((x - y).abs() < 1e-5, "batched {x} vs one by one {y}");
        }
        assert!((a.p_match + a.p_no_match + a.p_edge - 1.0).abs() < 1e-9);
    }
    engine.prefix("Another policy.").unwrap();
    assert_eq!(engine.prefix_encodes(), 2);
    let rationales = engine.rationales(policy, &alerts[..5], 8).unwrap();
    assert_eq!(rationales.len(), 5);
    assert_eq!(
        engine.generate_calls(),
        1,
        "five rationales, one generation"
    );
    assert!(
        rationales.iter().all(|text| text.len() < 8 * 64),
        "at most 8 tokens each: {rationales:?}"
    );
    let alone = engine.rationales(policy, &alerts[2..3], 8).unwrap();
    assert_eq!(
        alone[0], rationales[2],
        "batching never changes a greedy rationale"
    );
}

#[test]
fn a_folder_trained_reasoning_first_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).unwrap();
    write_reasoning_first_record(dir.path());
    let error = ScoringEngine::load(dir.path(), None, LoadOptions::cpu_f32())
        .expect_err("a CoT model cannot score")
        .to_string();
    assert!(
        error.contains(&dir.path().display().to_string()) && error.contains("--cot true"),
        "{error}"
    );
}

#[test]
fn prefixes_past_the_byte_budget_go_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).unwrap();
    let mut engine = ScoringEngine::load(dir.path(), None, LoadOptions::cpu_f32()).unwrap();
    engine.prefix("Policy A.").unwrap();
    let one = engine.prefix_bytes();
    let mut engine = engine.with_prefix_budget(2 * one + one / 2);
    engine.prefix("Policy B.").unwrap();
    engine.prefix("Policy A.").unwrap();
    engine.prefix("Policy C.").unwrap();
    assert_eq!(engine.prefix_encodes(), 3);
    assert!(
        engine.prefix_bytes() <= 2 * one + one / 2,
        "B, least recently used, went"
    );
    engine.prefix("Policy A.").unwrap();
    assert_eq!(engine.prefix_encodes(), 3, "A stayed");
    engine.prefix("Policy B.").unwrap();
    assert_eq!(engine.prefix_encodes(), 4, "B is encoded again");
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_with_its_lengths() {
    let dir = tempfile::tempdir().unwrap();
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).unwrap();
    let mut engine = ScoringEngine::load(dir.path(), None, LoadOptions::cpu_f32()).unwrap();
    let policy = "Screening policy: cite the fields that decide it. ".repeat(300);
    let error = engine
        .score(&policy, &alerts(2), 2)
        .expect_err("a policy longer than the 4096-token context")
        .to_string();
    assert!(
        error.starts_with("the prompt does not fit the model's context: prefix ")
            && error.contains("> max_position_embeddings 4096"),
        "{error}"
    );
}
