//! Results as an Arrow IPC file, beside the JSONL: one row per alert, the columns a bank's
//! analytics reads with pyarrow, pandas, Polars, DuckDB or Spark without parsing JSON.

use std::sync::Arc;

use aml_proto::json::label;
use aml_proto::v1::ScoreResult;
use aml_storage::Storage;
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::FileWriter;
use arrow_schema::{ArrowError, DataType, Field, Schema};

use crate::layout;

/// Why results could not be written or read as Arrow.
#[derive(Debug, thiserror::Error)]
pub enum ColumnarError {
    /// The Arrow library refused the data.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// A file read back lacks a column or has it with another type.
    #[error("column {0} is missing or has another type")]
    Column(&'static str),
    /// Object storage failed.
    #[error(transparent)]
    Storage(#[from] aml_storage::StorageError),
}

/// Writes `results` under `results_key` as JSON lines and beside it, under
/// [`layout::columnar`], as Arrow IPC.
pub async fn put_results(
    storage: &Storage,
    results_key: &str,
    results: &[ScoreResult],
) -> Result<(), ColumnarError> {
    storage.put_jsonl(results_key, results).await?;
    let columnar = write_results_arrow(results)?;
    storage
        .put(&layout::columnar(results_key), columnar.into())
        .await?;
    Ok(())
}

/// The schema of a results file; `rationale` and `cleared_reason` are null when empty.
pub fn results_schema() -> Schema {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let number = |name: &str| Field::new(name, DataType::Float64, false);
    Schema::new(vec![
        text("alert_id", false),
        text("bank", false),
        number("p_match"),
        number("p_no_match"),
        number("p_edge"),
        number("score"),
        Field::new("escalated", DataType::Boolean, false),
        text("label", true),
        text("rationale", true),
        text("cleared_reason", true),
        number("prescreen_score"),
        number("answer_mass"),
    ])
}

fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

/// `results` as the bytes of an Arrow IPC file (one record batch).
pub fn write_results_arrow(results: &[ScoreResult]) -> Result<Vec<u8>, ColumnarError> {
    let strings = |field: fn(&ScoreResult) -> Option<&str>| -> ArrayRef {
        Arc::new(results.iter().map(field).collect::<StringArray>())
    };
    let numbers = |field: fn(&ScoreResult) -> f64| -> ArrayRef {
        Arc::new(results.iter().map(field).collect::<Float64Array>())
    };
    let schema = Arc::new(results_schema());
    let columns = vec![
        strings(|result| Some(&result.alert_id)),
        strings(|result| Some(&result.bank)),
        numbers(|result| result.p_match),
        numbers(|result| result.p_no_match),
        numbers(|result| result.p_edge),
        numbers(|result| result.score),
        Arc::new(
            results
                .iter()
                .map(|result| Some(result.escalated))
                .collect::<BooleanArray>(),
        ),
        strings(|result| label::name(result.label)),
        strings(|result| non_empty(&result.rationale)),
        strings(|result| non_empty(&result.cleared_reason)),
        numbers(|result| result.prescreen_score),
        numbers(|result| result.answer_mass),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns)?;
    let mut writer = FileWriter::try_new(Vec::new(), &schema)?;
    writer.write(&batch)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

fn column<'a, T: 'static>(
    batch: &'a RecordBatch,
    name: &'static str,
) -> Result<&'a T, ColumnarError> {
    batch
        .column_by_name(name)
        .and_then(|column| column.as_any().downcast_ref::<T>())
        .ok_or(ColumnarError::Column(name))
}

fn label_value(name: Option<&str>) -> i32 {
    use aml_proto::v1::Label;
    match name {
        Some("MATCH") => Label::Match as i32,
        Some("NO_MATCH") => Label::NoMatch as i32,
        Some("EDGE") => Label::Edge as i32,
        _ => Label::Unspecified as i32,
    }
}

/// Reads back the results of an Arrow IPC file written by [`write_results_arrow`].
pub fn read_results_arrow(bytes: &[u8]) -> Result<Vec<ScoreResult>, ColumnarError> {
    let reader = FileReader::try_new(std::io::Cursor::new(bytes), None)?;
    let mut results = Vec::new();
    for batch in reader {
        let batch = batch?;
        let text = |name| column::<StringArray>(&batch, name);
        let number = |name| column::<Float64Array>(&batch, name);
        let (ids, banks, labels) = (text("alert_id")?, text("bank")?, text("label")?);
        let (rationales, reasons) = (text("rationale")?, text("cleared_reason")?);
        let (p_match, p_no_match) = (number("p_match")?, number("p_no_match")?);
        let (p_edge, score) = (number("p_edge")?, number("score")?);
        let (prescreen, mass) = (number("prescreen_score")?, number("answer_mass")?);
        let escalated = column::<BooleanArray>(&batch, "escalated")?;
        let optional = |array: &StringArray, row: usize| {
            if array.is_null(row) {
                String::new()
            } else {
                array.value(row).to_owned()
            }
        };
        for row in 0..batch.num_rows() {
            results.push(ScoreResult {
                alert_id: ids.value(row).to_owned(),
                bank: banks.value(row).to_owned(),
                p_match: p_match.value(row),
                p_no_match: p_no_match.value(row),
                p_edge: p_edge.value(row),
                score: score.value(row),
                escalated: escalated.value(row),
                label: label_value((!labels.is_null(row)).then(|| labels.value(row))),
                rationale: optional(rationales, row),
                cleared_reason: optional(reasons, row),
                prescreen_score: prescreen.value(row),
                answer_mass: mass.value(row),
            });
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(index: usize) -> ScoreResult {
        ScoreResult {
            alert_id: format!("a-{index}"),
            bank: "bank-a".to_owned(),
            p_match: 0.25,
            p_no_match: 0.5,
            p_edge: 0.25,
            score: 0.5,
            escalated: index.is_multiple_of(2),
            label: aml_proto::v1::Label::NoMatch as i32,
            rationale: if index == 0 {
                "DOB agrees.".to_owned()
            } else {
                String::new()
            },
            cleared_reason: String::new(),
            prescreen_score: 0.75,
            answer_mass: 0.5 + index as f64 / 10.0,
        }
    }

    #[test]
    fn results_round_trip_through_arrow() {
        let results: Vec<ScoreResult> = (0..5).map(result).collect();
        let bytes = write_results_arrow(&results).unwrap();
        assert_eq!(&bytes[..6], b"ARROW1", "the Arrow IPC file magic");
        assert_eq!(read_results_arrow(&bytes).unwrap(), results);
        assert!(
            read_results_arrow(&write_results_arrow(&[]).unwrap())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn columnar_key_sits_beside_the_jsonl() {
        assert_eq!(
            layout::columnar("banks/b/batches/x/results/00003.jsonl"),
            "banks/b/batches/x/columnar/00003.arrow"
        );
    }
}
