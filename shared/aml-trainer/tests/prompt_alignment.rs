//! Trained with the scoring policy as its system prompt, the model reads in training exactly
//! the token ids an inference worker runs for the same alert, with the worker's own split
//! tokenisation (the shared prefix encoded apart from the alert): checked on the token ids,
//! on a byte-level BPE tokenizer (as Llama 3) and on a SentencePiece-style one (as Mistral),
//! under a short policy and the built-in one. The answer the worker scores is how each
//! decision-first training target starts.

use aml_core::format::{render_alert_input, user_message};
use aml_core::policy::DEFAULT_POLICY;
use aml_core::rng::SeededRng;
use aml_core::{Difficulty, Label};
use aml_model::tiny::init_tiny;
use aml_model::{Architecture, TextTokenizer, TinySpec};
use aml_scoring::{scored_answers, scoring_token_ids};
use aml_synth::{Synthesizer, generate_tier};
use aml_trainer::data::{Target, prompt_ids, prompt_messages, target_text};

const POLICY: &str = "Bank policy: escalate owners of listed entities.";

fn tokenizer(sentencepiece: bool) -> (tempfile::TempDir, TextTokenizer) {
    let dir = tempfile::tempdir().expect("dir");
    let spec = TinySpec {
        sentencepiece,
        ..TinySpec::tiny(Architecture::Llama)
    };
    init_tiny(&spec, dir.path(), 3).expect("tiny model");
    let tokenizer = TextTokenizer::load(dir.path()).expect("tokenizer");
    (dir, tokenizer)
}

#[test]
fn training_token_ids_equal_the_workers_split_tokenisation() {
    let synthesizer = Synthesizer::default();
    let mut samples = generate_tier(&synthesizer, Difficulty::Hard, 6, 9);
    samples.extend(generate_tier(&synthesizer, Difficulty::Easy, 6, 2));
    let mut rng = SeededRng::new(4);
    let case = synthesizer.case(&mut rng, Difficulty::Hard, Label::Edge);
    assert_eq!(case.input(), render_alert_input(&case.alert));
    for sentencepiece in [false, true] {
        let (_dir, tokenizer) = tokenizer(sentencepiece);
        let answers = scored_answers(&tokenizer).unwrap();
        for policy in [POLICY, DEFAULT_POLICY] {
            for (index, sample) in samples.iter().enumerate() {
                let message = user_message(&sample.instruction, &sample.input);
                let (prefix, own) = scoring_token_ids(&tokenizer, policy, &message).unwrap();
                let training = prompt_ids(&tokenizer, sample, Some(policy)).unwrap();
                assert_eq!(
                    [prefix, own.clone()].concat(),
                    training,
                    "sentencepiece {sentencepiece}, sample {index}"
                );
                if sentencepiece {
                    // Encoded on its own, the message would start as a text does.
                    assert_ne!(tokenizer.encode(&message, false).unwrap()[0], own[0]);
                }
                let target = tokenizer
                    .encode(&target_text(sample, Target::OutputOnly), false)
                    .unwrap();
                let label = Label::ALL
                    .iter()
                    .position(|label| *label == sample.label)
                    .unwrap();
                assert!(
                    target.starts_with(&answers[label]),
                    "sentencepiece {sentencepiece}, sample {index}: the scored answer starts the target"
                );
            }
        }
    }
    let (_dir, tokenizer) = tokenizer(false);
    let without = tokenizer
        .render_chat(&prompt_messages(&samples[0], None), true)
        .unwrap();
    assert!(!without.contains(POLICY));
}
