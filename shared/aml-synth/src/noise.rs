//! Name variations screening engines meet: phonetic neighbours (Soundex), edit and OCR noise,
//! reordering, initials, diacritics, and homoglyphs that mix scripts.

use aml_core::rng::SeededRng;

/// American Soundex code of a word (`Robert` -> `R163`).
pub fn soundex(word: &str) -> String {
    let letters: Vec<char> = word
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let Some(&first) = letters.first() else {
        return String::new();
    };
    let code = |c: char| match c {
        'B' | 'F' | 'P' | 'V' => '1',
        'C' | 'G' | 'J' | 'K' | 'Q' | 'S' | 'X' | 'Z' => '2',
        'D' | 'T' => '3',
        'L' => '4',
        'M' | 'N' => '5',
        'R' => '6',
        'H' | 'W' => '-',
        _ => '0',
    };
    let mut result = String::from(first);
    let mut last = code(first);
    for &letter in &letters[1..] {
        let digit = code(letter);
        if digit == '-' {
            continue;
        }
        if digit != '0' && digit != last {
            result.push(digit);
        }
        last = digit;
        if result.len() == 4 {
            break;
        }
    }
    while result.len() < 4 {
        result.push('0');
    }
    result
}

/// Spelling swaps that keep the sound.
const PHONETIC_SWAPS: [(&str, &str); 12] = [
    ("ph", "f"),
    ("ck", "k"),
    ("y", "i"),
    ("ie", "y"),
    ("ou", "u"),
    ("ee", "i"),
    ("kh", "h"),
    ("sch", "sh"),
    ("ei", "ey"),
    ("oo", "u"),
    ("ll", "l"),
    ("ss", "s"),
];

/// A spelling of `word` that sounds the same (same Soundex code), when one is found.
pub fn phonetic_neighbour(word: &str, rng: &mut SeededRng) -> Option<String> {
    let lower = word.to_lowercase();
    let start = rng.below(PHONETIC_SWAPS.len());
    for offset in 0..PHONETIC_SWAPS.len() {
        let (from, to) = PHONETIC_SWAPS[(start + offset) % PHONETIC_SWAPS.len()];
        for (a, b) in [(from, to), (to, from)] {
            if let Some(position) = lower[1.min(lower.len())..]
                .find(a)
                .map(|p| p + 1.min(lower.len()))
            {
                let candidate = format!(
                    "{}{}{}",
                    &lower[..position],
                    b,
                    &lower[position + a.len()..]
                );
                if candidate != lower && soundex(&candidate) == soundex(&lower) {
                    return Some(crate::translit::capitalise(&candidate));
                }
            }
        }
    }
    None
}

/// One typing error: a swap, a drop or a doubled letter (never the first letter).
pub fn typo(word: &str, rng: &mut SeededRng) -> String {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() < 4 {
        return word.to_owned();
    }
    let position = 1 + rng.below(chars.len() - 2);
    let mut out = chars.clone();
    match rng.below(3) {
        0 => out.swap(position, position + 1),
        1 => {
            out.remove(position);
        }
        _ => out.insert(position, chars[position]),
    }
    out.into_iter().collect()
}

/// OCR confusions of scanned documents.
pub fn ocr_noise(text: &str, rng: &mut SeededRng) -> String {
    const CONFUSIONS: [(&str, &str); 7] = [
        ("O", "0"),
        ("o", "0"),
        ("l", "1"),
        ("I", "1"),
        ("rn", "m"),
        ("S", "5"),
        ("B", "8"),
    ];
    let start = rng.below(CONFUSIONS.len());
    for offset in 0..CONFUSIONS.len() {
        let (from, to) = CONFUSIONS[(start + offset) % CONFUSIONS.len()];
        if text.contains(from) {
            return text.replacen(from, to, 1);
        }
    }
    text.to_owned()
}

/// Replaces one letter that has an entry in `table` with its counterpart.
fn replace_one(word: &str, table: &[(char, char)], rng: &mut SeededRng) -> String {
    let chars: Vec<char> = word.chars().collect();
    let candidates: Vec<usize> = (0..chars.len())
        .filter(|&i| table.iter().any(|(from, _)| *from == chars[i]))
        .collect();
    if candidates.is_empty() {
        return word.to_owned();
    }
    let position = *rng.pick(&candidates);
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if i == position {
                table
                    .iter()
                    .find(|(from, _)| *from == c)
                    .map_or(c, |(_, to)| *to)
            } else {
                c
            }
        })
        .collect()
}

/// Adds an accent to one letter that has a common accented form.
pub fn add_diacritic(word: &str, rng: &mut SeededRng) -> String {
    const ACCENTS: [(char, char); 9] = [
        ('e', 'é'),
        ('a', 'á'),
        ('o', 'ö'),
        ('u', 'ü'),
        ('c', 'ç'),
        ('n', 'ñ'),
        ('s', 'š'),
        ('i', 'í'),
        ('z', 'ž'),
    ];
    replace_one(word, &ACCENTS, rng)
}

/// Replaces one Latin letter with its Cyrillic look-alike (a homograph that mixes scripts).
pub fn homoglyph(word: &str, rng: &mut SeededRng) -> String {
    const LOOKALIKES: [(char, char); 7] = [
        ('a', 'а'),
        ('e', 'е'),
        ('o', 'о'),
        ('p', 'р'),
        ('c', 'с'),
        ('x', 'х'),
        ('y', 'у'),
    ];
    replace_one(word, &LOOKALIKES, rng)
}

/// `Yevgeny Volkov` -> `Volkov, Yevgeny`.
pub fn surname_first(name: &str) -> String {
    match name.rsplit_once(' ') {
        Some((given, surname)) => format!("{surname}, {given}"),
        None => name.to_owned(),
    }
}

/// `Yevgeny Volkov` -> `Y. Volkov`.
pub fn initials(name: &str) -> String {
    match name.rsplit_once(' ') {
        Some((given, surname)) => {
            let letters: Vec<String> = given
                .split_whitespace()
                .filter_map(|part| part.chars().next())
                .map(|c| format!("{c}."))
                .collect();
            format!("{} {surname}", letters.join(" "))
        }
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soundex_codes() {
        assert_eq!(soundex("Robert"), "R163");
        assert_eq!(soundex("Rupert"), "R163");
        assert_eq!(soundex("Ashcraft"), "A261");
        assert_eq!(soundex("Tymczak"), "T522");
    }

    #[test]
    fn neighbours_sound_alike() {
        let mut rng = SeededRng::new(3);
        for word in ["Philips", "Schmidt", "Mackenzie", "Cooper"] {
            if let Some(neighbour) = phonetic_neighbour(word, &mut rng) {
                assert_eq!(soundex(&neighbour), soundex(word), "{word} -> {neighbour}");
                assert_ne!(neighbour.to_lowercase(), word.to_lowercase());
            }
        }
    }

    #[test]
    fn name_forms() {
        assert_eq!(surname_first("Yevgeny Volkov"), "Volkov, Yevgeny");
        assert_eq!(initials("Maria Garcia Lopez"), "M. G. Lopez");
        let mut rng = SeededRng::new(1);
        let mixed = homoglyph("Petrov", &mut rng);
        assert_ne!(mixed, "Petrov");
        assert_eq!(mixed.chars().count(), 6);
    }
}
