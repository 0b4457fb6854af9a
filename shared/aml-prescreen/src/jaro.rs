//! Jaro-Winkler similarity on ASCII bytes, without allocation for words up to 64 bytes.

/// Jaro similarity in [0, 1].
pub fn jaro(a: &[u8], b: &[u8]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a == b {
        return 1.0;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let window = (long.len() / 2).saturating_sub(1);
    let mut long_used_small = [false; 64];
    let mut long_used_large = Vec::new();
    let long_used: &mut [bool] = if long.len() <= 64 {
        &mut long_used_small[..long.len()]
    } else {
        long_used_large.resize(long.len(), false);
        &mut long_used_large
    };
    let mut short_matched_small = [0u8; 64];
    let mut short_matched_large = Vec::new();
    let short_matched: &mut [u8] = if short.len() <= 64 {
        &mut short_matched_small[..short.len()]
    } else {
        short_matched_large.resize(short.len(), 0);
        &mut short_matched_large
    };
    let mut matches = 0usize;
    for (i, &c) in short.iter().enumerate() {
        let low = i.saturating_sub(window);
        let high = (i + window + 1).min(long.len());
        for j in low..high {
            if !long_used[j] && long[j] == c {
                long_used[j] = true;
                short_matched[matches] = c;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut k = 0usize;
    for (j, &used) in long_used.iter().enumerate() {
        if used {
            if long[j] != short_matched[k] {
                transpositions += 1;
            }
            k += 1;
        }
    }
    let m = matches as f64;
    (m / short.len() as f64 + m / long.len() as f64 + (m - transpositions as f64 / 2.0) / m) / 3.0
}

/// Jaro-Winkler similarity in [0, 1]: Jaro boosted by a common prefix of up to 4 bytes.
pub fn jaro_winkler(a: &[u8], b: &[u8]) -> f64 {
    let similarity = jaro(a, b);
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
    similarity + prefix as f64 * 0.1 * (1.0 - similarity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_examples() {
        assert!((jaro(b"martha", b"marhta") - 0.944_444).abs() < 1e-5);
        assert!((jaro_winkler(b"martha", b"marhta") - 0.961_111).abs() < 1e-5);
        assert!((jaro_winkler(b"dwayne", b"duane") - 0.84).abs() < 1e-5);
        assert!((jaro_winkler(b"dixon", b"dicksonx") - 0.813_333).abs() < 1e-5);
        assert_eq!(jaro_winkler(b"abc", b"xyz"), 0.0);
        assert_eq!(jaro_winkler(b"", b""), 1.0);
    }

    #[test]
    fn long_words_take_the_heap_path() {
        let a = "a".repeat(80) + "b";
        let b = "a".repeat(80) + "c";
        let score = jaro_winkler(a.as_bytes(), b.as_bytes());
        assert!(score > 0.98 && score < 1.0, "{score}");
    }
}
