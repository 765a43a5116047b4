//! Kinesis record decoding: a Lambda event's base64 `data` and KPL de-aggregation.
//!
//! Properties: decoding never panics; every record yields at least one user record or is kept
//! whole and marked undecodable (nothing dropped); a decoded aggregate re-encodes to the same
//! user records; base64 in an event decodes to exactly the bytes encoded.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use weir_fuzz::source::kinesis::{KinesisEvent, aggregate, deaggregate, push_records};
use weir_fuzz::source::record::Timestamp;
use weir_fuzz::source::sequence::Position;

fuzz_target!(|data: &[u8]| {
    // KPL: arbitrary bytes, and the same bytes behind the magic.
    let mut out = Vec::new();
    for bytes in [
        data.to_vec(),
        [&[0xF3, 0x89, 0x9A, 0xC2][..], data].concat(),
    ] {
        out.clear();
        push_records(
            bytes.clone(),
            "pk".into(),
            Position::from_index(1),
            Timestamp::from_unix_millis(0),
            &mut out,
        );
        assert!(!out.is_empty(), "a record never vanishes");
        if out.iter().any(|r| r.undecodable.is_some()) {
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].data, bytes, "a broken aggregate is kept whole");
        }
        if let Ok(users) = deaggregate(&bytes) {
            assert_eq!(deaggregate(&aggregate(&users)).as_ref(), Ok(&users));
        }
    }

    // The Lambda event: the raw bytes as JSON, and the bytes as a record's base64 data.
    let _ = serde_json::from_slice::<KinesisEvent>(data);
    let event = serde_json::json!({"Records": [{
        "eventID": "shardId-0:1",
        "kinesis": {
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "partitionKey": "pk",
            "sequenceNumber": "1",
            "approximateArrivalTimestamp": 1.5
        }
    }]});
    let event: KinesisEvent = serde_json::from_value(event).expect("a well-formed event decodes");
    assert_eq!(event.records[0].kinesis.data, data);
});
