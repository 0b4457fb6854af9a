//! From candidate samples to a dataset: length limits, label agreement, conflicts,
//! duplicates, label-preserving noise, balance, and a stratified validation split.

use std::collections::{BTreeMap, HashMap};

use aml_core::rng::SeededRng;
use aml_core::{Difficulty, Label, SampleRecord, stratified_indices};
use serde::{Deserialize, Serialize};

use crate::dedup::{Duplicate, DuplicateFinder, normalise};

/// How the validator treats candidates.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorSettings {
    /// Largest `cot`, in tokens.
    pub max_cot_tokens: usize,
    /// Largest `input`, in tokens.
    pub max_input_tokens: usize,
    /// Estimated shingle similarity at which two inputs are near-duplicates.
    pub near_duplicate_threshold: f64,
    /// Share of samples that receive label-preserving noise.
    pub noise_rate: f64,
    /// Size of the validation set.
    pub validation_size: usize,
    /// Seed of the noise and the validation split.
    pub seed: u64,
}

impl Default for ValidatorSettings {
    fn default() -> Self {
        ValidatorSettings {
            max_cot_tokens: 250,
            max_input_tokens: 350,
            near_duplicate_threshold: 0.9,
            noise_rate: 0.05,
            validation_size: 100,
            seed: 0,
        }
    }
}

/// Tokens of a text without a tokenizer: one per 4 characters, rounded up (the usual
/// estimate for BPE vocabularies of Llama 3 / Mistral size on English text).
pub fn approximate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Counts of what was rejected and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejections {
    /// `cot` over the token limit.
    pub cot_too_long: u64,
    /// `input` over the token limit.
    pub input_too_long: u64,
    /// The decision word of `output` disagrees with `label`.
    pub output_disagrees_with_label: u64,
    /// Identical inputs carried different labels (all copies rejected).
    pub conflicting_labels: u64,
    /// Same input after normalisation.
    pub exact_duplicates: u64,
    /// Near-identical input.
    pub near_duplicates: u64,
}

/// A validated dataset, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Training samples per tier, curriculum order.
    pub tiers: BTreeMap<Difficulty, Vec<SampleRecord>>,
    /// The held-out validation set.
    pub validation: Vec<SampleRecord>,
    /// What was rejected.
    pub rejections: Rejections,
    /// Samples that received noise.
    pub noised: u64,
}

/// Noise that leaves the facts, hence the label, alone: spacing and case in the context
/// line, and a trailing note that there were no prior alerts.
fn add_noise(input: &str, rng: &mut SeededRng) -> String {
    match rng.next_u64() % 3 {
        0 => input.replacen(": ", ":  ", 1),
        1 => match input.split_once("Context: ") {
            Some((head, context)) => format!("{head}Context: {}", context.to_lowercase()),
            None => format!("{input}\nContext: none"),
        },
        _ => format!("{input}\nPrior alerts: none on record"),
    }
}

/// Builds the dataset from candidates (already schema-checked), deterministically.
pub fn build(candidates: Vec<SampleRecord>, settings: &ValidatorSettings) -> Dataset {
    let mut rejections = Rejections::default();
    let mut labels_by_input: HashMap<String, Vec<Label>> = HashMap::new();
    for sample in &candidates {
        labels_by_input
            .entry(normalise(&sample.input))
            .or_default()
            .push(sample.label);
    }
    let mut finder = DuplicateFinder::new(settings.near_duplicate_threshold);
    let mut kept = Vec::with_capacity(candidates.len());
    for sample in candidates {
        if approximate_tokens(&sample.cot) >= settings.max_cot_tokens {
            rejections.cot_too_long += 1;
            continue;
        }
        if approximate_tokens(&sample.input) >= settings.max_input_tokens {
            rejections.input_too_long += 1;
            continue;
        }
        if Label::from_decision_line(&sample.output) != Some(sample.label) {
            rejections.output_disagrees_with_label += 1;
            continue;
        }
        let labels = &labels_by_input[&normalise(&sample.input)];
        if labels.iter().any(|label| *label != sample.label) {
            rejections.conflicting_labels += 1;
            continue;
        }
        match finder.check(&sample.input) {
            Some(Duplicate::Exact) => rejections.exact_duplicates += 1,
            Some(Duplicate::Near) => rejections.near_duplicates += 1,
            None => kept.push(sample),
        }
    }
    let mut rng = SeededRng::new(settings.seed ^ 0x5EED);
    let mut noised = 0;
    for sample in &mut kept {
        if rng.uniform() < settings.noise_rate {
            sample.input = add_noise(&sample.input, &mut rng);
            noised += 1;
        }
    }
    let (validation, train) = split_validation(kept, settings.validation_size, settings.seed);
    let mut tiers: BTreeMap<Difficulty, Vec<SampleRecord>> = Difficulty::ALL
        .iter()
        .map(|tier| (*tier, Vec::new()))
        .collect();
    for sample in train {
        tiers.entry(sample.difficulty).or_default().push(sample);
    }
    Dataset {
        tiers,
        validation,
        rejections,
        noised,
    }
}

/// Takes `size` samples (at most half of them, so training keeps the rest) stratified over the
/// label x difficulty cells; returns (validation, rest), each in the original order.
fn split_validation(
    samples: Vec<SampleRecord>,
    size: usize,
    seed: u64,
) -> (Vec<SampleRecord>, Vec<SampleRecord>) {
    let chosen = stratified_indices(&samples, size.min(samples.len() / 2), seed ^ 0xBA1A);
    let mut validation = Vec::with_capacity(chosen.len());
    let mut rest = Vec::with_capacity(samples.len() - chosen.len());
    let mut next = chosen.iter().peekable();
    for (index, sample) in samples.into_iter().enumerate() {
        if next.peek() == Some(&&index) {
            next.next();
            validation.push(sample);
        } else {
            rest.push(sample);
        }
    }
    (validation, rest)
}
