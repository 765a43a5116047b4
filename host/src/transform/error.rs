//! Why a module cannot be loaded as a transform.

use super::ABI_VERSION;
use std::path::PathBuf;

#[cfg(doc)]
use super::TransformLimits;

/// Why a module cannot be used as a transform. Raised at load time, never mid-batch.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read transform {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The module exceeds [`TransformLimits::max_module_bytes`].
    #[error("transform module is {size} bytes, the limit is {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a valid WebAssembly module.
    #[error("not a valid WebAssembly module: {0}")]
    NotWasm(String),
    /// Built against another ABI version.
    #[error("the module speaks Weir ABI version {found}, this host speaks version {ABI_VERSION}")]
    WrongAbi {
        /// The version the module declares.
        found: u32,
    },
    /// No Weir ABI marker at all.
    #[error(
        "not a Weir transform: the module exports no `weir_v{ABI_VERSION}_init` (build it with weir-guest-sdk's `export!`)"
    )]
    NotATransform,
    /// A required export is missing or has the wrong type.
    #[error("the module must export `{name}` as {expected}")]
    BadExport {
        /// The export's name.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The module imports something transforms may not use.
    #[error(
        "the module imports `{module}::{name}`, which transforms may not use (only weir_v1 and a deterministic WASI subset: no files, network, environment or clock)"
    )]
    ForbiddenImport {
        /// The import's module.
        module: String,
        /// The import's name.
        name: String,
    },
    /// The component imports something other than the `weir:transform` world's `log`.
    #[error(
        "the component imports `{name}`, which transforms may not use (only the weir:transform world's `log`: no WASI, files, network, environment or clock; componentize-py needs --stub-wasi and ComponentizeJS disableFeatures, which `weir transform build` passes)"
    )]
    ForbiddenComponentImport {
        /// The import's name.
        name: String,
    },
    /// A component that does not export the `weir:transform` world.
    #[error("not a weir:transform@1.0.0 component (see guest-sdk/wit/transform.wit): {0}")]
    WrongWorld(String),
    /// The declared partition columns are not usable.
    #[error("the module's partition columns are unusable")]
    Columns(#[source] crate::lake::table::TableError),
    /// Linking or a trial instantiation failed (e.g. an import of the wrong type, an initial
    /// memory over the cap, a trap in the module's initialiser).
    #[error("the module cannot be instantiated: {0}")]
    Instantiate(String),
}
