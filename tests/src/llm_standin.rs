//! A stand-in of the Anthropic Messages API that answers sample requests as a real model does
//! on a first run: long samples (inputs near the prompt's 350 tokens), a preface and a code
//! fence around the lines, `NO MATCH` written with a space, a first answer whose long preface
//! runs it into `max_tokens` mid-line (`stop_reason: max_tokens`), a sample repeated within an
//! answer, a 429 with `retry-after` (2nd request) and a 529 overloaded error (4th). The
//! samples come from the offline generator, for the tier and labels the prompt asks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aml_core::{Difficulty, Label, SampleRecord};
use aml_synth::{Synthesizer, generate_tier};
use serde_json::json;

use crate::mock_http::{Reply, Seen};

/// The key the stand-in accepts (`x-api-key`); anything else gets a 401.
pub const KEY: &str = "sk-ant-only-in-dotenv";

/// What the prompt asks for: the tier and the samples of each label.
fn asked(prompt: &str) -> (Difficulty, Vec<(Label, usize)>) {
    let tier = Difficulty::ALL
        .into_iter()
        .find(|tier| prompt.contains(&format!("DIFFICULTY=\"{tier}\"")))
        .expect("the prompt names the tier");
    let mix = prompt
        .split("Labels of this batch: ")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .expect("the prompt names the labels");
    let labels = mix
        .split(", ")
        .map(|part| {
            let (count, label) = part.split_once(' ').expect("`<count> <label>`");
            (
                label.parse().expect("a label"),
                count.parse().expect("a count"),
            )
        })
        .collect();
    (tier, labels)
}

/// A sample as a model writes it: a long case context (the screening record restated,
/// about 300 tokens), longer reasoning, `NO MATCH` with a space.
fn written(sample: &SampleRecord) -> String {
    let mut value = serde_json::to_value(sample).expect("json");
    let fields = value.as_object_mut().expect("object");
    fields.remove("id");
    let mut input = sample.input.clone();
    while input.chars().count() < 1_150 {
        input = format!("{input} Screening record restated: {}", sample.input);
    }
    let input: String = input.chars().take(1_300).collect();
    fields["input"] = json!(input);
    let cot: String = format!(
        "{} Weighing each field in turn: the name similarity alone is not decisive; the date of \
         birth and nationality carry the most weight; identifiers settle it when present.",
        sample.cot
    )
    .chars()
    .take(960)
    .collect();
    fields["cot"] = json!(cot);
    if sample.label == Label::NoMatch {
        fields["output"] = json!(sample.output.replacen("NO_MATCH", "NO MATCH", 1));
    }
    value.to_string()
}

/// The stand-in: checks the key, fails the 2nd request with a 429 and the 4th with a 529,
/// and answers the rest with the samples asked for (the first after a long preface), cut
/// where `max_tokens` (4 characters a token) runs out.
pub fn anthropic_standin(requests: Arc<AtomicU64>) -> impl Fn(&Seen) -> Reply + Send + Sync {
    move |seen: &Seen| {
        let header = |name: &str| {
            seen.headers
                .iter()
                .find(|(header, _)| header == name)
                .map(|(_, value)| value.as_str())
        };
        if header("x-api-key") != Some(KEY) {
            let error = json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
            return (401, Vec::new(), error.to_string());
        }
        let number = requests.fetch_add(1, Ordering::SeqCst) + 1;
        if number == 2 {
            let error = json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your per-minute rate limit"}});
            return (
                429,
                vec![("retry-after".into(), "1".into())],
                error.to_string(),
            );
        }
        if number == 4 {
            let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
            return (529, Vec::new(), error.to_string());
        }
        let prompt = seen.body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default();
        let max_tokens = seen.body["max_tokens"].as_u64().unwrap_or(0) as usize;
        let (tier, labels) = asked(prompt);
        let pool = generate_tier(&Synthesizer::default(), tier, 60, 1000 + number);
        let mut preface = "Here are the samples, one JSON object per line.".to_owned();
        if number == 1 {
            preface += &" Before writing them I considered which locales, scripts, entity kinds \
                and risk types this batch should cover, and how to keep each label unambiguous."
                .repeat(160);
        }
        let mut lines = vec![preface, "```json".to_owned()];
        for (label, count) in labels {
            lines.extend(
                pool.iter()
                    .filter(|s| s.label == label)
                    .take(count)
                    .map(written),
            );
        }
        // Models repeat themselves: the last sample is the first one again, which validation
        // rejects as a duplicate and the run asks for again.
        if lines.len() > 3 {
            lines.push(lines[2].clone());
        }
        lines.push("```".to_owned());
        let mut text = lines.join("\n");
        let limit = max_tokens * 4;
        let truncated = text.len() > limit;
        if truncated {
            let mut cut = limit;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        let body = json!({
            "id": format!("msg_{number}"), "type": "message", "role": "assistant",
            "model": seen.body["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": if truncated { "max_tokens" } else { "end_turn" },
            "usage": {"input_tokens": prompt.len() / 4, "output_tokens": text.len() / 4},
        });
        (200, Vec::new(), body.to_string())
    }
}
