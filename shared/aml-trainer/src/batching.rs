//! Micro-batches: rows of similar length, so padding stays small, and with packing several
//! examples per row up to the longest sequence. The order of batches is shuffled per epoch
//! with a seed.

use std::collections::BTreeSet;

use tch::Tensor;

use aml_model::training::{IGNORE_INDEX, Packing, SoftTargets, TrainBatch};

use crate::data::Example;

/// One micro-batch: its rows, each the indices of the examples it holds (one unless packed).
pub type Batch = Vec<Vec<usize>>;

/// Indices of examples grouped into batches of `batch_size` rows of one example each, each
/// batch of similar lengths.
pub fn buckets(examples: &[Example], batch_size: usize) -> Vec<Batch> {
    let rows: Vec<Vec<usize>> = (0..examples.len()).map(|index| vec![index]).collect();
    rows_in_batches(examples, rows, batch_size)
}

/// Examples packed into rows of at most `max_len` tokens (best fit, longest first), the rows
/// grouped into batches of `batch_size` rows of similar lengths.
pub fn packed(examples: &[Example], max_len: usize, batch_size: usize) -> Vec<Batch> {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&index| (std::cmp::Reverse(examples[index].ids.len()), index));
    let mut rows: Vec<Vec<usize>> = Vec::new();
    // (room left, row) of every open row: the best fit is the first with enough room.
    let mut room: BTreeSet<(usize, usize)> = BTreeSet::new();
    for index in order {
        let len = examples[index].ids.len();
        let fit = room.range((len, 0)..).next().copied();
        match fit {
            Some((left, row)) => {
                room.remove(&(left, row));
                rows[row].push(index);
                room.insert((left - len, row));
            }
            None => {
                rows.push(vec![index]);
                room.insert((max_len.saturating_sub(len), rows.len() - 1));
            }
        }
    }
    rows_in_batches(examples, rows, batch_size)
}

fn row_len(examples: &[Example], row: &[usize]) -> usize {
    row.iter().map(|&index| examples[index].ids.len()).sum()
}

fn rows_in_batches(
    examples: &[Example],
    mut rows: Vec<Vec<usize>>,
    batch_size: usize,
) -> Vec<Batch> {
    rows.sort_by_key(|row| (row_len(examples, row), row.first().copied()));
    rows.chunks(batch_size.max(1))
        .map(<[Vec<usize>]>::to_vec)
        .collect()
}

/// Share of padding tokens over all tokens of the batches.
pub fn padding_share(examples: &[Example], batches: &[Batch]) -> f64 {
    let (mut padded, mut real) = (0usize, 0usize);
    for batch in batches {
        let width = batch
            .iter()
            .map(|row| row_len(examples, row))
            .max()
            .unwrap_or(0);
        for row in batch {
            real += row_len(examples, row);
            padded += width;
        }
    }
    if padded == 0 {
        0.0
    } else {
        (padded - real) as f64 / padded as f64
    }
}

/// Right-padded ids and labels of a batch; labels are `IGNORE_INDEX` on prompts and padding.
/// With `packed`, each token also carries its example's number in the row and its position
/// within that example (padding counts as one more example). When an example weighs other
/// than 1 or has a soft target (distillation), its tokens carry its weight, and its soft
/// target replaces the label of its last token.
pub fn collate(examples: &[Example], batch: &Batch, pad_id: i64, packed: bool) -> TrainBatch {
    let width = batch
        .iter()
        .map(|row| row_len(examples, row))
        .max()
        .unwrap_or(2)
        .max(2);
    let cells = batch.len() * width;
    let (mut ids, mut labels) = (Vec::with_capacity(cells), Vec::with_capacity(cells));
    let (mut segments, mut positions) = (Vec::with_capacity(cells), Vec::with_capacity(cells));
    let mut weights = Vec::with_capacity(cells);
    let mut soft = SoftRows::default();
    let weighted = batch
        .iter()
        .flatten()
        .any(|&index| examples[index].weight != 1.0 || !examples[index].soft_target.is_empty());
    for row in batch {
        for (segment, &index) in row.iter().enumerate() {
            let example = &examples[index];
            for (position, &token) in example.ids.iter().enumerate() {
                let last = position + 1 == example.ids.len();
                ids.push(token);
                labels.push(
                    if position < example.target_start || (last && !example.soft_target.is_empty())
                    {
                        IGNORE_INDEX
                    } else {
                        token
                    },
                );
                if last && !example.soft_target.is_empty() {
                    soft.push(labels.len() - 1, example);
                }
                segments.push(segment as i64);
                positions.push(position as i64);
                weights.push(example.weight);
            }
        }
        for position in 0..width - row_len(examples, row) {
            ids.push(pad_id);
            labels.push(IGNORE_INDEX);
            segments.push(row.len() as i64);
            positions.push(position as i64);
            weights.push(0.0);
        }
    }
    let shape = [batch.len() as i64, width as i64];
    let tensor = |values: &[i64]| Tensor::from_slice(values).view(shape);
    TrainBatch {
        ids: tensor(&ids),
        labels: tensor(&labels),
        weights: weighted.then(|| Tensor::from_slice(&weights).view(shape)),
        soft: soft.targets(),
        packing: packed.then(|| Packing {
            segments: tensor(&segments),
            positions: tensor(&positions),
        }),
    }
}

