//! One bank's share of a cut, on a blocking thread (it is CPU work: the async threads keep
//! serving the bus): each alert decoded and checked once, deduplicated by id within the batch
//! and against the ids earlier batches took, prescreened, and its encoded bytes written into
//! shards as they arrived.

use std::collections::HashSet;

use aml_batch::dedup::{IdHash, encode_index, id_hash};
use aml_batch::{IntakeRules, check_alert, encode_shard};
use aml_prescreen::{Verdict, prescreen_alert};
use aml_proto::v1::{Alert, Label, ScoreResult};
use bytes::Bytes;
use prost::Message;

use super::stream::RawAlert;

/// An alert that passed the checks, first of its id in the batch.
pub struct Accepted {
    alert: Alert,
    payload: Bytes,
    hash: IdHash,
}

/// An alert that failed the checks, and why: it goes to the DLQ.
pub struct Rejected {
    /// The alert as it was on the stream.
    pub raw: RawAlert,
    /// Why it was refused.
    pub reason: String,
}

/// A bank's alerts after the checks.
pub struct Checked {
    /// The alerts that passed, in stream order, one per id.
    pub accepted: Vec<Accepted>,
    /// Those that did not.
    pub rejected: Vec<Rejected>,
    /// Alerts dropped for an id seen earlier in this batch.
    pub duplicates: u64,
    /// The accepted alerts' id hashes, ascending: what is looked up in earlier batches.
    pub sorted_hashes: Vec<IdHash>,
}

/// Decodes and checks `raw` (alerts that arrived on `subject`), keeping the first alert of
/// each id.
pub fn check_bank(raw: Vec<RawAlert>, subject: &str, rules: &IntakeRules) -> Checked {
    let mut seen = HashSet::with_capacity(raw.len());
    let mut checked = Checked {
        accepted: Vec::with_capacity(raw.len()),
        rejected: Vec::new(),
        duplicates: 0,
        sorted_hashes: Vec::new(),
    };
    for raw in raw {
        let alert = match Alert::decode(raw.payload.clone()) {
            Ok(alert) => alert,
            Err(error) => {
                let reason = format!("undecodable payload: {error}");
                checked.rejected.push(Rejected { raw, reason });
                continue;
            }
        };
        if let Err(reason) = check_alert(&alert, subject, rules) {
            checked.rejected.push(Rejected { raw, reason });
            continue;
        }
        let hash = id_hash(&alert.alert_id);
        if !seen.insert(hash) {
            checked.duplicates += 1;
            continue;
        }
        checked.accepted.push(Accepted {
            alert,
            payload: raw.payload,
            hash,
        });
    }
    checked.sorted_hashes = checked.accepted.iter().map(|a| a.hash).collect();
    checked.sorted_hashes.sort_unstable();
    checked
}

/// What a bank gives the batch.
pub struct BankCut {
    /// Alerts taken into the batch.
    pub alerts_in: u64,
    /// Alerts dropped because an earlier batch took their id.
    pub taken_earlier: u64,
    /// The dedup index of the alerts taken.
    pub index: Bytes,
    /// Results of the alerts the prescreen cleared.
    pub cleared: Vec<ScoreResult>,
    /// Shards for the model: (alerts, encoded shard).
    pub shards: Vec<(u32, Bytes)>,
}

/// Drops the alerts whose ids are in `taken`, clears with the prescreen at `cutoff` what it
/// can, and cuts the rest into shards of `shard_size`.
pub fn shard_bank(
    accepted: Vec<Accepted>,
    taken: &HashSet<IdHash>,
    cutoff: f64,
    shard_size: usize,
) -> BankCut {
    let mut cut = BankCut {
        alerts_in: 0,
        taken_earlier: 0,
        index: Bytes::new(),
        cleared: Vec::new(),
        shards: Vec::new(),
    };
    let mut hashes = Vec::with_capacity(accepted.len());
    let mut to_model: Vec<Bytes> = Vec::new();
    for Accepted {
        alert,
        payload,
        hash,
    } in accepted
    {
        if taken.contains(&hash) {
            cut.taken_earlier += 1;
            continue;
        }
        cut.alerts_in += 1;
        hashes.push(hash);
        let prescreen = prescreen_alert(&alert);
        match prescreen.verdict(cutoff) {
            Verdict::Cleared(reason) => cut.cleared.push(ScoreResult {
                alert_id: alert.alert_id,
                bank: alert.bank,
                label: Label::NoMatch as i32,
                cleared_reason: reason,
                prescreen_score: prescreen.score,
                ..Default::default()
            }),
            Verdict::ToModel => to_model.push(payload),
        }
    }
    cut.index = encode_index(hashes);
    cut.shards = to_model
        .chunks(shard_size.max(1))
        .map(|chunk| (chunk.len() as u32, encode_shard(chunk)))
        .collect();
    cut
}
