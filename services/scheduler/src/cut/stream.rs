//! Reading the ALERTS stream: which banks have alerts up to which sequence, and one bank's
//! raw alerts in a sequence range.

use std::collections::BTreeMap;
use std::time::Duration;

use aml_bus::topology::{ALERTS_STREAM, subjects};
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::{StreamExt, TryStreamExt};

use super::{CutError, stream_error};

/// What the ALERTS stream holds now: when it was created, and the banks with alerts on it
/// with the sequence of each one's last alert; `only` restricts the banks (empty: all).
pub async fn banks_with_alerts(
    jetstream: &jetstream::Context,
    only: &[String],
) -> Result<(String, BTreeMap<String, u64>), CutError> {
    let mut stream = jetstream
        .get_stream(ALERTS_STREAM)
        .await
        .map_err(|e| stream_error("the ALERTS stream")(e.to_string()))?;
    let created = stream
        .info()
        .await
        .map_err(|e| stream_error("the ALERTS stream")(e.to_string()))?
        .created
        .to_string();
    let subjects_present: Vec<(String, usize)> = stream
        .info_with_subjects(subjects::ALERTS)
        .await
        .map_err(|e| stream_error("the ALERTS subjects")(e.to_string()))?
        .try_collect()
        .await
        .map_err(|e| stream_error("the ALERTS subjects")(e.to_string()))?;
    let mut banks = BTreeMap::new();
    for (subject, _) in subjects_present {
        let Some(bank) = aml_batch::intake::bank_of_subject(&subject) else {
            continue;
        };
        if !only.is_empty() && !only.iter().any(|wanted| wanted == bank) {
            continue;
        }
        let last = stream
            .get_last_raw_message_by_subject(&subject)
            .await
            .map_err(|e| stream_error(format!("the last alert of {subject}"))(e.to_string()))?;
        banks.insert(bank.to_owned(), last.sequence);
    }
    Ok((created, banks))
}

/// One alert as it is on the stream: its sequence and encoded bytes.
#[derive(Debug, Clone)]
pub struct RawAlert {
    /// Its stream sequence.
    pub sequence: u64,
    /// The encoded Alert, as the bank published it.
    pub payload: bytes::Bytes,
}

/// The raw alerts of one bank with stream sequences in `(after, up_to]`.
pub async fn read_bank(
    jetstream: &jetstream::Context,
    bank: &str,
    after: u64,
    up_to: u64,
) -> Result<Vec<RawAlert>, CutError> {
    let what = subjects::alerts(bank);
    let stream = jetstream
        .get_stream(ALERTS_STREAM)
        .await
        .map_err(|e| stream_error(what.clone())(e.to_string()))?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: subjects::alerts(bank),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| stream_error(what.clone())(e.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| stream_error(what.clone())(e.to_string()))?;
    let mut out = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .map_err(|_| {
                stream_error(what.clone())(format!("no message after sequence {after} within 10 s"))
            })?;
        let Some(message) = next else { break };
        let message = message.map_err(|e| stream_error(what.clone())(e.to_string()))?;
        let sequence = message
            .info()
            .map_err(|e| stream_error(what.clone())(e.to_string()))?
            .stream_sequence;
        if sequence > up_to {
            break;
        }
        out.push(RawAlert {
            sequence,
            payload: message.payload.clone(),
        });
        if sequence == up_to {
            break;
        }
    }
    Ok(out)
}
