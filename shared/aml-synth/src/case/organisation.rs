//! An organisation's case: the listed name and its customer variant (legal form, numeral,
//! shared word), country of incorporation, LEI and ownership link, under the chosen evidence.

use aml_core::rng::SeededRng;
use aml_proto::v1::{EntityKind, Party, WatchlistEntry};

use super::{Reasoning, country_name, identifier, other_country};
use crate::evidence::{Evidence, FieldRelation, NameRelation};
use crate::identity::{OrgName, lei};
use crate::pools::COUNTRIES;

use FieldRelation::{Agree, Conflict, Consistent, Unknown};

pub(super) fn organisation(
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
