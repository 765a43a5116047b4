//! Parquet lake objects: [`EventRow`]s in one file (one row group, snappy), and back.
//!
//! Schema, in Spark's terms: `metadata struct<name: string, ...>` (the names that occur in the
//! file, sorted), `payload string` (Parquet's JSON type) and `raw binary`. Files of different
//! batches differ only in which `metadata` fields they hold, which Spark's `mergeSchema` and
//! DuckDB's `union_by_name` merge. Snappy, because it is pure Rust (no C build), Spark's
//! default, and decompresses fastest; the files are small per batch and merged by
//! `weir compact`.

use crate::lake::event_row::EventRow;
use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical};
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::types::Type;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A Parquet file that could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    /// The parquet crate refused the schema or the data, or could not decode a file.
    #[error("invalid Parquet data")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A file that is Parquet but not a Weir lake object.
    #[error("not a Weir lake object: {0}")]
    Shape(String),
}

/// Encodes `rows` as one Parquet file.
pub fn write(rows: &[EventRow]) -> Result<Vec<u8>, ParquetError> {
    // Column index of every metadata name in the file, in name order.
    let names: BTreeMap<&str, usize> = {
        let mut names: Vec<&str> = rows
            .iter()
            .flat_map(|row| row.metadata.iter().flatten().map(|(n, _)| n.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        names.into_iter().enumerate().map(|(i, n)| (n, i)).collect()
    };
    let mut metadata = vec![(Vec::new(), Vec::with_capacity(rows.len())); names.len()];
    let (mut payload, mut raw) = (Column::default(), Column::default());
    for row in rows {
        let mut present = vec![None; names.len()];
        if let Some(fields) = &row.metadata {
            for (name, value) in fields {
                present[names[name.as_str()]] = Some(value.as_deref());
            }
        }
        for ((values, levels), field) in metadata.iter_mut().zip(present) {
            let level = match (&row.metadata, field) {
                (None, _) => 0,
                (Some(_), None | Some(None)) => 1,
                (Some(_), Some(Some(value))) => {
                    values.push(ByteArray::from(value));
                    2
                }
            };
            levels.push(level);
        }
        payload.push(row.payload.as_ref().map(|p| p.as_bytes().to_vec()));
        raw.push(row.raw.clone());
    }

    let schema = Arc::new(schema(names.keys().copied())?);
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("weir {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, Arc::new(properties))?;
    let mut group = writer.next_row_group()?;
    let columns = metadata
        .into_iter()
        .chain([payload.into_parts(), raw.into_parts()]);
    for (values, levels) in columns {
        let mut column = group
            .next_column()?
            .ok_or_else(|| ParquetError::Shape("fewer columns than the schema".into()))?;
        column
            .typed::<ByteArrayType>()
            .write_batch(&values, Some(&levels), None)?;
        column.close()?;
    }
    group.close()?;
    Ok(writer.into_inner()?)
}

/// Decodes a file [`write`] made (or merged), row by row. Metadata fields that are null are
/// left out, as if absent.
pub fn read(file: bytes::Bytes) -> Result<Vec<EventRow>, ParquetError> {
    let reader = SerializedFileReader::new(file)?;
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None)? {
        let mut out = EventRow::default();
        for (name, field) in row?.get_column_iter() {
            match (name.as_str(), field) {
                (_, Field::Null) => {}
                ("metadata", Field::Group(group)) => {
                    let mut fields = Vec::new();
                    for (name, value) in group.get_column_iter() {
                        match value {
                            Field::Str(value) => fields.push((name.clone(), Some(value.clone()))),
                            Field::Null => {}
                            other => return Err(shape(name, other)),
                        }
                    }
                    out.metadata = Some(fields);
                }
                ("payload", Field::Str(text)) => out.payload = Some(text.clone()),
                ("raw", Field::Bytes(bytes)) => out.raw = Some(bytes.data().to_vec()),
                (name, other) => return Err(shape(name, other)),
            }
        }
        rows.push(out);
    }
    Ok(rows)
}

/// Rows in a file, from its footer.
pub fn row_count(file: bytes::Bytes) -> Result<u64, ParquetError> {
    let reader = SerializedFileReader::new(file)?;
    let rows = reader.metadata().file_metadata().num_rows();
    u64::try_from(rows).map_err(|_| ParquetError::Shape(format!("{rows} rows")))
}

fn shape(name: &str, field: &Field) -> ParquetError {
    ParquetError::Shape(format!("unexpected column {name}: {field:?}"))
}

/// Values and definition levels of one optional column.
#[derive(Default)]
struct Column {
    values: Vec<ByteArray>,
    levels: Vec<i16>,
}

impl Column {
    fn push(&mut self, value: Option<Vec<u8>>) {
        self.levels.push(i16::from(value.is_some()));
        if let Some(value) = value {
            self.values.push(ByteArray::from(value));
        }
    }

    fn into_parts(self) -> (Vec<ByteArray>, Vec<i16>) {
        (self.values, self.levels)
    }
}

fn schema<'a>(metadata: impl Iterator<Item = &'a str>) -> Result<Type, ParquetError> {
    let column = |name: &str, logical: Option<LogicalType>| {
        Type::primitive_type_builder(name, Physical::BYTE_ARRAY)
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(logical)
            .build()
            .map(Arc::new)
    };
    let fields = metadata
        .map(|name| column(name, Some(LogicalType::String)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut top = Vec::new();
    // A group needs at least one field: a file whose records have no metadata fields has none.
    if !fields.is_empty() {
        let group = Type::group_type_builder("metadata")
            .with_repetition(Repetition::OPTIONAL)
            .with_fields(fields)
            .build()?;
        top.push(Arc::new(group));
    }
    top.push(column("payload", Some(LogicalType::Json))?);
    top.push(column("raw", None)?);
    Ok(Type::group_type_builder("weir_event")
        .with_fields(top)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::event_row::split;

    #[test]
    fn round_trips_rows_with_different_metadata_fields() {
        let records: [&[u8]; 4] = [
            br#"{"metadata":{"uuid":"1","section":"a/b"},"payload":{"x":1}}"#,
            br#"{"metadata":{"uuid":"2","campaign":"c"},"payload":[1, 2.50]}"#,
            br#"{"metadata":{"uuid":3},"payload":{}}"#,
            b"\xffnot json",
        ];
        let rows: Vec<EventRow> = records.iter().map(|r| split(r)).collect();
        let file = write(&rows).unwrap();
        assert_eq!(&file[..4], b"PAR1");
        assert_eq!(row_count(file.clone().into()).unwrap(), 4);
        let back = read(file.into()).unwrap();
        // Fields come back in column (name) order.
        let sorted = |row: &EventRow| {
            let mut row = row.clone();
            if let Some(fields) = &mut row.metadata {
                fields.sort();
            }
            row
        };
        assert_eq!(back, rows.iter().map(sorted).collect::<Vec<_>>());
        assert_eq!(back[3].metadata, None);
        assert_eq!(back[3].raw.as_deref(), Some(records[3]));
    }

    #[test]
    fn a_file_without_metadata_fields_is_still_valid() {
        let rows = vec![split(b"[]")];
        assert_eq!(read(write(&rows).unwrap().into()).unwrap(), rows);
    }
}
