//! Where records come from: the [`record::Record`]s and [`record::Batch`]es every source
//! produces, their positions ([`sequence`]), Kinesis decoding and KPL aggregates ([`kinesis`]),
//! and the sources that cut them into batches.
//!
//! Files and directories (`PATH`), NDJSON on stdin (`-`); a Kinesis shard poller
//! (`kinesis://STREAM`) produces the same batches and keeps per-shard [`Checkpoints`].
//! Batches are bounded exactly like a Lambda invocation's: a record count and a payload size.

pub mod failure;
pub mod kinesis;
pub mod record;
pub mod sequence;

mod checkpoint;
mod files;
mod poller;
mod stdin;

pub use checkpoint::{CheckpointError, Checkpoints};
pub use files::FileSource;
pub use poller::{PollError, PollOptions, StartAt, poll_stream};
pub use stdin::{STDIN_LABEL, StdinSource};

use std::path::PathBuf;
use std::time::Duration;

/// The biggest Lambda invocation payload: a batch never holds more record bytes than this.
pub const MAX_BATCH_BYTES: usize = 6 << 20;

/// The most records a Lambda invocation receives from Kinesis, and the default batch size:
/// one object per partition per batch, so bigger batches mean fewer, larger objects (fewer
/// S3 requests per GB, faster reads downstream).
pub const MAX_BATCH_RECORDS: usize = 10_000;

/// How batches are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Records per batch at most.
    pub max_records: usize,
    /// Record bytes per batch at most (a single larger record still forms its own batch).
    pub max_bytes: usize,
    /// On a live stream, a batch closes when no record arrives for this long.
    pub window: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_records: MAX_BATCH_RECORDS,
            max_bytes: MAX_BATCH_BYTES,
            window: Duration::from_millis(200),
        }
    }
}

/// One `--input` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file or directory.
    Path(PathBuf),
    /// NDJSON on standard input (`-`).
    Stdin,
    /// A Kinesis data stream (`kinesis://STREAM`), read shard by shard.
    Kinesis(String),
}

/// An input this build cannot read.
#[derive(Debug, thiserror::Error)]
#[error("unsupported input {0:?}: give a file, a directory, `-` for stdin or kinesis://STREAM")]
pub struct UnsupportedInput(pub String);

impl std::str::FromStr for Input {
    type Err = UnsupportedInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "-" => Ok(Self::Stdin),
            _ if s.starts_with("kinesis://") => match &s["kinesis://".len()..] {
                "" => Err(UnsupportedInput(s.to_owned())),
                stream => Ok(Self::Kinesis(stream.to_owned())),
            },
            _ if s.contains("://") => Err(UnsupportedInput(s.to_owned())),
            _ => Ok(Self::Path(s.into())),
        }
    }
}

/// Whether a file holds one JSON event per line rather than one event in all.
pub fn is_ndjson(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e == "ndjson" || e == "jsonl")
}

/// Cuts the front of `pending` into a batch within `limits`.
fn take_batch(
    pending: &mut std::collections::VecDeque<crate::source::record::Record>,
    limits: &BatchLimits,
) -> Vec<crate::source::record::Record> {
    let mut bytes = 0;
    let mut batch = Vec::new();
    while let Some(record) = pending.front() {
        let full = batch.len() >= limits.max_records
            || (!batch.is_empty() && bytes + record.data.len() > limits.max_bytes);
        if full {
            break;
        }
        bytes += record.data.len();
        batch.extend(pending.pop_front());
    }
    batch
}
