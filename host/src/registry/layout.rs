//! What a registry holds and where: manifests, the active pointer, and their keys.

use super::RegistryError;
use crate::lake::table::Table;
use serde::{Deserialize, Serialize};

/// What is known about one published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The transform's name.
    pub name: String,
    /// The version.
    pub version: String,
    /// Lowercase hex sha256 of `transform.wasm`.
    pub sha256: String,
    /// The guest ABI version the module speaks.
    pub abi_version: u32,
    /// Module size in bytes.
    pub size: usize,
    /// The per-record CPU budget it was checked with.
    pub fuel_per_record: u64,
    /// The memory cap it was checked with, in bytes.
    pub memory_bytes: usize,
    /// When it was published, RFC 3339.
    pub published_at: String,
    /// What changed, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Precompiled artifacts: engine key (see [`artifact_key`]) -> sha256 of the artifact.
    #[serde(default)]
    pub artifacts: std::collections::BTreeMap<String, String>,
    /// The lake table it writes: name and declared partition columns. None only for versions
    /// published before tables, which write at the lake root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<Table>,
}

/// The active pointer of a transform name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Active {
    /// The version hosts should run.
    pub version: String,
    /// Its sha256, so a host verifies what it fetches against what was activated.
    pub sha256: String,
    /// Versions active before, oldest first: what `rollback` returns to.
    #[serde(default)]
    pub history: Vec<String>,
}

pub(super) fn artifact_path(name: &str, version: &str, key: &str) -> String {
    format!("{name}/{version}/{key}.cwasm")
}

pub(super) fn module_key(name: &str, version: &str) -> String {
    format!("{name}/{version}/transform.wasm")
}

pub(super) fn manifest_key(name: &str, version: &str) -> String {
    format!("{name}/{version}/manifest.json")
}

pub(super) fn active_key(name: &str) -> String {
    format!("{name}/active.json")
}

pub(super) fn check_name(what: &'static str, value: &str) -> Result<(), RegistryError> {
    let ok = (1..=64).contains(&value.len())
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::InvalidName {
            what,
            value: value.to_owned(),
        })
    }
}
