//! Scoring an alert: the best name similarity between the customer's names and the entry's,
//! adjusted by the other attributes; below the cutoff the alert is cleared with its reason.

use aml_proto::v1::{Alert, EntityKind};

use crate::attributes::{Relation, country, date_of_birth, identifiers};
use crate::jaro::jaro_winkler;
use crate::normalize::{NameKey, Schema};
use crate::phonetic::phonetic_key;

/// Similarity in [0, 1] of two normalised names: the best of token-set overlap, token
/// alignment (each token of the shorter name against its best partner by Jaro-Winkler,
/// phonetic key or initial) and Jaro-Winkler of the names written without spaces.
pub fn name_similarity(a: &NameKey, b: &NameKey) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (short, long) = if a.tokens.len() <= b.tokens.len() {
        (&a.tokens, &b.tokens)
    } else {
        (&b.tokens, &a.tokens)
    };
    let mut shared = 0usize;
    let mut aligned = 0.0;
    let mut key_a = Vec::with_capacity(16);
    let mut key_b = Vec::with_capacity(16);
    for token in short {
        if long.contains(token) {
            shared += 1;
            aligned += 1.0;
            continue;
        }
        phonetic_key(token.as_bytes(), &mut key_a);
        let mut best: f64 = 0.0;
        for other in long {
            let mut similarity = jaro_winkler(token.as_bytes(), other.as_bytes());
            if similarity < 0.95 {
                phonetic_key(other.as_bytes(), &mut key_b);
                if key_a.len() > 1 && key_a == key_b {
                    similarity = similarity.max(0.92);
                }
                let initial = |x: &str, y: &str| x.len() == 1 && y.starts_with(x);
                if initial(token, other) || initial(other, token) {
                    similarity = similarity.max(0.85);
                }
            }
            best = best.max(similarity);
        }
        aligned += best;
    }
    let coverage = short.len() as f64 / long.len() as f64;
    let alignment = aligned / short.len() as f64 * (0.85 + 0.15 * coverage);
    let token_set = shared as f64 / short.len() as f64 * (0.8 + 0.2 * coverage);
    let joined = if short.len() + long.len() > 2 {
        let mut x = a.tokens.clone();
        let mut y = b.tokens.clone();
        x.sort_unstable();
        y.sort_unstable();
        jaro_winkler(x.concat().as_bytes(), y.concat().as_bytes()) * 0.95
    } else {
        0.0
    };
    alignment
        .max(token_set)
        .max(joined)
        .max(acronym(short, long))
        .min(1.0)
}

/// 0.9 when a token of the shorter name spells the initials of the longer one's tokens
/// (`PLA` and `People's Liberation Army`), else 0.
fn acronym(short: &[String], long: &[String]) -> f64 {
    if long.len() < 2 {
        return 0.0;
    }
    let initials: String = long
        .iter()
        .filter_map(|token| token.chars().next())
        .collect();
    if short.contains(&initials) { 0.9 } else { 0.0 }
}

/// The prescreen's findings on one alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Prescreen {
    /// The final score in [0, 1]; the higher, the likelier a true match.
    pub score: f64,
    /// The best name similarity over every name and alias pair.
    pub name: f64,
    /// The names that gave it (customer's, entry's).
    pub best_pair: (String, String),
    /// Date of birth.
    pub date_of_birth: Relation,
    /// Nationality / country.
    pub country: Relation,
    /// Identifiers.
    pub identifiers: Relation,
}

/// Whether the alert goes on to the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Below the cutoff: cleared, with the reason recorded.
    Cleared(String),
    /// At or above the cutoff: the model decides.
    ToModel,
}

impl Prescreen {
    /// The reason text recorded for a cleared alert: names and attribute findings.
    pub fn reason(&self) -> String {
        let mut parts = vec![format!(
            "prescreen score {:.3}: name similarity {:.3} ('{}' vs '{}')",
            self.score, self.name, self.best_pair.0, self.best_pair.1
        )];
        for (what, relation) in [
            ("date of birth", self.date_of_birth),
            ("country", self.country),
            ("identifiers", self.identifiers),
        ] {
            match relation {
                Relation::Agree => parts.push(format!("{what} agrees")),
                Relation::Conflict => parts.push(format!("{what} conflicts")),
                Relation::Unknown => {}
            }
        }
        parts.join("; ")
    }

    /// Cleared below `cutoff`, otherwise on to the model.
    pub fn verdict(&self, cutoff: f64) -> Verdict {
        if self.score < cutoff {
            Verdict::Cleared(self.reason())
        } else {
            Verdict::ToModel
        }
    }
}

fn schema_of(kind: i32) -> Schema {
    match EntityKind::try_from(kind) {
        Ok(EntityKind::Organization) => Schema::Company,
        Ok(EntityKind::Vessel | EntityKind::Aircraft) => Schema::Entity,
        _ => Schema::Person,
    }
}

