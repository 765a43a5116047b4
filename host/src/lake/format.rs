//! The lake's object formats: NDJSON, gzip'd (the default) or zstd'd, or Parquet, chosen per
//! pipeline.
//!
//! The failed location always holds gzip'd NDJSON envelopes: they are read back by `weir
//! replay` and by people, not by Spark jobs.

/// How lake objects are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    /// Newline-delimited JSON, gzip'd: every event exactly as accepted (`.json.gz`).
    #[default]
    Json,
    /// Newline-delimited JSON, zstd level 1 (`.json.zst`): as fast to write as gzip level 1 and
    /// about 20% smaller; PySpark (Hadoop 3.5) and DuckDB read it natively.
    JsonZstd,
    /// Parquet, snappy-compressed: `metadata` fields as columns, `payload` as JSON text
    /// (`.parquet`; see [`crate::lake::parquet_file`]).
    Parquet,
}

impl Format {
    /// Every format, as compaction visits them.
    pub const ALL: [Self; 3] = [Self::Json, Self::JsonZstd, Self::Parquet];

    /// The name `parse` reads: `json`, `json-zstd` or `parquet`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::JsonZstd => "json-zstd",
            Self::Parquet => "parquet",
        }
    }

    /// The object file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => crate::lake::encode::EXTENSION,
            Self::JsonZstd => "json.zst",
            Self::Parquet => "parquet",
        }
    }

    /// The objects' `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json | Self::JsonZstd => crate::lake::encode::CONTENT_TYPE,
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// The objects' `Content-Encoding`, if any: Parquet compresses inside the file.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Self::Json => Some(crate::lake::encode::CONTENT_ENCODING),
            Self::JsonZstd => Some("zstd"),
            Self::Parquet => None,
        }
    }

    /// The format of a lake key, from its extension.
    pub fn of_key(key: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|format| key.ends_with(&format!(".{}", format.extension())))
    }

    /// Parses `json`, `json-zstd` or `parquet` (the `WEIR_FORMAT` values).
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "json-zstd" => Some(Self::JsonZstd),
            "parquet" => Some(Self::Parquet),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_a_keys_format_by_its_extension() {
        assert_eq!(Format::of_key("a=1/x-1-2-ab.json.gz"), Some(Format::Json));
        assert_eq!(
            Format::of_key("a=1/x-1-2-ab.parquet"),
            Some(Format::Parquet)
        );
        assert_eq!(
            Format::of_key("a=1/x-1-2-ab.json.zst"),
            Some(Format::JsonZstd)
        );
        assert_eq!(Format::of_key("a=1/_weir-compacted.json"), None);
        assert_eq!(Format::parse("json-zstd"), Some(Format::JsonZstd));
        assert_eq!(Format::parse(" Parquet"), Some(Format::Parquet));
        assert_eq!(Format::parse("csv"), None);
    }
}
