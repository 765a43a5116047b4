//! What the catalog holds for a table and its partitions: the Glue table (Hive layout, partition
//! keys as strings, the SerDe of the table's format) and one partition per partition folder.
//! Pure: names, locations and inputs; [`crate::catalog::glue`] makes the calls.

use crate::lake::format::Format;
use crate::lake::partition::unescape_value;
use crate::lake::table::Table;
use aws_sdk_glue::types::{Column, PartitionInput, SerDeInfo, StorageDescriptor, TableInput};
use std::collections::BTreeSet;

/// The `weir.table` parameter every table Weir creates carries: its lake table's name.
pub const TABLE_PARAMETER: &str = "weir.table";

/// One lake table as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The lake table.
    pub table: Table,
    /// Its object format.
    pub format: Format,
    /// Its root folder, ending in `/`: `s3://bucket/prefix/<table>/`.
    pub location: String,
    /// Parquet only: the `metadata` fields seen in its objects (the struct's members).
    pub metadata_fields: BTreeSet<String>,
}

impl TableSpec {
    /// The table `table` of the lake at `lake` (`s3://bucket/prefix` or a directory).
    pub fn new(lake: &str, table: Table, format: Format) -> Self {
        let location = format!("{}/{}/", lake.trim_end_matches('/'), table.name);
        Self {
            table,
            format,
            location,
            metadata_fields: BTreeSet::new(),
        }
    }

    /// The catalog's name for it: Athena allows only `[a-z0-9_]`, so `-` becomes `_`.
    pub fn glue_name(&self) -> String {
        glue_name(&self.table.name)
    }

    /// The data columns, in Hive types. NDJSON: `metadata map<string,string>` and `payload
    /// string` (the event's JSON text). Parquet: `metadata struct<…>` of the fields seen (once
    /// there is one), `payload string`, `raw binary`.
    pub fn data_columns(&self) -> Vec<(String, String)> {
        let mut columns = Vec::with_capacity(3);
        match self.format {
            Format::Json | Format::JsonZstd => {
                columns.push(("metadata".to_owned(), "map<string,string>".to_owned()));
            }
            Format::Parquet => {
                let fields: Vec<String> = self
                    .metadata_fields
                    .iter()
                    .filter(|name| is_declarable(name))
                    .map(|name| format!("{name}:string"))
                    .collect();
                // Hive has no empty struct: the column comes with the first field seen.
                if !fields.is_empty() {
                    columns.push((
                        "metadata".to_owned(),
                        format!("struct<{}>", fields.join(",")),
                    ));
                }
            }
        }
        columns.push(("payload".to_owned(), "string".to_owned()));
        if self.format == Format::Parquet {
            columns.push(("raw".to_owned(), "binary".to_owned()));
        }
        columns
    }

    /// The storage descriptor of the table, or of one partition at `location`.
    fn storage(&self, location: &str) -> StorageDescriptor {
        let hive = HiveFormat::of(self.format);
        let columns = self
            .data_columns()
            .into_iter()
            .map(|(name, kind)| column(&name, &kind))
            .collect();
        StorageDescriptor::builder()
            .set_columns(Some(columns))
            .location(location)
            .input_format(hive.input)
            .output_format(hive.output)
            .compressed(self.format != Format::Parquet)
            .serde_info(
                SerDeInfo::builder()
                    .serialization_library(hive.serde)
                    .build(),
            )
            .build()
    }

    /// The table's definition: external, Hive layout, partition keys as strings.
    pub fn table_input(&self) -> TableInput {
        let keys = self
            .table
            .columns
            .iter()
            .map(|c| column(c, "string"))
            .collect();
        let classification = match self.format {
            Format::Json | Format::JsonZstd => "json",
            Format::Parquet => "parquet",
        };
        TableInput::builder()
            .name(self.glue_name())
            .table_type("EXTERNAL_TABLE")
            .parameters("EXTERNAL", "TRUE")
            .parameters("classification", classification)
            .parameters(TABLE_PARAMETER, &self.table.name)
            .parameters("weir.format", self.format.name())
            .set_partition_keys(Some(keys))
            .storage_descriptor(self.storage(&self.location))
            .build()
            .expect("a table input with a name builds")
    }