/// The prescreen of an alert given as the text [`aml_core::format::render_alert_input`]
/// writes (a training sample's input); `None` for text of another layout.
pub fn prescreen_text(input: &str) -> Option<Prescreen> {
    aml_core::format::parse_alert_input(input).map(|alert| prescreen_alert(&alert))
}

/// Names compared per side (the name and up to this many aliases).
const MAX_NAMES: usize = 8;

/// Scores an alert: the best name similarity, raised to 1 by an identical identifier and
/// lowered by conflicts of date of birth (x0.6), identifiers (x0.7) and country (x0.85).
pub fn prescreen_alert(alert: &Alert) -> Prescreen {
    let party = alert.party.clone().unwrap_or_default();
    let entry = alert.entry.clone().unwrap_or_default();
    let ours_schema = schema_of(party.kind);
    let theirs_schema = schema_of(entry.kind);
    let ours: Vec<(&str, NameKey)> = std::iter::once(&party.name)
        .chain(&party.aliases)
        .take(MAX_NAMES)
        .map(|name| (name.as_str(), NameKey::new(name, ours_schema)))
        .collect();
    let theirs: Vec<(&str, NameKey)> = std::iter::once(&entry.name)
        .chain(&entry.aliases)
        .take(MAX_NAMES)
        .map(|name| (name.as_str(), NameKey::new(name, theirs_schema)))
        .collect();
    let mut name = 0.0;
    let mut best_pair = (party.name.clone(), entry.name.clone());
    for (ours_text, ours_key) in &ours {
        for (theirs_text, theirs_key) in &theirs {
            let similarity = name_similarity(ours_key, theirs_key);
            if similarity > name {
                name = similarity;
                best_pair = ((*ours_text).to_owned(), (*theirs_text).to_owned());
            }
        }
    }
    let dob = date_of_birth(&party.date_of_birth, &entry.date_of_birth);
    let country = country(&party, &entry);
    let ids = identifiers(&party.identifiers, &entry.identifiers);
    let mut score = name;
    if ids == Relation::Agree {
        score = 1.0;
    }
    for (relation, factor) in [(dob, 0.6), (ids, 0.7), (country, 0.85)] {
        if relation == Relation::Conflict {
            score *= factor;
        }
    }
    Prescreen {
        score,
        name,
        best_pair,
        date_of_birth: dob,
        country,
        identifiers: ids,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aml_proto::v1::{Party, WatchlistEntry};

    fn similarity(a: &str, b: &str, schema: Schema) -> f64 {
        name_similarity(&NameKey::new(a, schema), &NameKey::new(b, schema))
    }

    #[test]
    fn variants_score_high_and_strangers_low() {
        assert!(similarity("Muammar Gaddafi", "Moammar Qadhafi", Schema::Person) > 0.85);
        assert!(similarity("Владимир Путин", "Vladimir Putin", Schema::Person) > 0.99);
        assert!(similarity("Putin, Vladimir", "Vladimir Putin", Schema::Person) > 0.99);
        assert!(similarity("J. Smith", "John Smith", Schema::Person) > 0.85);
        assert!(similarity("Al-Rashid Trading LLC", "Alrashid Trading", Schema::Company) > 0.85);
        assert!(
            similarity(
                "Example Holdings Ltd",
                "Example Holding Limited",
                Schema::Company
            ) > 0.99
        );
        assert!(similarity("John Smith", "Wei Zhang", Schema::Person) < 0.6);
        assert!(similarity("PLA", "People's Liberation Army", Schema::Company) >= 0.9);
        assert!(similarity("Brigade Forty-Four", "Brigade 44", Schema::Entity) > 0.99);
        assert_eq!(similarity("", "Wei Zhang", Schema::Person), 0.0);
    }

    #[test]
    fn attributes_move_the_score_and_the_reason_names_them() {
        let alert = |dob: &str| Alert {
            alert_id: "a1".into(),
            bank: "b".into(),
            party: Some(Party {
                kind: EntityKind::Person as i32,
                name: "Ivan Petrov".into(),
                date_of_birth: dob.into(),
                ..Default::default()
            }),
            entry: Some(WatchlistEntry {
                kind: EntityKind::Person as i32,
                name: "Ivan Petrov".into(),
                date_of_birth: "1961-05-04".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let same = prescreen_alert(&alert("1961-05-04"));
        assert_eq!(same.score, 1.0);
        assert_eq!(same.verdict(0.5), Verdict::ToModel);
        let other = prescreen_alert(&alert("1990"));
        assert!((other.score - 0.6).abs() < 1e-9);
        match other.verdict(0.7) {
            Verdict::Cleared(reason) => {
                assert!(reason.contains("date of birth conflicts"), "{reason}")
            }
            Verdict::ToModel => panic!("a conflicting date of birth below the cutoff is cleared"),
        }
    }
}
