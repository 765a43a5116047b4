//! What lands in the lake: escaped partition paths ([`partition`]), deterministic object keys
//! ([`object`]), the encodings ([`format`]: NDJSON with gzip or zstd via [`encode`], Parquet via
//! [`parquet_file`] and [`event_row`]), failed-record envelopes ([`envelope`]), tables and their descriptors ([`table`]) and compaction of
//! closed partitions ([`compact`]). Nothing here touches wasmtime or AWS types.

pub mod compact;
pub mod encode;
pub mod envelope;
pub mod event_row;
pub mod format;
pub mod object;
pub mod parquet_file;
pub mod partition;
pub mod table;
