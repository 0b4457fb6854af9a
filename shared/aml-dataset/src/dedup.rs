//! Exact and near-duplicate detection: normalised text, then MinHash over word 3-shingles
//! with locality-sensitive banding.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

/// Hash functions per signature.
const HASHES: usize = 64;
/// LSH bands (rows per band = HASHES / BANDS).
const BANDS: usize = 16;

/// Lower case, letters and digits only, single spaces.
pub fn normalise(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                ' '
            }
        })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hash_with(seed: u64, value: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    seed.hash(&mut hasher);
    value.hash(&mut hasher);
    hasher.finish()
}

fn signature(normalised: &str) -> [u64; HASHES] {
    let words: Vec<&str> = normalised.split(' ').collect();
    let shingles: Vec<String> = if words.len() < 3 {
        vec![normalised.to_owned()]
    } else {
        words.windows(3).map(|window| window.join(" ")).collect()
    };
    let mut minimums = [u64::MAX; HASHES];
    for shingle in &shingles {
        for (seed, minimum) in minimums.iter_mut().enumerate() {
            *minimum = (*minimum).min(hash_with(seed as u64, shingle));
        }
    }
    minimums
}

fn estimated_jaccard(a: &[u64; HASHES], b: &[u64; HASHES]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / HASHES as f64
}

/// Finds duplicates among texts, first occurrence kept.
#[derive(Debug)]
pub struct DuplicateFinder {
    threshold: f64,
    exact: HashSet<String>,
    signatures: Vec<[u64; HASHES]>,
    buckets: HashMap<(usize, u64), Vec<usize>>,
}

/// Why a text was found to be a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    /// Same text after normalisation.
    Exact,
    /// Estimated Jaccard similarity of shingles above the threshold.
    Near,
}

impl DuplicateFinder {
    /// Near-duplicates are texts whose estimated shingle Jaccard similarity reaches `threshold`.
    pub fn new(threshold: f64) -> Self {
        DuplicateFinder {
            threshold,
            exact: HashSet::new(),
            signatures: Vec::new(),
            buckets: HashMap::new(),
        }
    }

    /// Registers a text, or says which earlier text it duplicates.
    pub fn check(&mut self, text: &str) -> Option<Duplicate> {
        let normalised = normalise(text);
        if !self.exact.insert(normalised.clone()) {
            return Some(Duplicate::Exact);
        }
        let signature = signature(&normalised);
        let rows = HASHES / BANDS;
        let keys: Vec<(usize, u64)> = (0..BANDS)
            .map(|band| {
                let mut hasher = DefaultHasher::new();
                signature[band * rows..(band + 1) * rows].hash(&mut hasher);
                (band, hasher.finish())
            })
            .collect();
        let mut seen = HashSet::new();
        for key in &keys {
            for &other in self.buckets.get(key).into_iter().flatten() {
                if seen.insert(other)
                    && estimated_jaccard(&signature, &self.signatures[other]) >= self.threshold
                {
                    return Some(Duplicate::Near);
                }
            }
        }
        let index = self.signatures.len();
        self.signatures.push(signature);
        for key in keys {
            self.buckets.entry(key).or_default().push(index);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_near_duplicates_are_found() {
        let mut finder = DuplicateFinder::new(0.8);
        let base = "customer ivan petrov born 1970 03 02 passport 7512 334455 nationality russia listed on the ofac sdn list under programme ukraine with alias jean petroff and address in limassol cyprus";
        assert_eq!(finder.check(base), None);
        assert_eq!(
            finder.check(&base.to_uppercase().replace(' ', "  ")),
            Some(Duplicate::Exact)
        );
        assert_eq!(
            finder.check(&format!("{base} today")),
            Some(Duplicate::Near)
        );
        assert_eq!(
            finder.check(
                "a completely different organisation registered in panama with nominee directors"
            ),
            None
        );
    }
}
