//! The one formatter that turns an [`Alert`] into the model's `input` text, the user message
//! every prompt carries (training sample or production alert), and the parser that reads a
//! rendered alert back (so a training sample can be prescreened as the alert it shows).
//!
//! Training samples and production alerts go through this same code, so the model sees in
//! production exactly the layout it learned. Ids that mean nothing to the decision (the
//! alert id, the bank) stay out of the text.

use std::fmt::Write;

use aml_proto::v1::{Alert, EntityKind, Identifier, Party, WatchlistEntry};

/// The instruction every screening prompt carries.
pub const SCREENING_INSTRUCTION: &str = "Decide whether the customer is the same entity as the watchlist entry. \
Answer with one word, MATCH, NO_MATCH or EDGE (borderline, needs an analyst), then give the reasons, \
citing the fields that decide it.";

/// The user message of a screening prompt: the instruction, a blank line, the case.
pub fn user_message(instruction: &str, input: &str) -> String {
    format!("{instruction}\n\n{input}").trim().to_owned()
}

/// The user message of an alert: [`SCREENING_INSTRUCTION`] and the rendered alert.
pub fn alert_user_message(alert: &Alert) -> String {
    user_message(SCREENING_INSTRUCTION, &render_alert_input(alert))
}

/// Renders an alert as the model's input text.
pub fn render_alert_input(alert: &Alert) -> String {
    let mut text = String::new();
    if let Some(party) = &alert.party {
        render_party(&mut text, party);
    }
    if let Some(entry) = &alert.entry {
        render_entry(&mut text, entry);
    }
    if !alert.context.trim().is_empty() {
        push_line(&mut text, "Context", alert.context.trim());
    }
    text.truncate(text.trim_end().len());
    text
}

fn kind_name(kind: i32) -> &'static str {
    match EntityKind::try_from(kind) {
        Ok(EntityKind::Person) => "person",
        Ok(EntityKind::Organization) => "organisation",
        Ok(EntityKind::Vessel) => "vessel",
        Ok(EntityKind::Aircraft) => "aircraft",
        _ => "entity",
    }
}

fn render_party(text: &mut String, party: &Party) {
    let _ = writeln!(text, "Customer ({}):", kind_name(party.kind));
    push_field(text, "name", &party.name);
    push_field(text, "aliases", &party.aliases.join("; "));
    push_field(text, "date of birth", &party.date_of_birth);
    push_field(text, "nationality", &party.nationality);
    push_field(text, "country", &party.country);
    push_field(text, "identifiers", &render_identifiers(&party.identifiers));
    push_field(text, "address", &party.address);
    push_field(text, "relationships", &party.relationships.join("; "));
}

fn render_entry(text: &mut String, entry: &WatchlistEntry) {
    let mut heading = format!("Watchlist entry ({}", kind_name(entry.kind));
    if !entry.list_name.is_empty() {
        let _ = write!(heading, ", {}", entry.list_name);
    }
    if !entry.program.is_empty() {
        let _ = write!(heading, ", programme {}", entry.program);
    }
    let _ = writeln!(text, "{heading}):");
    push_field(text, "name", &entry.name);
    push_field(text, "aliases", &entry.aliases.join("; "));
    push_field(text, "date of birth", &entry.date_of_birth);
    push_field(text, "nationality", &entry.nationality);
    push_field(text, "country", &entry.country);
    push_field(text, "identifiers", &render_identifiers(&entry.identifiers));
    push_field(text, "relationships", &entry.relationships.join("; "));
}

fn render_identifiers(identifiers: &[Identifier]) -> String {
    let rendered: Vec<String> = identifiers
        .iter()
        .map(|identifier| {
            if identifier.country.is_empty() {
                format!("{} {}", identifier.kind, identifier.value)
            } else {
                format!(
                    "{} {} ({})",
                    identifier.kind, identifier.value, identifier.country
                )
            }
        })
        .collect();
    rendered.join("; ")
}

fn push_field(text: &mut String, name: &str, value: &str) {
    let value = value.trim();
    if !value.is_empty() {
        let _ = writeln!(text, "  {name}: {value}");
    }
}

fn push_line(text: &mut String, name: &str, value: &str) {
    let _ = writeln!(text, "{name}: {value}");
}

fn kind_of_name(name: &str) -> i32 {
    match name {
        "person" => EntityKind::Person as i32,
        "organisation" => EntityKind::Organization as i32,
        "vessel" => EntityKind::Vessel as i32,
        "aircraft" => EntityKind::Aircraft as i32,
        _ => EntityKind::Unspecified as i32,
    }
}

fn split_list(value: &str) -> Vec<String> {
    value.split("; ").map(str::to_owned).collect()
}

