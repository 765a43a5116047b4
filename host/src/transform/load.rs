//! Loading a transform module: read, verify, compile, check the ABI, link once.

use super::ABI_VERSION;
use super::engine::engine;
use super::error::LoadError;
use super::guest::GuestState;
use super::id::hex;
use super::limits::TransformLimits;
use super::{TransformId, artifact, columns, imports, wasi};
use crate::lake::table::{Table, check_columns, table_name_from};
use sha2::{Digest, Sha256};
use std::path::Path;
use wasmtime::{ExternType, FuncType, InstancePre, Linker, Module, ValType};

/// A compiled, checked transform, ready to instantiate cheaply once per batch.
pub struct WasmTransform {
    pub(crate) id: TransformId,
    pub(crate) pre: InstancePre<GuestState>,
    pub(crate) limits: TransformLimits,
    pub(crate) table: Option<Table>,
}

impl std::fmt::Debug for WasmTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmTransform")
            .field("id", &self.id)
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
        let table = match columns::declared_columns(bytes).map_err(LoadError::NotWasm)? {
            Some(declared) => {
                check_columns(&declared, &Default::default()).map_err(LoadError::Columns)?;
                Some(Table {
                    name: table_name_from(name),
                    columns: declared,
                })
            }
            None => None,
        };
        let sha256 = hex(&Sha256::digest(bytes));
        let module = artifact::compile_cached(bytes, &sha256)
            .map_err(|e| LoadError::NotWasm(format!("{e:#}")))?;
        Ok(Self::from_module(name, sha256, module, limits)?.with_table(table))
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
