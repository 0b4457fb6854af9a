//! The offline judge: deterministic checks of a rationale against the case's input text.
//!
//! Sufficiency counts the kinds of concrete field a rationale cites with a value the input
//! holds (date of birth, nationality / country, alias, identifier, ownership link, name).
//! A hallucination is a date, an identifier, a quoted name or an ownership link in the
//! rationale that the input does not contain.

use std::collections::BTreeSet;

/// The kinds of field a rationale can cite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// A date of birth.
    DateOfBirth,
    /// Nationality or country.
    Country,
    /// An alias.
    Alias,
    /// A passport, national id, LEI or registry number.
    Identifier,
    /// An ownership or control link.
    Ownership,
    /// A quoted name.
    Name,
}

/// What the offline judge found in one rationale.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Findings {
    /// Field kinds cited with a value present in the input.
    pub cited: BTreeSet<FieldKind>,
    /// The first fabricated detail, if any.
    pub fabricated: Option<String>,
}

fn normalise(text: &str) -> String {
    text.to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Dates like 1971-03-02, 1971-03 and bare years 1900-2099.
fn dates(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for token in text.split(|c: char| !(c.is_ascii_digit() || c == '-')) {
        let token = token.trim_matches('-');
        let parts: Vec<&str> = token.split('-').collect();
        let is_year =
            |part: &str| part.len() == 4 && (part.starts_with("19") || part.starts_with("20"));
        let date_like = match parts.as_slice() {
            [year] => is_year(year),
            [year, month] => is_year(year) && month.len() == 2,
            [year, month, day] => is_year(year) && month.len() == 2 && day.len() == 2,
            _ => false,
        };
        if date_like {
            found.push(token.to_owned());
        }
    }
    found
}

/// Identifier-like tokens: at least 6 characters of which at least 5 digits, spaces inside
/// digit groups joined (passport `75 12 334455`, LEI `5493...`).
fn identifiers(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, found: &mut Vec<String>| {
        let digits = current.chars().filter(char::is_ascii_digit).count();
        let compact: String = current.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.len() >= 6 && digits >= 5 && dates(&compact).is_empty() {
            found.push(compact);
        }
        current.clear();
    };
    let chars: Vec<char> = text.chars().collect();
    for (index, &c) in chars.iter().enumerate() {
        let joins_groups = c == ' '
            && current
                .chars()
                .last()
                .is_some_and(|last| last.is_ascii_digit())
            && chars.get(index + 1).is_some_and(char::is_ascii_digit);
        if c.is_ascii_alphanumeric() || joins_groups {
            current.push(c);
        } else {
            flush(&mut current, &mut found);
        }
    }
    flush(&mut current, &mut found);
    found
}

fn quoted(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .filter(|q| !q.trim().is_empty())
        .collect()
}

/// Judges a rationale against the input it should be grounded in.
pub fn inspect(input: &str, rationale: &str) -> Findings {
    let input_normal = normalise(input);
    let input_compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    let lower = rationale.to_lowercase();
    let mut cited = BTreeSet::new();
    let mut fabricated = None;

    for date in dates(rationale) {
        if input.contains(&date) {
            if lower.contains("birth") || lower.contains("dob") {
                cited.insert(FieldKind::DateOfBirth);
            }
        } else if fabricated.is_none() {
            fabricated = Some(format!("date {date} is not in the input"));
        }
    }
    for identifier in identifiers(rationale) {
        if input_compact.contains(&identifier.to_lowercase()) {
            cited.insert(FieldKind::Identifier);
        } else if fabricated.is_none() {
            fabricated = Some(format!("identifier {identifier} is not in the input"));
        }
    }
    for name in quoted(rationale) {
        if input_normal.contains(&normalise(&name)) {
            cited.insert(FieldKind::Name);
        } else if fabricated.is_none() {
            fabricated = Some(format!("\"{name}\" is not in the input"));
        }
    }
    let input_lower = input.to_lowercase();
    for word in [
        "subsidiary",
        "parent",
        "ubo",
        "beneficial owner",
        "owned by",
        "director of",
    ] {
        if lower.contains(word) {
            if input_lower.contains("relationships:") || input_lower.contains(word) {
                cited.insert(FieldKind::Ownership);
            } else if fabricated.is_none() {
                fabricated = Some(format!(
                    "an ownership link (\"{word}\") the input does not show"
                ));
            }
        }
    }
    for line in input.lines() {
        let Some((field, value)) = line.trim().split_once(": ") else {
            continue;
        };
        let values: Vec<&str> = value
            .split(';')
            .map(str::trim)
            .filter(|v| v.len() >= 2)
            .collect();
        let mentioned = values.iter().any(|v| lower.contains(&v.to_lowercase()));
        match field {
            "nationality" | "country" if mentioned => {
                cited.insert(FieldKind::Country);
            }
            "aliases" if mentioned || lower.contains("alias") => {
                cited.insert(FieldKind::Alias);
            }
            _ => {}
        }
    }
    Findings { cited, fabricated }
}

/// Reasoning sufficiency: 1 for two or more cited fields (a name alone does not count
/// twice), 0.5 for one, 0 for none.
pub fn sufficiency(findings: &Findings) -> f64 {
    match findings.cited.len() {
        0 => 0.0,
        1 => 0.5,
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = "Customer (person):\n  name: Yevgeny Volkov\n  date of birth: 1971-03-02\n  nationality: RU\n  \
identifiers: passport 75 12 334455 (RU)\nWatchlist entry (person, OFAC SDN):\n  name: Evgenii Volkov\n  date of birth: 1971-03-02\n  nationality: RU";

    #[test]
    fn grounded_rationale_citing_two_fields_gets_full_credit() {
        let findings = inspect(
            INPUT,
            "Date of birth 1971-03-02 on both; nationality RU agrees; \"Yevgeny Volkov\" is a romanisation of \"Evgenii Volkov\".",
        );
        assert_eq!(findings.fabricated, None);
        assert!(findings.cited.contains(&FieldKind::DateOfBirth));
        assert!(findings.cited.contains(&FieldKind::Country));
        assert_eq!(sufficiency(&findings), 1.0);
    }

    #[test]
    fn invented_dob_id_or_link_is_caught() {
        let dob = inspect(INPUT, "Date of birth 1968-07-14 differs.");
        assert_eq!(
            dob.fabricated.as_deref(),
            Some("date 1968-07-14 is not in the input")
        );
        let id = inspect(INPUT, "Passport 99 88 776655 matches.");
        assert_eq!(
            id.fabricated.as_deref(),
            Some("identifier 9988776655 is not in the input")
        );
        let link = inspect(INPUT, "He is the UBO of a listed company.");
        assert!(link.fabricated.is_some());
        let spaced_id = inspect(INPUT, "Passport 75 12 334455 matches.");
        assert_eq!(spaced_id.fabricated, None);
        assert!(spaced_id.cited.contains(&FieldKind::Identifier));
    }
}
