//! Loading a transform module: read, verify, compile, check the ABI, link once.

use super::engine::engine;
use super::guest::GuestState;
use super::limits::TransformLimits;
use super::{TransformId, artifact, imports, wasi};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use wasmtime::{ExternType, FuncType, InstancePre, Linker, Module, ValType};

/// The ABI version this host speaks.
pub const ABI_VERSION: u32 = 1;

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
    /// Linking or a trial instantiation failed (e.g. an import of the wrong type, an initial
    /// memory over the cap, a trap in the module's initialiser).
    #[error("the module cannot be instantiated: {0}")]
    Instantiate(String),
}

/// A compiled, checked transform, ready to instantiate cheaply once per batch.
pub struct WasmTransform {
    pub(crate) id: TransformId,
    pub(crate) pre: InstancePre<GuestState>,
    pub(crate) limits: TransformLimits,
}

impl std::fmt::Debug for WasmTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmTransform")
            .field("id", &self.id)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl WasmTransform {
    /// Loads a transform from a `.wasm` file; its name is the file stem.
    pub fn load(path: &Path, limits: TransformLimits) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_stem()
            .map_or_else(|| "transform".into(), |s| s.to_string_lossy().into_owned());
        Self::from_bytes(&name, &bytes, limits)
    }

    /// Compiles (or takes from the local compile cache, see [`precompile`](super::precompile))
    /// and checks a module; a trial instance proves it initialises within the limits.
    pub fn from_bytes(
        name: &str,
        bytes: &[u8],
        limits: TransformLimits,
    ) -> Result<Self, LoadError> {
        if bytes.len() > limits.max_module_bytes {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                max: limits.max_module_bytes,
            });
        }
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm("missing the `\\0asm` header".into()));
        }
        let sha256 = hex(&Sha256::digest(bytes));
        let module = artifact::compile_cached(bytes, &sha256)
            .map_err(|e| LoadError::NotWasm(format!("{e:#}")))?;
        Self::from_module(name, sha256, module, limits)
    }

    /// Loads a module precompiled by [`precompile`](super::precompile) for this host's target, skipping
    /// compilation: the cold-start path. `sha256` is the original module's.
    ///
    /// The caller must have verified `artifact` (against the sha256 recorded when it was
    /// published): deserializing trusts it to be code this engine produced.
    pub fn from_precompiled(
        name: &str,
        sha256: &str,
        artifact: &[u8],
        limits: TransformLimits,
    ) -> Result<Self, LoadError> {
        // SAFETY: wasmtime requires the bytes to come from `Engine::precompile_module` of a
        // compatible engine; the registry verified them against the sha256 it recorded when it
        // produced them, and wasmtime itself checks the engine compatibility header.
        let module = unsafe { Module::deserialize(engine(), artifact) }
            .map_err(|e| LoadError::NotWasm(format!("{e:#}")))?;
        Self::from_module(name, sha256.to_owned(), module, limits)
    }

    fn from_module(
        name: &str,
        sha256: String,
        module: Module,
        limits: TransformLimits,
    ) -> Result<Self, LoadError> {
        check_abi(&module)?;
        check_imports(&module)?;
        let mut linker = Linker::new(engine());
        imports::add_to_linker(&mut linker).expect("weir_v1 imports have distinct names");
        wasi::add_to_linker(&mut linker).expect("WASI imports have distinct names");
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let transform = Self {
            id: TransformId {
                name: name.to_owned(),
                sha256,
                version: None,
            },
            pre,
            limits,
        };
        transform
            .session()
            .instantiate()
            .map_err(|failure| LoadError::Instantiate(failure.message))?;
        Ok(transform)
    }

    /// The same transform, known as registry version `version` (lineage).
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.id.version = Some(version.into());
        self
    }

    /// Who this transform is: name and sha256, recorded in every object key and envelope.
    pub fn id(&self) -> &TransformId {
        &self.id
    }
}

fn check_abi(module: &Module) -> Result<(), LoadError> {
    let init = format!("weir_v{ABI_VERSION}_init");
    let has_init = module.exports().any(|e| e.name() == init);
    if !has_init {
        let other = module.exports().find_map(|e| {
            e.name()
                .strip_prefix("weir_v")?
                .strip_suffix("_init")?
                .parse::<u32>()
                .ok()
        });
        return Err(
            other.map_or(LoadError::NotATransform, |found| LoadError::WrongAbi {
                found,
            }),
        );
    }
    let i32_ = ValType::I32;
    let expect_func = |name: &'static str, params: &[ValType], results: &[ValType], expected| {
        let wanted = FuncType::new(engine(), params.iter().cloned(), results.iter().cloned());
        match module.get_export(name) {
            Some(ExternType::Func(ty)) if FuncType::eq(&ty, &wanted) => Ok(()),
            _ => Err(LoadError::BadExport { name, expected }),
        }
    };
    expect_func("weir_v1_init", &[], &[], "a function () -> ()")?;
    expect_func(
        "weir_v1_input",
        std::slice::from_ref(&i32_),
        std::slice::from_ref(&i32_),
        "a function (i32) -> i32",
    )?;
    expect_func(
        "weir_v1_transform",
        &[i32_.clone(), i32_.clone(), i32_.clone(), ValType::I64],
        &[i32_],
        "a function (i32, i32, i32, i64) -> i32",
    )?;
    match module.get_export("memory") {
        Some(ExternType::Memory(_)) => Ok(()),
        _ => Err(LoadError::BadExport {
            name: "memory",
            expected: "a memory",
        }),
    }
}

fn check_imports(module: &Module) -> Result<(), LoadError> {
    for import in module.imports() {
        let allowed = match import.module() {
            imports::MODULE => imports::NAMES.contains(&import.name()),
            wasi::MODULE => wasi::NAMES.contains(&import.name()),
            _ => false,
        };
        if !allowed || !matches!(import.ty(), ExternType::Func(_)) {
            return Err(LoadError::ForbiddenImport {
                module: import.module().to_owned(),
                name: import.name().to_owned(),
            });
        }
    }
    Ok(())
}

/// Lowercase hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
