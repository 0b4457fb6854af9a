//! Name normalisation: Unicode NFKD with marks stripped, transliteration of any script to
//! Latin, lowercase, punctuation folded, honorifics dropped and legal suffixes canonicalised.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// What kind of name it is: persons and companies are normalised differently, anything else
/// (a vessel, an aircraft, an unknown schema) as a generic entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schema {
    /// A natural person: honorifics dropped.
    #[default]
    Person,
    /// A company or other organisation: legal forms canonicalised, stop words dropped.
    Company,
    /// Any other named thing (FollowTheMoney's Vessel, Airplane, Asset, ...): folded only.
    Entity,
}

impl Schema {
    /// The schema of a FollowTheMoney schema name (case-insensitive): `Person`; `Company`,
    /// `Organization`, `LegalEntity`, `PublicBody` as a company; empty as a person; any other
    /// name (`Vessel`, `Airplane`, ...) as a generic entity.
    pub fn from_ftm(text: &str) -> Self {
        match text.trim().to_ascii_lowercase().as_str() {
            "person" | "" => Schema::Person,
            "company" | "organization" | "organisation" | "legalentity" | "publicbody" => {
                Schema::Company
            }
            _ => Schema::Entity,
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
        let mut folded = fold(&split_camel_case(name));
        if schema == Schema::Company {
            abbreviate_legal_phrases(&mut folded);
        }
        let words: Vec<&str> = folded.split_whitespace().collect();
        let mut tokens = Vec::with_capacity(words.len());
        let mut legal_form = None;
        let mut index = 0;
        while index < words.len() {
            let (word, used) = number_at(&words[index..]);
            index += used;
            let token = word.as_deref().unwrap_or(words[index - used]);
            match schema {
                Schema::Person if HONORIFICS.contains(&token) => {}
                Schema::Company if COMPANY_STOP_WORDS.contains(&token) => {}
                Schema::Company => match legal_form_of(token) {
                    Some(form) => legal_form = Some(form),
                    None => tokens.push(token.to_owned()),
                },
                Schema::Person | Schema::Entity => tokens.push(token.to_owned()),
            }
        }
        NameKey { tokens, legal_form }
    }

    /// True when nothing is left to compare.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// `FridrichBuchenberg` -> `Fridrich Buchenberg`: a space before a capital that follows a
/// lowercase letter and starts a lowercase word (names written without spaces keep their
/// capitals; `GmbH` stays whole).
fn split_camel_case(name: &str) -> std::borrow::Cow<'_, str> {
    let splits = |previous: char, c: char, next: Option<char>| {
        previous.is_lowercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase)
    };
    let mut chars = name.chars().peekable();
    let mut previous = ' ';
    let mut found = false;
    while let Some(c) = chars.next() {
        if splits(previous, c, chars.peek().copied()) {
            found = true;
            break;
        }
        previous = c;
    }
    if !found {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 4);
    let mut chars = name.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        if splits(previous, c, chars.peek().copied()) {
            out.push(' ');
        }
        out.push(c);
        previous = c;
    }
    std::borrow::Cow::Owned(out)
}

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [(&str, u32); 9] = [
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fourty", 40),
    ("fifty", 50),
    ("sixty", 60),
    ("seventy", 70),
    ("eighty", 80),
    ("ninety", 90),
];

/// The number that English words under a hundred at the start of `words` spell
/// (`forty four` -> `44`, `three` -> `3`) and how many words it took; `(None, 1)` when the
/// first word is no number word. So `Brigade Forty-Four` and `Brigade 44` compare equal.
fn number_at(words: &[&str]) -> (Option<String>, usize) {
    let unit = |word: &str| UNITS.iter().position(|unit| *unit == word);
    let Some(&first) = words.first() else {
        return (None, 1);
    };
    if let Some((_, tens)) = TENS.iter().find(|(name, _)| *name == first) {
        let units = words
            .get(1)
            .and_then(|next| unit(next))
            .filter(|n| (1..10).contains(n));
        return match units {
            Some(units) => (Some((*tens as usize + units).to_string()), 2),
            None => (Some(tens.to_string()), 1),
        };
    }
    (unit(first).map(|n| n.to_string()), 1)
}

