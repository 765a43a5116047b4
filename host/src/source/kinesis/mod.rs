//! Kinesis records into batches: shard grouping, sequence numbers, KPL de-aggregation and gzip
//! frames.
//!
//! The Lambda's event and the shard poller's GetRecords answers both end up here, so both
//! deployment modes build the same batches from the same bytes.

mod event;
mod gzip;
mod kpl;

pub use event::{EventRecord, KinesisData, KinesisEvent};
pub use gzip::{
    GzipError, MAX_EXPANDED_BYTES, MAX_EXPANSION, compress, expand, fits_frame, is_gzip,
};
pub use kpl::{KplError, UserRecord, aggregate, deaggregate, is_aggregate};

use crate::source::failure::{ErrorType, Failure};
use crate::source::record::{Batch, Record, Timestamp};
use crate::source::sequence::{InvalidSequenceNumber, Position};

/// Appends the record's events to `out`: itself; or each user record of a KPL aggregate, or
/// each line of a gzip frame, with its sub-sequence number. A broken aggregate or frame is kept
/// whole, marked undecodable.
pub fn push_records(
    data: Vec<u8>,
    partition_key: String,
    position: Position,
    arrival: Timestamp,
    out: &mut Vec<Record>,
) {
    // Packed events and their own partition keys (a gzip frame's lines share the record's).
    let broken = |code, message| Failure::new(ErrorType::InvalidRecord, code, message);
    let unpacked: Result<Vec<(Vec<u8>, String)>, Failure> = if is_gzip(&data) {
        expand(&data)
            .map(|events| {
                events
                    .into_iter()
                    .map(|e| (e, partition_key.clone()))
                    .collect()
            })
            .map_err(|e| broken(e.code(), e.to_string()))
    } else if is_aggregate(&data) {
        deaggregate(&data)
            .map(|users| {
                users
                    .into_iter()
                    .map(|u| (u.data, u.partition_key))
                    .collect()
            })
            .map_err(|e| broken(e.code(), e.to_string()))
    } else {
        out.push(Record::new(data, partition_key, position, arrival));
        return;
    };
    match unpacked {
        Ok(events) => {
            let kinesis_key: Box<str> = partition_key.into();
            for (sub, (event, key)) in (0u32..).zip(events) {
                let mut record = Record::new(event, key, position.clone().with_sub(sub), arrival);
                record.aggregate_key = Some(kinesis_key.clone());
                out.push(record);
            }
        }
        Err(why) => {
            out.push(Record::undecodable(
                data,
                partition_key,
                position,
                arrival,
                why,
            ));
        }
    }
}

/// The shard a Lambda Kinesis record came from: its `eventID` is `shardId-…:sequence number`.
fn shard_of(event_id: Option<&str>) -> &str {
    event_id
        .and_then(|id| id.split_once(':'))
        .map_or("unknown-shard", |(shard, _)| shard)
}

/// The stream's name in its ARN (`arn:aws:kinesis:…:stream/NAME`), or the ARN as it is.
fn stream_of(arn: &str) -> &str {
    arn.rsplit_once(":stream/").map_or(arn, |(_, name)| name)
}

