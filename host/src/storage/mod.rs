//! Storage: where lake and failed objects are written. The embedded default is a local
//! directory; S3 (`s3://bucket/prefix`) plugs in as another [`Store`] variant.

mod local;

pub use local::LocalStore;

use crate::object::Object;

/// Why an object could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A local file system error.
    #[error("cannot write {path}")]
    Io {
        /// The file involved.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A key that would leave the destination (never produced by the pipeline; checked anyway).
    #[error("refusing key {0:?}: it would leave the destination")]
    UnsafeKey(String),
    /// A location this build cannot write to yet.
    #[error("unsupported location {0:?}: use a local directory")]
    Unsupported(String),
}

/// A destination for objects.
#[derive(Debug)]
pub enum Store {
    /// A directory on the local file system.
    Local(LocalStore),
}

impl Store {
    /// Opens a location: a directory path (created if missing).
    pub fn open(location: &str) -> Result<Self, StoreError> {
        if location.contains("://") {
            return Err(StoreError::Unsupported(location.to_owned()));
        }
        LocalStore::open(location.as_ref()).map(Self::Local)
    }

    /// Writes the object durably (all or nothing) under its key.
    pub async fn put(&self, object: &Object) -> Result<(), StoreError> {
        match self {
            Self::Local(store) => store.put(object).await,
        }
    }
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(store) => write!(f, "{}", store.root().display()),
        }
    }
}
