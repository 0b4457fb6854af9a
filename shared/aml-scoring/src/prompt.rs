//! The scoring prompt, the same for every backend: the policy as the system message (the
//! shared prefix), then the instruction and the alert as the user's message, then the
//! template up to the assistant's answer.

use aml_core::format::alert_user_message;
use aml_model::{ChatMessage, TextTokenizer};
use aml_proto::v1::Alert;

use crate::ScoringError;

/// Marks where the user's content goes when the template is split around it.
const MARKER: &str = "\u{1}AML-ALERT\u{1}";

/// Longest tail of the prefix that an alert's text is tokenised behind.
const ANCHOR_CHARS: usize = 64;

/// How a user message is tokenised behind the shared prefix: after the prefix's last few
/// characters (its anchor), so that it gets the tokens it has inside the whole prompt, as
/// training encodes it (a SentencePiece tokenizer would otherwise mark the message as the
/// start of a text), then the template's close of the user's turn.
#[derive(Debug, Clone)]
pub(crate) struct UserTurn {
    anchor: String,
    close: String,
}

impl UserTurn {
    /// The tokens of `message` (an instruction and a case) and the turn's close.
    pub(crate) fn tokens(
        &self,
        tokenizer: &TextTokenizer,
        message: &str,
    ) -> Result<Vec<i64>, ScoringError> {
        Ok(tokenizer.encode_after(&self.anchor, &format!("{message}{}", self.close))?)
    }

    /// The tokens of `alert`'s user message.
    pub(crate) fn alert_tokens(
        &self,
        tokenizer: &TextTokenizer,
        alert: &Alert,
    ) -> Result<Vec<i64>, ScoringError> {
        self.tokens(tokenizer, &alert_user_message(alert))
    }
}

/// The chat template split around the user's content.
#[derive(Debug, Clone)]
pub(crate) struct SplitTemplate {
    /// Everything before the user's content: the shared prefix.
    pub opening: String,
    /// How a user message follows it.
    pub turn: UserTurn,
}

/// The last word of `opening` (from the whitespace before its last non-space character) and
/// what follows it, at most [`ANCHOR_CHARS`] characters before that character.
fn anchor_of(opening: &str) -> String {
    let end = opening.trim_end().len();
    let word = opening[..end]
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(index, c)| index + c.len_utf8());
    let mut start = word.max(end.saturating_sub(ANCHOR_CHARS));
    while !opening.is_char_boundary(start) {
        start += 1;
    }
    opening[start..].to_owned()
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
        turn: UserTurn {
            anchor: anchor_of(opening),
            close: user_close.to_owned(),
        },
    })
}

/// The tokens of the shared prefix, checked once: a probe message tokenised behind them as
/// every alert is must give, with them, the tokens of the whole prompt encoded in one text.
pub(crate) fn prefix_ids(
    tokenizer: &TextTokenizer,
    template: &SplitTemplate,
) -> Result<Vec<i64>, ScoringError> {
    let ids = tokenizer.encode(&template.opening, false)?;
    let probe = aml_core::format::user_message(
        aml_core::format::SCREENING_INSTRUCTION,
        "Customer (person):\n  name: Probe",
    );
    let whole = tokenizer.encode(
        &format!("{}{probe}{}", template.opening, template.turn.close),
        false,
    )?;
    let apart = [ids.clone(), template.turn.tokens(tokenizer, &probe)?].concat();
    if apart != whole {
        return Err(ScoringError::Template(
            "the prefix and an alert tokenise differently apart than in one text".to_owned(),
        ));
    }
    Ok(ids)
}

/// The token ids a worker runs for `message` (an instruction and a case) behind `policy`:
/// the shared prefix's, then the message's with the template's close of the user's turn.
/// Together they are the tokens of the whole prompt encoded in one text, as training has it.
pub fn scoring_token_ids(
    tokenizer: &TextTokenizer,
    policy: &str,
    message: &str,
) -> Result<(Vec<i64>, Vec<i64>), ScoringError> {
    let template = split_template(tokenizer, policy)?;
    let prefix = prefix_ids(tokenizer, &template)?;
    Ok((prefix, template.turn.tokens(tokenizer, message)?))
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
