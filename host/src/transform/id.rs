//! Transform identity: lineage for object keys, metadata and envelopes. Its own file, with no
//! wasmtime types, so the fuzz crate compiles it with the other pure modules.

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

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
