//! The LLM mode's domain prompt, verbatim from the user's notes, and the diversity seeds
//! each request carries.

use aml_core::{Difficulty, Label};

use aml_core::rng::SeededRng;

/// The domain prompt, as the user wrote it.
pub const DOMAIN_PROMPT: &str = r#"You are creating supervised fine-tuning data for an AML/KYC screening model that must decide whether a candidate entity MATCHES a watchlist/PEP/sanctions entry and explain the reasoning.

Output STRICTLY one JSON object per line with fields:
- instruction: concise task description for the model.
- input: realistic case context (names, DOB bands, nationality, IDs, addresses, company relationships, prior alerts). Include enough detail to decide.
- cot: step-by-step reasoning leading to a conclusion (chain of thought). The reasoning must cite specific fields (DOB, country, alias evidence, ownership links) and weigh conflicting evidence.
- output: a one-line final decision and rationale summary (e.g., "MATCH — alias + DOB + LEI link confirm identity").
- label: one of {match, no_match, edge}. "edge" = borderline cases requiring careful judgment.
- difficulty: one of {easy, medium, hard}. Easy = clear matches/mismatches; Medium = minor noise; Hard = transliteration, mixed scripts, partial IDs, corporate hierarchies, near-collisions.

Constraints:
- Vary locales and scripts (Latin, Cyrillic, Arabic, Chinese transliterations).
- Include both person and organization entities.
- Ensure single unambiguous gold label per sample.
- Avoid real PII; use fictionalized yet plausible data inspired by public patterns (OpenSanctions, GLEIF, etc.).
- Keep cot < 250 tokens; input < 350 tokens.

Generate N samples for DIFFICULTY="{tier}"."#;

const LOCALES: [&str; 6] = [
    "Russian names in Cyrillic transliteration",
    "Arabic names and their romanisations",
    "Chinese names in pinyin and Wade-Giles",
    "Western European names with diacritics",
    "Turkish and Central Asian names",
    "Latin American names with compound surnames",
];

const RISK_TYPES: [&str; 6] = [
    "sanctions evasion via intermediary companies",
    "politically exposed person and family members",
    "KYC document discrepancies",
    "correspondent banking in high-risk jurisdictions",
    "crypto exposure and money service businesses",
    "structuring and smurfing patterns",
];

/// The prompt for one request: the domain prompt for `tier` and the samples wanted of each
/// label, with a diversity seed.
pub fn request_prompt(tier: Difficulty, labels: &[(Label, usize)], request: u64) -> String {
    let count: usize = labels.iter().map(|(_, wanted)| wanted).sum();
    let mix: Vec<String> = labels
        .iter()
        .filter(|(_, wanted)| *wanted > 0)
        .map(|(label, wanted)| format!("{wanted} {label}"))
        .collect();
    let mut rng = SeededRng::derive(request, tier as u64);
    // As the offline cases are spread: persons and organisations, now and then the ships and
    // aircraft sanctions lists carry.
    let entity = match rng.below(10) {
        0..5 => "persons",
        5..9 => "organizations",
        _ => {
            "vessels (name, former names, flag, IMO number, owner) and aircraft (registration mark, serial number, operator)"
        }
    };
    DOMAIN_PROMPT
        .replace("{tier}", tier.as_str())
        .replace("Generate N samples", &format!("Generate {count} samples"))
        + &format!(
            "\n\nLabels of this batch: {}. Start each output with MATCH, NO_MATCH or EDGE.\nFocus of this batch: {}, mostly {entity}, risk type: {}.",
            mix.join(", "),
            rng.pick(&LOCALES),
            rng.pick(&RISK_TYPES)
        )
}
