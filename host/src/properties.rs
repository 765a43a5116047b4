//! The properties the fuzzers in `fuzz/` check, as proptests that run with `cargo test`:
//! record decoding (base64 in the Lambda event, KPL de-aggregation), partition-path escaping,
//! and the failed-record envelope's round trip. The fuzzers search far longer; these keep the
//! properties from regressing in CI.

use crate::lake::envelope::Envelope;
use crate::lake::partition::{DEFAULT_PARTITION, PartitionLimits, build_path, escape_value};
use crate::source::failure::{ErrorType, Failure};
use crate::source::kinesis::{KinesisEvent, UserRecord, aggregate, deaggregate, push_records};
use crate::source::record::{Record, Timestamp};
use crate::source::sequence::Position;
use crate::transform::TransformId;
use base64::Engine as _;
use proptest::prelude::*;

/// Undoes `%XX` escaping; `None` if a `%` is not followed by two hex digits.
fn unescape(escaped: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut rest = escaped.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            out.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(out).ok()
}

fn user_record() -> impl Strategy<Value = UserRecord> {
    (
        "\\PC{1,64}",
        // Explicit hash keys are 128-bit numbers, as Kinesis takes them.
        proptest::option::of(any::<u128>()),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(partition_key, explicit_hash_key, data)| UserRecord {
            partition_key,
            explicit_hash_key: explicit_hash_key.map(|key| key.to_string()),
            data,
        })
}

proptest! {
    #[test]
    fn aggregates_decode_to_the_user_records_encoded(
        users in proptest::collection::vec(user_record(), 1..16)
    ) {
        prop_assert_eq!(deaggregate(&aggregate(&users)), Ok(users));
    }

    #[test]
    fn no_record_is_dropped_whatever_its_bytes(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        magic in any::<bool>(),
    ) {
        let data = if magic { [&[0xF3, 0x89, 0x9A, 0xC2][..], &body].concat() } else { body };
        let mut out = Vec::new();
        let position = Position::from_index(5);
        let arrival = Timestamp::from_unix_millis(0);
        push_records(data.clone(), "pk".into(), position, arrival, &mut out);
        prop_assert!(!out.is_empty());
        if out.iter().any(|r| r.undecodable.is_some()) {
            prop_assert_eq!(out.len(), 1);
            prop_assert_eq!(&out[0].data, &data);
        }
    }

    #[test]
    fn event_base64_decodes_to_the_bytes_sent(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let event = serde_json::json!({"Records": [{"kinesis": {
            "data": base64::engine::general_purpose::STANDARD.encode(&data),
            "partitionKey": "pk",
            "sequenceNumber": "1",
            "approximateArrivalTimestamp": 1.5
        }}]});
        let event: KinesisEvent = serde_json::from_value(event).unwrap();
        prop_assert_eq!(&event.records[0].kinesis.data, &data);
    }

    #[test]
    fn escaped_values_are_one_level_and_unescape_exactly(value in "\\PC*|[/=%.\\\\\0\n\u{80}-\u{9f}]{0,12}|.*") {
        let escaped = escape_value(&value);
        prop_assert!(!escaped.contains(['/', '\\', '=']));
        prop_assert!(!escaped.bytes().any(|b| b.is_ascii_control()));
        if value.is_empty() {
            prop_assert_eq!(escaped, DEFAULT_PARTITION);
        } else {
            prop_assert_eq!(unescape(&escaped), Some(value));
        }
    }

    #[test]
    fn a_built_path_has_one_level_per_segment(
        values in proptest::collection::vec(any::<String>(), 1..4)
    ) {
        let names = ["a", "b", "c", "d"];
        let segments = names.iter().zip(&values).map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        let mut path = String::new();
        if build_path(segments, &PartitionLimits::default(), &mut path).is_ok() {
            let levels: Vec<&str> = path.split('/').collect();
            prop_assert_eq!(levels.len(), values.len());
            for ((level, name), value) in levels.iter().zip(names).zip(&values) {
                let (got, escaped) = level.split_once('=').unwrap();
                prop_assert_eq!(got, name);
                if !value.is_empty() {
                    prop_assert_eq!(unescape(escaped), Some(value.clone()));
                }
            }
        }
    }

    #[test]
    fn envelopes_give_back_the_original_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..400),
        key in any::<String>(),
    ) {
        let record = Record::new(
            data.clone(),
            key.clone(),
            Position::from_index(9).with_sub(2),
            Timestamp::from_unix_millis(1_700_000_000_000),
        );
        let failure = Failure::new(ErrorType::Trap, "panic", String::from_utf8_lossy(&data));
        let id = TransformId { name: "t".into(), sha256: "ab".repeat(32), version: None };
        let line = Envelope::new(&record, &failure, "shardId-0", &id).to_json();
        prop_assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
        let back: Envelope = serde_json::from_slice(&line).unwrap();
        prop_assert_eq!(back.original().unwrap(), data);
        prop_assert_eq!(back.partition_key, key);
    }
}
