//! The scoring prompt, the same for every backend: the policy as the system message (the
//! shared prefix), then the instruction and the alert as the user's message, then the
//! template up to the assistant's answer.

use aml_core::format::alert_user_message;
use aml_model::{ChatMessage, TextTokenizer};
use aml_proto::v1::Alert;

use crate::ScoringError;

/// Marks where the user's content goes when the template is split around it.
const MARKER: &str = "\u{1}AML-ALERT\u{1}";

/// The chat template split around the user's content.
#[derive(Debug, Clone)]
pub(crate) struct SplitTemplate {
    /// Everything before the user's content: the shared prefix.
    pub opening: String,
    /// Template text between the user's content and the assistant's answer.
    pub user_close: String,
}

/// Splits the chat template of `tokenizer` with `policy` as the system message.
pub(crate) fn split_template(
    tokenizer: &TextTokenizer,
    policy: &str,
) -> Result<SplitTemplate, ScoringError> {
    let rendered = tokenizer.render_chat(
        &[
            ChatMessage::new("system", policy),
            ChatMessage::new("user", MARKER),
        ],
        true,
    )?;
    let mut parts = rendered.split(MARKER);
    let (Some(opening), Some(user_close), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ScoringError::Template(
            "the user's content does not appear exactly once".to_owned(),
        ));
    };
    if opening.is_empty() {
        return Err(ScoringError::Template("the prefix is empty".to_owned()));
    }
    Ok(SplitTemplate {
        opening: opening.to_owned(),
        user_close: user_close.to_owned(),
    })
}

/// The tokens of a user message (an alert's, see [`aml_core::format::alert_user_message`])
/// behind a prefix whose template closes the user's turn with `user_close`.
pub(crate) fn message_tokens(
    tokenizer: &TextTokenizer,
    user_close: &str,
    message: &str,
) -> Result<Vec<i64>, ScoringError> {
    Ok(tokenizer.encode(&format!("{message}{user_close}"), false)?)
}

/// What is scored of the three answers, in [`aml_core::Label::ALL`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AnswerShape {
    /// The answers start with three different tokens: P(label) is the probability of its
    /// first token, one position per alert on every backend (a server returns it as the
    /// top log-probabilities of one generated token, behind its prefix cache).
    FirstTokens([i64; 3]),
    /// Two answers share their first token (a SentencePiece tokenizer that splits off the
    /// word-start marker): P(label) is the probability of its whole token sequence.
    Sequences(Vec<Vec<i64>>),
}

/// The token sequences whose probabilities, renormalised, are the label probabilities
/// under `tokenizer`, in [`aml_core::Label::ALL`] order: each answer's first token when the
/// three differ, else each answer's whole sequence. Training and calibration score these too.
pub fn scored_answers(tokenizer: &TextTokenizer) -> Result<Vec<Vec<i64>>, ScoringError> {
    Ok(AnswerShape::of(tokenizer)?.scored())
}

impl AnswerShape {
    /// The shape of `tokenizer`'s answers.
    pub(crate) fn of(tokenizer: &TextTokenizer) -> Result<Self, ScoringError> {
        let sequences = aml_core::Label::ALL
            .iter()
            .map(|label| Ok(tokenizer.encode(label.decision_word(), false)?))
            .collect::<Result<Vec<Vec<i64>>, ScoringError>>()?;
        if sequences.iter().any(Vec::is_empty) {
            return Err(ScoringError::Template(
                "an answer encodes to no token".to_owned(),
            ));
        }
        let firsts = [sequences[0][0], sequences[1][0], sequences[2][0]];
        Ok(
            if firsts[0] != firsts[1] && firsts[0] != firsts[2] && firsts[1] != firsts[2] {
                AnswerShape::FirstTokens(firsts)
            } else {
                AnswerShape::Sequences(sequences)
            },
        )
    }

    /// The token sequences scored after each prompt.
    pub(crate) fn scored(&self) -> Vec<Vec<i64>> {
        match self {
            AnswerShape::FirstTokens(firsts) => firsts.iter().map(|&id| vec![id]).collect(),
            AnswerShape::Sequences(sequences) => sequences.clone(),
        }
    }
}

/// The tokens of `alert`'s user message behind a prefix closed by `user_close`.
pub(crate) fn alert_tokens(
    tokenizer: &TextTokenizer,
    user_close: &str,
    alert: &Alert,
) -> Result<Vec<i64>, ScoringError> {
    message_tokens(tokenizer, user_close, &alert_user_message(alert))
}

/// Checks that a prompt of `alert` tokens behind `prefix` tokens, with the longest of
/// the scored `answers`, fits a context of `limit` tokens.
pub(crate) fn check_fits(
    prefix: usize,
    alert: usize,
    answers: &[Vec<i64>],
    limit: usize,
) -> Result<(), ScoringError> {
    let answer = answers.iter().map(Vec::len).max().unwrap_or(0);
    if prefix + alert + answer > limit {
        return Err(ScoringError::TooLong {
            prefix,
            alert,
            answer,
            limit,
        });
    }
    Ok(())
}
