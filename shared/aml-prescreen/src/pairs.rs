//! The `name1,name2[,schema]` CSV that `aml prescreen --pairs` reads, for measuring the
//! matcher on public name-matching benchmarks.

use crate::normalize::{NameKey, Schema};
use crate::screen::name_similarity;

/// A row that cannot be read, naming the line and field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct PairsError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// One row: two names and the schema they are compared under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// First name.
    pub name1: String,
    /// Second name.
    pub name2: String,
    /// Person (default) or Company.
    pub schema: Schema,
}

impl Pair {
    /// The name similarity of the pair.
    pub fn score(&self) -> f64 {
        name_similarity(
            &NameKey::new(&self.name1, self.schema),
            &NameKey::new(&self.name2, self.schema),
        )
    }
}

/// Splits one CSV line into fields (RFC 4180 quoting; `""` is a quote inside quotes).
fn split_fields(line: &str, line_number: usize) -> Result<Vec<String>, PairsError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(PairsError {
            line: line_number,
            reason: "unterminated quoted field".to_owned(),
        });
    }
    fields.push(field);
    Ok(fields)
}

/// Checks the header line: `name1,name2` or `name1,name2,schema`.
pub fn check_header(line: &str) -> Result<(), PairsError> {
    let fields = split_fields(line.trim_end_matches('\r'), 1)?;
    let names: Vec<String> = fields
        .iter()
        .map(|f| f.trim().to_ascii_lowercase())
        .collect();
    match names.as_slice() {
        [a, b] | [a, b, _] if a == "name1" && b == "name2" => Ok(()),
        _ => Err(PairsError {
            line: 1,
            reason: format!("expected the header `name1,name2[,schema]`, found `{line}`"),
        }),
    }
}

/// Parses a data line (1-based `line_number` for errors).
pub fn parse_pair(line: &str, line_number: usize) -> Result<Pair, PairsError> {
    let fields = split_fields(line.trim_end_matches('\r'), line_number)?;
    let error = |reason: String| PairsError {
        line: line_number,
        reason,
    };
    match fields.as_slice() {
        [name1, name2] => Ok(Pair {
            name1: name1.clone(),
            name2: name2.clone(),
            schema: Schema::Person,
        }),
        [name1, name2, schema] => Ok(Pair {
            name1: name1.clone(),
            name2: name2.clone(),
            schema: Schema::parse(schema).ok_or_else(|| {
                error(format!(
                    "field `schema`: `{schema}` is neither Person nor Company"
                ))
            })?,
        }),
        other => Err(error(format!(
            "expected 2 or 3 fields (name1,name2[,schema]), found {}",
            other.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_fields_and_schemas() {
        check_header("name1,name2,schema").unwrap();
        let pair = parse_pair("\"Smith, John\",John Smith,Person", 2).unwrap();
        assert_eq!(pair.name1, "Smith, John");
        assert!(pair.score() > 0.99);
        let company = parse_pair("Acme Ltd,\"Acme \"\"Limited\"\"\",Company", 3).unwrap();
        assert_eq!(company.schema, Schema::Company);
        assert_eq!(company.name2, "Acme \"Limited\"");
    }

    #[test]
    fn names_the_line_and_field_of_bad_rows() {
        assert_eq!(check_header("a,b").unwrap_err().line, 1);
        let error = parse_pair("x,y,Vessel", 7).unwrap_err();
        assert_eq!(error.line, 7);
        assert!(error.reason.contains("schema"), "{error}");
        assert!(
            parse_pair("only one", 4)
                .unwrap_err()
                .to_string()
                .starts_with("line 4")
        );
        assert!(parse_pair("\"open,x", 5).is_err());
    }
}
