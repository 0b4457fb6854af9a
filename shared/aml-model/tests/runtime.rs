//! The runtime's own guarantees: prefix-cached batched scoring equals scoring each full
//! prompt alone, multi-token answers are scored exactly, batched cached generation equals
//! naive generation, activation recomputation gives the same gradients, FP8 and bf16 run.

use aml_model::generate::{GenerationConfig, generate};
use aml_model::scoring::score_answers;
use aml_model::tiny::init_tiny;
use aml_model::training::{IGNORE_INDEX, TrainBatch, loss_and_backward};
use aml_model::{Architecture, CausalLm, LoadOptions, Lora, LoraConfig, LoraInit, TinySpec};
use tch::{Device, Kind, Tensor};

fn tiny(architecture: Architecture) -> (tempfile::TempDir, CausalLm) {
    let dir = tempfile::tempdir().expect("temp dir");
    init_tiny(&TinySpec::tiny(architecture), dir.path(), 11).expect("init-tiny");
    let model = CausalLm::load(dir.path(), LoadOptions::cpu_f32()).expect("load");
    (dir, model)
}

fn tokens(seed: i64, len: usize) -> Vec<i64> {
    (0..len as i64)
        .map(|i| 5 + (seed * 131 + i * 17) % 400)
        .collect()
}

fn answers() -> Vec<Vec<i64>> {
    vec![vec![300], vec![41, 42, 43], vec![77, 78]]
}

/// Log-probability of `answer` after `prompt` from plain full forward passes.
fn naive_log_prob(model: &CausalLm, prompt: &[i64], answer: &[i64]) -> f64 {
    let mut sequence = prompt.to_vec();
    sequence.extend(&answer[..answer.len() - 1]);
    let ids = Tensor::from_slice(&sequence).view([1, -1]);
    let log_probs = tch::no_grad(|| model.forward(&ids))
        .expect("forward")
        .log_softmax(-1, Kind::Double);
    answer
        .iter()
        .enumerate()
        .map(|(k, &token)| log_probs.double_value(&[0, (prompt.len() + k - 1) as i64, token]))
        .sum()
}

#[test]
fn multi_token_answers_are_scored_exactly() {
    let (_dir, model) = tiny(Architecture::Llama);
    let prompt = tokens(1, 17);
    let scores =
        score_answers(&model, None, std::slice::from_ref(&prompt), &answers()).expect("score");
    for (index, answer) in answers().iter().enumerate() {
        let naive = naive_log_prob(&model, &prompt, answer);
        assert!(
            (scores[0].log_probs[index] - naive).abs() < 1e-5,
            "answer {index}: {} vs {naive}",
            scores[0].log_probs[index]
        );
    }
    let total: f64 = scores[0].probabilities.iter().sum();
    assert!((total - 1.0).abs() < 1e-9);
}

