//! The tokenizer (`tokenizer.json`) and the chat template of `tokenizer_config.json`.

use std::path::{Path, PathBuf};

use minijinja::{Environment, ErrorKind, context};
use serde::Serialize;
use serde_json::Value;

use crate::error::{ModelError, Result, read_json};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A message with a role.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.to_owned(),
            content: content.into(),
        }
    }
}

/// A model's tokenizer with its special tokens and chat template.
#[derive(Clone)]
pub struct TextTokenizer {
    tokenizer: tokenizers::Tokenizer,
    path: PathBuf,
    config_path: PathBuf,
    chat_template: Option<String>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    eos_ids: Vec<i64>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TextTokenizer")
            .field("path", &self.path)
            .finish()
    }
}

fn token_text(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Object(token)) => token
            .get("content")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

fn ids_of(value: Option<&Value>) -> Vec<i64> {
    match value {
        Some(Value::Number(number)) => number.as_i64().into_iter().collect(),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_i64).collect(),
        _ => Vec::new(),
    }
}

impl TextTokenizer {
    /// Loads `tokenizer.json`, `tokenizer_config.json` and, when present, `generation_config.json`
    /// (whose `eos_token_id` list wins, as transformers' generate uses it).
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(ModelError::MissingFile {
                path,
                what: "the tokenizer",
            });
        }
        let tokenizer =
            tokenizers::Tokenizer::from_file(&path).map_err(|error| ModelError::Tokenizer {
                path: path.clone(),
                reason: error.to_string(),
            })?;
        let config_path = dir.join("tokenizer_config.json");
        let config = if config_path.exists() {
            read_json(&config_path, "the tokenizer configuration")?
        } else {
            Value::Null
        };
        let chat_template = match config.get("chat_template") {
            Some(Value::String(template)) => Some(template.clone()),
            Some(Value::Array(templates)) => templates
                .iter()
                .find(|entry| entry.get("name").and_then(Value::as_str) == Some("default"))
                .and_then(|entry| entry.get("template"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        };
        let chat_template =
            chat_template.or_else(|| std::fs::read_to_string(dir.join("chat_template.jinja")).ok());
        let bos_token = token_text(config.get("bos_token"));
        let eos_token = token_text(config.get("eos_token"));
        let generation = dir.join("generation_config.json");
        let mut eos_ids = if generation.exists() {
            ids_of(read_json(&generation, "the generation configuration")?.get("eos_token_id"))
        } else {
            Vec::new()
        };
        if eos_ids.is_empty() {
            eos_ids = ids_of(
                read_json(&dir.join("config.json"), "the model configuration")?.get("eos_token_id"),
            );
        }
        if eos_ids.is_empty()
            && let Some(id) = eos_token
                .as_deref()
                .and_then(|token| tokenizer.token_to_id(token))
        {
            eos_ids.push(i64::from(id));
        }
        Ok(TextTokenizer {
            tokenizer,
            path,
            config_path,
            chat_template,
            bos_token,
            eos_token,
            eos_ids,
        })
    }

    /// Token ids of a text; `add_special_tokens` adds what the tokenizer's post-processor adds (BOS).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<i64>> {
        let encoding = self
            .tokenizer
            .encode(text, add_special_tokens)
            .map_err(|error| ModelError::Tokenizer {
                path: self.path.clone(),
                reason: error.to_string(),
            })?;
        Ok(encoding.get_ids().iter().map(|&id| i64::from(id)).collect())
    }

    /// The tokens `text` gets where it follows `context` in one text: those of `context +
    /// text` past the tokens of `context` alone. A text that a tokenizer would merge with the
    /// end of `context` is an error, as is one that changes how `context` itself encodes.
    pub fn encode_after(&self, context: &str, text: &str) -> Result<Vec<i64>> {
        let before = self.encode(context, false)?;
        let joined = self.encode(&format!("{context}{text}"), false)?;
        match joined.strip_prefix(before.as_slice()) {
            Some(after) => Ok(after.to_vec()),
            None => Err(ModelError::Input(format!(
                "{}: the text that follows {context:?} merges with it into other tokens",
                self.path.display()
            ))),
        }
    }

    /// The text of token ids, special tokens skipped.
    pub fn decode(&self, ids: &[i64]) -> Result<String> {
        let ids: Vec<u32> = ids
            .iter()
            .filter_map(|&id| u32::try_from(id).ok())
            .collect();
        self.tokenizer
            .decode(&ids, true)
            .map_err(|error| ModelError::Tokenizer {
                path: self.path.clone(),
                reason: error.to_string(),
            })
    }

    /// The id of one token, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<i64> {
        self.tokenizer.token_to_id(token).map(i64::from)
    }

    /// Ids that end generation.
    pub fn eos_ids(&self) -> &[i64] {
        &self.eos_ids
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The chat template, when the model has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Renders messages with the model's chat template; with `add_generation_prompt` the text
    /// ends where the assistant's answer begins.
    pub fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let template = self
            .chat_template
            .as_deref()
            .ok_or_else(|| ModelError::Template {
                path: self.config_path.clone(),
                reason: "the model has no chat_template".to_owned(),
            })?;
        let template_error = |error: minijinja::Error| ModelError::Template {
            path: self.config_path.clone(),
            reason: error.to_string(),
        };
        let mut environment = Environment::new();
        environment
            .set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        environment.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        environment.add_function("strftime_now", |format: String| strftime_utc_now(&format));
        environment
            .add_template("chat", template)
            .map_err(template_error)?;
        let rendered = environment
            .get_template("chat")
            .and_then(|chat| {
                chat.render(context! {
                    messages => messages,
                    add_generation_prompt => add_generation_prompt,
                    bos_token => self.bos_token.clone().unwrap_or_default(),
                    eos_token => self.eos_token.clone().unwrap_or_default(),
                })
            })
            .map_err(template_error)?;
        Ok(rendered)
    }
}

/// Today's UTC date in a strftime format (`%d`, `%m`, `%Y`, `%b`, `%B`), for chat templates
/// that stamp the date into the system prompt.
fn strftime_utc_now(format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let month_name = MONTHS[(month - 1) as usize];
    format
        .replace("%d", &format!("{day:02}"))
        .replace("%m", &format!("{month:02}"))
        .replace("%Y", &year.to_string())
        .replace("%B", month_name)
        .replace("%b", &month_name[..3])
}

/// Year, month, day of a count of days since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_784), (2026, 11, 27));
    }
}
