//! Packing several examples into one row changes nothing the model learns: on a tiny model
//! with a non-trivial adapter and no dropout, the loss and every LoRA gradient of a packed
//! batch equal those of the same examples one per row, to float32 rounding (loss within
//! 1e-5, gradients within 1e-5 of their largest magnitude), with and without recomputation.

use aml_model::tiny::init_tiny;
use aml_model::training::loss_and_backward;
use aml_model::{Architecture, CausalLm, LoadOptions, Lora, LoraConfig, LoraInit, TinySpec};
use aml_trainer::batching::{Batch, collate};
use aml_trainer::data::Example;
use tch::Tensor;

fn examples() -> Vec<Example> {
    [(23, 9), (11, 4), (17, 12)]
        .iter()
        .enumerate()
        .map(|(index, &(len, target_start))| Example {
            ids: (0..len as i64)
                .map(|i| 5 + (i * 37 + index as i64 * 101) % 400)
                .collect(),
            target_start,
            weight: 1.0,
            soft_target: Vec::new(),
        })
        .collect()
}

/// The loss and each gradient (by PEFT name) of one batch.
fn loss_and_gradients(
    model: &CausalLm,
    lora: &Lora,
    batch: &Batch,
    packed: bool,
    recompute: bool,
) -> (f64, Vec<(String, Tensor)>) {
    let examples = examples();
    let loss = loss_and_backward(model, &collate(&examples, batch, 0, packed), recompute, 7)
        .expect("backward");
    let mut gradients: Vec<(String, Tensor)> = lora
        .vars
        .variables()
        .into_iter()
        .map(|(name, variable)| {
            let gradient = variable.grad().copy();
            let _ = variable.grad().zero_();
            (name, gradient)
        })
        .collect();
    gradients.sort_by(|a, b| a.0.cmp(&b.0));
    (loss, gradients)
}

#[test]
fn packed_rows_give_the_loss_and_gradients_of_one_example_per_row() {
    let dir = tempfile::tempdir().expect("dir");
    init_tiny(&TinySpec::tiny(Architecture::Llama), dir.path(), 11).expect("tiny model");
    let mut model = CausalLm::load(dir.path(), LoadOptions::cpu_f32()).expect("model");
    let config = LoraConfig {
        r: 4,
        alpha: 8.0,
        dropout: 0.0,
        ..LoraConfig::default()
    };
    let lora = Lora::attach_new(&mut model, config, LoraInit::RandomBoth(5)).expect("lora");
    for recompute in [false, true] {
        let (loss, gradients) = loss_and_gradients(
            &model,
            &lora,
            &vec![vec![0], vec![1], vec![2]],
            false,
            recompute,
        );
        for rows in [vec![vec![0, 1, 2]], vec![vec![2, 0], vec![1]]] {
            let (packed_loss, packed_gradients) =
                loss_and_gradients(&model, &lora, &rows, true, recompute);
            assert!(
                (loss - packed_loss).abs() < 1e-5,
                "rows {rows:?}, recompute {recompute}: loss {loss} vs packed {packed_loss}"
            );
            for ((name, one), (_, packed)) in gradients.iter().zip(&packed_gradients) {
                let scale = one.abs().max().double_value(&[]).max(1e-12);
                let diff = (one - packed).abs().max().double_value(&[]) / scale;
                assert!(
                    diff < 1e-5,
                    "rows {rows:?}, recompute {recompute}, {name}: {diff}"
                );
            }
        }
    }
}