/// The soft targets of a batch as they are collected.
#[derive(Default)]
struct SoftRows {
    at: Vec<i64>,
    tokens: Vec<Vec<i64>>,
    probabilities: Vec<Vec<f32>>,
    weights: Vec<f32>,
}

impl SoftRows {
    fn push(&mut self, at: usize, example: &Example) {
        self.at.push(at as i64);
        self.tokens.push(
            example
                .soft_target
                .iter()
                .map(|&(token, _)| token)
                .collect(),
        );
        self.probabilities
            .push(example.soft_target.iter().map(|&(_, p)| p).collect());
        self.weights.push(example.weight);
    }

    /// The targets as tensors, distributions padded to the widest with probability 0.
    fn targets(mut self) -> Option<SoftTargets> {
        let width = self.tokens.iter().map(Vec::len).max()?;
        for (tokens, probabilities) in self.tokens.iter_mut().zip(&mut self.probabilities) {
            tokens.resize(width, 0);
            probabilities.resize(width, 0.0);
        }
        let rows = self.at.len() as i64;
        let flat_tokens: Vec<i64> = self.tokens.concat();
        let flat_probabilities: Vec<f32> = self.probabilities.concat();
        Some(SoftTargets {
            at: Tensor::from_slice(&self.at),
            tokens: Tensor::from_slice(&flat_tokens).view([rows, width as i64]),
            probabilities: Tensor::from_slice(&flat_probabilities).view([rows, width as i64]),
            weights: Tensor::from_slice(&self.weights),
        })
    }
}

/// Real (non-padding) tokens of a batch.
pub fn batch_tokens(examples: &[Example], batch: &Batch) -> usize {
    batch.iter().map(|row| row_len(examples, row)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(len: usize) -> Example {
        Example {
            ids: (0..len as i64).collect(),
            target_start: len / 2,
            weight: 1.0,
            soft_target: Vec::new(),
        }
    }

    #[test]
    fn a_soft_target_replaces_the_label_of_its_examples_last_token() {
        let mut soft = example(6);
        soft.ids[5] = 99;
        soft.weight = 0.5;
        soft.soft_target = vec![(7, 0.25), (8, 0.75)];
        let examples = vec![example(4), soft];
        let batch = collate(&examples, &vec![vec![0], vec![1]], 0, false);
        let targets = batch.soft.expect("soft targets");
        let at = targets.at.int64_value(&[0]);
        assert_eq!(at, 6 + 5, "row 1 of width 6, position 5");
        assert_eq!(batch.ids.view([-1]).int64_value(&[at]), 99);
        assert_eq!(batch.labels.view([-1]).int64_value(&[at]), IGNORE_INDEX);
        assert_eq!(
            batch.labels.view([-1]).int64_value(&[at - 1]),
            4,
            "its other targets stay"
        );
        assert_eq!(targets.tokens.size(), [1, 2]);
        assert!((targets.probabilities.double_value(&[0, 1]) - 0.75).abs() < 1e-6);
        assert!((targets.weights.double_value(&[0]) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn bucketing_keeps_padding_small() {
        let examples: Vec<Example> = [30, 5, 31, 6, 29, 7, 32, 4]
            .iter()
            .map(|&len| example(len))
            .collect();
        let naive: Vec<Batch> = (0..8)
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|pair| pair.iter().map(|&index| vec![index]).collect())
            .collect();
        let bucketed = buckets(&examples, 2);
        assert!(padding_share(&examples, &bucketed) < 0.1);
        assert!(padding_share(&examples, &naive) > 0.3);
        let batch = collate(&examples, &bucketed[0], 0, false);
        assert_eq!(batch.ids.size(), vec![2, 5]);
        assert_eq!(batch.labels.int64_value(&[0, 0]), IGNORE_INDEX);
        assert!(batch.packing.is_none());
    }

    #[test]
    fn packing_fills_rows_without_splitting_examples() {
        let lengths = [30, 5, 31, 6, 29, 7, 32, 4, 60, 3];
        let examples: Vec<Example> = lengths.iter().map(|&len| example(len)).collect();
        let batches = packed(&examples, 64, 2);
        let mut seen: Vec<usize> = batches.iter().flatten().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..lengths.len()).collect::<Vec<_>>(),
            "each example once"
        );
        for row in batches.iter().flatten() {
            assert!(row_len(&examples, row) <= 64, "{row:?}");
        }
        let rows = batches.iter().map(Vec::len).sum::<usize>();
        assert_eq!(rows, 4, "207 tokens in rows of 64: four rows");
        assert!(
            padding_share(&examples, &batches) < padding_share(&examples, &buckets(&examples, 2))
        );

        let batch = collate(&examples, &vec![vec![1, 3]], 0, true);
        let packing = batch.packing.expect("packed");
        assert_eq!(batch.ids.size(), vec![1, 11]);
        assert_eq!(packing.segments.int64_value(&[0, 4]), 0);
        assert_eq!(packing.segments.int64_value(&[0, 5]), 1);
        assert_eq!(
            packing.positions.int64_value(&[0, 5]),
            0,
            "positions restart"
        );
        assert_eq!(
            batch.labels.int64_value(&[0, 5]),
            IGNORE_INDEX,
            "a prompt token"
        );
        assert_eq!(batch.labels.int64_value(&[0, 10]), 5);
    }
}
