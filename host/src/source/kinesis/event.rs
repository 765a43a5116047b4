//! The Lambda Kinesis event, decoded for what Weir needs and nothing else.
//!
//! `aws_lambda_events::KinesisEvent` allocates every field of every record and reads the
//! fraction of `approximateArrivalTimestamp` as if it always had three digits (`.5` becomes
//! 5 ms). On a 6 MB event that is most of the decoding time, so the handler reads the wire
//! format itself: base64 is decoded straight from the JSON text, arrival times are exact to the
//! millisecond, and unused fields are skipped. A unit test checks it against `aws_lambda_events`.

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// A Kinesis event as the Lambda event source mapping delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KinesisEvent {
    /// The records, in shard order.
    #[serde(rename = "Records")]
    pub records: Vec<EventRecord>,
}

/// One record of a [`KinesisEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EventRecord {
    /// `shardId-…:sequence number`.
    #[serde(rename = "eventID", default)]
    pub event_id: Option<String>,
    /// The stream's ARN, `arn:aws:kinesis:<region>:<account>:stream/<name>`.
    #[serde(rename = "eventSourceARN", default)]
    pub event_source_arn: Option<String>,
    /// The Kinesis record itself.
    pub kinesis: KinesisData,
}

/// The Kinesis part of an [`EventRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisData {
    /// The record's bytes, decoded from base64.
    #[serde(deserialize_with = "base64_bytes")]
    pub data: Vec<u8>,
    /// The producer's partition key.
    pub partition_key: String,
    /// The sequence number, a decimal string.
    pub sequence_number: String,
    /// Approximate arrival, in Unix milliseconds (the wire carries fractional seconds).
    #[serde(
        rename = "approximateArrivalTimestamp",
        deserialize_with = "seconds_as_millis"
    )]
    pub arrival_millis: i64,
}

fn base64_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct Base64;
    impl Visitor<'_> for Base64 {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("base64 text")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(E::custom)
        }
    }
    deserializer.deserialize_str(Base64)
}

fn seconds_as_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let seconds = f64::deserialize(deserializer)?;
    let millis = (seconds * 1000.0).round();
    if !millis.is_finite() || millis.abs() > 1e15 {
        return Err(de::Error::custom(format!(
            "arrival time {seconds} is out of range"
        )));
    }
    Ok(millis as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> serde_json::Value {
        json!({"Records": [{
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": "user-1",
                "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
                "data": "eyJhIjoxfQ==",
                "approximateArrivalTimestamp": 1545084650.987,
                "encryptionType": "NONE"
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": "shardId-000000000006:49590338271490256608559692538361571095921575989136588898",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
            "awsRegion": "us-east-2",
            "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"
        }]})
    }

    #[test]
    fn reads_what_aws_lambda_events_reads() {
        let ours: KinesisEvent = serde_json::from_value(sample()).unwrap();
        let theirs: aws_lambda_events::event::kinesis::KinesisEvent =
            serde_json::from_value(sample()).unwrap();
        let (ours, theirs) = (&ours.records[0], &theirs.records[0]);
        assert_eq!(ours.event_id, theirs.event_id);
        assert_eq!(ours.kinesis.data, theirs.kinesis.data.0);
        assert_eq!(ours.kinesis.partition_key, theirs.kinesis.partition_key);
        assert_eq!(ours.kinesis.sequence_number, theirs.kinesis.sequence_number);
        assert_eq!(
            ours.kinesis.arrival_millis,
            theirs
                .kinesis
                .approximate_arrival_timestamp
                .0
                .timestamp_millis()
        );
        assert_eq!(ours.kinesis.data, b"{\"a\":1}");
    }

    #[test]
    fn reads_fractional_seconds_exactly() {
        let mut event = sample();
        for (seconds, millis) in [
            (json!(1545084650.5), 1545084650500),
            (json!(1545084650.05), 1545084650050),
            (json!(1545084650), 1545084650000),
        ] {
            event["Records"][0]["kinesis"]["approximateArrivalTimestamp"] = seconds;
            let ours: KinesisEvent = serde_json::from_value(event.clone()).unwrap();
            assert_eq!(ours.records[0].kinesis.arrival_millis, millis);
        }
    }

    #[test]
    fn refuses_data_that_is_not_base64() {
        let mut event = sample();
        event["Records"][0]["kinesis"]["data"] = json!("not base64!");
        let error = serde_json::from_value::<KinesisEvent>(event).unwrap_err();
        assert!(error.to_string().contains("Invalid"), "{error}");
    }
}