const HONORIFICS: &[&str] = &["mr", "mrs", "ms", "miss", "dr", "prof", "sir", "madam"];
const COMPANY_STOP_WORDS: &[&str] = &["the", "and", "of", "und", "et"];

/// Legal forms written out in words, and the abbreviation they canonicalise to; a phrase
/// that ends another comes after it.
const LEGAL_PHRASES: &[(&str, &str)] = &[
    ("gesellschaft mit beschrankter haftung", "gmbh"),
    ("aktiengesellschaft", "ag"),
    ("limited liability company", "llc"),
    ("public limited company", "plc"),
    ("open joint stock company", "ojsc"),
    ("joint stock company", "jsc"),
    ("aktsionernoe obshchestvo", "jsc"),
    ("aktsionernoye obshchestvo", "jsc"),
    ("obshchestvo s ogranichennoi otvetstvennostiu", "ooo"),
    ("obshchestvo s ogranichennoy otvetstvennostyu", "ooo"),
    ("societe anonyme", "sa"),
    ("sociedad anonima", "sa"),
    ("societa per azioni", "spa"),
    ("besloten vennootschap", "bv"),
];

/// Replaces the legal forms written out in words by their abbreviation (only when one is
/// there: most names allocate nothing here).
fn abbreviate_legal_phrases(folded: &mut String) {
    for (phrase, abbreviation) in LEGAL_PHRASES {
        if !folded.contains(phrase) {
            continue;
        }
        let words: Vec<&str> = folded.split_whitespace().collect();
        let phrase_words: Vec<&str> = phrase.split(' ').collect();
        let mut out: Vec<&str> = Vec::with_capacity(words.len());
        let mut index = 0;
        while index < words.len() {
            if words[index..].starts_with(&phrase_words) {
                out.push(abbreviation);
                index += phrase_words.len();
            } else {
                out.push(words[index]);
                index += 1;
            }
        }
        *folded = out.join(" ");
    }
}

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
            let latin = any_ascii::any_ascii_char(c);
            for letter in latin.chars() {
                push_ascii(&mut out, letter);
            }
            let apostrophe = matches!(latin, "'" | "`");
            if (!c.is_alphabetic() && !apostrophe) || is_logogram(c) {
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
    fn camel_case_splits_and_number_words_become_digits() {
        assert_eq!(
            NameKey::new("FridrichBuchenberg", Schema::Person).tokens,
            vec!["fridrich", "buchenberg"]
        );
        assert_eq!(
            NameKey::new("Brigade Forty-Four", Schema::Entity).tokens,
            vec!["brigade", "44"]
        );
        assert_eq!(
            NameKey::new("Three Percenters", Schema::Company).tokens,
            vec!["3", "percenters"]
        );
        assert_eq!(
            NameKey::new("McDonald", Schema::Person).tokens,
            vec!["mc", "donald"]
        );
        let spelled = NameKey::new(
            "Volkswagen Gesellschaft mit beschränkter Haftung",
            Schema::Company,
        );
        assert_eq!(spelled, NameKey::new("Volkswagen GmbH", Schema::Company));
        assert_eq!(
            NameKey::new("People’s Liberation Army", Schema::Company).tokens,
            vec!["peoples", "liberation", "army"],
            "a typographic apostrophe joins like a plain one"
        );
    }

    #[test]
    fn every_followthemoney_schema_has_a_normaliser() {
        assert_eq!(Schema::from_ftm("Company"), Schema::Company);
        assert_eq!(Schema::from_ftm("LegalEntity"), Schema::Company);
        assert_eq!(Schema::from_ftm("person"), Schema::Person);
        for other in ["Vessel", "Airplane", "Asset", "Security"] {
            assert_eq!(Schema::from_ftm(other), Schema::Entity, "{other}");
        }
        let vessel = NameKey::new("Mr Lucky Ltd", Schema::Entity);
        assert_eq!(vessel.tokens, vec!["mr", "lucky", "ltd"], "folded only");
    }
}
