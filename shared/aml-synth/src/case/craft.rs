//! A vessel's or an aircraft's case, as sanctions lists carry them: a ship by name with its
//! former names as aliases, flag state, IMO number and registered owner; an aircraft by
//! registration mark with its former marks as aliases, state of registry, manufacturer's
//! serial number (MSN) and operator. Ships of the same name are common, so are look-alike
//! marks: the identifier decides.

use aml_core::rng::SeededRng;
use aml_proto::v1::{EntityKind, Party, WatchlistEntry};

use super::{Reasoning, identifier, other_country};
use crate::evidence::{Evidence, FieldRelation, NameRelation};
use crate::identity::OrgName;

use FieldRelation::{Agree, Conflict, Consistent, Unknown};

/// Words of ships' names.
const VESSEL_WORDS: [&str; 24] = [
    "OCEAN", "PACIFIC", "GOLDEN", "SILVER", "NORTHERN", "SOUTHERN", "GRACE", "STAR", "PEARL",
    "SPIRIT", "GLORY", "FORTUNE", "HARMONY", "BREEZE", "WAVE", "DAWN", "LAKE", "RIVER", "HORIZON",
    "EAGLE", "JADE", "CORAL", "ATLAS", "NOBLE",
];

/// Flag states frequent among listed ships.
const FLAGS: [&str; 6] = ["PA", "IR", "KP", "RU", "AE", "HK"];

/// States of registry of listed aircraft, with their nationality-mark prefix.
const REGISTRIES: [(&str, &str); 4] = [("EP", "IR"), ("RA", "RU"), ("YK", "SY"), ("B", "CN")];

/// A ship or an aircraft.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Craft {
    /// A ship, listed by name and IMO number.
    Vessel,
    /// An aircraft, listed by registration mark and serial number.
    Aircraft,
}

impl Craft {
    fn kind(self) -> EntityKind {
        match self {
            Craft::Vessel => EntityKind::Vessel,
            Craft::Aircraft => EntityKind::Aircraft,
        }
    }

    /// The listed name and the state it belongs to.
    fn listed(self, rng: &mut SeededRng) -> (String, &'static str) {
        match self {
            Craft::Vessel => {
                let first = *rng.pick(&VESSEL_WORDS);
                let second = loop {
                    let word = *rng.pick(&VESSEL_WORDS);
                    if word != first {
                        break word;
                    }
                };
                (format!("{first} {second}"), *rng.pick(&FLAGS))
            }
            Craft::Aircraft => {
                let (prefix, state) = *rng.pick(&REGISTRIES);
                (mark(prefix, rng), state)
            }
        }
    }

    /// Another name of the same craft: a former name or an earlier registration mark.
    fn former(self, listed: &str, rng: &mut SeededRng) -> String {
        loop {
            let (other, _) = self.listed(rng);
            if other != listed {
                return other;
            }
        }
    }

    /// The same name written as documents often do: in title case, or hyphenated (a ship);
    /// without the hyphen or in lower case (a mark).
    fn spelling(self, listed: &str, rng: &mut SeededRng) -> String {
        match (self, rng.chance(0.5)) {
            (Craft::Vessel, true) => listed
                .split(' ')
                .map(|word| word[..1].to_owned() + &word[1..].to_lowercase())
                .collect::<Vec<_>>()
                .join(" "),
            (Craft::Vessel, false) => listed.replace(' ', "-"),
            (Craft::Aircraft, true) => listed.replace('-', ""),
            (Craft::Aircraft, false) => listed.to_lowercase(),
        }
    }

    /// Another craft whose name is close: a sister ship with a numeral, or a mark one letter off.
    fn look_alike(self, listed: &str, rng: &mut SeededRng) -> String {
        match self {
            Craft::Vessel => format!("{listed} {}", ["II", "III", "2", "7"][rng.below(4)]),
            Craft::Aircraft => {
                let mut letters: Vec<char> = listed.chars().collect();
                let last = letters.len() - 1;
                letters[last] = if letters[last] == 'Z' {
                    'A'
                } else {
                    (letters[last] as u8 + 1) as char
                };
                letters.into_iter().collect()
            }
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Craft::Vessel => "vessel",
            Craft::Aircraft => "aircraft",
        }
    }

    fn state_field(self) -> &'static str {
        match self {
            Craft::Vessel => "Flag",
            Craft::Aircraft => "State of registry",
        }
    }

    fn identifier_kind(self) -> &'static str {
        match self {
            Craft::Vessel => "IMO",
            Craft::Aircraft => "MSN",
        }
    }

    fn identifier(self, rng: &mut SeededRng) -> String {
        match self {
            Craft::Vessel => imo_number(rng),
            Craft::Aircraft => rng.range(100, 9_999).to_string(),
        }
    }

    fn link(self) -> (&'static str, &'static str) {
        match self {
            Craft::Vessel => ("registered owner", "ownership"),
            Craft::Aircraft => ("operator", "operator"),
        }
    }
}

/// A registration mark: the nationality prefix and letters (`EP-MNB`), digits for China's.
fn mark(prefix: &str, rng: &mut SeededRng) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let tail: String = if prefix == "B" {
        (0..4)
            .map(|_| char::from(b'0' + rng.below(10) as u8))
            .collect()
    } else {
        (0..3)
            .map(|_| char::from(LETTERS[rng.below(LETTERS.len())]))
            .collect()
    };
    format!("{prefix}-{tail}")
}

