//! Records and batches: what sources produce and the pipeline consumes.

use crate::source::failure::Failure;
use crate::source::sequence::Position;
pub use weir_guest_sdk::Timestamp;

/// One event as it arrived: its bytes and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The event's bytes, exactly as received.
    pub data: Vec<u8>,
    /// The Kinesis partition key, or the file (and line) a file source read it from.
    pub partition_key: String,
    /// Sequence number (and sub-sequence number) in its source.
    pub position: Position,
    /// When the record arrived (Kinesis' approximate arrival time, a file's modification time,
    /// or the moment a line was read from stdin).
    pub arrival: Timestamp,
    /// Why the source could not decode this record (a broken KPL aggregate, say); such a
    /// record goes to the failed location as it is, without reaching the transform.
    pub undecodable: Option<Box<Failure>>,
    /// For a user record of a KPL aggregate, the Kinesis record's own partition key: what the
    /// event source mapping shards batches by under `ParallelizationFactor` > 1.
    pub aggregate_key: Option<Box<str>>,
}

impl Record {
    /// A decoded record.
    pub fn new(
        data: Vec<u8>,
        partition_key: String,
        position: Position,
        arrival: Timestamp,
    ) -> Self {
        Self {
            data,
            partition_key,
            position,
            arrival,
            undecodable: None,
            aggregate_key: None,
        }
    }

    /// The partition key of the Kinesis record this record arrived in: its own, or the
    /// aggregate's for a user record of a KPL aggregate.
    pub fn kinesis_partition_key(&self) -> &str {
        self.aggregate_key.as_deref().unwrap_or(&self.partition_key)
    }

    /// A record the source could not decode, kept whole so nothing is lost.
    pub fn undecodable(
        data: Vec<u8>,
        partition_key: String,
        position: Position,
        arrival: Timestamp,
        why: Failure,
    ) -> Self {
        Self {
            undecodable: Some(Box::new(why)),
            ..Self::new(data, partition_key, position, arrival)
        }
    }
}

/// The records of one source (a shard, a file or directory, stdin) that are processed together,
/// in order, as one Lambda invocation would process them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Names the source in object keys and envelopes; see [`source_label`].
    pub source: String,
    /// The Kinesis stream the records came from, when the source says (a Lambda event's
    /// `eventSourceARN`): shard ids repeat across streams, so it scopes the shard's ledger.
    pub stream: Option<String>,
    /// The records, in source order.
    pub records: Vec<Record>,
}

/// Turns a shard id or a path into a label safe in object keys and file names: ASCII letters,
/// digits, `-`, `_` and `.` are kept, anything else becomes `_`, and the result is bounded.
pub fn source_label(raw: &str) -> String {
    let label: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(96)
        .collect();
    // A label made only of dots would be a relative path component.
    if label.chars().all(|c| c == '.') {
        format!("_{label}")
    } else {
        label
    }
}

/// The current time, for records that carry no arrival time of their own (stdin lines).
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_unix_millis(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_labels_are_safe_path_components() {
        assert_eq!(source_label("shardId-000000000001"), "shardId-000000000001");
        assert_eq!(source_label("tests/data/valid"), "tests_data_valid");
        assert_eq!(source_label(".."), "_..");
        assert_eq!(source_label("é/../x"), "__.._x");
        assert_eq!(source_label(&"a".repeat(500)).len(), 96);
    }
}
