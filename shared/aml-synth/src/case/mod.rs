//! One synthetic screening case: the listed entity, a customer derived from it under chosen
//! facts, the gold label those facts imply, the reasoning that cites them and the one-line
//! decision.

mod craft;
mod organisation;
mod patterns;
mod person;
mod profile;

use aml_core::format::render_alert_input;
use aml_core::rng::SeededRng;
use aml_core::{Difficulty, Label};
use aml_proto::v1::{Alert, EntityKind, Identifier, WatchlistEntry};

use crate::evidence::{Evidence, FieldRelation, NameRelation, decide};
use crate::identity::Origin;
use crate::pools::{COUNTRIES, LISTS, RISK_CONTEXT};
use crate::translit::VariantTable;

use craft::{Craft, craft};
use organisation::organisation;
use patterns::{org_pattern, person_pattern};

/// A generated case.
#[derive(Debug, Clone)]
pub struct Case {
    /// The alert as a screening engine would raise it.
    pub alert: Alert,
    /// The facts that decide it.
    pub evidence: Evidence,
    /// The gold label.
    pub label: Label,
    /// The curriculum tier.
    pub difficulty: Difficulty,
    /// Step-by-step reasoning citing the fields.
    pub cot: String,
    /// One line starting with the decision word.
    pub output: String,
}

impl Case {
    /// The model input text.
    pub fn input(&self) -> String {
        render_alert_input(&self.alert)
    }
}

/// Builds cases; holds the transliteration tables.
#[derive(Debug)]
pub struct Synthesizer {
    arabic: VariantTable,
}

impl Default for Synthesizer {
    fn default() -> Self {
        Synthesizer {
            arabic: VariantTable::arabic(),
        }
    }
}

pub(super) fn country_of(origin: Origin, rng: &mut SeededRng) -> &'static str {
    let codes: &[&str] = match origin {
        Origin::Cyrillic => &["RU"],
        Origin::Arabic => &["SY", "IR", "AE", "SA"],
        Origin::Chinese => &["CN", "HK"],
        Origin::Western => &["GB", "DE", "FR", "ES", "CY"],
    };
    codes[rng.below(codes.len())]
}

pub(super) fn other_country(code: &str, rng: &mut SeededRng) -> &'static str {
    loop {
        let (candidate, _, _) = rng.pick(&COUNTRIES);
        if *candidate != code {
            return candidate;
        }
    }
}

pub(super) fn country_name(code: &str) -> &'static str {
    COUNTRIES
        .iter()
        .find(|(iso, _, _)| *iso == code)
        .map_or("unknown", |(_, name, _)| name)
}

pub(super) fn identifier(kind: &str, value: &str, country: &str) -> Identifier {
    Identifier {
        kind: kind.to_owned(),
        value: value.to_owned(),
        country: country.to_owned(),
    }
}

/// Cited facts, in the order the reasoning walks them.
pub(super) struct Reasoning {
    lines: Vec<String>,
    pub(super) agreeing: Vec<&'static str>,
    pub(super) conflicting: Vec<&'static str>,
}

impl Reasoning {
    fn new() -> Self {
        Reasoning {
            lines: Vec::new(),
            agreeing: Vec::new(),
            conflicting: Vec::new(),
        }
    }

    pub(super) fn line(&mut self, text: String) {
        self.lines.push(format!("{}. {text}", self.lines.len() + 1));
    }
}

impl Synthesizer {
    /// A case of the given tier and gold label.
    pub fn case(&self, rng: &mut SeededRng, difficulty: Difficulty, label: Label) -> Case {
        // Persons and organisations mostly; ships and aircraft as lists carry them (their
        // patterns are the organisations': no date of birth, the identifier decides).
        let kind = match rng.below(100) {
            0..62 => EntityKind::Person,
            62..88 => EntityKind::Organization,
            88..96 => EntityKind::Vessel,
            _ => EntityKind::Aircraft,
        };
        let evidence = if kind == EntityKind::Person {
            person_pattern(label, difficulty, rng)
        } else {
            org_pattern(label, difficulty, rng)
        };
        debug_assert_eq!(
            decide(&evidence),
            label,
            "pattern {evidence:?} must imply {label:?}"
        );
        let (list_name, program) = *rng.pick(&LISTS);
        let mut reasoning = Reasoning::new();
        let (party, entry) = match kind {
            EntityKind::Person => self.person(rng, difficulty, &evidence, &mut reasoning),
            EntityKind::Vessel => craft(Craft::Vessel, rng, &evidence, &mut reasoning),
            EntityKind::Aircraft => craft(Craft::Aircraft, rng, &evidence, &mut reasoning),
            _ => organisation(rng, &evidence, &mut reasoning),
        };
        let entry = WatchlistEntry {
            entry_id: format!(
                "{}-{:05}",
                list_name.split(' ').next().unwrap_or("LIST"),
                rng.range(1, 99_999)
            ),
            list_name: list_name.to_owned(),
            program: program.to_owned(),
            ..entry
        };
        let risk = *rng.pick(&RISK_CONTEXT);
        let context = if evidence.profile == FieldRelation::Conflict {
            let note = profile::kyc_conflict_note(rng, kind, &entry.date_of_birth, &mut reasoning);
            format!("{note}; {risk}")
        } else {
            risk.to_owned()
        };
        let label_word = label.decision_word();
        let decision = decide(&evidence);
        let weighing = match decision {
            Label::Match => format!(
                "{} agree and nothing conflicts",
                reasoning.agreeing.join(", ")
            ),
            Label::NoMatch if evidence.name == NameRelation::Different => {
                "the names are different people".to_owned()
            }
            Label::NoMatch => format!(
                "{} conflict and no identifier agrees, a near-collision",
                reasoning.conflicting.join(", ")
            ),
            Label::Edge if !reasoning.conflicting.is_empty() => format!(
                "{} agree but {} conflict",
                reasoning.agreeing.join(", "),
                reasoning.conflicting.join(", ")
            ),
            Label::Edge => "the name fits but no identifier confirms or rules it out".to_owned(),
        };
        if risk != "No adverse context recorded" {
            reasoning.line(
                "Risk context raises the priority but does not establish identity.".to_owned(),
            );
        }
        reasoning.line(format!("Weighing: {weighing}. Decision: {label_word}."));
        let output = match decision {
            Label::Match => format!(
                "MATCH — {} confirm identity",
                reasoning.agreeing.join(" + ")
            ),
            Label::NoMatch if evidence.name == NameRelation::Different => {
                "NO_MATCH — different name and identifiers".to_owned()
            }
            Label::NoMatch => format!(
                "NO_MATCH — {} differ despite a similar name",
                reasoning.conflicting.join(" and ")
            ),
            Label::Edge => format!("EDGE — {weighing}; needs an analyst"),
        };
        let alert = Alert {
            alert_id: String::new(),
            bank: String::new(),
            created_unix_ms: 0,
            party: Some(party),
            entry: Some(entry),
            engine_score: 0.0,
            context,
        };
        Case {
            alert,
            evidence,
            label: decision,
            difficulty,
            cot: reasoning.lines.join("\n"),
            output,
        }
    }
}