/// A Lambda invocation's records as batches, one per shard (an event source mapping sends one
/// shard per invocation), in stream order.
pub fn batches_from_event(event: KinesisEvent) -> Result<Vec<Batch>, InvalidSequenceNumber> {
    let mut batches: Vec<Batch> = Vec::new();
    for record in event.records {
        let shard = crate::source::record::source_label(shard_of(record.event_id.as_deref()));
        let stream = record.event_source_arn.as_deref().map(stream_of);
        let kinesis = record.kinesis;
        let position = Position::parse(&kinesis.sequence_number)?;
        let arrival = Timestamp::from_unix_millis(kinesis.arrival_millis);
        let found = batches
            .iter_mut()
            .position(|b| b.source == shard && b.stream.as_deref() == stream);
        let batch = match found {
            Some(at) => &mut batches[at],
            None => {
                batches.push(Batch {
                    source: shard,
                    stream: stream.map(str::to_owned),
                    records: Vec::new(),
                });
                batches.last_mut().expect("just pushed")
            }
        };
        push_records(
            kinesis.data,
            kinesis.partition_key,
            position,
            arrival,
            &mut batch.records,
        );
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(records: &[(&str, &str, &[u8])]) -> KinesisEvent {
        use base64::Engine as _;
        let records: Vec<_> = records
            .iter()
            .map(|(shard, seq, data)| {
                json!({
                    "eventID": format!("{shard}:{seq}"),
                    "eventSource": "aws:kinesis",
                    "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/weir",
                    "kinesis": {
                        "approximateArrivalTimestamp": 1_700_000_000.125,
                        "data": base64::engine::general_purpose::STANDARD.encode(data),
                        "partitionKey": "pk",
                        "sequenceNumber": seq,
                        "kinesisSchemaVersion": "1.0"
                    }
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    #[test]
    fn groups_records_by_shard_in_order() {
        let batches = batches_from_event(event(&[
            ("shardId-000000000001", "10", b"a"),
            ("shardId-000000000002", "7", b"b"),
            ("shardId-000000000001", "11", b"c"),
        ]))
        .unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].source, "shardId-000000000001");
        assert_eq!(batches[0].stream.as_deref(), Some("weir"));
        let data: Vec<&[u8]> = batches[0]
            .records
            .iter()
            .map(|r| r.data.as_slice())
            .collect();
        assert_eq!(data, [b"a", b"c"]);
        assert_eq!(
            batches[0].records[1].position,
            Position::parse("11").unwrap()
        );
        assert_eq!(
            batches[0].records[0].arrival.unix_millis(),
            1_700_000_000_125
        );
    }

    #[test]
    fn expands_kpl_aggregates_with_sub_sequence_numbers() {
        let aggregate = aggregate(&[
            UserRecord {
                partition_key: "u1".into(),
                explicit_hash_key: None,
                data: b"{\"a\":1}".to_vec(),
            },
            UserRecord {
                partition_key: "u2".into(),
                explicit_hash_key: None,
                data: b"{\"a\":2}".to_vec(),
            },
        ]);
        let batches = batches_from_event(event(&[
            ("shardId-0", "42", &aggregate),
            ("shardId-0", "43", b"plain"),
        ]))
        .unwrap();
        let records = &batches[0].records;
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].data, b"{\"a\":2}");
        assert_eq!(records[1].partition_key, "u2");
        assert_eq!(records[1].kinesis_partition_key(), "pk");
        assert_eq!(records[2].kinesis_partition_key(), "pk");
        assert_eq!(
            records[1].position,
            Position::parse("42").unwrap().with_sub(1)
        );
        assert_eq!(records[2].position, Position::parse("43").unwrap());
    }

    #[test]
    fn expands_gzip_frames_into_numbered_events() {
        let frame = compress([&b"{\"a\":1}"[..], b"{\"a\":2}"]);
        // 8 MiB of spaces compress a thousand times: past the expansion limit.
        let bomb = compress([&vec![b' '; 8 << 20][..]]);
        let batches = batches_from_event(event(&[
            ("shardId-0", "42", &frame),
            ("shardId-0", "43", &bomb),
            ("shardId-0", "44", &frame[..frame.len() - 3]),
        ]))
        .unwrap();
        let records = &batches[0].records;
        assert_eq!(records.len(), 4);
        assert_eq!(records[1].data, b"{\"a\":2}");
        assert_eq!(records[1].partition_key, "pk");
        assert_eq!(
            records[1].position,
            Position::parse("42").unwrap().with_sub(1)
        );
        // Kept whole, compressed, for the failed location.
        assert_eq!(records[2].data, bomb);
        assert_eq!(
            records[2].undecodable.as_ref().unwrap().code,
            "gzip_too_large"
        );
        assert_eq!(
            records[3].undecodable.as_ref().unwrap().code,
            "gzip_corrupt"
        );
        assert_eq!(records[3].position, Position::parse("44").unwrap());
    }

    #[test]
    fn keeps_a_broken_aggregate_whole_and_marked() {
        let mut aggregate = aggregate(&[UserRecord {
            partition_key: "u".into(),
            explicit_hash_key: None,
            data: b"{}".to_vec(),
        }]);
        let last = aggregate.len() - 1;
        aggregate[last] ^= 1;
        let batches = batches_from_event(event(&[("shardId-0", "5", &aggregate)])).unwrap();
        let record = &batches[0].records[0];
        assert_eq!(record.data, aggregate);
        assert_eq!(record.undecodable.as_ref().unwrap().code, "kpl_checksum");
    }

    #[test]
    fn refuses_a_sequence_number_that_is_not_a_number() {
        assert!(batches_from_event(event(&[("shardId-0", "abc", b"x")])).is_err());
    }
}