fn parse_identifiers(value: &str) -> Option<Vec<Identifier>> {
    value
        .split("; ")
        .map(|item| {
            let (kind, rest) = item.split_once(' ')?;
            let (value, country) = match rest.strip_suffix(')').and_then(|r| r.rsplit_once(" (")) {
                Some((value, country)) => (value, country),
                None => (rest, ""),
            };
            Some(Identifier {
                kind: kind.to_owned(),
                value: value.to_owned(),
                country: country.to_owned(),
            })
        })
        .collect()
}

/// Reads back text that [`render_alert_input`] wrote; `None` for text of another layout (a
/// sample written by an LLM, say). Identifiers written with spaces in their kind, or values
/// holding "; ", do not survive the round trip; every alert the offline generator writes
/// does (tested there).
pub fn parse_alert_input(text: &str) -> Option<Alert> {
    enum Section {
        None,
        Customer,
        Entry,
    }
    let mut alert = Alert::default();
    let mut section = Section::None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Customer (") {
            let kind = rest.strip_suffix("):")?;
            alert.party = Some(Party {
                kind: kind_of_name(kind),
                ..Default::default()
            });
            section = Section::Customer;
        } else if let Some(rest) = line.strip_prefix("Watchlist entry (") {
            let inner = rest.strip_suffix("):")?;
            let mut parts = inner.splitn(2, ", ");
            let kind = parts.next()?;
            let mut entry = WatchlistEntry {
                kind: kind_of_name(kind),
                ..Default::default()
            };
            if let Some(rest) = parts.next() {
                let (list, program) = match rest.split_once(", programme ") {
                    Some((list, program)) => (list, program),
                    None => match rest.strip_prefix("programme ") {
                        Some(program) => ("", program),
                        None => (rest, ""),
                    },
                };
                entry.list_name = list.to_owned();
                entry.program = program.to_owned();
            }
            alert.entry = Some(entry);
            section = Section::Entry;
        } else if let Some(context) = line.strip_prefix("Context: ") {
            alert.context = context.to_owned();
            section = Section::None;
        } else if let Some(field) = line.strip_prefix("  ") {
            let (name, value) = field.split_once(": ")?;
            match (&section, &mut alert.party, &mut alert.entry) {
                (Section::Customer, Some(party), _) => match name {
                    "name" => party.name = value.to_owned(),
                    "aliases" => party.aliases = split_list(value),
                    "date of birth" => party.date_of_birth = value.to_owned(),
                    "nationality" => party.nationality = value.to_owned(),
                    "country" => party.country = value.to_owned(),
                    "identifiers" => party.identifiers = parse_identifiers(value)?,
                    "address" => party.address = value.to_owned(),
                    "relationships" => party.relationships = split_list(value),
                    _ => return None,
                },
                (Section::Entry, _, Some(entry)) => match name {
                    "name" => entry.name = value.to_owned(),
                    "aliases" => entry.aliases = split_list(value),
                    "date of birth" => entry.date_of_birth = value.to_owned(),
                    "nationality" => entry.nationality = value.to_owned(),
                    "country" => entry.country = value.to_owned(),
                    "identifiers" => entry.identifiers = parse_identifiers(value)?,
                    "relationships" => entry.relationships = split_list(value),
                    _ => return None,
                },
                _ => return None,
            }
        } else if !line.trim().is_empty() {
            return None;
        }
    }
    (alert.party.is_some() && alert.entry.is_some()).then_some(alert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_renders_fields_and_skips_empty_ones() {
        let alert = Alert {
            alert_id: "A-1".into(),
            bank: "alpha".into(),
            party: Some(Party {
                kind: EntityKind::Person as i32,
                name: "Yevgeny Volkov".into(),
                date_of_birth: "1971-03-02".into(),
                identifiers: vec![Identifier {
                    kind: "passport".into(),
                    value: "7512 334455".into(),
                    country: "RU".into(),
                }],
                ..Default::default()
            }),
            entry: Some(WatchlistEntry {
                kind: EntityKind::Person as i32,
                list_name: "OFAC SDN".into(),
                name: "Evgenii Volkov".into(),
                aliases: vec!["Jewgeni Wolkow".into()],
                date_of_birth: "1971".into(),
                ..Default::default()
            }),
            context: "wire of EUR 9,900".into(),
            ..Default::default()
        };
        let expected = "Customer (person):\n  name: Yevgeny Volkov\n  date of birth: 1971-03-02\n  \
identifiers: passport 7512 334455 (RU)\nWatchlist entry (person, OFAC SDN):\n  name: Evgenii Volkov\n  \
aliases: Jewgeni Wolkow\n  date of birth: 1971\nContext: wire of EUR 9,900";
        assert_eq!(render_alert_input(&alert), expected);
        let parsed = parse_alert_input(expected).expect("our own layout parses");
        assert_eq!(render_alert_input(&parsed), expected);
        assert_eq!(parsed.party, alert.party);
        assert_eq!(parsed.entry, alert.entry);
        assert_eq!(parse_alert_input("Mr Smith, born 1961, matched OFAC"), None);
        assert!(alert_user_message(&alert).starts_with(SCREENING_INSTRUCTION));
    }
}