/// The check digit of an IMO number's first six digits: weighted 7 down to 2, modulo 10.
fn imo_check_digit(digits: &[u32]) -> u32 {
    digits
        .iter()
        .zip((2..=7).rev())
        .map(|(digit, weight)| digit * weight)
        .sum::<u32>()
        % 10
}

/// An IMO ship number: six digits and their check digit.
fn imo_number(rng: &mut SeededRng) -> String {
    let mut digits: Vec<u32> = std::iter::once(9)
        .chain((0..5).map(|_| rng.below(10) as u32))
        .collect();
    digits.push(imo_check_digit(&digits));
    digits
        .iter()
        .map(|digit| char::from(b'0' + *digit as u8))
        .collect()
}

pub(super) fn craft(
    craft: Craft,
    rng: &mut SeededRng,
    evidence: &Evidence,
    reasoning: &mut Reasoning,
) -> (Party, WatchlistEntry) {
    let noun = craft.noun();
    let (listed, state) = craft.listed(rng);
    let mut aliases = Vec::new();
    let customer_name = match evidence.name {
        NameRelation::Exact => {
            reasoning.line(format!(
                "Name: the {noun} \"{listed}\" is spelled as the entry."
            ));
            listed.clone()
        }
        NameRelation::Minor | NameRelation::Transliterated if rng.chance(0.5) => {
            let former = craft.former(&listed, rng);
            aliases.push(former.clone());
            reasoning.line(format!(
                "Name: \"{former}\" is a former name of the listed {noun} \"{listed}\" (an alias on the entry)."
            ));
            former
        }
        NameRelation::Minor | NameRelation::Transliterated => {
            let variant = craft.spelling(&listed, rng);
            reasoning.line(format!(
                "Name: \"{variant}\" is \"{listed}\" written another way."
            ));
            variant
        }
        NameRelation::Weak => {
            let other = craft.look_alike(&listed, rng);
            reasoning.line(format!(
                "Name: \"{other}\" only resembles \"{listed}\": another {noun}'s name."
            ));
            other
        }
        NameRelation::Different => {
            let other = craft.former(&listed, rng);
            reasoning.line(format!("Name: \"{other}\" is unrelated to \"{listed}\"."));
            other
        }
    };
    let field = craft.state_field();
    let customer_state = match evidence.nationality {
        Agree => {
            reasoning.line(format!("{field}: {state} on both."));
            state.to_owned()
        }
        Conflict => {
            let other = other_country(state, rng);
            reasoning.line(format!("{field}: customer {other}, entry {state}."));
            other.to_owned()
        }
        Consistent | Unknown => {
            reasoning.line(format!(
                "{field}: not on the customer record; the entry gives {state}."
            ));
            String::new()
        }
    };
    let kind = craft.identifier_kind();
    let listed_id = craft.identifier(rng);
    let entry_ids = vec![identifier(kind, &listed_id, "")];
    let customer_ids = match evidence.id {
        Agree => {
            reasoning.agreeing.push(kind);
            reasoning.line(format!("Identifiers: {kind} {listed_id} on both."));
            entry_ids.clone()
        }
        Conflict => {
            let other = loop {
                let other = craft.identifier(rng);
                if other != listed_id {
                    break other;
                }
            };
            reasoning.conflicting.push(kind);
            reasoning.line(format!(
                "Identifiers: customer {kind} {other} against the entry's {listed_id}: another {noun}."
            ));
            vec![identifier(kind, &other, "")]
        }
        Consistent | Unknown => {
            reasoning.line(format!("Identifiers: the customer record has no {kind}."));
            Vec::new()
        }
    };
    let (role, link_name) = craft.link();
    let holder = OrgName::random(rng).listed();
    let entry_relationships = vec![format!("{role}: {holder}")];
    let customer_relationships = match evidence.link {
        Agree => {
            reasoning.agreeing.push(link_name);
            reasoning.line(format!("Links: {holder} is the {role} on both."));
            entry_relationships.clone()
        }
        _ => Vec::new(),
    };
    let party = Party {
        kind: craft.kind() as i32,
        name: customer_name,
        nationality: customer_state,
        identifiers: customer_ids,
        relationships: customer_relationships,
        ..Default::default()
    };
    let entry = WatchlistEntry {
        kind: craft.kind() as i32,
        name: listed,
        aliases,
        nationality: state.to_owned(),
        identifiers: entry_ids,
        relationships: entry_relationships,
        ..Default::default()
    };
    (party, entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imo_numbers_carry_their_check_digit() {
        // IMO 9074729, a real ship's number.
        assert_eq!(imo_check_digit(&[9, 0, 7, 4, 7, 2]), 9);
        let mut rng = SeededRng::new(3);
        for _ in 0..20 {
            let digits: Vec<u32> = imo_number(&mut rng)
                .chars()
                .filter_map(|c| c.to_digit(10))
                .collect();
            assert_eq!(digits.len(), 7);
            assert_eq!(imo_check_digit(&digits[..6]), digits[6]);
        }
    }
}
