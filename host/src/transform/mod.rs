//! Transforms: the per-record decision (is this event valid, which partition is it in?), run in
//! a wasmtime sandbox. A transform is a core module (ABI v1, `guest-sdk/ABI.md`) or a component
//! of the `weir:transform` world (`guest-sdk/COMPONENTS.md`, for Python and JavaScript).
//! Loading checks it once ([`WasmTransform`]); each batch gets a [`WasmSession`] with its own
//! instance, reused across records and replaced after a trap.
//! Guest code has no filesystem, network, environment or real clock, a per-record fuel budget
//! and deadline, a memory cap and an output cap; see `guest-sdk/ABI.md` for the contract.

mod artifact;
mod columns;
mod component;
mod engine;
mod error;
mod guest;
mod id;
mod imports;
mod limits;
mod load;
mod output;
mod session;
mod wasi;

pub use artifact::{Artifact, artifact_key, precompile, publish_targets};
pub use columns::declared_columns;
pub use engine::{LAMBDA_TARGETS, host_target};
pub use error::LoadError;
pub use id::{TransformId, hex};
pub use limits::TransformLimits;
pub use load::WasmTransform;
pub use output::Output;
pub use session::WasmSession;

/// The ABI version this host speaks.
pub const ABI_VERSION: u32 = 1;

use crate::lake::table::Table;
use crate::source::failure::Failure;
use crate::source::record::Record;

/// Something that answers for one record at a time: a wasm session, or native code in
/// benchmarks and tests.
pub trait RecordTransform {
    /// Runs the record; the answer stays borrowed until the next call.
    fn apply(&mut self, record: &Record) -> Result<&Output, Failure>;

    /// Runs records in order, answering each through `each(index, result)`: what batches use,
    /// so a component's guest can loop over them itself.
    fn apply_each(
        &mut self,
        records: &[&Record],
        each: &mut dyn FnMut(usize, Result<&Output, Failure>),
    ) {
        for (i, record) in records.iter().enumerate() {
            each(i, self.apply(record));
        }
    }

    /// The table its records go to: its segments must name the table's columns. None writes
    /// at the lake root without a check (a module that declares no columns).
    fn table(&self) -> Option<&Table> {
        None
    }
}
