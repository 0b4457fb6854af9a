//! Results joined with gold labels, as the cascade sees them: each result's prescreen score,
//! and its model score unless the prescreen cleared it.

use std::collections::HashMap;
use std::path::Path;

use aml_core::Label;
use aml_core::cascade::CascadeItem;
use aml_core::labelled::GoldLine;
use aml_proto::v1::ScoreResult;

/// Why gold labels could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GoldError {
    /// The file cannot be read or a line does not parse.
    #[error(transparent)]
    File(#[from] aml_storage::StorageError),
    /// A line names no alert.
    #[error("{path}: record {record} names no alert (give alert_id, id or alert.alert_id)")]
    Nameless {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based record number (blank lines not counted).
        record: usize,
    },
}

/// The gold label of each alert id in a JSONL file of [`GoldLine`]s.
pub fn read_gold(path: &Path) -> Result<HashMap<String, Label>, GoldError> {
    let lines: Vec<GoldLine> = aml_storage::read_jsonl_file(path)?;
    let mut gold = HashMap::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let id = line.alert_id().ok_or_else(|| GoldError::Nameless {
            path: path.to_owned(),
            record: index + 1,
        })?;
        gold.insert(id.to_owned(), line.label);
    }
    Ok(gold)
}

/// The cascade items of the results that have a gold label, and how many had none.
pub fn cascade_items(
    results: &[ScoreResult],
    gold: &HashMap<String, Label>,
) -> (Vec<CascadeItem>, usize) {
    let mut items = Vec::with_capacity(results.len());
    let mut unlabelled = 0;
    for result in results {
        let Some(label) = gold.get(&result.alert_id) else {
            unlabelled += 1;
            continue;
        };
        items.push(CascadeItem {
            prescreen: Some(result.prescreen_score),
            model: result.cleared_reason.is_empty().then_some(result.score),
            positive: label.is_positive(),
        });
    }
    (items, unlabelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleared_result_has_no_model_score_and_unlabelled_ones_are_counted() {
        let result = |id: &str, score: f64, cleared: bool| ScoreResult {
            alert_id: id.into(),
            score,
            prescreen_score: 0.4,
            cleared_reason: if cleared {
                "below the cutoff".into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        let gold: HashMap<String, Label> = [
            ("a".to_owned(), Label::Edge),
            ("b".to_owned(), Label::NoMatch),
        ]
        .into();
        let (items, unlabelled) = cascade_items(
            &[
                result("a", 0.0, true),
                result("b", 0.7, false),
                result("c", 0.9, false),
            ],
            &gold,
        );
        assert_eq!(unlabelled, 1);
        assert_eq!(items[0].model, None, "cleared: the prescreen's score only");
        assert!(items[0].positive);
        assert_eq!(items[1].model, Some(0.7));
        assert_eq!(items[1].prescreen, Some(0.4));
    }
}
