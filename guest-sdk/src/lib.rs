#![doc = include_str!("../README.md")]

mod abi;
mod export;
mod host;
mod partition;
mod record;
mod rejection;
mod timestamp;

pub use host::log;
pub use partition::Partition;
pub use record::Record;
pub use rejection::Rejection;
pub use timestamp::Timestamp;

/// What a transform returns for one record: where to store it, or why not to.
pub type Outcome = Result<Partition, Rejection>;

/// The ABI glue that [`export!`] expands to. Not part of the API: it changes with the ABI.
#[doc(hidden)]
pub mod __abi {
    pub use crate::abi::{init, input, section, transform};
}
