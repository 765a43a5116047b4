//! Tables: what readers see. A table is one root prefix under the lake (`<lake>/<table>/`), one
//! ordered list of partition columns and one format, described by a small document at
//! `<lake>/_weir/tables/<table>.json`. Every object under a table's root has its layout, so
//! Spark's and DuckDB's partition discovery always reads it whole.
//!
//! A transform declares its columns (see the guest SDK's `export!`); a version with other
//! columns writes another table, and the host never writes one layout into a table that holds
//! another. Pure: names, columns and descriptors; [`crate::batch::tables`] does the I/O.

use crate::lake::format::Format;
use crate::lake::partition::PartitionLimits;
use serde::{Deserialize, Serialize};

/// The folder under the lake that holds table descriptors (hidden from Spark and Hive by `_`).
pub const DESCRIPTORS: &str = "_weir/tables";

/// The `format` field of every descriptor this release writes.
pub const DESCRIPTOR_FORMAT: &str = "weir-table/1";

/// A table a transform writes: its name (the root folder under the lake) and its columns.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Table {
    /// The table's name and folder: `[a-z0-9_-]`, 1 to 64 bytes, not starting with `_` or `-`.
    pub name: String,
    /// Its partition columns, outermost first.
    pub columns: Vec<String>,
}

impl Table {
    /// A checked table.
    pub fn new(name: &str, columns: Vec<String>) -> Result<Self, TableError> {
        check_table_name(name)?;
        check_columns(&columns, &PartitionLimits::default())?;
        Ok(Self {
            name: name.to_owned(),
            columns,
        })
    }

    /// The columns as `section, dt, hr`, for messages.
    pub fn columns_text(&self) -> String {
        self.columns.join(", ")
    }

    /// Where this table's descriptor sits, relative to the lake.
    pub fn descriptor_key(&self) -> String {
        format!("{DESCRIPTORS}/{}.json", self.name)
    }
}

/// What a table's descriptor says: read by hosts before they first write to the table, and by
/// people and tools that want to know a lake's tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Always [`DESCRIPTOR_FORMAT`].
    pub format: String,
    /// The table's name (its folder under the lake).
    pub table: String,
    /// Its partition columns, outermost first.
    pub columns: Vec<String>,
    /// How its objects are encoded: `json` (gzip'd NDJSON), `json-zstd` or `parquet`.
    pub object_format: String,
    /// The transform that created it.
    pub created_by: CreatedBy,
    /// When, RFC 3339.
    pub created_at: String,
}

/// The transform (and registry version, if any) that created a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedBy {
    /// The transform's name.
    pub transform: String,
    /// Its registry version, when it came from a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The module's sha256.
    pub sha256: String,
}

impl Descriptor {
    /// Parses a stored descriptor; a document of another kind is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let descriptor: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if descriptor.format != DESCRIPTOR_FORMAT {
            return Err(format!(
                "format is {:?}, this host reads {DESCRIPTOR_FORMAT:?}",
                descriptor.format
            ));
        }
        Ok(descriptor)
    }

    /// Why a writer of `table` in `format` must not write into the table this describes.
    pub fn conflict(&self, table: &Table, format: Format) -> Option<String> {
        if self.table != table.name {
            return Some(format!("it describes table {:?}", self.table));
        }
        if self.columns != table.columns {
            return Some(format!(
                "table {} has columns ({}), the transform writes ({})",
                table.name,
                self.columns.join(", "),
                table.columns_text()
            ));
        }
        if self.object_format != format.name() {
            return Some(format!(
                "table {} holds {} objects, this host writes {}",
                table.name,
                self.object_format,
                format.name()
            ));
        }
        None
    }
}

/// Why a table name or a column list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// A name that cannot be a table folder.
    #[error(
        "table name {0:?} is invalid: use [a-z0-9_-], 1 to 64 bytes, not starting with `_` or `-`"
    )]
    InvalidName(String),
    /// No columns at all.
    #[error(
        "the transform declares no partition columns: export it with `export!(transform, columns = [\"section\", \"dt\"])`"
    )]
    NoColumns,
    /// More columns than a partition path may have.
    #[error("{count} partition columns declared, at most {max} allowed")]
    TooManyColumns {
        /// Declared.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A column that is not a lowercase column name.
    #[error("partition column {name:?} is not a column name ([a-z0-9_], 1 to {max} bytes)")]
    InvalidColumn {
        /// The offending name.
        name: String,
        /// The length limit.
        max: usize,
    },
    /// The same column twice.
    #[error("partition column {0:?} is declared twice")]
    DuplicateColumn(String),
}

