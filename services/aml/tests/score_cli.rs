//! `aml score` scores a JSONL file of alerts as a worker would: the same probabilities as the
//! scoring engine, a rationale for every escalated alert, the results as JSONL with their
//! Arrow twin; a model trained reasoning-first is refused and a bad line is named, with no
//! backtrace.

use std::process::Output;

use aml_core::Difficulty;
use aml_core::policy::DEFAULT_POLICY;
use aml_core::rng::SeededRng;
use aml_integration_tests::cli::Cli;
use aml_integration_tests::datasets::copy_as_reasoning_first;
use aml_model::tiny::init_tiny;
use aml_model::{Architecture, LoadOptions, TinySpec};
use aml_proto::v1::{Alert, ScoreResult};
use aml_scoring::ScoringEngine;
use aml_synth::Synthesizer;

fn aml(args: &[&str]) -> Output {
    Cli::new(env!("CARGO_BIN_EXE_aml")).run(args, &[("RUST_BACKTRACE", "0")])
}

fn alerts(count: usize) -> Vec<Alert> {
    let synthesizer = Synthesizer::default();
    let mut rng = SeededRng::new(4);
    (0..count)
        .map(|index| {
            let mut alert = synthesizer
                .case(
                    &mut rng,
                    Difficulty::ALL[index % 3],
                    aml_core::Label::ALL[index % 3],
                )
                .alert;
            alert.alert_id = format!("adhoc-{index}");
            alert.bank = "alpha".to_owned();
            alert
        })
        .collect()
}

#[test]
fn scores_a_file_as_the_worker_does_and_refuses_a_cot_model() {
    let root = tempfile::tempdir().expect("dir");
    let model = root.path().join("model");
    init_tiny(&TinySpec::tiny(Architecture::Llama), &model, 7).expect("tiny model");
    let alerts = alerts(9);
    let input = root.path().join("alerts.jsonl");
    let lines: Vec<String> = alerts
        .iter()
        .map(|alert| serde_json::to_string(alert).expect("json"))
        .collect();
    std::fs::write(&input, lines.join("\n")).expect("alerts");
    let out = root.path().join("out/results.jsonl");
    let (model_text, input_text, out_text) = (
        model.display().to_string(),
        input.display().to_string(),
        out.display().to_string(),
    );
    let scored = aml(&[
        "score",
        "--model",
        &model_text,
        "--alerts",
        &input_text,
        "--out",
        &out_text,
        "--rationale",
        "--tau",
        "0",
        "--device",
        "cpu",
        "--batch-size",
        "4",
    ]);
    let stdout = String::from_utf8_lossy(&scored.stdout);
    assert!(
        scored.status.success(),
        "{}",
        String::from_utf8_lossy(&scored.stderr)
    );
    assert!(
        stdout.contains("9 alerts scored") && stdout.contains("9 escalated"),
        "{stdout}"
    );

    let results: Vec<ScoreResult> = std::fs::read_to_string(&out)
        .expect("results")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a ScoreResult"))
        .collect();
    let twin = std::fs::read(root.path().join("out/results.arrow")).expect("the Arrow twin");
    assert_eq!(
        aml_batch::read_results_arrow(&twin).expect("arrow").len(),
        9
    );
    let mut engine = ScoringEngine::load(&model, None, LoadOptions::cpu_f32()).expect("engine");
    let expected = engine.score(DEFAULT_POLICY, &alerts, 9).expect("scores");
    let rationales = engine
        .rationales(DEFAULT_POLICY, &alerts, 96)
        .expect("rationales");
    assert_eq!(results.len(), 9);
    for ((result, p), rationale) in results.iter().zip(&expected).zip(&rationales) {
        assert!(
            (result.p_match - p.p_match).abs() < 1e-6,
            "{result:?} vs {p:?}"
        );
        assert!((result.p_edge - p.p_edge).abs() < 1e-6);
        assert!(result.escalated);
        assert_eq!(&result.rationale, rationale);
        assert_eq!(result.bank, "alpha");
    }

    let cot = root.path().join("cot-model");
    copy_as_reasoning_first(&model, &cot);
    let refused = aml(&[
        "score",
        "--model",
        &cot.display().to_string(),
        "--alerts",
        &input_text,
        "--out",
        &out_text,
        "--device",
        "cpu",
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains(&cot.display().to_string()) && stderr.contains("trained with --cot true"),
        "{stderr}"
    );
    assert!(!stderr.contains("stack backtrace"), "{stderr}");

    std::fs::write(&input, format!("{}\n{{\"alert_id\": 3\n", lines[0])).expect("bad file");
    let bad = aml(&[
        "score",
        "--model",
        &model_text,
        "--alerts",
        &input_text,
        "--out",
        &out_text,
    ]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        stderr.contains(&format!("{input_text}:2: not an alert")),
        "{stderr}"
    );
}
