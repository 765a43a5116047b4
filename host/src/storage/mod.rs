//! Storage: where lake and failed objects are written: a local directory (the embedded
//! default) or an S3 bucket and prefix (`s3://bucket/prefix`); and [`VersionedStore`], for the
//! small documents that are only ever replaced conditionally (registry pointers, ledgers).

mod local;
mod s3;
mod versioned;

pub use local::LocalStore;
pub use s3::S3Store;
pub use versioned::{Versioned, VersionedError, VersionedStore};

use crate::lake::object::Object;

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
    /// A location that is neither a directory nor `s3://bucket[/prefix]`.
    #[error("invalid location {0:?}: give a directory or s3://bucket[/prefix]")]
    InvalidLocation(String),
    /// An S3 put that still failed after the SDK's retries.
    #[error("cannot write s3://{bucket}/{key}")]
    S3 {
        /// The bucket.
        bucket: String,
        /// The full key.
        key: String,
        /// The SDK's error, with its whole context.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A destination for objects.
#[derive(Debug)]
pub enum Store {
    /// A directory on the local file system.
    Local(LocalStore),
    /// A bucket and prefix in S3.
    S3(S3Store),
    /// Accepts objects and drops them (`discard:`): for benchmarks and dry runs.
    Discard,
}

impl Store {
    /// Opens a location: `s3://bucket[/prefix]`, `discard:`, or a directory path (created if
    /// missing).
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        if location == "discard:" {
            return Ok(Self::Discard);
        }
        if location.starts_with("s3://") {
            return S3Store::open(location).await.map(Self::S3);
        }
        if location.contains("://") {
            return Err(StoreError::InvalidLocation(location.to_owned()));
        }
        LocalStore::open(location.as_ref()).map(Self::Local)
    }

    /// Writes the object durably (all or nothing) under its key.
    pub async fn put(&self, object: &Object) -> Result<(), StoreError> {
        match self {
            Self::Local(store) => store.put(object).await,
            Self::S3(store) => store.put(object).await,
            Self::Discard => Ok(()),
        }
    }

    /// Writes `body` under `key` as is (compacted objects, manifests, checkpoints), durably and
    /// all or nothing, replacing what was there.
    pub async fn put_bytes(
        &self,
        key: &str,
        body: bytes::Bytes,
        content_type: &str,
        content_encoding: Option<&str>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Local(store) => store.put_bytes(key, body).await,
            Self::S3(store) => {
                store
                    .put_bytes(key, body, content_type, content_encoding)
                    .await
            }
            Self::Discard => Ok(()),
        }
    }

    /// Every key under `prefix` with its size in bytes, sorted by key.
    pub async fn list_sized(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        match self {
            Self::Local(store) => store.list_sized(prefix),
            Self::S3(store) => store.list_sized(prefix).await,
            Self::Discard => Ok(Vec::new()),
        }
    }

    /// The object at `key`, or `None` if there is none.
    pub async fn get_if_exists(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Local(store) => store.get_if_exists(key),
            Self::S3(store) => store.get_if_exists(key).await,
            Self::Discard => Ok(None),
        }
    }

    /// Whether an object is stored at `key` (a HEAD on S3). `discard:` holds everything it
    /// accepted, so it answers yes.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self {
            Self::Local(store) => store.exists(key),
            Self::S3(store) => store.exists(key).await,
            Self::Discard => Ok(true),
        }
    }

    /// Every key under `prefix`, sorted (for reading a failed location back).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Local(store) => store.list(prefix),
            Self::S3(store) => store.list(prefix).await,
            Self::Discard => Ok(Vec::new()),
        }
    }

    /// The object at `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        match self {
            Self::Local(store) => store.get(key),
            Self::S3(store) => store.get(key).await,
            Self::Discard => Err(StoreError::InvalidLocation("discard:".into())),
        }
    }

    /// Copies the object at `from` to `to` (server-side on S3).
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        match self {
            Self::Local(store) => store.copy(from, to).await,
            Self::S3(store) => store.copy(from, to).await,
            Self::Discard => Ok(()),
        }
    }

    /// Removes the object at `key`.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Self::Local(store) => store.delete(key),
            Self::S3(store) => store.delete(key).await,
            Self::Discard => Ok(()),
        }
    }
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(store) => write!(f, "{}", store.root().display()),
            Self::S3(store) => write!(f, "{store}"),
            Self::Discard => f.write_str("discard:"),
        }
    }
}