    /// The partition at `path` (`section=a/dt=…/hr=…`, relative to the table), if the path
    /// holds exactly the table's columns, in order.
    pub fn partition_input(&self, path: &str) -> Option<PartitionInput> {
        let values = partition_values(&self.table, path)?;
        let location = format!("{}{}/", self.location, path);
        Some(
            PartitionInput::builder()
                .set_values(Some(values))
                .storage_descriptor(self.storage(&location))
                .build(),
        )
    }

    /// Why an existing catalog table cannot stand for this one, if it cannot: other partition
    /// keys, another location or another SerDe. (Data columns may differ: Parquet's grow.)
    pub fn conflict(&self, existing: &aws_sdk_glue::types::Table) -> Option<String> {
        let keys: Vec<&str> = existing.partition_keys().iter().map(|c| c.name()).collect();
        if keys
            != self
                .table
                .columns
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        {
            return Some(format!(
                "its partition keys are ({}), the lake table's columns are ({})",
                keys.join(", "),
                self.table.columns_text()
            ));
        }
        let storage = existing.storage_descriptor();
        let location = storage.and_then(|s| s.location()).unwrap_or_default();
        if location.trim_end_matches('/') != self.location.trim_end_matches('/') {
            return Some(format!(
                "its location is {location:?}, the lake table is at {:?}",
                self.location
            ));
        }
        let serde = storage
            .and_then(|s| s.serde_info())
            .and_then(|s| s.serialization_library())
            .unwrap_or_default();
        let wanted = HiveFormat::of(self.format).serde;
        if serde != wanted {
            return Some(format!(
                "its SerDe is {serde:?}, the lake table's {} objects need {wanted:?}",
                self.format.name()
            ));
        }
        None
    }

    /// Parquet: the metadata fields this spec has that `existing` lacks (the table must be
    /// widened to show them).
    pub fn new_fields(&self, existing: &aws_sdk_glue::types::Table) -> BTreeSet<String> {
        let declared = declared_fields(existing);
        self.metadata_fields
            .iter()
            .filter(|name| is_declarable(name) && !declared.contains(*name))
            .cloned()
            .collect()
    }
}

