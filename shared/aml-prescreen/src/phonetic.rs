//! A phonetic key for romanised names, tuned for the spelling variation transliteration
//! produces (Qaddafi / Gadhafi / Kadafi, Yevgeniy / Evgenii, Mohammed / Muhamad): digraphs
//! folded, consonants grouped by place of articulation, vowels dropped after the first
//! letter, adjacent repeats collapsed.

/// The phonetic key of one lowercase ASCII token, written into `out` (cleared first).
pub fn phonetic_key(token: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut last = 0u8;
    let mut i = 0;
    while i < token.len() {
        let c = token[i];
        let next = token.get(i + 1).copied();
        let (code, width) = match (c, next) {
            (b'p', Some(b'h')) => (b'f', 2),
            (b's', Some(b'c')) if token.get(i + 2) == Some(&b'h') => (b'j', 3),
            (b's' | b'c' | b'z' | b'k', Some(b'h')) => (class_of_digraph(c), 2),
            (b't' | b'd' | b'g' | b'w', Some(b'h')) => (class(c), 2),
            (b'c', Some(b'k')) => (b'k', 2),
            (b'c', Some(b'e' | b'i' | b'y')) => (b's', 1),
            _ => (class(c), 1),
        };
        if code == b'a' {
            if out.is_empty() {
                out.push(b'a');
            }
        } else if last != code {
            out.push(code);
        }
        last = code;
        i += width;
    }
}

/// `sh`, `ch`, `zh` sound alike; `kh` is a `k`.
fn class_of_digraph(c: u8) -> u8 {
    match c {
        b'k' => b'k',
        _ => b'j',
    }
}

fn class(c: u8) -> u8 {
    match c {
        b'b' | b'p' => b'p',
        b'f' | b'v' | b'w' => b'f',
        b'c' | b'k' | b'q' | b'g' => b'k',
        b'd' | b't' => b't',
        b's' | b'z' | b'x' => b's',
        b'j' => b'j',
        b'l' => b'l',
        b'm' | b'n' => b'n',
        b'r' => b'r',
        b'0'..=b'9' => c,
        _ => b'a',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(word: &str) -> String {
        let mut out = Vec::new();
        phonetic_key(word.as_bytes(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn transliteration_variants_share_a_key() {
        assert_eq!(key("qaddafi"), key("gadhafi"));
        assert_eq!(key("gadhafi"), key("kadafi"));
        assert_eq!(key("mohammed"), key("muhamad"));
        assert_eq!(key("yevgeniy"), key("evgenii"));
        assert_eq!(key("schmidt"), key("shmit"));
        assert_ne!(key("smith"), key("jones"));
    }
}
