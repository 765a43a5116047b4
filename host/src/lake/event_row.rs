//! A lake record as a Parquet row: its `metadata` fields as columns, its `payload` as JSON
//! text, and the whole record whenever those two cannot reproduce it.
//!
//! Transforms declare no schema and payloads differ per event type (a cart event and a click
//! share nothing but `metadata`), so nested payload columns would change with every batch and
//! clash across files (`items` a number here, a list there). `payload` is therefore kept as its
//! exact JSON text, and Spark or DuckDB parse it when a job needs it (`from_json`,
//! `json_extract`). `metadata` fields are what jobs filter on, so each becomes a column. Their
//! values are strings in every event the retail transform accepts; a column is always a string
//! so that files of different batches merge (`mergeSchema` cannot reconcile a number column in
//! one file with a string column in another). A record the columns would not reproduce exactly
//! (a non-string metadata value, a field besides `metadata` and `payload`, not a JSON object at
//! all) also keeps its original bytes in `raw`, so nothing is ever lost.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::HashSet;

/// `metadata`'s fields in the record's order: string values as written, other values as their
/// JSON text, JSON `null` as `None`.
pub type MetadataFields = Vec<(String, Option<String>)>;

/// One record, as columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRow {
    /// `metadata`'s fields; `None` when there is no `metadata` object.
    pub metadata: Option<MetadataFields>,
    /// The `payload` value's JSON text, exactly as in the record.
    pub payload: Option<String>,
    /// The whole record, when `metadata` and `payload` alone cannot reproduce it.
    pub raw: Option<Vec<u8>>,
}

impl EventRow {
    /// The record again, as [`split`] received it: `raw` when kept, else `metadata` (string
    /// fields, `null` for `None`) and `payload` rebuilt.
    pub fn to_record(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut out = b"{\"metadata\":{".to_vec();
        for (i, (name, value)) in self.metadata.iter().flatten().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, name).expect("writing to a Vec cannot fail");
            out.push(b':');
            serde_json::to_writer(&mut out, value).expect("writing to a Vec cannot fail");
        }
        out.extend_from_slice(b"},\"payload\":");
        out.extend_from_slice(self.payload.as_deref().unwrap_or("null").as_bytes());
        out.push(b'}');
        out
    }
}

/// Splits one stored record (a JSON event, as accepted or rewritten by the transform).
pub fn split(record: &[u8]) -> EventRow {
    let Ok(Fields(top)) = serde_json::from_slice::<Fields>(record) else {
        return EventRow {
            raw: Some(record.to_vec()),
            ..EventRow::default()
        };
    };
    let mut row = EventRow::default();
    let mut exact = top.len() == 2;
    for (name, value) in top {
        match name.as_str() {
            "metadata" if row.metadata.is_none() => match metadata(&value) {
                Some((fields, all_strings)) => {
                    // A file may hold no metadata column at all, so `{}` could not come back.
                    exact &= all_strings && !fields.is_empty();
                    row.metadata = Some(fields);
                }
                None => exact = false,
            },
            "payload" if row.payload.is_none() => row.payload = Some(value.get().to_owned()),
            _ => exact = false,
        }
    }
    if !exact || row.metadata.is_none() || row.payload.is_none() {
        row.raw = Some(record.to_vec());
    }
    row
}

/// The fields of a `metadata` object, and whether they are all distinct, named and strings.
/// A name that differs from an earlier one only in case is left out: Spark resolves columns
/// case-insensitively and refuses such a pair.
fn metadata(value: &RawValue) -> Option<(MetadataFields, bool)> {
    let Fields(fields) = serde_json::from_str(value.get()).ok()?;
    let mut seen = HashSet::new();
    let mut all_strings = true;
    let mut out = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        if name.is_empty() || !seen.insert(name.to_lowercase()) {
            all_strings = false;
            continue;
        }
        let text = value.get();
        let column = if text.starts_with('"') {
            serde_json::from_str::<String>(text).ok()
        } else {
            all_strings = false;
            (text != "null").then(|| text.to_owned())
        };
        out.push((name, column));
    }
    Some((out, all_strings))
}

/// A JSON object's members in order, duplicates kept, values as raw JSON text.
struct Fields(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Fields(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, Option<&str>)]) -> Option<MetadataFields> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
                .collect(),
        )
    }

    #[test]
    fn keeps_string_metadata_as_columns_and_the_payload_text_exactly() {
        let record = br#"{"metadata":{"uuid":"1","section":"a\/b \u00e9"},"payload": {"n": 1.50, "big": 123456789012345678901234567890}}"#;
        let row = split(record);
        assert_eq!(
            row.metadata,
            fields(&[("uuid", Some("1")), ("section", Some("a/b é"))])
        );
        assert_eq!(
            row.payload.as_deref(),
            Some(r#"{"n": 1.50, "big": 123456789012345678901234567890}"#)
        );
        assert_eq!(row.raw, None, "the columns reproduce this record");
    }

    #[test]
    fn rows_give_back_their_records() {
        for record in [
            &br#"{"metadata":{"uuid":"u","section":"Home"},"payload":{"a":[1,2]}}"#[..],
            br#"{"payload":1,"metadata":{"k":2}}"#,
            b"not json",
        ] {
            let back = split(record).to_record();
            let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).ok();
            match json(record) {
                Some(value) => assert_eq!(json(&back), Some(value)),
                None => assert_eq!(back, record),
            }
        }
    }

    #[test]
    fn keeps_the_whole_record_when_the_columns_would_not_reproduce_it() {
        for record in [
            &br#"{"version":2,"metadata":{"uuid":"1"},"payload":{}}"#[..],
            br#"{"metadata":{"uuid":1},"payload":{}}"#,
            br#"{"metadata":{"uuid":null},"payload":{}}"#,
            br#"{"metadata":{"a":"1","A":"2"},"payload":{}}"#,
            br#"{"metadata":"x","payload":{}}"#,
            br#"{"metadata":{}}"#,
            br#"{"metadata":{},"payload":{}}"#,
            b"[1,2]",
            b"not json \xff",
        ] {
            assert_eq!(split(record).raw.as_deref(), Some(record), "{record:?}");
        }
        let row = split(br#"{"metadata":{"a":"1","A":"2","n":7,"o":{"x":[1]}},"payload":null}"#);
        assert_eq!(
            row.metadata,
            fields(&[
                ("a", Some("1")),
                ("n", Some("7")),
                ("o", Some(r#"{"x":[1]}"#))
            ])
        );
        assert_eq!(row.payload.as_deref(), Some("null"));
    }
}
