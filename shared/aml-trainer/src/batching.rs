//! Length-bucketed batches: examples sorted by length and cut into batches, so padding stays
//! small; the order of batches is shuffled per epoch with a seed.

use tch::Tensor;

use aml_model::training::{IGNORE_INDEX, TrainBatch};

use crate::data::Example;

/// Indices of examples grouped into batches of `batch_size`, each batch of similar lengths.
pub fn buckets(examples: &[Example], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&index| (examples[index].ids.len(), index));
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Share of padding tokens over all tokens of the batches.
pub fn padding_share(examples: &[Example], batches: &[Vec<usize>]) -> f64 {
    let (mut padded, mut real) = (0usize, 0usize);
    for batch in batches {
        let width = batch
            .iter()
            .map(|&index| examples[index].ids.len())
            .max()
            .unwrap_or(0);
        for &index in batch {
            real += examples[index].ids.len();
            padded += width;
        }
    }
    if padded == 0 {
        0.0
    } else {
        (padded - real) as f64 / padded as f64
    }
}

/// Right-padded ids and labels of a batch; labels are `IGNORE_INDEX` on prompt and padding.
pub fn collate(examples: &[Example], batch: &[usize], pad_id: i64) -> TrainBatch {
    let width = batch
        .iter()
        .map(|&index| examples[index].ids.len())
        .max()
        .unwrap_or(2)
        .max(2);
    let mut ids = Vec::with_capacity(batch.len() * width);
    let mut labels = Vec::with_capacity(batch.len() * width);
    for &index in batch {
        let example = &examples[index];
        for position in 0..width {
            match example.ids.get(position) {
                Some(&token) => {
                    ids.push(token);
                    labels.push(if position >= example.target_start {
                        token
                    } else {
                        IGNORE_INDEX
                    });
                }
                None => {
                    ids.push(pad_id);
                    labels.push(IGNORE_INDEX);
                }
            }
        }
    }
    let shape = [batch.len() as i64, width as i64];
    TrainBatch {
        ids: Tensor::from_slice(&ids).view(shape),
        labels: Tensor::from_slice(&labels).view(shape),
    }
}

/// Labelled tokens in a batch (the loss is averaged over these).
pub fn labelled_tokens(examples: &[Example], batch: &[usize]) -> usize {
    batch
        .iter()
        .map(|&index| {
            examples[index]
                .ids
                .len()
                .saturating_sub(examples[index].target_start.max(1))
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(len: usize) -> Example {
        Example {
            ids: (0..len as i64).collect(),
            target_start: len / 2,
        }
    }

    #[test]
    fn bucketing_keeps_padding_small() {
        let examples: Vec<Example> = [30, 5, 31, 6, 29, 7, 32, 4]
            .iter()
            .map(|&len| example(len))
            .collect();
        let naive: Vec<Vec<usize>> = (0..8)
            .collect::<Vec<_>>()
            .chunks(2)
            .map(<[usize]>::to_vec)
            .collect();
        let bucketed = buckets(&examples, 2);
        assert!(padding_share(&examples, &bucketed) < 0.1);
        assert!(padding_share(&examples, &naive) > 0.3);
        let batch = collate(&examples, &bucketed[0], 0);
        assert_eq!(batch.ids.size(), vec![2, 5]);
        assert_eq!(batch.labels.int64_value(&[0, 0]), IGNORE_INDEX);
    }
}
