//! Validates the retail website's events and partitions them by section, UTC day and hour.
//! Edit `transform`; `cargo test` runs the tests below, `weir transform build` the module and
//! `weir transform test build/{name}.wasm --cases cases` the contract cases.

use std::borrow::Cow;

use serde::Deserialize;
use weir_guest_sdk::{Outcome, Partition, Record, Rejection, Timestamp};

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    metadata: Metadata<'a>,
    #[serde(rename = "payload")]
    _payload: serde::de::IgnoredAny,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow)]
    uuid: Cow<'a, str>,
    #[serde(borrow)]
    section: Cow<'a, str>,
    #[serde(default, borrow)]
    event_time: Option<Cow<'a, str>>,
}

/// Accepts an event into `section=…/dt=…/hr=…`, timed by `metadata.event_time` when it is an
/// RFC 3339 time and by its arrival otherwise.
pub fn transform(record: &Record<'_>) -> Outcome {
    let event: Event = record.parse()?;
    let metadata = event.metadata;
    for (field, value) in [("uuid", &metadata.uuid), ("section", &metadata.section)] {
        if value.is_empty() {
            return Err(Rejection::new(
                "empty_field",
                format!("metadata.{field} must be a non-empty string"),
            ));
        }
    }
    let time = metadata
        .event_time
        .and_then(|text| Timestamp::parse_rfc3339(&text))
        .unwrap_or(record.arrival());
    Ok(Partition::new()
        .segment("section", metadata.section)
        .segment("dt", time.utc_date())
        .segment("hr", time.utc_hour()))
}

weir_guest_sdk::export!(transform, columns = ["section", "dt", "hr"]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_by_section_and_event_time() {
        let record = Record::new(
            br#"{"metadata":{"uuid":"1","section":"Books","event_time":"2024-01-01T00:30:00+01:00"},"payload":{}}"#,
        );
        let partition = transform(&record).expect("a valid event");
        let segments: Vec<_> = partition.segments().collect();
        assert_eq!(segments, [("section", "Books"), ("dt", "2023-12-31"), ("hr", "23")]);
    }

    #[test]
    fn rejects_an_empty_section() {
        let record = Record::new(br#"{"metadata":{"uuid":"1","section":""},"payload":{}}"#);
        assert_eq!(transform(&record).unwrap_err().code(), "empty_field");
    }
}
