//! Scoring a fixed set of answers (e.g. MATCH / NO_MATCH / EDGE) without generating.
//!
//! For each prompt, the tokens of every answer but its last are appended behind the prompt
//! as parallel branches of a tree: each branch sees the prompt and its own earlier tokens,
//! never another branch. One forward pass then gives every answer's full sequence
//! probability, exact even when an answer spans several tokens. Prompts may sit behind a
//! shared prefix encoded once ([`PrefixKv`]); rows are right-padded and padding never
//! changes a result.

use tch::{Kind, Tensor};

use crate::attention::SelfMask;
use crate::error::{ModelError, Result};
use crate::model::{CausalLm, PrefixKv, Step};

/// The scores of one prompt's answers.
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerScores {
    /// Log-probability of each answer's token sequence after the prompt.
    pub log_probs: Vec<f64>,
    /// The answers' probabilities renormalised over the answer set.
    pub probabilities: Vec<f64>,
}

/// Where each token of a row sits in the tree.
struct RowLayout {
    tokens: Vec<i64>,
    /// 0 for the prompt, `j + 1` for answer `j`.
    branch: Vec<i64>,
    /// Index inside its branch (prompt index, or answer token index).
    local: Vec<i64>,
    prompt_len: i64,
    /// Start of each answer branch in the row.
    branch_start: Vec<i64>,
}

fn layout(prompt: &[i64], answers: &[Vec<i64>]) -> RowLayout {
    let mut row = RowLayout {
        tokens: prompt.to_vec(),
        branch: vec![0; prompt.len()],
        local: (0..prompt.len() as i64).collect(),
        prompt_len: prompt.len() as i64,
        branch_start: Vec::with_capacity(answers.len()),
    };
    for (index, answer) in answers.iter().enumerate() {
        row.branch_start.push(row.tokens.len() as i64);
        for (position, &token) in answer
            .iter()
            .take(answer.len().saturating_sub(1))
            .enumerate()
        {
            row.tokens.push(token);
            row.branch.push(index as i64 + 1);
            row.local.push(position as i64);
        }
    }
    row
}

/// Scores `answers` after each of `prompts`, behind `prefix` when given, in one forward pass.
pub fn score_answers(
    model: &CausalLm,
    prefix: Option<&PrefixKv>,
    prompts: &[Vec<i64>],
    answers: &[Vec<i64>],
) -> Result<Vec<AnswerScores>> {
    if answers.is_empty() || answers.iter().any(Vec::is_empty) {
        return Err(ModelError::Input(
            "every answer needs at least one token".to_owned(),
        ));
    }
    if prompts.iter().any(Vec::is_empty) {
        return Err(ModelError::Input(
            "every prompt needs at least one token".to_owned(),
        ));
    }
    if prompts.is_empty() {
        return Ok(Vec::new());
    }
    let _no_grad = tch::no_grad_guard();
    let device = model.device;
    let rows: Vec<RowLayout> = prompts
        .iter()
        .map(|prompt| layout(prompt, answers))
        .collect();
    let width = rows.iter().map(|row| row.tokens.len()).max().unwrap_or(1) as i64;
    let batch = rows.len() as i64;
    let base = prefix.map_or(0, PrefixKv::len);
    let mut ids = Vec::with_capacity((batch * width) as usize);
    let mut branch = Vec::with_capacity(ids.capacity());
    let mut local = Vec::with_capacity(ids.capacity());
    for row in &rows {
        let padding = width as usize - row.tokens.len();
        ids.extend(&row.tokens);
        ids.extend(std::iter::repeat_n(0, padding));
        branch.extend(&row.branch);
        branch.extend(std::iter::repeat_n(-1, padding));
        local.extend(&row.local);
        local.extend(std::iter::repeat_n(0, padding));
    }
    let shape = [batch, width];
    let ids = Tensor::from_slice(&ids).view(shape).to_device(device);
    let branch = Tensor::from_slice(&branch).view(shape).to_device(device);
    let local = Tensor::from_slice(&local).view(shape).to_device(device);
    let prompt_len = Tensor::from_slice(&rows.iter().map(|row| row.prompt_len).collect::<Vec<_>>())
        .view([batch, 1])
        .to_device(device);
    let is_answer = branch.gt(0);
    let positions = (&local + base + prompt_len * is_answer.to_kind(Kind::Int64)).clamp_min(0);
    let query_branch = branch.unsqueeze(2);
    let key_branch = branch.unsqueeze(1);
    let key_is_prompt = key_branch.eq(0);
    let earlier = local.unsqueeze(1).le_tensor(&local.unsqueeze(2));
    let sees_prompt = key_is_prompt
        .logical_and(&query_branch.ge(0))
        .logical_and(&query_branch.eq(0).logical_not().logical_or(&earlier));
    let sees_own_branch = key_branch
        .eq_tensor(&query_branch)
        .logical_and(&query_branch.gt(0))
        .logical_and(&earlier);
    let diagonal = Tensor::eye(width, (Kind::Bool, device)).unsqueeze(0);
    let allowed = sees_prompt
        .logical_or(&sees_own_branch)
        .logical_or(&diagonal);
    let mut gather_positions = Vec::new();
    let mut targets = Vec::new();
    for row in &rows {
        for (index, answer) in answers.iter().enumerate() {
            for (position, &token) in answer.iter().enumerate() {
                let source = if position == 0 {
                    row.prompt_len - 1
                } else {
                    row.branch_start[index] + position as i64 - 1
                };
                gather_positions.push(source);
                targets.push(token);
            }
        }
    }
    let per_row = answers.iter().map(Vec::len).sum::<usize>() as i64;
    let output_rows = Tensor::from_slice(&gather_positions)
        .view([batch, per_row])
        .to_device(device);
    let step = Step {
        ids,
        positions,
        self_mask: SelfMask::Allowed(allowed),
        valid: None,
        output_rows: Some(output_rows),
    };
    let (selected, _) = model.run(&step, prefix, None, false)?;

    let log_probs = model.head(&selected).log_softmax(-1, Kind::Float);
    let targets = Tensor::from_slice(&targets)
        .view([batch, per_row, 1])
        .to_device(device);
    let token_log_probs = log_probs
        .gather(2, &targets, false)
        .squeeze_dim(2)
        .to_device(tch::Device::Cpu);
    let token_log_probs: Vec<Vec<f64>> =
        Vec::<Vec<f64>>::try_from(&token_log_probs.to_kind(Kind::Double))
            .map_err(ModelError::Torch)?;

    let mut scores = Vec::with_capacity(rows.len());
    for row_log_probs in token_log_probs {
        let mut sums = Vec::with_capacity(answers.len());
        let mut offset = 0;
        for answer in answers {
            sums.push(
                row_log_probs[offset..offset + answer.len()]
                    .iter()
                    .sum::<f64>(),
            );
            offset += answer.len();
        }
        let probabilities = renormalise(&sums);
        scores.push(AnswerScores {
            log_probs: sums,
            probabilities,
        });
    }
    Ok(scores)
}

/// Probabilities from the answers' log-probabilities, renormalised over the answer set.
pub fn renormalise(log_probs: &[f64]) -> Vec<f64> {
    let max = log_probs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = log_probs.iter().map(|value| (value - max).exp()).sum();
    log_probs
        .iter()
        .map(|value| (value - max).exp() / total)
        .collect()
}
