//! One Kinesis record as a transform sees it, and parsing its data as JSON.

use std::cell::Cell;

use serde::Deserialize;
use serde_json::error::Category;

use crate::{Rejection, Timestamp};

/// The longest rejection message [`Record::parse`] writes, in bytes. serde quotes the offending
/// value in its messages, and a multi-megabyte string is no help to the person reading them.
const MAX_MESSAGE_BYTES: usize = 1024;

/// One record from the stream, borrowed from the guest's input buffer for the duration of a
/// transform call.
///
/// In tests, build one with [`Record::new`] and the `with_` methods:
///
/// ```
/// use weir_guest_sdk::{Record, Timestamp};
///
/// let arrival = Timestamp::from_unix_millis(1_710_085_327_000);
/// let record = Record::new(br#"{"shop":"north"}"#)
///     .with_arrival(arrival)
///     .with_partition_key("user-42")
///     .with_sequence_number("49590338271490256608559692538361571095921575989136588898");
/// assert_eq!(record.arrival().utc_date(), "2024-03-10");
/// assert_eq!(record.partition_key(), "user-42");
/// ```
#[derive(Debug)]
pub struct Record<'a> {
    data: &'a [u8],
    partition_key: &'a str,
    sequence_number: &'a str,
    arrival: Timestamp,
    // Whether `parse` ever succeeded: the export glue relies on it to never accept data that is
    // not JSON (see `abi::settle`).
    parsed: Cell<bool>,
}

impl<'a> Record<'a> {
    /// A record holding `data`, with an empty partition key and sequence number and an arrival
    /// time of the Unix epoch; change those with the `with_` methods.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            partition_key: "",
            sequence_number: "",
            arrival: Timestamp::default(),
            parsed: Cell::new(false),
        }
    }

    /// The same record with the given arrival time.
    pub fn with_arrival(mut self, arrival: Timestamp) -> Self {
        self.arrival = arrival;
        self
    }

    /// The same record with the given Kinesis partition key.
    pub fn with_partition_key(mut self, partition_key: &'a str) -> Self {
        self.partition_key = partition_key;
        self
    }

    /// The same record with the given Kinesis sequence number (decimal digits).
    pub fn with_sequence_number(mut self, sequence_number: &'a str) -> Self {
        self.sequence_number = sequence_number;
        self
    }

    /// The record's bytes, exactly as the producer wrote them (after KPL de-aggregation).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The Kinesis partition key the producer chose.
    pub fn partition_key(&self) -> &'a str {
        self.partition_key
    }

    /// The Kinesis sequence number, as decimal digits (up to 128 bits: compare as numbers).
    pub fn sequence_number(&self) -> &'a str {
        self.sequence_number
    }

    /// When Kinesis received the record (approximately, to the millisecond). It is also the only
    /// clock the guest has: the same record always sees the same time, so replays reproduce
    /// the same partitions.
    pub fn arrival(&self) -> Timestamp {
        self.arrival
    }

    /// Parses the data as one JSON value of type `T`.
    ///
    /// `T` may borrow from the data (`&'a str` for strings that never contain escapes, or
    /// `#[serde(borrow)] Cow<'a, str>` for any string), so parsing copies nothing it does not
    /// have to. The data must be UTF-8 with nothing but whitespace after the value.
    ///
    /// On failure the rejection's message names the path of the offending field and the place
    /// in the data, such as
    /// ``metadata.uuid: invalid type: integer `5`, expected a string at line 1 column 30``,
    /// with one of two codes:
    /// - `invalid_json`: the data is not JSON (a syntax error, truncated, trailing characters,
    ///   not UTF-8);
    /// - `invalid_event`: the data is JSON of the wrong shape (a missing field, a value of the
    ///   wrong type, a duplicate field).
    ///
    /// Only a failed parse pays for tracking the path: the data is then parsed a second time.
    pub fn parse<T: Deserialize<'a>>(&self) -> Result<T, Rejection> {
        let text = std::str::from_utf8(self.data).map_err(|error| {
            Rejection::new("invalid_json", format!("record data is not UTF-8: {error}"))
        })?;
        match serde_json::from_str(text) {
            Ok(value) => {
                self.parsed.set(true);
                Ok(value)
            }
            Err(error) => Err(explain::<T>(text, &error)),
        }
    }

    /// Whether [`parse`](Self::parse) has succeeded on this record, so its data is known to be
    /// JSON.
    pub(crate) fn was_parsed(&self) -> bool {
        self.parsed.get()
    }
}

/// The rejection for a failed parse, with the field path found by parsing `text` again.
#[cold]
fn explain<'a, T: Deserialize<'a>>(text: &'a str, error: &serde_json::Error) -> Rejection {
    let code = match error.classify() {
        Category::Data => "invalid_event",
        Category::Syntax | Category::Eof | Category::Io => "invalid_json",
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let message = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Err(with_path) => with_path.to_string(),
        // Only trailing characters fail after the value is complete, and they have no path.
        Ok(_) => error.to_string(),
    };
    Rejection::new(code, truncate(message, MAX_MESSAGE_BYTES))
}

