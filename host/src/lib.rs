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
//! The tree follows that flow, one folder per layer:
//!
//! ```text
//! source/     where records come from: records and positions, Kinesis decoding and KPL
//!             aggregates, files, stdin, the Kinesis shard poller and its checkpoints
//! transform/  the sandbox: loading and checking modules and components, per-batch sessions,
//!             limits, imports
//! batch/      how a batch flows: transform + group (sort), encode, store, report (pipeline),
//!             the handler every deployment mode shares, metrics
//! lake/       what lands in the lake: partition paths, object keys, encodings, Parquet,
//!             failed-record envelopes, compaction
//! storage/    where objects are written: a local directory or S3
//! catalog/    registering tables and partitions in the AWS Glue Data Catalog
//! registry/   published versions, the active pointer and following it, contract cases,
//!             shadow runs (diff) and replays
//! author/     the author loop: scaffolding and building transform projects (Rust, Python)
//! cli/        the `weir` commands; app.rs and config.rs wire the Lambda
//! ```
//!
//! Validation and partitioning run in sandboxed WebAssembly [`transform`]s; the host builds and
//! escapes paths ([`lake::partition`]), names objects deterministically ([`lake::object`]),
//! wraps failures ([`lake::envelope`]) and writes them through a [`storage::Store`]. Pure stages
//! take no wasmtime or storage types, so they are tested on their own.
//!
//! Lake objects are gzip'd or zstd'd NDJSON, or Parquet ([`lake::format`]);
//! [`lake::compact`] merges the small per-batch objects of closed partitions afterwards.

pub mod app;
pub mod author;
pub mod aws;
pub mod batch;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod lake;
pub mod logging;
#[cfg(test)]
mod properties;
pub mod registry;
pub mod source;
pub mod storage;
pub mod transform;
