//! Transforms: the per-record decision (is this event valid, which partition is it in?), run in
//! a wasmtime sandbox. Loading checks a module once ([`WasmTransform`]); each batch gets a
//! [`WasmSession`] with its own instance, reused across records and replaced after a trap.
//! Guest code has no filesystem, network, environment or real clock, a per-record fuel budget
//! and deadline, a memory cap and an output cap; see `guest-sdk/ABI.md` for the contract.

mod artifact;
mod engine;
mod guest;
mod imports;
mod limits;
mod load;
mod output;
mod session;
mod wasi;

pub use artifact::{Artifact, artifact_key, precompile, publish_targets};
pub use engine::{LAMBDA_TARGETS, host_target};
pub use limits::TransformLimits;
pub use load::{ABI_VERSION, LoadError, WasmTransform};
pub use output::Output;
pub use session::WasmSession;

use crate::failure::Failure;
use crate::record::Record;

/// Which transform processed a record: lineage for object keys, metadata and envelopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformId {
    /// The transform's name (its file stem, or registry name).
    pub name: String,
    /// Lowercase hex sha256 of the module's bytes.
    pub sha256: String,
    /// The registry version, when the module came from a registry.
    pub version: Option<String>,
}

impl TransformId {
    /// The first 12 hex digits of the sha256, as object keys carry it.
    pub fn short(&self) -> &str {
        &self.sha256[..12.min(self.sha256.len())]
    }
}

/// Something that answers for one record at a time: a wasm session, or native code in
/// benchmarks and tests.
pub trait RecordTransform {
    /// Runs the record; the answer stays borrowed until the next call.
    fn apply(&mut self, record: &Record) -> Result<&Output, Failure>;
}
