//! Loading a transform: read, verify, compile, check the contract, link once. A core module
//! speaks ABI v1 (`guest-sdk/ABI.md`); a component, the `weir:transform` world
//! (`guest-sdk/COMPONENTS.md`). Both load, run and fail the same way behind [`WasmTransform`].

use super::ABI_VERSION;
use super::artifact::Compiled;
use super::engine::engine;
use super::error::LoadError;
use super::guest::GuestState;
use super::id::hex;
use super::limits::TransformLimits;
use super::{TransformId, artifact, columns, component, imports, wasi};
use crate::lake::table::{Table, check_columns, table_name_from};
use sha2::{Digest, Sha256};
use std::path::Path;
use wasmtime::{ExternType, FuncType, InstancePre, Linker, Module, ValType};

/// A compiled, checked transform, ready to instantiate cheaply once per batch.
pub struct WasmTransform {
    pub(crate) id: TransformId,
    pub(crate) code: Code,
    pub(crate) limits: TransformLimits,
    pub(crate) table: Option<Table>,
}

/// What a transform runs: a core module or a component.
pub(crate) enum Code {
    /// A core module of ABI v1.
    Module(InstancePre<GuestState>),
    /// A component of the `weir:transform` world.
    Component(component::Pre),
}

/// Whether the bytes are a component rather than a core module (the binary's layer and
/// version after the magic number).
pub(crate) fn is_component(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(&[0x0d, 0x00, 0x01, 0x00])
}

impl std::fmt::Debug for WasmTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmTransform")
            .field("id", &self.id)
            .field("component", &matches!(self.code, Code::Component(_)))
            .field("limits", &self.limits)
            .field("table", &self.table)
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
    /// and checks a module; a trial instance proves it initialises within the limits. Its
    /// declared partition columns, if any, make its table, named after `name` until
    /// [`with_table`](Self::with_table) says otherwise.
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
        let compiled = artifact::compile_cached(bytes, &sha256)
            .map_err(|e| LoadError::NotWasm(format!("{e:#}")))?;
        let declared = if is_component(bytes) {
            None
        } else {
            columns::declared_columns(bytes).map_err(LoadError::NotWasm)?
        };
        let transform = Self::from_compiled(name, sha256, compiled, limits)?;
        // A component declares its columns through its `columns` export.
        let declared = match (&transform.code, declared) {
            (Code::Component(pre), _) => pre.columns(&limits).map_err(LoadError::Instantiate)?,
            (Code::Module(_), declared) => declared,
        };
        let table = match declared {
            Some(declared) => {
                check_columns(&declared, &Default::default()).map_err(LoadError::Columns)?;
                Some(Table {
                    name: table_name_from(name),
                    columns: declared,
                })
            }
            None => None,
        };
        Ok(transform.with_table(table))
    }

    /// Loads a module precompiled by [`precompile`](super::precompile) for this host's target, skipping
    /// compilation: the cold-start path. `sha256` is the original module's.
    ///
    /// The caller must have verified `artifact` (against the sha256 recorded when it was
    /// published): deserializing trusts it to be code this engine produced. An artifact keeps
    /// no custom sections: the caller gives the table (from the version's manifest).
    pub fn from_precompiled(
        name: &str,
        sha256: &str,
        artifact: &[u8],
        limits: TransformLimits,
    ) -> Result<Self, LoadError> {
        // SAFETY: wasmtime requires the bytes to come from `Engine::precompile_module` (or
        // `_component`) of a compatible engine; the registry verified them against the sha256
        // it recorded when it produced them, and wasmtime itself checks the engine
        // compatibility header.
        let compiled = unsafe { artifact::deserialize(artifact) }
            .map_err(|e| LoadError::NotWasm(format!("{e:#}")))?;
        Self::from_compiled(name, sha256.to_owned(), compiled, limits)
    }

    fn from_compiled(
        name: &str,
        sha256: String,
        compiled: Compiled,
        limits: TransformLimits,
    ) -> Result<Self, LoadError> {
        let code = match compiled {
            Compiled::Module(module) => Code::Module(link_module(&module)?),
            Compiled::Component(component) => Code::Component(component::link(&component)?),
        };
        let transform = Self {
            id: TransformId {
                name: name.to_owned(),
                sha256,
                version: None,
            },
            code,
            limits,
            table: None,
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

    /// The same transform, writing `table` (None: the lake root, for a module that declares no
    /// columns).
    pub fn with_table(mut self, table: Option<Table>) -> Self {
        self.table = table;
        self
    }

    /// The table it writes, or None for a module that declares no columns (it writes at the
    /// lake root, as releases before tables did).
    pub fn table(&self) -> Option<&Table> {
        self.table.as_ref()
    }

    /// Who this transform is: name and sha256, recorded in every object key and envelope.
    pub fn id(&self) -> &TransformId {
        &self.id
    }
}

fn link_module(module: &Module) -> Result<InstancePre<GuestState>, LoadError> {
    check_abi(module)?;
    check_imports(module)?;
    let mut linker = Linker::new(engine());
    imports::add_to_linker(&mut linker).expect("weir_v1 imports have distinct names");
    wasi::add_to_linker(&mut linker).expect("WASI imports have distinct names");
    linker
        .instantiate_pre(module)
        .map_err(|e| LoadError::Instantiate(format!("{e:#}")))
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
