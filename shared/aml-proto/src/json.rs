//! JSON spellings of the enums inside JSON-carried messages: their short names (`PERSON`,
//! `ORGANIZATION`, `MATCH`, `NO_MATCH`, `EDGE`), not the wire numbers.

use serde::{Deserialize, Deserializer, Serializer};

fn named<S: Serializer>(serializer: S, name: Option<&str>, value: i32) -> Result<S::Ok, S::Error> {
    match name {
        Some(name) => serializer.serialize_str(name),
        None => serializer.serialize_i32(value),
    }
}

fn parse<'de, D: Deserializer<'de>>(
    deserializer: D,
    parse: impl Fn(&str) -> Option<i32>,
    expected: &str,
) -> Result<i32, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text.to_ascii_uppercase())
        .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not one of {expected}")))
}

/// `EntityKind` as `PERSON` / `ORGANIZATION` / `VESSEL` / `AIRCRAFT`.
pub mod entity_kind {
    use super::*;
    use crate::v1::EntityKind;

    /// Writes the name.
    pub fn serialize<S: Serializer>(value: &i32, serializer: S) -> Result<S::Ok, S::Error> {
        let name = match EntityKind::try_from(*value) {
            Ok(EntityKind::Person) => Some("PERSON"),
            Ok(EntityKind::Organization) => Some("ORGANIZATION"),
            Ok(EntityKind::Vessel) => Some("VESSEL"),
            Ok(EntityKind::Aircraft) => Some("AIRCRAFT"),
            _ => None,
        };
        named(serializer, name, *value)
    }

    /// Reads the name (case-insensitive; `COMPANY`, `ORGANISATION`, `SHIP` and `AIRPLANE` too).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
        parse(
            deserializer,
            |text| match text {
                "PERSON" => Some(EntityKind::Person as i32),
                "ORGANIZATION" | "ORGANISATION" | "COMPANY" => {
                    Some(EntityKind::Organization as i32)
                }
                "VESSEL" | "SHIP" => Some(EntityKind::Vessel as i32),
                "AIRCRAFT" | "AIRPLANE" => Some(EntityKind::Aircraft as i32),
                _ => None,
            },
            "PERSON, ORGANIZATION, VESSEL, AIRCRAFT",
        )
    }
}

/// `Label` as `MATCH` / `NO_MATCH` / `EDGE`.
pub mod label {
    use super::*;
    use crate::v1::Label;

    /// `MATCH` / `NO_MATCH` / `EDGE`; `None` for an unspecified or unknown value.
    pub fn name(value: i32) -> Option<&'static str> {
        match Label::try_from(value) {
            Ok(Label::Match) => Some("MATCH"),
            Ok(Label::NoMatch) => Some("NO_MATCH"),
            Ok(Label::Edge) => Some("EDGE"),
            _ => None,
        }
    }

    /// Writes the name.
    pub fn serialize<S: Serializer>(value: &i32, serializer: S) -> Result<S::Ok, S::Error> {
        named(serializer, name(*value), *value)
    }

    /// Reads the name.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i32, D::Error> {
        parse(
            deserializer,
            |text| match text {
                "MATCH" => Some(Label::Match as i32),
                "NO_MATCH" => Some(Label::NoMatch as i32),
                "EDGE" => Some(Label::Edge as i32),
                _ => None,
            },
            "MATCH, NO_MATCH, EDGE",
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::v1::{Alert, EntityKind, Party};

    #[test]
    fn alerts_round_trip_through_json_with_named_enums() {
        let alert = Alert {
            alert_id: "a-1".into(),
            bank: "acme".into(),
            party: Some(Party {
                kind: EntityKind::Organization as i32,
                name: "Acme Ltd".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = serde_json::to_string(&alert).unwrap();
        assert!(text.contains("\"kind\":\"ORGANIZATION\""), "{text}");
        let back: Alert = serde_json::from_str(&text).unwrap();
        assert_eq!(back, alert);
        let short: Alert =
            serde_json::from_str(r#"{"alert_id":"a","party":{"kind":"person","name":"X"}}"#)
                .unwrap();
        assert_eq!(short.party.unwrap().kind, EntityKind::Person as i32);
        let error =
            serde_json::from_str::<Alert>(r#"{"alert_id":"a","party":{"kind":"SPACECRAFT"}}"#)
                .unwrap_err();
        assert!(error.to_string().contains("SPACECRAFT"), "{error}");
        assert!(serde_json::from_str::<Alert>(r#"{"alert_idd":"a"}"#).is_err());
    }
}
