//! Why a registry operation failed.

use crate::transform::LoadError;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Not a directory or `s3://bucket[/prefix]`.
    #[error("invalid registry {0:?}: give a directory or s3://bucket[/prefix]")]
    InvalidUri(String),
    /// Names and versions are path components: letters, digits, `.`, `_`, `-`.
    #[error(
        "invalid {what} {value:?}: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"
    )]
    InvalidName {
        /// `name` or `version`.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A published version is immutable.
    #[error("{0} already exists: published versions are immutable, publish a new version")]
    Exists(String),
    /// Another publisher changed the active pointer in between.
    #[error("{0} changed while it was being updated: another publisher got there first, try again")]
    Conflict(String),
    /// No such transform or version.
    #[error("{0} is not in the registry")]
    NotFound(String),
    /// The module's bytes do not match its manifest.
    #[error("{key} does not match its manifest: sha256 {actual}, the manifest says {expected}")]
    Corrupted {
        /// The module's key.
        key: String,
        /// The manifest's sha256.
        expected: String,
        /// The fetched bytes' sha256.
        actual: String,
    },
    /// There is no earlier version to roll back to.
    #[error("{0} has no earlier active version to roll back to")]
    NoHistory(String),
    /// The module is not a usable transform.
    #[error("{name}@{version} is not a usable transform")]
    Invalid {
        /// The transform.
        name: String,
        /// The version.
        version: String,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// The table a version would write is not a usable table.
    #[error("{name}@{version}: {source}")]
    Table {
        /// The transform.
        name: String,
        /// The version.
        version: String,
        /// Why.
        #[source]
        source: crate::lake::table::TableError,
    },
    /// A table keeps its columns: a version with others must write another table.
    #[error(
        "table {table} has columns ({theirs}) (written by {by}); this version declares ({ours}): give it another table (--table NAME), or leave --table out for a new one"
    )]
    TableLayout {
        /// The table.
        table: String,
        /// Its columns.
        theirs: String,
        /// The new version's.
        ours: String,
        /// A version that writes it.
        by: String,
    },
    /// A registry file is not what the registry writes.
    #[error("{key} is unreadable: {message}")]
    Malformed {
        /// The file.
        key: String,
        /// The parse error.
        message: String,
    },
    /// A local file system error.
    #[error("registry file {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An S3 error (after the SDK's retries).
    #[error("registry object {location}: {message}")]
    S3 {
        /// The object.
        location: String,
        /// The service's answer.
        message: String,
    },
}

impl From<crate::storage::VersionedError> for RegistryError {
    fn from(error: crate::storage::VersionedError) -> Self {
        use crate::storage::VersionedError as E;
        match error {
            E::InvalidUri(uri) => Self::InvalidUri(uri),
            E::Exists(key) => Self::Exists(key),
            E::Conflict(key) => Self::Conflict(key),
            E::Io { path, source } => Self::Io { path, source },
            E::S3 { location, message } => Self::S3 { location, message },
        }
    }
}
