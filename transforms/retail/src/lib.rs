//! The retail website's transform: validates each event and partitions it by site section, UTC
//! day and UTC hour.
//!
//! An event is valid when `metadata` and `payload` are JSON objects and `metadata.uuid` and
//! `metadata.section` are non-empty strings. It goes to
//! `section=<metadata.section>/dt=<YYYY-MM-DD>/hr=<HH>`, with the day and hour taken in UTC from
//! `metadata.event_time` when that is an RFC 3339 string, and from the record's arrival time
//! otherwise. The host escapes the section (`/`, `=`, `%`, control characters, ...), so it is
//! passed through as written.
//!
//! Everything else is rejected, with a message naming the field: `invalid_json` (not JSON),
//! `invalid_event` (a missing field, a value of the wrong type or a duplicate field, with its
//! path) or `empty_field` (an empty `uuid` or `section`).
//!
//! Build the module with `cargo build --release --target wasm32-wasip1 -p weir-transform-retail`.

mod event;

use weir_guest_sdk::{Outcome, Partition, Record};

/// Validates one retail event and names its partition: `section`, `dt`, `hr`.
pub fn transform(record: &Record<'_>) -> Outcome {
    let (section, time) = event::route(record)?;
    Ok(Partition::new()
        .segment("section", section)
        .segment("dt", time.utc_date())
        .segment("hr", time.utc_hour()))
}

weir_guest_sdk::export!(transform, columns = ["section", "dt", "hr"]);

#[cfg(test)]
mod tests {
    use weir_guest_sdk::{Rejection, Timestamp};

    use super::*;

    /// 2024-03-10T15:42:07Z.
    const ARRIVAL: Timestamp = Timestamp::from_unix_millis(1_710_085_327_000);

    fn run(data: &str) -> Outcome {
        transform(&Record::new(data.as_bytes()).with_arrival(ARRIVAL))
    }

    fn partition(data: &str) -> Vec<(String, String)> {
        let partition = run(data).expect("valid event");
        partition
            .segments()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    fn segments(section: &str, dt: &str, hr: &str) -> Vec<(String, String)> {
        [("section", section), ("dt", dt), ("hr", hr)]
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .to_vec()
    }

    fn rejection(data: &str) -> Rejection {
        run(data).expect_err("invalid event")
    }

    #[test]
    fn partitions_by_section_and_event_time_in_utc() {
        let data = r#"{"metadata":{"uuid":"1","section":"Books","event_time":"2024-01-01T00:30:00+01:00"},"payload":{}}"#;
        assert_eq!(partition(data), segments("Books", "2023-12-31", "23"));
    }

    #[test]
    fn falls_back_to_arrival_time_without_a_usable_event_time() {
        for event_time in [
            "",
            r#","event_time":"not a time""#,
            r#","event_time":1710085327"#,
        ] {
            let data = format!(
                r#"{{"metadata":{{"uuid":"1","section":"Books"{event_time}}},"payload":{{}}}}"#
            );
            assert_eq!(
                partition(&data),
                segments("Books", "2024-03-10", "15"),
                "{data}"
            );
        }
    }

    #[test]
    fn passes_the_section_through_unescaped() {
        let data = r#"{"metadata":{"uuid":"1","section":"../../etc\u0000=%"},"payload":{}}"#;
        assert_eq!(
            partition(data),
            segments("../../etc\0=%", "2024-03-10", "15")
        );
    }

    #[test]
    fn keeps_the_original_body() {
        let data = r#"{"metadata":{"uuid":"1","section":"s"},"payload":{}}"#;
        assert_eq!(run(data).expect("valid event").body(), None);
    }

    #[test]
    fn rejects_an_empty_uuid_or_section_naming_the_field() {
        for (field, data) in [
            (
                "metadata.uuid",
                r#"{"metadata":{"uuid":"","section":"s"},"payload":{}}"#,
            ),
            (
                "metadata.section",
                r#"{"metadata":{"uuid":"1","section":""},"payload":{}}"#,
            ),
        ] {
            let r = rejection(data);
            assert_eq!(r.code(), "empty_field");
            assert_eq!(r.message(), format!("{field} must be a non-empty string"));
        }
    }

    #[test]
    fn rejects_missing_or_mistyped_fields_with_their_path() {
        for (data, message) in [
            (
                r#"{"metadata":{"uuid":5,"section":"s"},"payload":{}}"#,
                "metadata.uuid: invalid type: integer `5`, expected a string",
            ),
            (
                r#"{"metadata":{"uuid":"1"},"payload":{}}"#,
                "metadata: missing field `section`",
            ),
            (
                r#"{"metadata":{"uuid":"1","section":null},"payload":{}}"#,
                "metadata.section: invalid type: null, expected a string",
            ),
            (
                r#"{"metadata":{"uuid":"1","section":"s"}}"#,
                "missing field `payload`",
            ),
            (
                r#"{"metadata":5,"payload":{}}"#,
                "metadata: invalid type: integer `5`, expected a JSON object",
            ),
        ] {
            let r = rejection(data);
            assert_eq!(r.code(), "invalid_event", "{data}");
            assert!(r.message().starts_with(message), "{data}: {r}");
        }
    }

    #[test]
    fn rejects_duplicate_keys() {
        let r = rejection(
            r#"{"metadata":{"uuid":"1","section":"a"},"metadata":{"uuid":"1","section":"b"},"payload":{}}"#,
        );
        assert_eq!(r.code(), "invalid_event");
        assert!(r.message().contains("duplicate field `metadata`"), "{r}");
        let r = rejection(r#"{"metadata":{"uuid":"1","section":"a","section":"b"},"payload":{}}"#);
        assert!(
            r.message()
                .starts_with("metadata: duplicate field `section`"),
            "{r}"
        );
    }

    #[test]
    fn rejects_text_that_is_not_json() {
        for data in [
            "",
            "not json",
            r#"{"metadata":"#,
            r#"{"metadata":{"uuid":"1","section":"s"},"payload":{}} {}"#,
        ] {
            assert_eq!(rejection(data).code(), "invalid_json", "{data:?}");
        }
    }
}