/// The members of an existing table's `metadata struct<…>` column, as field names.
pub fn declared_fields(existing: &aws_sdk_glue::types::Table) -> BTreeSet<String> {
    let kind = existing
        .storage_descriptor()
        .and_then(|s| s.columns().iter().find(|c| c.name() == "metadata"))
        .and_then(|c| c.r#type())
        .unwrap_or_default();
    let Some(members) = kind
        .strip_prefix("struct<")
        .and_then(|k| k.strip_suffix('>'))
    else {
        return BTreeSet::new();
    };
    members
        .split(',')
        .filter_map(|member| member.rsplit_once(':'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// How Hive-layout readers read a format: input and output formats and SerDe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HiveFormat {
    /// The input format class.
    pub input: &'static str,
    /// The output format class.
    pub output: &'static str,
    /// The SerDe class.
    pub serde: &'static str,
}

impl HiveFormat {
    /// NDJSON (either codec; readers pick it from the extension) as text with the Hive JSON
    /// SerDe, which Athena recommends over OpenX's; Parquet with Hive's Parquet SerDe.
    pub fn of(format: Format) -> Self {
        match format {
            Format::Json | Format::JsonZstd => Self {
                input: "org.apache.hadoop.mapred.TextInputFormat",
                output: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                serde: "org.apache.hive.hcatalog.data.JsonSerDe",
            },
            Format::Parquet => Self {
                input: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                output: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                serde: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            },
        }
    }
}

/// The catalog name of lake table `name`.
pub fn glue_name(name: &str) -> String {
    name.replace('-', "_")
}

/// The (unescaped) values of a partition path, in the table's column order; None when the
/// path does not hold exactly those columns.
pub fn partition_values(table: &Table, path: &str) -> Option<Vec<String>> {
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() != table.columns.len() {
        return None;
    }
    segments
        .iter()
        .zip(&table.columns)
        .map(|(segment, column)| {
            let (name, value) = segment.split_once('=')?;
            (name == column).then(|| unescape_value(value))
        })
        .collect()
}

/// Whether a metadata field can be a struct member in every engine: Hive and Athena match
/// member names case-insensitively and parse `struct<…>` by `,` and `:`, so only
/// `[a-z_][a-z0-9_]*` is declared. Other fields stay in the objects, undeclared.
fn is_declarable(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn column(name: &str, kind: &str) -> Column {
    Column::builder()
        .name(name)
        .r#type(kind)
        .build()
        .expect("a column with a name builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(format: Format) -> TableSpec {
        let table = Table::new("retail-v2", vec!["section".into(), "dt".into()]).unwrap();
        TableSpec::new("s3://lake/prefix/", table, format)
    }

    #[test]
    fn a_table_is_external_hive_with_string_keys_at_its_folder() {
        let input = spec(Format::Json).table_input();
        assert_eq!(input.name(), "retail_v2");
        assert_eq!(input.table_type(), Some("EXTERNAL_TABLE"));
        let keys: Vec<_> = input
            .partition_keys()
            .iter()
            .map(|c| (c.name(), c.r#type().unwrap()))
            .collect();
        assert_eq!(keys, [("section", "string"), ("dt", "string")]);
        let storage = input.storage_descriptor().unwrap();
        assert_eq!(storage.location(), Some("s3://lake/prefix/retail-v2/"));
        assert_eq!(
            storage.serde_info().unwrap().serialization_library(),
            Some("org.apache.hive.hcatalog.data.JsonSerDe")
        );
        assert_eq!(input.parameters().unwrap()[TABLE_PARAMETER], "retail-v2");
    }

    #[test]
    fn parquet_tables_declare_the_metadata_fields_seen() {
        let mut spec = spec(Format::Parquet);
        spec.metadata_fields = ["uuid", "Section", "a,b:c", "section"]
            .map(str::to_owned)
            .into();
        let columns = spec.data_columns();
        assert_eq!(columns[0].1, "struct<section:string,uuid:string>");
        assert_eq!(columns[2], ("raw".to_owned(), "binary".to_owned()));
        let input = spec.table_input();
        let existing = aws_sdk_glue::types::Table::builder()
            .name("retail_v2")
            .storage_descriptor(
                StorageDescriptor::builder()
                    .columns(column("metadata", "struct<uuid:string>"))
                    .build(),
            )
            .build()
            .unwrap();
        assert_eq!(spec.new_fields(&existing), ["section".to_owned()].into());
        assert_eq!(
            input
                .storage_descriptor()
                .unwrap()
                .serde_info()
                .unwrap()
                .serialization_library(),
            Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe")
        );
    }

    #[test]
    fn partitions_are_unescaped_values_in_column_order() {
        let spec = spec(Format::Json);
        let input = spec
            .partition_input("section=Home%2FGarden/dt=2026-12-01")
            .unwrap();
        assert_eq!(input.values(), ["Home/Garden", "2026-12-01"]);
        assert_eq!(
            input.storage_descriptor().unwrap().location(),
            Some("s3://lake/prefix/retail-v2/section=Home%2FGarden/dt=2026-12-01/")
        );
        assert!(spec.partition_input("dt=2026-12-01/section=a").is_none());
        assert!(spec.partition_input("section=a").is_none());
        assert!(spec.partition_input("section=a/dt=b/hr=c").is_none());
    }

    #[test]
    fn a_table_with_other_keys_location_or_serde_conflicts() {
        let spec = spec(Format::Json);
        let mine = spec.table_input();
        let existing = |keys: &[&str], location: &str, serde: &str| {
            aws_sdk_glue::types::Table::builder()
                .name(mine.name())
                .set_partition_keys(Some(keys.iter().map(|k| column(k, "string")).collect()))
                .storage_descriptor(
                    StorageDescriptor::builder()
                        .location(location)
                        .serde_info(SerDeInfo::builder().serialization_library(serde).build())
                        .build(),
                )
                .build()
                .unwrap()
        };
        let json = "org.apache.hive.hcatalog.data.JsonSerDe";
        let here = "s3://lake/prefix/retail-v2";
        assert_eq!(
            spec.conflict(&existing(&["section", "dt"], here, json)),
            None
        );
        let keys = spec.conflict(&existing(&["section", "dt", "hr"], here, json));
        assert!(keys.unwrap().contains("(section, dt, hr)"));
        let moved = spec.conflict(&existing(&["section", "dt"], "s3://other/", json));
        assert!(moved.unwrap().contains("s3://other/"));
        let serde = spec.conflict(&existing(&["section", "dt"], here, "LazySimpleSerDe"));
        assert!(serde.unwrap().contains("LazySimpleSerDe"));
    }
}
