//! Training inputs for tests: an offline dataset laid out as `aml validate` writes it, and the
//! training record of a model trained reasoning-first.

use std::path::Path;

use aml_core::record::{AnswerFormat, RECORD_FILE, RECORD_VERSION, TrainingRecord};
use aml_core::{Difficulty, SampleRecord};
use aml_dataset::{ValidatorSettings, build};
use aml_synth::{Synthesizer, generate_tier};

/// Writes `easy.jsonl`, `medium.jsonl`, `hard.jsonl` and `validation.jsonl` into `dir`:
/// `per_tier` offline cases per tier from `seed`, `validation` of them held out.
pub fn write_offline_dataset(dir: &Path, per_tier: usize, seed: u64, validation: usize) {
    let synthesizer = Synthesizer::default();
    let mut candidates = Vec::new();
    for tier in Difficulty::ALL {
        candidates.extend(generate_tier(&synthesizer, tier, per_tier, seed));
    }
    let dataset = build(
        candidates,
        &ValidatorSettings {
            validation_size: validation,
            ..ValidatorSettings::default()
        },
    );
    let write = |name: &str, records: &[SampleRecord]| {
        let lines: Vec<String> = records
            .iter()
            .map(|record| serde_json::to_string(record).expect("json"))
            .collect();
        std::fs::write(dir.join(name), lines.join("\n")).expect("dataset file");
    };
    for (tier, records) in &dataset.tiers {
        write(&format!("{tier}.jsonl"), records);
    }
    write("validation.jsonl", &dataset.validation);
}

/// Writes into `dir` the training record of a model trained reasoning-first (`--cot true`),
/// which scoring refuses.
pub fn write_reasoning_first_record(dir: &Path) {
    let record = TrainingRecord {
        version: RECORD_VERSION,
        answer_format: AnswerFormat::ReasoningFirst,
        cot: true,
        distilled_from: None,
        base_model: "tiny".into(),
        system_prompt_sha256: None,
        chat_template_sha256: None,
    };
    std::fs::write(
        dir.join(RECORD_FILE),
        serde_json::to_vec(&record).expect("json"),
    )
    .expect("training record");
}

/// Copies the model folder `model_dir` to `out` and marks the copy as trained reasoning-first.
pub fn copy_as_reasoning_first(model_dir: &Path, out: &Path) {
    std::fs::create_dir_all(out).expect("folder");
    for entry in std::fs::read_dir(model_dir).expect("model folder") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), out.join(entry.file_name())).expect("copied");
    }
    write_reasoning_first_record(out);
}
