//! Reading candidate JSONL strictly: every problem names the file, the line and the field.

use std::path::{Path, PathBuf};

use aml_core::{Difficulty, Label, SampleRecord};
use serde_json::Value;

/// A line that breaks the sample schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct SchemaError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, naming the field.
    pub reason: String,
}

const TEXT_FIELDS: [&str; 4] = ["instruction", "input", "output", "cot"];
const KNOWN_FIELDS: [&str; 7] = [
    "id",
    "instruction",
    "input",
    "output",
    "cot",
    "difficulty",
    "label",
];

/// Parses one JSONL line into a sample; the error names the field at fault.
pub fn parse_sample_line(text: &str) -> Result<SampleRecord, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| format!("invalid JSON: {error}"))?;
    let Value::Object(fields) = &value else {
        return Err("expected a JSON object".to_owned());
    };
    for name in fields.keys() {
        if !KNOWN_FIELDS.contains(&name.as_str()) {
            return Err(format!("unknown field `{name}`"));
        }
    }
    for name in TEXT_FIELDS {
        match fields.get(name) {
            None => return Err(format!("missing field `{name}`")),
            Some(Value::String(text)) if text.trim().is_empty() => {
                return Err(format!("field `{name}` is empty"));
            }
            Some(Value::String(_)) => {}
            Some(_) => return Err(format!("field `{name}` must be a string")),
        }
    }
    let enum_field = |name: &str| -> Result<String, String> {
        match fields.get(name) {
            None => Err(format!("missing field `{name}`")),
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(format!("field `{name}` must be a string")),
        }
    };
    enum_field("label")?
        .parse::<Label>()
        .map_err(|error| format!("field `label`: {error}"))?;
    enum_field("difficulty")?
        .parse::<Difficulty>()
        .map_err(|error| format!("field `difficulty`: {error}"))?;
    if let Some(id) = fields.get("id")
        && !id.is_string()
    {
        return Err("field `id` must be a string".to_owned());
    }
    serde_json::from_value(value).map_err(|error| error.to_string())
}

/// Parses every line of a candidate file; the first bad line is an error naming file and line.
pub fn parse_candidates(file: &Path, text: &str) -> Result<Vec<SampleRecord>, SchemaError> {
    let mut records = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = parse_sample_line(line).map_err(|reason| SchemaError {
            file: file.to_owned(),
            line: index + 1,
            reason,
        })?;
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: &str) -> String {
        let good = r#"{"instruction":"i","input":"x","output":"MATCH — a","cot":"c","difficulty":"easy","label":"match"}"#;
        let text = format!("{good}\n{line}\n");
        parse_candidates(Path::new("data/easy.jsonl"), &text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn each_bad_line_names_file_line_and_field() {
        assert!(error("{not json").starts_with("data/easy.jsonl:2: invalid JSON"));
        assert_eq!(
            error(
                r#"{"instruction":"i","input":"x","output":"o","difficulty":"easy","label":"match"}"#
            ),
            "data/easy.jsonl:2: missing field `cot`"
        );
        assert_eq!(
            error(
                r#"{"instruction":"i","input":"x","output":"o","cot":" ","difficulty":"easy","label":"match"}"#
            ),
            "data/easy.jsonl:2: field `cot` is empty"
        );
        assert_eq!(
            error(
                r#"{"instruction":"i","input":"x","output":"o","cot":"c","difficulty":"easy","label":"maybe"}"#
            ),
            "data/easy.jsonl:2: field `label`: unknown label `maybe`, expected one of: match, no_match, edge"
        );
    }
}
