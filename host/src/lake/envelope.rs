//! The failed-record envelope: one NDJSON line per record that did not reach the lake, with the
//! reason, the lineage and the original bytes (base64, so they are recoverable exactly).

use crate::source::failure::Failure;
use crate::source::record::Record;
use crate::transform::TransformId;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

/// A failed record, as written to the failed location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The failure class, as in the `error_type=` path level.
    pub error_type: String,
    /// Short machine-readable reason.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The transform that judged the record.
    pub transform: EnvelopeTransform,
    /// The shard, file or stream the record came from.
    pub source: String,
    /// The record's partition key (or file and line, for file sources).
    pub partition_key: String,
    /// The record's sequence number, as a decimal string.
    pub sequence_number: String,
    /// The user record's index inside a KPL aggregate, if it came from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_sequence_number: Option<u32>,
    /// Arrival time, RFC 3339 in UTC.
    pub arrival_time: String,
    /// The original record bytes, base64 (standard alphabet, padded).
    pub data_base64: String,
}

/// Transform identity inside an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeTransform {
    /// The transform's name.
    pub name: String,
    /// Hex sha256 of the module.
    pub sha256: String,
    /// Its registry version, if it came from a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Envelope {
    /// Wraps a failed record.
    pub fn new(record: &Record, failure: &Failure, source: &str, transform: &TransformId) -> Self {
        Self {
            error_type: failure.error_type.as_str().to_owned(),
            code: failure.code.clone(),
            message: failure.message.clone(),
            transform: EnvelopeTransform {
                name: transform.name.clone(),
                sha256: transform.sha256.clone(),
                version: transform.version.clone(),
            },
            source: source.to_owned(),
            partition_key: record.partition_key.clone(),
            sequence_number: record.position.sequence_number().to_owned(),
            sub_sequence_number: record.position.sub_sequence_number(),
            arrival_time: record.arrival.to_string(),
            data_base64: BASE64.encode(&record.data),
        }
    }

    /// The envelope as one JSON line (without the newline).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope of strings always serialises")
    }

    /// The original record bytes.
    pub fn original(&self) -> Result<Vec<u8>, base64::DecodeError> {
        BASE64.decode(&self.data_base64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::failure::ErrorType;
    use crate::source::record::Timestamp;
    use crate::source::sequence::Position;

    #[test]
    fn original_bytes_round_trip_exactly() {
        let position = Position::parse("49590338271490256608559692538361571095921575989136588898")
            .unwrap()
            .with_sub(3);
        let arrival = Timestamp::from_unix_millis(1_700_000_000_123);
        let record = Record::new(
            b"\xff\x00not json\n\r\"".to_vec(),
            "k".into(),
            position,
            arrival,
        );
        let failure = Failure::new(ErrorType::Rejected, "invalid_json", "expected value");
        let id = TransformId {
            name: "retail".into(),
            sha256: "ab".repeat(32),
            version: Some("v7".into()),
        };
        let line = Envelope::new(&record, &failure, "shardId-0", &id).to_json();
        assert!(!line.contains(&b'\n'));
        let back: Envelope = serde_json::from_slice(&line).unwrap();
        assert_eq!(back.original().unwrap(), record.data);
        assert_eq!(back.sub_sequence_number, Some(3));
        assert_eq!(back.arrival_time, "2023-11-14T22:13:20.123Z");
        assert_eq!(back.error_type, "rejected");
        assert_eq!(back.transform.version.as_deref(), Some("v7"));
    }
}
