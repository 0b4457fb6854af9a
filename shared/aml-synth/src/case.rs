//! One synthetic screening case: the listed entity, a customer derived from it under chosen
//! facts, the gold label those facts imply, the reasoning that cites them and the one-line
//! decision.

use aml_core::format::render_alert_input;
use aml_core::{Difficulty, Label};
use aml_proto::v1::{Alert, EntityKind, Identifier, Party, WatchlistEntry};

use crate::evidence::{Evidence, FieldRelation, NameRelation, decide};
use crate::identity::{
    NameForms, OrgName, Origin, lei, minor_variant, passport, person_name, weak_variant,
};
use crate::pools::{COUNTRIES, LISTS, RISK_CONTEXT};
use crate::translit::VariantTable;
use aml_core::rng::SeededRng;

use FieldRelation::{Agree, Conflict, Consistent, Unknown};

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

fn evidence(
    name: NameRelation,
    dob: FieldRelation,
    nationality: FieldRelation,
    id: FieldRelation,
    link: FieldRelation,
) -> Evidence {
    Evidence {
        name,
        dob,
        nationality,
        id,
        link,
    }
}

fn person_pattern(label: Label, difficulty: Difficulty, rng: &mut SeededRng) -> Evidence {
    use NameRelation::*;
    let options: &[Evidence] = match (label, difficulty) {
        (Label::Match, Difficulty::Easy) => &[evidence(Exact, Agree, Agree, Agree, Unknown)],
        (Label::Match, Difficulty::Medium) => &[
            evidence(Minor, Agree, Agree, Unknown, Unknown),
            evidence(Minor, Unknown, Agree, Agree, Unknown),
        ],
        (Label::Match, Difficulty::Hard) => &[
            evidence(Transliterated, Agree, Unknown, Agree, Unknown),
            evidence(Transliterated, Consistent, Agree, Agree, Unknown),
            evidence(Transliterated, Agree, Agree, Unknown, Unknown),
        ],
        // Negatives are near-collisions, as the alerts a screening engine raises are: the
        // same name (or a variant, or a shared surname) with a conflicting date of birth,
        // nationality or document. One easy negative in four has an unrelated name.
        (Label::NoMatch, Difficulty::Easy) => &[
            evidence(Exact, Conflict, Conflict, Conflict, Unknown),
            evidence(Exact, Conflict, Conflict, Unknown, Unknown),
            evidence(Minor, Conflict, Conflict, Conflict, Unknown),
            evidence(Different, Conflict, Conflict, Unknown, Unknown),
        ],
        (Label::NoMatch, Difficulty::Medium) => &[
            evidence(Minor, Conflict, Conflict, Unknown, Unknown),
            evidence(Weak, Conflict, Conflict, Unknown, Unknown),
            evidence(Weak, Unknown, Conflict, Unknown, Unknown),
            evidence(Exact, Conflict, Unknown, Conflict, Unknown),
        ],
        (Label::NoMatch, Difficulty::Hard) => &[
            evidence(Exact, Conflict, Conflict, Unknown, Unknown),
            evidence(Exact, Conflict, Agree, Unknown, Unknown),
            evidence(Transliterated, Conflict, Agree, Conflict, Unknown),
            evidence(Transliterated, Conflict, Unknown, Unknown, Unknown),
        ],
        (Label::Edge, Difficulty::Easy) => &[evidence(Exact, Consistent, Agree, Unknown, Unknown)],
        (Label::Edge, Difficulty::Medium) => &[
            evidence(Minor, Consistent, Unknown, Unknown, Unknown),
            evidence(Weak, Agree, Agree, Unknown, Unknown),
        ],
        (Label::Edge, Difficulty::Hard) => &[
            evidence(Transliterated, Agree, Agree, Conflict, Unknown),
            evidence(Transliterated, Consistent, Agree, Unknown, Unknown),
        ],
    };
    *rng.pick(options)
}

