//! A shard is its alerts as length-delimited protobuf, one after the other.

use aml_proto::v1::Alert;
use bytes::{Bytes, BytesMut};
use prost::Message;

/// A shard that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("shard alert {index}: {source}")]
pub struct ShardError {
    /// 0-based index of the alert that failed.
    pub index: usize,
    /// The decoder's complaint.
    pub source: prost::DecodeError,
}

/// A shard of alerts given already encoded (as they arrived on the stream): each is written
/// length-delimited as it is, not decoded and encoded again.
pub fn encode_shard<B: AsRef<[u8]>>(encoded_alerts: &[B]) -> Bytes {
    let size: usize = encoded_alerts
        .iter()
        .map(|alert| alert.as_ref().len() + prost::length_delimiter_len(alert.as_ref().len()))
        .sum();
    let mut buffer = BytesMut::with_capacity(size);
    for alert in encoded_alerts {
        let alert = alert.as_ref();
        prost::encoding::encode_varint(alert.len() as u64, &mut buffer);
        buffer.extend_from_slice(alert);
    }
    buffer.freeze()
}

/// Decodes a shard.
pub fn decode_shard(mut bytes: Bytes) -> Result<Vec<Alert>, ShardError> {
    let mut alerts = Vec::new();
    while !bytes.is_empty() {
        let alert = Alert::decode_length_delimited(&mut bytes).map_err(|source| ShardError {
            index: alerts.len(),
            source,
        })?;
        alerts.push(alert);
    }
    Ok(alerts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_a_broken_alert() {
        let alerts: Vec<Alert> = (0..3)
            .map(|i| Alert {
                alert_id: format!("a{i}"),
                bank: "acme".into(),
                context: "x".repeat(i * 200),
                ..Default::default()
            })
            .collect();
        let encoded: Vec<Vec<u8>> = alerts.iter().map(Message::encode_to_vec).collect();
        let bytes = encode_shard(&encoded);
        assert_eq!(decode_shard(bytes.clone()).unwrap(), alerts);
        let truncated = bytes.slice(..bytes.len() - 5);
        assert_eq!(decode_shard(truncated).unwrap_err().index, 2);
        assert!(decode_shard(Bytes::new()).unwrap().is_empty());
    }
}
