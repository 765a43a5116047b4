//! Weir's host: moves events from a stream into a partitioned data lake.
//!
//! Each batch of records (a Lambda invocation's Kinesis records, a shard poll, files or stdin)
//! flows through one pipeline:
//!
//! ```text
//! source -> check size -> wasm transform (accept {partition, body?} | reject {code, message})
//!        -> group by escaped partition path -> NDJSON + gzip or Parquet, one object per partition
//!        -> lake objects + failed envelopes -> report (lowest position not stored, if any)
//! ```
//!
//! Validation and partitioning run in sandboxed WebAssembly [`transform`]s; the host builds and
//! escapes paths ([`partition`]), names objects deterministically ([`object`]), wraps failures
//! ([`envelope`]) and writes them through a [`storage::Store`]. Pure stages take no wasmtime or
//! storage types, so they are tested on their own.
//!
//! Lake objects are gzip'd NDJSON or Parquet ([`format`], [`parquet_file`]); [`compact`]
//! merges the small per-batch objects of closed partitions afterwards.

pub mod active;
pub mod app;
pub mod aws;
pub mod cli;
pub mod compact;
pub mod config;
pub mod contract;
pub mod diff;
pub mod encode;
pub mod envelope;
pub mod event_row;
pub mod failure;
pub mod format;
pub mod handler;
pub mod kinesis;
pub mod logging;
pub mod metrics;
pub mod object;
pub mod parquet_file;
pub mod partition;
pub mod pipeline;
#[cfg(test)]
mod properties;
pub mod record;
pub mod registry;
pub mod replay;
pub mod sequence;
pub mod sort;
pub mod source;
pub mod storage;
pub mod transform;