fn org_pattern(label: Label, difficulty: Difficulty, rng: &mut SeededRng) -> Evidence {
    use NameRelation::*;
    let options: &[Evidence] = match (label, difficulty) {
        (Label::Match, Difficulty::Easy) => &[evidence(Exact, Unknown, Agree, Agree, Unknown)],
        (Label::Match, Difficulty::Medium) => &[evidence(Minor, Unknown, Agree, Agree, Unknown)],
        (Label::Match, Difficulty::Hard) => &[evidence(Minor, Unknown, Unknown, Agree, Agree)],
        (Label::NoMatch, Difficulty::Easy) => &[
            evidence(Exact, Unknown, Conflict, Conflict, Unknown),
            evidence(Minor, Unknown, Conflict, Conflict, Unknown),
            evidence(Exact, Unknown, Unknown, Conflict, Unknown),
            evidence(Different, Unknown, Conflict, Conflict, Unknown),
        ],
        // Weak, for organisations: a name that differs only by a numeral, or shares a word.
        (Label::NoMatch, Difficulty::Medium) => &[
            evidence(Weak, Unknown, Conflict, Unknown, Unknown),
            evidence(Weak, Unknown, Conflict, Conflict, Unknown),
        ],
        (Label::NoMatch, Difficulty::Hard) => &[
            evidence(Exact, Unknown, Conflict, Conflict, Unknown),
            evidence(Minor, Unknown, Conflict, Conflict, Unknown),
        ],
        (Label::Edge, Difficulty::Easy) => &[evidence(Exact, Unknown, Agree, Unknown, Unknown)],
        (Label::Edge, Difficulty::Medium) => &[evidence(Minor, Unknown, Agree, Unknown, Unknown)],
        (Label::Edge, Difficulty::Hard) => &[evidence(Minor, Unknown, Agree, Conflict, Agree)],
    };
    *rng.pick(options)
}

fn country_of(origin: Origin, rng: &mut SeededRng) -> &'static str {
    let codes: &[&str] = match origin {
        Origin::Cyrillic => &["RU"],
        Origin::Arabic => &["SY", "IR", "AE", "SA"],
        Origin::Chinese => &["CN", "HK"],
        Origin::Western => &["GB", "DE", "FR", "ES", "CY"],
    };
    codes[rng.below(codes.len())]
}

fn other_country(code: &str, rng: &mut SeededRng) -> &'static str {
    loop {
        let (candidate, _, _) = rng.pick(&COUNTRIES);
        if *candidate != code {
            return candidate;
        }
    }
}

fn country_name(code: &str) -> &'static str {
    COUNTRIES
        .iter()
        .find(|(iso, _, _)| *iso == code)
        .map_or("unknown", |(_, name, _)| name)
}

fn identifier(kind: &str, value: &str, country: &str) -> Identifier {
    Identifier {
        kind: kind.to_owned(),
        value: value.to_owned(),
        country: country.to_owned(),
    }
}

/// Cited facts, in the order the reasoning walks them.
struct Reasoning {
    lines: Vec<String>,
    agreeing: Vec<&'static str>,
    conflicting: Vec<&'static str>,
}

impl Reasoning {
    fn new() -> Self {
        Reasoning {
            lines: Vec::new(),
            agreeing: Vec::new(),
            conflicting: Vec::new(),
        }
    }

    fn line(&mut self, text: String) {
        self.lines.push(format!("{}. {text}", self.lines.len() + 1));
    }
}

