//! Objects: what a batch writes, and their deterministic keys.
//!
//! A key names the partition, the source, the sequence range of the records inside and the
//! transform version, so a redelivered batch overwrites its own objects instead of adding
//! duplicates, and every object says where its records came from.

use crate::lake::format::Format;
use crate::source::failure::ErrorType;
use crate::source::sequence::Position;
use crate::transform::TransformId;

/// Where an object goes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    /// The data lake.
    Lake,
    /// The failed location.
    Failed,
}

/// One encoded object, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Lake or failed location.
    pub destination: Destination,
    /// Key relative to the destination's prefix.
    pub key: String,
    /// The encoded records (shared, so storing it copies nothing).
    pub body: bytes::Bytes,
    /// How `body` is encoded.
    pub format: Format,
    /// Lowest position of the records inside.
    pub first: Position,
    /// Highest position of the records inside.
    pub last: Position,
    /// Records inside.
    pub records: usize,
    /// The transform that decided where these records go (object metadata).
    pub transform: TransformId,
}

/// The object file name: `<source>-<first>-<last>-<sha12>.<json.gz|parquet>`.
pub fn object_name(
    source: &str,
    first: &Position,
    last: &Position,
    transform: &TransformId,
    format: Format,
) -> String {
    // Spark and Hive skip files whose names start with `_` or `.`.
    let guard = if source.starts_with(['_', '.']) {
        "x"
    } else {
        ""
    };
    format!(
        "{guard}{source}-{first}-{last}-{}.{}",
        transform.short(),
        format.extension()
    )
}

/// The lake key: `<table>/<partition path>/<object name>`, or without the table for a
/// transform that declares no columns (the lake root, as before tables).
pub fn lake_key(table: Option<&str>, partition: &str, name: &str) -> String {
    match table {
        Some(table) => format!("{table}/{partition}/{name}"),
        None => format!("{partition}/{name}"),
    }
}

/// The failed key: `error_type=<type>/dt=<YYYY-MM-DD>/<object name>`.
pub fn failed_key(error_type: ErrorType, date: &str, name: &str) -> String {
    format!("error_type={error_type}/dt={date}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> TransformId {
        TransformId {
            name: "retail".into(),
            sha256: "0123456789abcdef".repeat(4),
            version: None,
        }
    }

    #[test]
    fn keys_carry_source_sequence_range_and_transform_version() {
        let (first, last) = (
            Position::parse("7").unwrap(),
            Position::parse("12").unwrap().with_sub(2),
        );
        let name = object_name("shardId-000000000001", &first, &last, &id(), Format::Json);
        assert_eq!(name, "shardId-000000000001-7-12.2-0123456789ab.json.gz");
        assert_eq!(
            lake_key(Some("retail"), "section=Home/dt=2024-01-02/hr=03", &name),
            "retail/section=Home/dt=2024-01-02/hr=03/shardId-000000000001-7-12.2-0123456789ab.json.gz"
        );
        assert_eq!(
            lake_key(None, "dt=2024-01-02", "o.json.gz"),
            "dt=2024-01-02/o.json.gz"
        );
        assert_eq!(
            failed_key(ErrorType::Rejected, "2024-01-02", &name),
            "error_type=rejected/dt=2024-01-02/shardId-000000000001-7-12.2-0123456789ab.json.gz"
        );
    }

    #[test]
    fn names_are_never_hidden_from_spark() {
        let p = Position::from_index(1);
        assert!(object_name("_..", &p, &p, &id(), Format::Json).starts_with("x_.."));
        assert_eq!(
            object_name("s", &p, &p, &id(), Format::Parquet),
            "s-1-1-0123456789ab.parquet"
        );
    }
}
