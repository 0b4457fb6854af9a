//! Trained with the scoring policy as its system prompt, the model sees in training exactly
//! the prompt an inference worker builds for the same alert: the policy as the system
//! message, then the screening instruction and the rendered alert as the user's message.

use aml_core::format::{SCREENING_INSTRUCTION, render_alert_input};
use aml_core::rng::SeededRng;
use aml_core::{Difficulty, Label};
use aml_model::tiny::init_tiny;
use aml_model::{Architecture, ChatMessage, TextTokenizer, TinySpec};
use aml_synth::{Synthesizer, generate_tier};
use aml_trainer::data::prompt_messages;

const POLICY: &str = "Bank policy: escalate owners of listed entities.";

#[test]
fn training_prompts_equal_the_workers_scoring_prompts() {
    let dir = tempfile::tempdir().unwrap();
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 3).unwrap();
    let tokenizer = TextTokenizer::load(dir.path()).unwrap();
    let synthesizer = Synthesizer::default();
    let samples = generate_tier(&synthesizer, Difficulty::Hard, 6, 9);
    let mut rng = SeededRng::new(4);
    let case = synthesizer.case(&mut rng, Difficulty::Hard, Label::Edge);
    assert_eq!(case.input(), render_alert_input(&case.alert));
    for (index, sample) in samples.iter().enumerate() {
        // A sample's input is its alert rendered by the one formatter the workers use.
        let rendered_alert = &sample.input;
        let scoring = tokenizer
            .render_chat(
                &[
                    ChatMessage::new("system", POLICY),
                    ChatMessage::new(
                        "user",
                        format!("{SCREENING_INSTRUCTION}\n\n{rendered_alert}").trim(),
                    ),
                ],
                true,
            )
            .unwrap();
        let training = tokenizer
            .render_chat(&prompt_messages(sample, Some(POLICY)), true)
            .unwrap();
        assert_eq!(training, scoring, "sample {index}");
    }
    let without = tokenizer
        .render_chat(&prompt_messages(&samples[0], None), true)
        .unwrap();
    assert!(!without.contains(POLICY));
}
