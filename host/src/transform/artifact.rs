//! Compiled modules outside the process: artifacts precompiled at publish time for each
//! target, and the local compile cache.
//!
//! An artifact is named by its target's architecture and a digest of the engine's
//! compatibility hash (wasmtime version, target triple, settings), e.g.
//! `x86_64-3f2a9c0d1b2e4f60`: a host loads only the one named like its own engine.
//!
//! A host that must compile a module (its registry has no artifact for it, or the module is a
//! plain file) keeps the result in `$WEIR_CACHE_DIR` (default `<tmp>/weir-transform-cache`;
//! empty turns the cache off), so it compiles once per machine rather than once per process.
//! Cached bytes carry their own sha256 and are checked before wasmtime trusts them.

use super::engine::{LAMBDA_TARGETS, engine, engine_for, host_target};
use super::error::LoadError;
use super::id::hex;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use wasmtime::component::Component;
use wasmtime::{Engine, Module, Precompiled};

/// Compiled code: a core module or a component.
pub(crate) enum Compiled {
    Module(Module),
    Component(Component),
}

impl Compiled {
    fn new(bytes: &[u8]) -> wasmtime::Result<Self> {
        Ok(if super::load::is_component(bytes) {
            Self::Component(Component::new(engine(), bytes)?)
        } else {
            Self::Module(Module::new(engine(), bytes)?)
        })
    }

    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match self {
            Self::Module(module) => module.serialize(),
            Self::Component(component) => component.serialize(),
        }
    }
}

/// Code this host's engine compiled (a precompiled artifact or a compile-cache entry).
///
/// # Safety
/// `bytes` must come from `precompile_module`, `precompile_component` or `serialize` of an
/// engine compatible with this host's, as wasmtime's `deserialize` requires.
pub(crate) unsafe fn deserialize(bytes: &[u8]) -> wasmtime::Result<Compiled> {
    // SAFETY: forwarded to the caller.
    unsafe {
        match Engine::detect_precompiled(bytes) {
            Some(Precompiled::Component) => {
                Component::deserialize(engine(), bytes).map(Compiled::Component)
            }
            _ => Module::deserialize(engine(), bytes).map(Compiled::Module),
        }
    }
}

/// A module compiled ahead of time for one target.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Names the engines that can load it (see the module docs).
    pub key: String,
    /// What `Engine::precompile_module` produced.
    pub bytes: Vec<u8>,
}

/// The key of the artifacts this host's engine loads.
pub fn artifact_key() -> String {
    key_for(engine(), &host_target())
}

/// The targets a published module is precompiled for: Lambda's architectures and this host's.
pub fn publish_targets() -> Vec<String> {
    let mut targets: Vec<String> = LAMBDA_TARGETS.map(str::to_owned).into();
    let host = host_target();
    if !targets.contains(&host) {
        targets.push(host);
    }
    targets
}

/// Compiles `module` ahead of time for `target` (a target triple), with the settings hosts
/// built for that target use.
pub fn precompile(module: &[u8], target: &str) -> Result<Artifact, LoadError> {
    let compile_error = |e: wasmtime::Error| LoadError::NotWasm(format!("{e:#}"));
    let engine = engine_for(target).map_err(compile_error)?;
    let bytes = if super::load::is_component(module) {
        engine.precompile_component(module)
    } else {
        engine.precompile_module(module)
    }
    .map_err(compile_error)?;
    Ok(Artifact {
        key: key_for(&engine, target),
        bytes,
    })
}

fn key_for(engine: &Engine, target: &str) -> String {
    // `Hash` feeds the compatibility hash to a hasher; sha256 makes the digest stable.
    struct Digest256(Sha256);
    impl std::hash::Hasher for Digest256 {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            0
        }
    }
    let mut digest = Digest256(Sha256::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut digest);
    let arch = target.split('-').next().unwrap_or(target);
    format!("{arch}-{}", &hex(&digest.0.finalize())[..16])
}

