//! Merging objects: decode each source, concatenate, encode once; and the check that an
//! object holds exactly the records it should. Pure: bytes in, bytes out.

use crate::lake::encode::{DEFAULT_ZSTD_LEVEL, Gzip, Zstd};
use crate::lake::event_row::EventRow;
use crate::lake::format::Format;
use crate::lake::parquet_file::{self, ParquetError};
use std::io::Read;

/// Decoded records of one format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    /// NDJSON text: every line one record.
    Json(Vec<u8>),
    /// NDJSON text, from and to zstd'd objects.
    JsonZstd(Vec<u8>),
    /// Parquet rows.
    Parquet(Vec<EventRow>),
}

/// Why an object's bytes are not what its extension says.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not valid gzip.
    #[error("invalid gzip")]
    Gzip(#[source] std::io::Error),
    /// Not valid zstd.
    #[error("invalid zstd")]
    Zstd(#[source] std::io::Error),
    /// Not a Weir Parquet object.
    #[error(transparent)]
    Parquet(#[from] ParquetError),
}

impl Records {
    /// No records yet, in `format`.
    pub fn new(format: Format) -> Self {
        match format {
            Format::Json => Self::Json(Vec::new()),
            Format::JsonZstd => Self::JsonZstd(Vec::new()),
            Format::Parquet => Self::Parquet(Vec::new()),
        }
    }

    /// Decodes one object and appends its records.
    pub fn append(&mut self, body: bytes::Bytes) -> Result<(), DecodeError> {
        match self {
            Self::Json(text) => {
                // Multi-member, so any concatenation of gzip members reads whole.
                flate2::read::MultiGzDecoder::new(&body[..])
                    .read_to_end(text)
                    .map_err(DecodeError::Gzip)?;
            }
            Self::JsonZstd(text) => {
                // Every frame, so concatenated objects read whole too.
                zstd::stream::read::Decoder::new(&body[..])
                    .and_then(|mut decoder| decoder.read_to_end(text))
                    .map_err(DecodeError::Zstd)?;
            }
            Self::Parquet(rows) => rows.extend(parquet_file::read(body)?),
        }
        Ok(())
    }

    /// Records held.
    pub fn count(&self) -> usize {
        match self {
            Self::Json(text) | Self::JsonZstd(text) => memchr::memchr_iter(b'\n', text).count(),
            Self::Parquet(rows) => rows.len(),
        }
    }

    /// Bytes of record data held (NDJSON text, or payload plus raw bytes).
    pub fn bytes(&self) -> usize {
        match self {
            Self::Json(text) | Self::JsonZstd(text) => text.len(),
            Self::Parquet(rows) => rows
                .iter()
                .map(|r| {
                    r.payload.as_ref().map_or(0, String::len) + r.raw.as_ref().map_or(0, Vec::len)
                })
                .sum(),
        }
    }

    /// One object holding every record, in order.
    pub fn encode(&self, gzip_level: u32) -> Result<Vec<u8>, ParquetError> {
        match self {
            Self::Json(text) => Ok(Gzip::new(gzip_level).compress(text)),
            Self::JsonZstd(text) => Ok(Zstd::new(DEFAULT_ZSTD_LEVEL).compress(text)),
            Self::Parquet(rows) => parquet_file::write(rows),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::event_row::split;

    #[test]
    fn merges_ndjson_objects_and_reads_them_back_identically() {
        let mut gzip = Gzip::new(1);
        let a = gzip.compress(b"{\"a\":1}\n{\"a\":2}\n");
        let b = gzip.compress(b"{\"b\":1}\n");
        let mut merged = Records::new(Format::Json);
        merged.append(a.into()).unwrap();
        merged.append(b.into()).unwrap();
        assert_eq!(merged.count(), 3);
        let mut back = Records::new(Format::Json);
        back.append(merged.encode(6).unwrap().into()).unwrap();
        assert_eq!(back, merged);
        assert!(
            Records::new(Format::Json)
                .append(bytes::Bytes::from_static(b"not gzip"))
                .is_err()
        );
    }

    #[test]
    fn merges_zstd_objects_and_reads_them_back_identically() {
        let mut zstd = Zstd::new(DEFAULT_ZSTD_LEVEL);
        let a = zstd.compress(b"{\"a\":1}\n{\"a\":2}\n");
        let b = zstd.compress(b"{\"b\":1}\n");
        let mut merged = Records::new(Format::JsonZstd);
        merged.append(a.into()).unwrap();
        merged.append(b.into()).unwrap();
        assert_eq!(merged.count(), 3);
        let mut back = Records::new(Format::JsonZstd);
        back.append(merged.encode(6).unwrap().into()).unwrap();
        assert_eq!(back, merged);
        assert!(
            Records::new(Format::JsonZstd)
                .append(bytes::Bytes::from_static(b"not zstd"))
                .is_err()
        );
    }

    #[test]
    fn merges_parquet_objects_with_different_columns() {
        let a = parquet_file::write(&[split(br#"{"metadata":{"x":"1"},"payload":{}}"#)]).unwrap();
        let b = parquet_file::write(&[split(br#"{"metadata":{"y":"2"},"payload":[]}"#)]).unwrap();
        let mut merged = Records::new(Format::Parquet);
        merged.append(a.into()).unwrap();
        merged.append(b.into()).unwrap();
        let mut back = Records::new(Format::Parquet);
        back.append(merged.encode(1).unwrap().into()).unwrap();
        assert_eq!(back, merged);
        assert_eq!((back.count(), back.bytes()), (2, 4));
    }
}
