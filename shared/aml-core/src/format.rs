//! The one formatter that turns an [`Alert`] into the model's `input` text.
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
    }
}
