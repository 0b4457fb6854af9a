//! Labelled alerts, as `aml alerts synth` writes them and as a bank's past dispositions are
//! given: `{"alert": {...}, "label": "match"}`; and gold labels for results, which may name
//! the alert by `alert_id` or `id` alone.

use aml_proto::v1::Alert;
use serde::{Deserialize, Serialize};

use crate::Label;

/// One labelled alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelledAlert {
    /// The alert.
    pub alert: Alert,
    /// Its gold label.
    pub label: Label,
}

/// One gold label line: `{"alert_id": ..., "label": ...}`, `{"id": ..., "label": ...}`, or
/// a labelled alert; other fields are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct GoldLine {
    /// The alert's id.
    #[serde(default)]
    pub alert_id: Option<String>,
    /// The alert's id, spelled `id`.
    #[serde(default)]
    pub id: Option<String>,
    /// The whole alert.
    #[serde(default)]
    pub alert: Option<Alert>,
    /// The gold label (`match`, `MATCH`, `no_match`, `NO_MATCH`, `edge`, `EDGE`).
    #[serde(deserialize_with = "any_case")]
    pub label: Label,
}

fn any_case<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Label, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.to_ascii_lowercase()
        .parse()
        .map_err(serde::de::Error::custom)
}

impl GoldLine {
    /// The id of the alert the label is for.
    pub fn alert_id(&self) -> Option<&str> {
        self.alert_id
            .as_deref()
            .or(self.id.as_deref())
            .or(self.alert.as_ref().map(|alert| alert.alert_id.as_str()))
            .filter(|id| !id.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gold_lines_name_their_alert_three_ways() {
        let lines = [
            r#"{"alert_id": "a-1", "label": "match"}"#,
            r#"{"id": "a-1", "label": "MATCH", "note": "reviewed"}"#,
            r#"{"alert": {"alert_id": "a-1"}, "label": "match"}"#,
        ];
        for line in lines {
            let gold: GoldLine = serde_json::from_str(line).unwrap();
            assert_eq!(gold.alert_id(), Some("a-1"), "{line}");
            assert_eq!(gold.label, Label::Match);
        }
        let nameless: GoldLine = serde_json::from_str(r#"{"label": "edge"}"#).unwrap();
        assert_eq!(nameless.alert_id(), None);
    }
}