/// The module or component with sha256 `sha256`, from the compile cache or compiled (and
/// cached).
pub(super) fn compile_cached(module: &[u8], sha256: &str) -> wasmtime::Result<Compiled> {
    let Some(path) = cache_path(sha256) else {
        return Compiled::new(module);
    };
    if let Some(cached) = read_cached(&path) {
        return Ok(cached);
    }
    let compiled = Compiled::new(module)?;
    if let Err(error) = write_cached(&path, &compiled) {
        tracing::debug!(path = %path.display(), %error, "could not cache the compiled transform");
    }
    Ok(compiled)
}

fn cache_path(sha256: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("WEIR_CACHE_DIR") {
        Some(dir) if dir.is_empty() => return None,
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join("weir-transform-cache"),
    };
    Some(dir.join(format!("{sha256}-{}.cwasm", artifact_key())))
}

/// A cached module, if there is one whose bytes still match their digest.
fn read_cached(path: &std::path::Path) -> Option<Compiled> {
    let file = std::fs::read(path).ok()?;
    let (bytes, digest) = file.split_at_checked(file.len().checked_sub(32)?)?;
    if Sha256::digest(bytes).as_slice() != digest {
        tracing::warn!(path = %path.display(), "ignoring a corrupted compile-cache entry");
        return None;
    }
    // SAFETY: wasmtime requires bytes from `Module::serialize` of a compatible engine. The
    // file's name carries this engine's key, and its digest proves it is the file this host
    // wrote, whole; wasmtime still checks the compatibility header.
    unsafe { deserialize(bytes) }.ok()
}

/// Writes atomically (a temporary file, then a rename), so readers see whole files only.
fn write_cached(path: &std::path::Path, module: &Compiled) -> std::io::Result<()> {
    let mut bytes = module.serialize().map_err(std::io::Error::other)?;
    let digest = Sha256::digest(&bytes);
    bytes.extend_from_slice(&digest);
    let dir = path
        .parent()
        .expect("cache paths are inside the cache directory");
    std::fs::create_dir_all(dir)?;
    let temporary = path.with_extension(format!("{}.partial", std::process::id()));
    std::fs::write(&temporary, &bytes)?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_architecture_and_differ_between_targets() {
        let module = wat::parse_str("(module)").unwrap();
        let x86 = precompile(&module, "x86_64-unknown-linux-gnu").unwrap();
        let arm = precompile(&module, "aarch64-unknown-linux-gnu").unwrap();
        assert!(x86.key.starts_with("x86_64-"), "{}", x86.key);
        assert!(arm.key.starts_with("aarch64-"), "{}", arm.key);
        assert_ne!(x86.key, arm.key);
        assert_ne!(x86.bytes, arm.bytes);
    }

    #[test]
    fn the_artifact_for_this_host_is_the_one_it_loads() {
        let module = wat::parse_str("(module)").unwrap();
        let own = precompile(&module, &host_target()).unwrap();
        assert_eq!(own.key, artifact_key());
        // SAFETY: produced just above by an engine with this host's settings.
        unsafe { Module::deserialize(engine(), &own.bytes) }.unwrap();
    }

    #[test]
    fn publish_targets_cover_lambda_and_this_host() {
        let targets = publish_targets();
        assert!(targets.iter().any(|t| t.starts_with("x86_64-")));
        assert!(targets.iter().any(|t| t.starts_with("aarch64-")));
        assert!(targets.contains(&host_target()));
    }

    #[test]
    fn a_corrupted_cache_entry_is_ignored() {
        let dir = std::env::temp_dir().join(format!("weir-cache-test-{}", std::process::id()));
        let path = dir.join("entry.cwasm");
        let wasm = wat::parse_str("(module (func (export \"f\")))").unwrap();
        let module = Compiled::new(&wasm).unwrap();
        write_cached(&path, &module).unwrap();
        assert!(read_cached(&path).is_some());
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_cached(&path).is_none());
        std::fs::write(&path, b"short").unwrap();
        assert!(read_cached(&path).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