fn truncate(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut end = max_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Event<'a> {
        #[serde(borrow)]
        metadata: Metadata<'a>,
    }

    #[derive(Debug, Deserialize)]
    struct Metadata<'a> {
        #[serde(borrow)]
        uuid: Cow<'a, str>,
    }

    fn rejection(data: &str) -> Rejection {
        Record::new(data.as_bytes())
            .parse::<Event<'_>>()
            .expect_err("test input is invalid")
    }

    #[test]
    fn borrows_unescaped_strings_from_the_data() {
        let record = Record::new(br#"{"metadata":{"uuid":"145"}}"#);
        let event: Event<'_> = record.parse().expect("valid event");
        assert!(matches!(event.metadata.uuid, Cow::Borrowed("145")));
    }

    #[test]
    fn decodes_escaped_strings() {
        let record = Record::new(br#"{"metadata":{"uuid":"a\"b\u00e9"}}"#);
        let event: Event<'_> = record.parse().expect("valid event");
        assert_eq!(event.metadata.uuid, "a\"bé");
    }

    #[test]
    fn names_the_path_of_a_value_of_the_wrong_type() {
        let r = rejection(r#"{"metadata":{"uuid":5}}"#);
        assert_eq!(r.code(), "invalid_event");
        assert_eq!(
            r.message(),
            "metadata.uuid: invalid type: integer `5`, expected a string at line 1 column 21"
        );
    }

    #[test]
    fn names_the_object_missing_a_field() {
        let r = rejection(r#"{"metadata":{}}"#);
        assert_eq!(r.code(), "invalid_event");
        assert_eq!(
            r.message(),
            "metadata: missing field `uuid` at line 1 column 14"
        );
        let r = rejection("{}");
        assert_eq!(r.message(), "missing field `metadata` at line 1 column 2");
    }

    #[test]
    fn rejects_duplicate_fields_as_invalid_event() {
        let r = rejection(r#"{"metadata":{"uuid":"1"},"metadata":{"uuid":"2"}}"#);
        assert_eq!(r.code(), "invalid_event");
        assert!(r.message().contains("duplicate field `metadata`"), "{r}");
    }

    #[test]
    fn rejects_a_syntax_error_as_invalid_json_with_its_path() {
        let r = rejection(r#"{"metadata":{"uuid":x}}"#);
        assert_eq!(r.code(), "invalid_json");
        assert_eq!(
            r.message(),
            "metadata.uuid: expected value at line 1 column 21"
        );
    }

    #[test]
    fn rejects_truncated_json_as_invalid_json() {
        let r = rejection(r#"{"metadata":{"uu"#);
        assert_eq!(r.code(), "invalid_json");
        assert!(r.message().contains("EOF while parsing"), "{r}");
        assert_eq!(rejection("").code(), "invalid_json");
    }

    #[test]
    fn rejects_trailing_characters_as_invalid_json() {
        let r = rejection(r#"{"metadata":{"uuid":"1"}} x"#);
        assert_eq!(r.code(), "invalid_json");
        assert_eq!(r.message(), "trailing characters at line 1 column 27");
    }

    #[test]
    fn rejects_a_byte_order_mark_as_invalid_json() {
        let r = rejection("\u{feff}{\"metadata\":{\"uuid\":\"1\"}}");
        assert_eq!(r.code(), "invalid_json");
    }

    #[test]
    fn rejects_data_that_is_not_utf8_even_inside_skipped_values() {
        let record = Record::new(b"{\"metadata\":{\"uuid\":\"1\",\"x\":\"\xff\"}}");
        let r = record.parse::<Event<'_>>().expect_err("not UTF-8");
        assert_eq!(r.code(), "invalid_json");
        assert_eq!(
            r.message(),
            "record data is not UTF-8: invalid utf-8 sequence of 1 bytes from index 29"
        );
    }

    #[test]
    fn shortens_long_messages_on_a_character_boundary() {
        let long = "é".repeat(2000);
        let r = rejection(&format!(r#"{{"metadata":"{long}"}}"#));
        assert_eq!(r.code(), "invalid_event");
        assert!(r.message().len() <= MAX_MESSAGE_BYTES + '…'.len_utf8());
        assert!(r.message().ends_with('…'));
    }

    #[test]
    fn remembers_only_a_successful_parse() {
        let record = Record::new(br#"{"metadata":{"uuid":5}}"#);
        assert!(record.parse::<Event<'_>>().is_err());
        assert!(!record.was_parsed());
        assert!(record.parse::<serde::de::IgnoredAny>().is_ok());
        assert!(record.was_parsed());
    }

    #[test]
    fn defaults_to_an_epoch_arrival_and_empty_key() {
        let record = Record::new(b"{}");
        assert_eq!(record.arrival(), Timestamp::from_unix_millis(0));
        assert_eq!(record.partition_key(), "");
        assert_eq!(record.sequence_number(), "");
        assert_eq!(record.data(), b"{}");
    }
}
