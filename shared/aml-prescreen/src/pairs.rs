//! Name-pair CSVs that `aml prescreen --pairs` and the prescreen benchmark read: columns
//! found by their header, `name1` and `name2` required, `schema` (a FollowTheMoney schema
//! name), `is_match` and `case_group` optional, any other column ignored, so OpenSanctions'
//! `name_bench/cases.csv` reads as it is.

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

/// One row: two names, the schema they are compared under, and the label when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// First name.
    pub name1: String,
    /// Second name.
    pub name2: String,
    /// How the names are normalised.
    pub schema: Schema,
    /// Whether the two names belong to one entity, when the file says.
    pub is_match: Option<bool>,
    /// The row's group (`case_group`), when the file has one.
    pub group: Option<String>,
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
pub fn split_fields(line: &str, line_number: usize) -> Result<Vec<String>, PairsError> {
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

/// Where the columns are, from the header line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairsHeader {
    name1: usize,
    name2: usize,
    schema: Option<usize>,
    is_match: Option<usize>,
    group: Option<usize>,
}

impl PairsHeader {
    /// Reads the header line: `name1` and `name2` must be among its columns.
    pub fn parse(line: &str) -> Result<Self, PairsError> {
        let names: Vec<String> = split_fields(line.trim_end_matches('\r'), 1)?
            .iter()
            .map(|field| field.trim().to_ascii_lowercase())
            .collect();
        let position = |wanted: &str| names.iter().position(|name| name == wanted);
        match (position("name1"), position("name2")) {
            (Some(name1), Some(name2)) => Ok(PairsHeader {
                name1,
                name2,
                schema: position("schema"),
                is_match: position("is_match"),
                group: position("case_group"),
            }),
            _ => Err(PairsError {
                line: 1,
                reason: format!(
                    "expected a header with the columns name1 and name2 (schema, is_match, case_group optional), found `{line}`"
                ),
            }),
        }
    }

    /// Parses a data line (1-based `line_number` for errors).
    pub fn pair(&self, line: &str, line_number: usize) -> Result<Pair, PairsError> {
        let fields = split_fields(line.trim_end_matches('\r'), line_number)?;
        let field = |index: usize, name: &str| {
            fields.get(index).cloned().ok_or_else(|| PairsError {
                line: line_number,
                reason: format!("field `{name}` missing: {} fields", fields.len()),
            })
        };
        let is_match = match self.is_match {
            None => None,
            Some(index) => {
                let value = field(index, "is_match")?;
                Some(match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => {
                        return Err(PairsError {
                            line: line_number,
                            reason: format!(
                                "field `is_match`: `{value}` is neither true nor false"
                            ),
                        });
                    }
                })
            }
        };
        Ok(Pair {
            name1: field(self.name1, "name1")?,
            name2: field(self.name2, "name2")?,
            schema: match self.schema {
                Some(index) => Schema::from_ftm(&field(index, "schema")?),
                None => Schema::Person,
            },
            is_match,
            group: self
                .group
                .map(|index| field(index, "case_group"))
                .transpose()?,
        })
    }
}

/// Every pair of a CSV's text (header first; blank lines skipped).
pub fn read_pairs(text: &str) -> Result<Vec<Pair>, PairsError> {
    let mut lines = text.lines().enumerate();
    let header = match lines.next() {
        Some((_, line)) => PairsHeader::parse(line)?,
        None => {
            return Err(PairsError {
                line: 1,
                reason: "empty file: expected a header".to_owned(),
            });
        }
    };
    let mut pairs = Vec::new();
    for (index, line) in lines {
        if !line.trim().is_empty() {
            pairs.push(header.pair(line, index + 1)?);
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_fields_schemas_and_labels_by_header() {
        let text = "name1,name2,schema\n\"Smith, John\",John Smith,Person\n\
                    Acme Ltd,\"Acme \"\"Limited\"\"\",Company\n";
        let pairs = read_pairs(text).unwrap();
        assert_eq!(pairs[0].name1, "Smith, John");
        assert!(pairs[0].score() > 0.99);
        assert_eq!(pairs[1].schema, Schema::Company);
        assert_eq!(pairs[1].name2, "Acme \"Limited\"");
        let bench = read_pairs(
            "case_group,schema,name1,name2,is_match,quality\n\
             nk_checks,Vessel,Lady Leila,Lady Rania,false,MEDIUM\n",
        )
        .unwrap();
        assert_eq!(
            bench[0].schema,
            Schema::Entity,
            "an unfamiliar schema is a generic entity"
        );
        assert_eq!(bench[0].is_match, Some(false));
        assert_eq!(bench[0].group.as_deref(), Some("nk_checks"));
    }

    #[test]
    fn names_the_line_and_field_of_bad_rows() {
        assert_eq!(read_pairs("a,b\n").unwrap_err().line, 1);
        let error = read_pairs("name1,name2,is_match\nx,y,true\nx,y,maybe\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.reason.contains("is_match"), "{error}");
        let short = read_pairs("name1,name2\nonly one\n").unwrap_err();
        assert!(
            short
                .to_string()
                .starts_with("line 2: field `name2` missing"),
            "{short}"
        );
        assert!(read_pairs("name1,name2\n\"open,x\n").is_err());
    }
}
