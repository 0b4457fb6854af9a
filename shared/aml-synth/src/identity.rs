//! The listed identity a case is built around, with the variants of its name.

use crate::noise;
use crate::pools::{LEGAL_SUFFIXES, ORG_ACTIVITIES, ORG_WORDS, WESTERN_GIVEN, WESTERN_SURNAMES};
use crate::translit::{
    CHINESE_GIVEN, CHINESE_SURNAMES, CyrillicSystem, RUSSIAN_GIVEN, RUSSIAN_SURNAMES, VariantTable,
    capitalise, romanise_cyrillic,
};
use aml_core::rng::SeededRng;

/// Where a person's name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Russian, written in Cyrillic.
    Cyrillic,
    /// Arabic script.
    Arabic,
    /// Chinese characters.
    Chinese,
    /// Latin-script European name.
    Western,
}

/// A name with the ways it can be written.
#[derive(Debug, Clone)]
pub struct NameForms {
    /// The spelling on the watchlist.
    pub listed: String,
    /// The same name in another romanisation or script, with how it was derived.
    pub transliterated: Vec<(String, String)>,
    /// The native-script form, when the name has one.
    pub native: Option<String>,
}

/// Builds a person's name and its transliteration variants.
pub fn person_name(origin: Origin, rng: &mut SeededRng, arabic: &VariantTable) -> NameForms {
    match origin {
        Origin::Cyrillic => {
            let native = format!(
                "{} {}",
                rng.pick(&RUSSIAN_GIVEN),
                rng.pick(&RUSSIAN_SURNAMES)
            );
            let systems = CyrillicSystem::ALL;
            let listed_system = *rng.pick(&systems);
            let listed = romanise_cyrillic(&native, listed_system);
            let transliterated = systems
                .iter()
                .filter(|system| **system != listed_system)
                .map(|system| {
                    (
                        romanise_cyrillic(&native, *system),
                        format!("the {} romanisation of Cyrillic {}", system.name(), native),
                    )
                })
                .filter(|(form, _)| *form != listed)
                .collect();
            NameForms {
                listed,
                transliterated,
                native: Some(native),
            }
        }
        Origin::Arabic => {
            let (given_native, given) = arabic.pick_variant(rng);
            let (family_native, family) = arabic.pick_variant(rng);
            let listed = format!("{} Al-{}", given[0], family[0]);
            let native = format!("{given_native} {family_native}");
            let transliterated = vec![
                (
                    format!("{} {}", given[1], family[0]),
                    format!("another spelling of Arabic {given_native} and the article dropped"),
                ),
                (
                    format!("{} Al-{}", given[1], family.get(1).unwrap_or(&family[0])),
                    format!("another romanisation of Arabic {native}"),
                ),
            ];
            NameForms {
                listed,
                transliterated,
                native: Some(native),
            }
        }
        Origin::Chinese => {
            let (surname_chars, surname_pinyin, surname_wade) = *rng.pick(&CHINESE_SURNAMES);
            let (given_chars, given_pinyin, given_wade) = *rng.pick(&CHINESE_GIVEN);
            let listed = format!("{surname_pinyin} {given_pinyin}");
            let native = format!("{surname_chars}{given_chars}");
            let transliterated = vec![
                (
                    format!("{surname_wade} {given_wade}"),
                    format!("the Wade-Giles / Hong Kong spelling of {native}"),
                ),
                (
                    format!("{given_pinyin} {surname_pinyin}"),
                    format!("pinyin of {native} in Western order"),
                ),
                (
                    native.clone(),
                    "the name in Chinese characters (mixed script)".to_owned(),
                ),
            ];
            NameForms {
                listed,
                transliterated,
                native: Some(native),
            }
        }
        Origin::Western => {
            let given = rng.pick(&WESTERN_GIVEN);
            let surname = rng.pick(&WESTERN_SURNAMES);
            let listed = format!("{given} {surname}");
            let married = rng.pick(&crate::pools::MARRIED_SURNAMES);
            let transliterated = vec![
                (
                    format!("{given} {married}"),
                    format!("a married name; {surname} is the maiden name"),
                ),
                (
                    noise::homoglyph(&listed, rng),
                    "a homograph with a Cyrillic look-alike letter (mixed script)".to_owned(),
                ),
            ];
            NameForms {
                listed,
                transliterated,
                native: None,
            }
        }
    }
}

