//! Name normalisation: Unicode NFKD with marks stripped, transliteration of any script to
//! Latin, lowercase, punctuation folded, honorifics dropped and legal suffixes canonicalised.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// What kind of name it is: persons and companies are normalised differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schema {
    /// A natural person.
    #[default]
    Person,
    /// A company or other organisation.
    Company,
}

impl Schema {
    /// Parses `Person` or `Company` (case-insensitive; `Organization` too); `None` otherwise.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "person" | "" => Some(Schema::Person),
            "company" | "organization" | "organisation" | "legalentity" => Some(Schema::Company),
            _ => None,
        }
    }
}

/// A normalised name: its tokens in order and, for companies, the canonical legal form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameKey {
    /// Lowercase ASCII tokens, honorifics, stop words and legal forms removed.
    pub tokens: Vec<String>,
    /// The canonical legal form (`ltd`, `llc`, ...), when the name carried one.
    pub legal_form: Option<&'static str>,
}

impl NameKey {
    /// Normalises `name` under `schema`.
    pub fn new(name: &str, schema: Schema) -> Self {
        let folded = fold(name);
        let mut tokens = Vec::new();
        let mut legal_form = None;
        for token in folded.split_whitespace() {
            match schema {
                Schema::Person if HONORIFICS.contains(&token) => {}
                Schema::Company if COMPANY_STOP_WORDS.contains(&token) => {}
                Schema::Company => match legal_form_of(token) {
                    Some(form) => legal_form = Some(form),
                    None => tokens.push(token.to_owned()),
                },
                Schema::Person => tokens.push(token.to_owned()),
            }
        }
        NameKey { tokens, legal_form }
    }

    /// True when nothing is left to compare.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

const HONORIFICS: &[&str] = &["mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam"];
const COMPANY_STOP_WORDS: &[&str] = &["the", "and", "of", "und", "et"];

/// Legal forms and their canonical spelling, after folding (dots removed).
const LEGAL_FORMS: &[(&str, &str)] = &[
    ("ltd", "ltd"),
    ("limited", "ltd"),
    ("llc", "llc"),
    ("inc", "inc"),
    ("incorporated", "inc"),
    ("corp", "corp"),
    ("corporation", "corp"),
    ("co", "co"),
    ("company", "co"),
    ("plc", "plc"),
    ("gmbh", "gmbh"),
    ("ag", "ag"),
    ("sa", "sa"),
    ("sarl", "sarl"),
    ("srl", "srl"),
    ("spa", "spa"),
    ("bv", "bv"),
    ("nv", "nv"),
    ("oy", "oy"),
    ("ab", "ab"),
    ("as", "as"),
    ("kg", "kg"),
    ("lp", "lp"),
    ("llp", "llp"),
    ("pte", "pte"),
    ("pty", "pty"),
    ("jsc", "jsc"),
    ("pjsc", "pjsc"),
    ("ojsc", "ojsc"),
    ("ooo", "ooo"),
    ("oao", "oao"),
    ("zao", "zao"),
    ("fze", "fze"),
    ("fzco", "fzco"),
    ("holding", "holding"),
    ("holdings", "holding"),
];

fn legal_form_of(token: &str) -> Option<&'static str> {
    LEGAL_FORMS
        .iter()
        .find(|(spelling, _)| *spelling == token)
        .map(|(_, canonical)| *canonical)
}

/// Folds a name to lowercase ASCII words: NFKD, marks stripped, any script transliterated,
/// dots and apostrophes removed (so `S.A.` is `sa`, `O'Neil` is `oneil`), other
/// punctuation a space.
pub fn fold(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.nfkd() {
        if c.is_ascii() {
            push_ascii(&mut out, c);
        } else if is_combining_mark(c) {
        } else {
            for latin in any_ascii::any_ascii_char(c).chars() {
                push_ascii(&mut out, latin);
            }
            if !c.is_alphabetic() || is_logogram(c) {
                out.push(' ');
            }
        }
    }
    out
}

fn push_ascii(out: &mut String, c: char) {
    match c {
        'a'..='z' | '0'..='9' => out.push(c),
        'A'..='Z' => out.push(c.to_ascii_lowercase()),
        '.' | '\'' | '`' => {}
        _ => out.push(' '),
    }
}

/// CJK ideographs transliterate to one syllable each; a space keeps syllables apart.
fn is_logogram(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_accents_scripts_and_punctuation() {
        assert_eq!(
            fold("José  Müller-Lüdenscheidt"),
            "jose  muller ludenscheidt"
        );
        assert_eq!(fold("O'Neil, S.A."), "oneil  sa");
        assert_eq!(fold("Владимир Путин"), "vladimir putin");
        assert!(fold("محمد").chars().all(|c| c.is_ascii_lowercase()));
    }

    #[test]
    fn canonicalises_legal_forms_and_drops_honorifics() {
        let a = NameKey::new("The Example Holdings Limited", Schema::Company);
        assert_eq!(a.tokens, vec!["example"]);
        assert_eq!(a.legal_form, Some("ltd"));
        let b = NameKey::new("Dr. John Smith", Schema::Person);
        assert_eq!(b.tokens, vec!["john", "smith"]);
        assert!(NameKey::new("  --  ", Schema::Person).is_empty());
    }

    #[test]
    fn parses_schemas() {
        assert_eq!(Schema::parse("Company"), Some(Schema::Company));
        assert_eq!(Schema::parse("person"), Some(Schema::Person));
        assert_eq!(Schema::parse("Vessel"), None);
    }
}
