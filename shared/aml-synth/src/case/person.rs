//! A person's case: the listed name and its customer variant, date of birth, nationality,
//! passport and aliases, under the chosen evidence.

use aml_core::Difficulty;
use aml_core::rng::SeededRng;
use aml_proto::v1::{EntityKind, Party, WatchlistEntry};

use super::{Reasoning, Synthesizer, country_name, country_of, identifier, other_country};
use crate::evidence::{Evidence, FieldRelation, NameRelation};
use crate::identity::{NameForms, Origin, minor_variant, passport, person_name, weak_variant};

use FieldRelation::{Agree, Conflict, Consistent, Unknown};

impl Synthesizer {
    pub(super) fn person(
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