/// A minor variation of a name and what it is.
pub fn minor_variant(name: &str, rng: &mut SeededRng) -> (String, String) {
    for _ in 0..4 {
        let (variant, how) = match rng.below(5) {
            0 => (noise::surname_first(name), "surname first"),
            1 => (noise::initials(name), "given names as initials"),
            2 => (noise::add_diacritic(name, rng), "an added diacritic"),
            3 => (noise::typo(name, rng), "a one-letter typing error"),
            _ => (
                noise::ocr_noise(name, rng),
                "an OCR confusion from a scanned document",
            ),
        };
        if variant != name {
            return (variant, how.to_owned());
        }
    }
    (name.to_uppercase(), "upper case".to_owned())
}

/// A different name that sounds or looks similar (a near-collision candidate).
pub fn weak_variant(name: &str, rng: &mut SeededRng) -> String {
    let mut parts: Vec<String> = name.split(' ').map(str::to_owned).collect();
    let last = parts.len() - 1;
    if let Some(neighbour) = noise::phonetic_neighbour(&parts[last], rng) {
        parts[last] = neighbour;
    }
    parts[0] = capitalise(&noise::typo(&rng.pick(&WESTERN_GIVEN).to_lowercase(), rng));
    parts.join(" ")
}

/// An organisation: its base name and the legal-suffix family it uses.
#[derive(Debug, Clone)]
pub struct OrgName {
    /// Name without the legal form.
    pub base: String,
    /// Spellings of its legal form.
    pub suffixes: &'static [&'static str],
}

impl OrgName {
    /// A random organisation name.
    pub fn random(rng: &mut SeededRng) -> Self {
        let base = format!(
            "{} {} {}",
            rng.pick(&ORG_WORDS),
            rng.pick(&ORG_WORDS),
            rng.pick(&ORG_ACTIVITIES)
        );
        OrgName {
            base,
            suffixes: LEGAL_SUFFIXES[rng.below(LEGAL_SUFFIXES.len())],
        }
    }

    /// The name with its first legal-form spelling.
    pub fn listed(&self) -> String {
        format!("{} {}", self.base, self.suffixes[0])
    }

    /// The name with another spelling of the same legal form.
    pub fn suffix_variant(&self, rng: &mut SeededRng) -> String {
        let index = 1 + rng.below(self.suffixes.len() - 1);
        format!("{} {}", self.base, self.suffixes[index])
    }
}

/// A Legal Entity Identifier with valid ISO 17442 check digits.
pub fn lei(rng: &mut SeededRng) -> String {
    const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut body = String::from("5493");
    for _ in 0..14 {
        body.push(ALPHANUMERIC[rng.below(ALPHANUMERIC.len())] as char);
    }
    let digits: String = body
        .chars()
        .map(|c| {
            c.to_digit(36)
                .map_or(String::new(), |value| value.to_string())
        })
        .collect::<String>()
        + "00";
    let remainder = digits.chars().fold(0u64, |acc, c| {
        (acc * 10 + u64::from(c.to_digit(10).unwrap_or(0))) % 97
    });
    format!("{body}{:02}", 98 - remainder)
}

/// A passport number in a country's usual shape.
pub fn passport(country: &str, rng: &mut SeededRng) -> String {
    match country {
        "RU" => format!(
            "{:02} {:02} {:06}",
            rng.range(10, 99),
            rng.range(0, 99),
            rng.range(0, 999_999)
        ),
        "CN" => format!("E{:08}", rng.range(0, 99_999_999)),
        "GB" | "DE" | "FR" | "ES" => format!("{:09}", rng.range(100_000_000, 999_999_999)),
        _ => format!(
            "{}{:07}",
            (b'A' + rng.below(26) as u8) as char,
            rng.range(0, 9_999_999)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lei_check_digits_validate() {
        let mut rng = SeededRng::new(9);
        for _ in 0..20 {
            let code = lei(&mut rng);
            assert_eq!(code.len(), 20);
            let digits: String = code
                .chars()
                .map(|c| c.to_digit(36).map_or(String::new(), |v| v.to_string()))
                .collect();
            let remainder = digits.chars().fold(0u64, |acc, c| {
                (acc * 10 + u64::from(c.to_digit(10).unwrap_or(0))) % 97
            });
            assert_eq!(remainder, 1, "{code}");
        }
    }
}