/// Checks a table name: a folder Spark does not hide, safe in S3 keys and Glue.
pub fn check_table_name(name: &str) -> Result<(), TableError> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with(['_', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TableError::InvalidName(name.to_owned()))
    }
}

/// A table name made from any text (a file stem, a transform name): lowercased, other
/// characters as `_`, never hidden from Spark.
pub fn table_name_from(text: &str) -> String {
    let mut name: String = text
        .chars()
        .take(64)
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '_',
        })
        .collect();
    if name.is_empty() || name.starts_with(['_', '-']) {
        name.insert(0, 't');
        name.truncate(64);
    }
    name
}

/// Checks declared columns: at least one, column names, no repeats, within the path limits.
pub fn check_columns(columns: &[String], limits: &PartitionLimits) -> Result<(), TableError> {
    if columns.is_empty() {
        return Err(TableError::NoColumns);
    }
    if columns.len() > limits.max_segments {
        return Err(TableError::TooManyColumns {
            count: columns.len(),
            max: limits.max_segments,
        });
    }
    for (i, column) in columns.iter().enumerate() {
        let valid = (1..=limits.max_name_bytes).contains(&column.len())
            && column
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(TableError::InvalidColumn {
                name: column.clone(),
                max: limits.max_name_bytes,
            });
        }
        if columns[..i].contains(column) {
            return Err(TableError::DuplicateColumn(column.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn columns_are_checked_with_a_reason() {
        let limits = PartitionLimits::default();
        assert_eq!(
            check_columns(&columns(&["section", "dt", "hr"]), &limits),
            Ok(())
        );
        assert_eq!(check_columns(&[], &limits), Err(TableError::NoColumns));
        assert_eq!(
            check_columns(&columns(&["dt", "dt"]), &limits),
            Err(TableError::DuplicateColumn("dt".into()))
        );
        for bad in ["Section", "a=b", "", "a/b", "é"] {
            assert!(
                matches!(
                    check_columns(&columns(&[bad]), &limits),
                    Err(TableError::InvalidColumn { .. })
                ),
                "{bad:?}"
            );
        }
        let nine: Vec<String> = (0..9).map(|i| format!("c{i}")).collect();
        assert_eq!(
            check_columns(&nine, &limits),
            Err(TableError::TooManyColumns { count: 9, max: 8 })
        );
    }

    #[test]
    fn table_names_are_visible_folders() {
        for good in ["retail", "retail_v2", "a-1"] {
            assert_eq!(check_table_name(good), Ok(()));
        }
        for bad in [
            "",
            "_weir",
            "-x",
            "Retail",
            "a/b",
            "a.b",
            "..",
            &"x".repeat(65),
        ] {
            assert!(check_table_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(table_name_from("Retail v2.1"), "retail_v2_1");
        assert_eq!(table_name_from("_hidden"), "t_hidden");
        assert_eq!(table_name_from(""), "t");
        for text in ["Ünïcode", "..", "_", &"Y".repeat(80)] {
            assert_eq!(check_table_name(&table_name_from(text)), Ok(()), "{text:?}");
        }
    }

    #[test]
    fn a_descriptor_names_what_conflicts() {
        let table = Table::new("retail", columns(&["section", "dt", "hr"])).unwrap();
        let descriptor = Descriptor {
            format: DESCRIPTOR_FORMAT.into(),
            table: "retail".into(),
            columns: table.columns.clone(),
            object_format: "json".into(),
            created_by: CreatedBy {
                transform: "retail".into(),
                version: Some("v1".into()),
                sha256: "ab".into(),
            },
            created_at: "2026-12-01T00:00:00Z".into(),
        };
        assert_eq!(descriptor.conflict(&table, Format::Json), None);
        let wider = Table::new("retail", columns(&["section", "dt", "hr", "channel"])).unwrap();
        let why = descriptor.conflict(&wider, Format::Json).unwrap();
        assert!(
            why.contains("(section, dt, hr)") && why.contains("channel"),
            "{why}"
        );
        assert!(
            descriptor
                .conflict(&table, Format::Parquet)
                .unwrap()
                .contains("parquet")
        );
        let text = serde_json::to_vec(&descriptor).unwrap();
        assert_eq!(Descriptor::parse(&text), Ok(descriptor));
        assert!(Descriptor::parse(b"{\"format\":\"other/1\"}").is_err());
        assert!(
            Descriptor::parse(br#"{"format":"x/1","table":"t","columns":[],"object_format":"json","created_by":{"transform":"t","sha256":""},"created_at":""}"#)
                .unwrap_err()
                .contains("weir-table/1")
        );
    }
}