impl Synthesizer {
    /// A case of the given tier and gold label.
    pub fn case(&self, rng: &mut SeededRng, difficulty: Difficulty, label: Label) -> Case {
        let person = rng.chance(0.7);
        let evidence = if person {
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
        let (party, entry) = if person {
            self.person(rng, difficulty, &evidence, &mut reasoning)
        } else {
            organisation(rng, &evidence, &mut reasoning)
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
        let context = *rng.pick(&RISK_CONTEXT);
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
        if context != "No adverse context recorded" {
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
            context: context.to_owned(),
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

    fn person(
        &self,
        rng: &mut SeededRng,
        difficulty: Difficulty,
        evidence: &Evidence,
        reasoning: &mut Reasoning,
    ) -> (Party, WatchlistEntry) {
        let origin = match difficulty {
            Difficulty::Easy => Origin::Western,
            _ => *rng.pick(&[
                Origin::Cyrillic,
                Origin::Arabic,
                Origin::Chinese,
                Origin::Western,
            ]),
        };
        let forms: NameForms = person_name(origin, rng, &self.arabic);
        let listed = forms.listed.clone();
        let (customer_name, name_line) = match evidence.name {
            NameRelation::Exact => (
                listed.clone(),
                format!("Name: customer \"{listed}\" is spelled as the entry."),
            ),
            NameRelation::Minor => {
                let (variant, how) = minor_variant(&listed, rng);
                (
                    variant.clone(),
                    format!("Name: customer \"{variant}\" is the entry's \"{listed}\" with {how}."),
                )
            }
            NameRelation::Transliterated => {
                let (variant, how) = rng.pick(&forms.transliterated).clone();
                (
                    variant.clone(),
                    format!(
                        "Name: customer \"{variant}\" is {how}, the same name as \"{listed}\"."
                    ),
                )
            }
            NameRelation::Weak => {
                let variant = weak_variant(&listed, rng);
                (
                    variant.clone(),
                    format!(
                        "Name: customer \"{variant}\" only sounds like \"{listed}\"; the given name differs."
                    ),
                )
            }
            NameRelation::Different => {
                let other = person_name(Origin::Western, rng, &self.arabic).listed;
                (
                    other.clone(),
                    format!("Name: customer \"{other}\" shares nothing with \"{listed}\"."),
                )
            }
        };
        reasoning.line(name_line);
        let year = rng.range(1950, 2000);
        let listed_dob = format!("{year}-{:02}-{:02}", rng.range(1, 12), rng.range(1, 28));
        let (customer_dob, entry_dob) = match evidence.dob {
            Agree => {
                reasoning.agreeing.push("DOB");
                reasoning.line(format!("Date of birth: {listed_dob} on both."));
                (listed_dob.clone(), listed_dob.clone())
            }
            Consistent => {
                reasoning.line(format!("Date of birth: the entry gives only {year}, the customer {listed_dob}: consistent, not conclusive."));
                (listed_dob.clone(), year.to_string())
            }
            Conflict => {
                let other = year
                    + if rng.chance(0.5) {
                        rng.range(4, 15)
                    } else {
                        -rng.range(4, 15)
                    };
                let customer = format!("{other}-{:02}-{:02}", rng.range(1, 12), rng.range(1, 28));
                reasoning.conflicting.push("DOB");
                reasoning.line(format!("Date of birth: customer {customer} against entry {listed_dob}, {} years apart.", (other - year).abs()));
                (customer, listed_dob.clone())
            }
            Unknown => {
                reasoning.line(format!(
                    "Date of birth: the customer record has none; the entry gives {listed_dob}."
                ));
                (String::new(), listed_dob.clone())
            }
        };
        let listed_country = country_of(origin, rng);
        let (customer_nationality, entry_nationality) = match evidence.nationality {
            Agree => {
                reasoning.line(format!("Nationality: {listed_country} on both."));
                (listed_country.to_owned(), listed_country.to_owned())
            }
            Conflict => {
                let other = other_country(listed_country, rng);
                reasoning.line(format!(
                    "Nationality: customer {other}, entry {listed_country}."
                ));
                (other.to_owned(), listed_country.to_owned())
            }
            Consistent | Unknown => {
                reasoning.line(format!(
                    "Nationality: not on the customer record; the entry gives {listed_country}."
                ));
                (String::new(), listed_country.to_owned())
            }
        };
        let listed_passport = passport(listed_country, rng);
        let (customer_ids, entry_ids) = match evidence.id {
            Agree => {
                reasoning.agreeing.push("passport");
                reasoning.line(format!(
                    "Identifiers: passport {listed_passport} ({listed_country}) on both."
                ));
                (
                    vec![identifier("passport", &listed_passport, listed_country)],
                    vec![identifier("passport", &listed_passport, listed_country)],
                )
            }
            Conflict => {
                let other = passport(listed_country, rng);
                reasoning.conflicting.push("passport");
                reasoning.line(format!(
                    "Identifiers: customer passport {other} against the entry's {listed_passport}."
                ));
                (
                    vec![identifier("passport", &other, listed_country)],
                    vec![identifier("passport", &listed_passport, listed_country)],
                )
            }
            Consistent | Unknown => {
                reasoning.line("Identifiers: no document number to compare.".to_owned());
                (Vec::new(), Vec::new())
            }
        };
        let aliases = match (&forms.native, difficulty) {
            (Some(native), Difficulty::Hard) if evidence.name != NameRelation::Transliterated => {
                vec![native.clone()]
            }
            _ => Vec::new(),
        };
        let party = Party {
            kind: EntityKind::Person as i32,
            name: customer_name,
            date_of_birth: customer_dob,
            nationality: customer_nationality,
            country: country_name(listed_country).to_owned(),
            identifiers: customer_ids,
            ..Default::default()
        };
        let entry = WatchlistEntry {
            kind: EntityKind::Person as i32,
            name: listed,
            aliases,
            date_of_birth: entry_dob,
            nationality: entry_nationality,
            identifiers: entry_ids,
            ..Default::default()
        };
        (party, entry)
    }
}

fn organisation(
    rng: &mut SeededRng,
    evidence: &Evidence,
    reasoning: &mut Reasoning,
) -> (Party, WatchlistEntry) {
    let org = OrgName::random(rng);
    // Half the weak names differ only by a numeral ("Nova Trade 2 LLC", "Nova Trade 3 LLC"):
    // another company of the same group name.
    let numeral = (evidence.name == NameRelation::Weak && rng.chance(0.5)).then(|| rng.range(2, 8));
    let listed = match numeral {
        Some(number) => format!("{} {number} {}", org.base, org.suffixes[0]),
        None => org.listed(),
    };
    let customer_name = match evidence.name {
        NameRelation::Exact => {
            reasoning.line(format!(
                "Name: customer \"{listed}\" is spelled as the entry."
            ));
            listed.clone()
        }
        NameRelation::Minor | NameRelation::Transliterated => {
            let variant = org.suffix_variant(rng);
            reasoning.line(format!(
                "Name: \"{variant}\" is \"{listed}\" with another spelling of the same legal form."
            ));
            variant
        }
        NameRelation::Weak if numeral.is_some() => {
            let number = numeral.unwrap_or_default() + 1;
            let variant = format!("{} {number} {}", org.base, org.suffixes[0]);
            reasoning.line(format!(
                "Name: \"{variant}\" differs from \"{listed}\" only by its numeral: another company of the same name."
            ));
            variant
        }
        NameRelation::Weak => {
            let other = OrgName::random(rng);
            let first_word = org.base.split(' ').next().unwrap_or_default().to_owned();
            let variant = format!(
                "{first_word} {} {}",
                other.base.split(' ').skip(1).collect::<Vec<_>>().join(" "),
                org.suffixes[0]
            );
            reasoning.line(format!(
                "Name: \"{variant}\" shares only the word \"{first_word}\" with \"{listed}\"."
            ));
            variant
        }
        NameRelation::Different => {
            let other = OrgName::random(rng).listed();
            reasoning.line(format!("Name: \"{other}\" is unrelated to \"{listed}\"."));
            other
        }
    };
    let (code, _, _) = *rng.pick(&COUNTRIES);
    let (customer_country, entry_country) = match evidence.nationality {
        Agree => {
            reasoning.line(format!(
                "Country of incorporation: {} on both.",
                country_name(code)
            ));
            (code, code)
        }
        Conflict => {
            let other = other_country(code, rng);
            reasoning.line(format!(
                "Country of incorporation: customer {}, entry {}.",
                country_name(other),
                country_name(code)
            ));
            (other, code)
        }
        Consistent | Unknown => {
            reasoning.line(format!(
                "Country of incorporation: not on the customer record; the entry gives {}.",
                country_name(code)
            ));
            ("", code)
        }
    };
    let listed_lei = lei(rng);
    let (customer_ids, entry_ids) = match evidence.id {
        Agree => {
            reasoning.agreeing.push("LEI");
            reasoning.line(format!("Identifiers: LEI {listed_lei} on both."));
            (
                vec![identifier("lei", &listed_lei, "")],
                vec![identifier("lei", &listed_lei, "")],
            )
        }
        Conflict => {
            let other = lei(rng);
            reasoning.conflicting.push("LEI");
            reasoning.line(format!(
                "Identifiers: customer LEI {other} against the entry's {listed_lei}."
            ));
            (
                vec![identifier("lei", &other, "")],
                vec![identifier("lei", &listed_lei, "")],
            )
        }
        Consistent | Unknown => {
            reasoning.line("Identifiers: no registry number to compare.".to_owned());
            (Vec::new(), Vec::new())
        }
    };
    let relationships = match evidence.link {
        Agree => {
            reasoning.agreeing.push("ownership link");
            reasoning.line(format!("Ownership: the customer is a wholly owned subsidiary of \"{listed}\", the listed entity."));
            vec![format!("subsidiary of {listed}")]
        }
        _ => Vec::new(),
    };
    let party = Party {
        kind: EntityKind::Organization as i32,
        name: customer_name,
        country: if customer_country.is_empty() {
            String::new()
        } else {
            country_name(customer_country).to_owned()
        },
        identifiers: customer_ids,
        relationships,
        ..Default::default()
    };
    let entry = WatchlistEntry {
        kind: EntityKind::Organization as i32,
        name: listed,
        country: country_name(entry_country).to_owned(),
        identifiers: entry_ids,
        ..Default::default()
    };
    (party, entry)
}
