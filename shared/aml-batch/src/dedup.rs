//! The dedup index: for each bank and batch, the alert ids the batch took, kept as sorted
//! 128-bit hashes (the first 16 bytes of SHA-256 of the id), 16 bytes an id and no alert id
//! in clear. A cut hashes its own alerts, sorts them, and walks each earlier batch's index
//! beside them once ([`taken_before`]): no year of ids is held as strings, and no more than
//! one earlier index is in memory at a time.
//!
//! A false duplicate (a new id whose hash equals an earlier id's) drops an alert. Against
//! `n` earlier ids and `m` new ones its probability is at most `n * m / 2^128`: for 5.2M
//! earlier ids (a year of 100k-alert weekly batches) and 100k new ones, about 1.5e-27 per
//! cut.

use std::collections::HashSet;

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// The hash an alert id is kept as.
pub type IdHash = u128;

/// What starts every index object (version 1: little-endian `u128`s, ascending, distinct).
const MAGIC: &[u8; 8] = b"AMLIDX1\n";

/// An index object that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("dedup index {key}: {reason}")]
pub struct IndexError {
    /// Its object key.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The hash of an alert id.
pub fn id_hash(alert_id: &str) -> IdHash {
    let digest = Sha256::digest(alert_id.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(first)
}

/// An index object of `hashes` (sorted and made distinct here).
pub fn encode_index(mut hashes: Vec<IdHash>) -> Bytes {
    hashes.sort_unstable();
    hashes.dedup();
    let mut out = Vec::with_capacity(MAGIC.len() + hashes.len() * 16);
    out.extend_from_slice(MAGIC);
    for hash in hashes {
        out.extend_from_slice(&hash.to_le_bytes());
    }
    out.into()
}

/// The hashes of an index object read from `key`, checked to be ascending.
pub fn decode_index(key: &str, bytes: &[u8]) -> Result<Vec<IdHash>, IndexError> {
    let failed = |reason: String| IndexError {
        key: key.to_owned(),
        reason,
    };
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| failed("not a dedup index (no AMLIDX1 header)".to_owned()))?;
    if body.len() % 16 != 0 {
        return Err(failed(format!(
            "{} bytes after the header, not a whole number of 16-byte hashes",
            body.len()
        )));
    }
    let hashes: Vec<IdHash> = body
        .chunks_exact(16)
        .map(|chunk| {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(chunk);
            u128::from_le_bytes(bytes)
        })
        .collect();
    if let Some(at) = hashes.windows(2).position(|pair| pair[0] >= pair[1]) {
        return Err(failed(format!("hash {} is out of order", at + 1)));
    }
    Ok(hashes)
}

/// Adds to `taken` the hashes of `new` (ascending, distinct) that `earlier` (an index's
/// hashes, ascending) holds: one walk over both.
pub fn taken_before(new: &[IdHash], earlier: &[IdHash], taken: &mut HashSet<IdHash>) {
    let (mut i, mut j) = (0, 0);
    while i < new.len() && j < earlier.len() {
        match new[i].cmp(&earlier[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                taken.insert(new[i]);
                i += 1;
                j += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_round_trips_sorted_and_finds_what_earlier_batches_took() {
        let earlier: Vec<IdHash> = (0..1000).map(|i| id_hash(&format!("a-{i}"))).collect();
        let encoded = encode_index(earlier.iter().rev().copied().chain([earlier[3]]).collect());
        assert_eq!(encoded.len(), 8 + 1000 * 16, "sorted, distinct");
        let decoded = decode_index("k", &encoded).unwrap();
        assert!(decoded.windows(2).all(|pair| pair[0] < pair[1]));

        let mut new: Vec<IdHash> = (990..1010).map(|i| id_hash(&format!("a-{i}"))).collect();
        new.sort_unstable();
        let mut taken = HashSet::new();
        taken_before(&new, &decoded, &mut taken);
        let expected: HashSet<IdHash> = (990..1000).map(|i| id_hash(&format!("a-{i}"))).collect();
        assert_eq!(taken, expected);

        let error = decode_index("banks/x/dedup/1-b.idx", b"nope").unwrap_err();
        assert!(
            error.to_string().contains("banks/x/dedup/1-b.idx"),
            "{error}"
        );
        let mut torn = encoded.to_vec();
        torn.pop();
        let error = decode_index("k", &torn).unwrap_err();
        assert!(error.to_string().contains("16-byte"), "{error}");
    }
}