#[test]
fn prefix_cached_batched_scoring_equals_scoring_each_full_prompt() {
    for architecture in [Architecture::Llama, Architecture::Qwen3] {
        let (_dir, model) = tiny(architecture);
        let prefix_ids = tokens(2, 48);
        let suffixes: Vec<Vec<i64>> = [3usize, 25, 9, 1, 14]
            .iter()
            .enumerate()
            .map(|(i, &len)| tokens(10 + i as i64, len))
            .collect();
        let prefix = model
            .encode_prefix(&Tensor::from_slice(&prefix_ids))
            .expect("prefix");
        let batched = score_answers(&model, Some(&prefix), &suffixes, &answers()).expect("batched");
        for (suffix, cached) in suffixes.iter().zip(&batched) {
            let mut full = prefix_ids.clone();
            full.extend(suffix);
            let alone = score_answers(&model, None, &[full], &answers()).expect("alone");
            for (a, b) in cached.log_probs.iter().zip(&alone[0].log_probs) {
                assert!((a - b).abs() < 1e-5, "{architecture:?}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn batched_cached_generation_equals_naive_greedy_decoding() {
    let (_dir, model) = tiny(Architecture::Qwen2);
    let prefix_ids = tokens(3, 20);
    let prompts: Vec<Vec<i64>> = vec![tokens(4, 5), tokens(5, 12), tokens(6, 1)];
    let config = GenerationConfig {
        max_new_tokens: 8,
        ..GenerationConfig::default()
    };
    let prefix = model
        .encode_prefix(&Tensor::from_slice(&prefix_ids))
        .expect("prefix");
    let generated = generate(&model, Some(&prefix), &prompts, &config).expect("generate");
    for (prompt, output) in prompts.iter().zip(&generated) {
        let mut sequence = prefix_ids.clone();
        sequence.extend(prompt);
        let mut naive = Vec::new();
        for _ in 0..8 {
            let ids = Tensor::from_slice(&sequence).view([1, -1]);
            let logits = tch::no_grad(|| model.forward(&ids)).expect("forward");
            let next = logits
                .get(0)
                .get(sequence.len() as i64 - 1)
                .argmax(-1, false)
                .int64_value(&[]);
            naive.push(next);
            sequence.push(next);
        }
        assert_eq!(output, &naive);
    }
}

#[test]
fn sampling_is_seeded_and_stops_at_eos() {
    let (_dir, model) = tiny(Architecture::Mistral);
    let prompts = vec![tokens(7, 6), tokens(8, 3)];
    let config = GenerationConfig {
        max_new_tokens: 12,
        temperature: 0.8,
        top_p: 0.9,
        seed: 5,
        stop_ids: Vec::new(),
    };
    let first = generate(&model, None, &prompts, &config).expect("sample");
    let second = generate(&model, None, &prompts, &config).expect("sample again");
    assert_eq!(first, second);
    assert!(first.iter().all(|output| output.len() == 12));
    let stop = first[0][3];
    let stopping = GenerationConfig {
        stop_ids: vec![stop],
        ..config
    };
    let stopped = generate(&model, None, &prompts, &stopping).expect("stop");
    let cut = first[0]
        .iter()
        .position(|&token| token == stop)
        .expect("stop token present");
    assert_eq!(stopped[0], first[0][..cut].to_vec());
}

fn lora_grads(recompute: bool) -> (f64, Vec<(String, Tensor)>) {
    let (_dir, mut model) = tiny(Architecture::Llama);
    let config = LoraConfig {
        r: 4,
        alpha: 8.0,
        dropout: 0.1,
        ..LoraConfig::default()
    };
    let lora = Lora::attach_new(&mut model, config, LoraInit::RandomBoth(3)).expect("attach");
    let ids = Tensor::from_slice(&tokens(9, 24)).view([2, 12]);
    let labels = ids.copy();
    let _ = labels.narrow(1, 0, 4).fill_(IGNORE_INDEX);
    let batch = TrainBatch::unpacked(ids, labels);
    let loss = loss_and_backward(&model, &batch, recompute, 42).expect("backward");
    let mut grads: Vec<(String, Tensor)> = lora
        .vars
        .variables()
        .into_iter()
        .map(|(name, var)| (name, var.grad()))
        .collect();
    grads.sort_by(|a, b| a.0.cmp(&b.0));
    (loss, grads)
}

#[test]
fn recomputed_activations_give_the_same_gradients() {
    let (loss_plain, plain) = lora_grads(false);
    let (loss_recomputed, recomputed) = lora_grads(true);
    assert!((loss_plain - loss_recomputed).abs() < 1e-6);
    assert_eq!(plain.len(), 28, "2 layers x 7 projections x (A, B)");
    for ((name, a), (_, b)) in plain.iter().zip(&recomputed) {
        assert!(
            a.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "{name} has a gradient"
        );
        let diff = (a - b).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: {diff}");
    }
}

#[test]
fn fp8_weights_and_bf16_compute_stay_close_to_f32() {
    let dir = tempfile::tempdir().expect("temp dir");
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).expect("init-tiny");
    let ids = Tensor::from_slice(&tokens(12, 16)).view([1, -1]);
    let reference = CausalLm::load(dir.path(), LoadOptions::cpu_f32()).expect("f32");
    let expected = tch::no_grad(|| reference.forward(&ids)).expect("forward");
    let norm = expected.norm().double_value(&[]);
    for (fp8_weights, kind, tolerance) in [
        (false, Kind::BFloat16, 0.02),
        (true, Kind::BFloat16, 0.08),
        (true, Kind::Float, 0.08),
    ] {
        let options = LoadOptions {
            device: Device::Cpu,
            kind,
            fp8_weights,
        };
        let model = CausalLm::load(dir.path(), options).expect("load");
        let logits = tch::no_grad(|| model.forward(&ids)).expect("forward");
        let error = (&logits - &expected).norm().double_value(&[]) / norm;
        println!("fp8 {fp8_weights} {kind:?}: relative L2 error {error:.5}");
        assert!(
            error < tolerance,
            "fp8 {fp8_weights} {kind:?}: relative L2 error {error}"
        );
        if fp8_weights {
            let fp8_bytes: i64 = model
                .linears()
                .iter()
                .map(|(_, linear)| linear.weight.bytes())
                .sum();
            let f32_bytes: i64 = reference
                .linears()
                .iter()
                .map(|(_, linear)| linear.weight.bytes())
                .sum();
            assert!(
                fp8_bytes * 3 < f32_bytes,
                "fp8 {fp8_bytes} vs f32 {f32_bytes} bytes"
            );
        }
    }
}
