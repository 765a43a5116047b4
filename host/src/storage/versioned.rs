//! Small documents that writers must not overwrite blindly (the registry's versions and active
//! pointers, the exactly-once ledger's shard states): a local directory or an S3 bucket and
//! prefix, with two conditional writes (create only if absent; replace only if unchanged) that
//! return the version tag a later replace compares against.
use crate::transform::hex;
use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A location for versioned documents.
#[derive(Debug, Clone)]
pub enum VersionedStore {
    /// Files under a directory.
    Local(PathBuf),
    /// Objects under a bucket's prefix.
    S3 {
        /// The S3 client.
        client: aws_sdk_s3::Client,
        /// The bucket.
        bucket: String,
        /// The key prefix, empty or ending in `/`.
        prefix: String,
    },
}

/// What a read returns: the bytes and a version tag for a later conditional replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The document.
    pub bytes: Vec<u8>,
    /// Its version: the S3 ETag, or the sha256 of a local file's bytes.
    pub tag: String,
}

/// Why a versioned read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum VersionedError {
    /// Not a directory or `s3://bucket[/prefix]`.
    #[error("invalid location {0:?}: give a directory or s3://bucket[/prefix]")]
    InvalidUri(String),
    /// A create-only write found the document already there.
    #[error("{0} already exists")]
    Exists(String),
    /// A replace found the document changed since it was read.
    #[error("{0} changed since it was read")]
    Conflict(String),
    /// A local file system error.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An S3 error (after the SDK's retries).
    #[error("{location}: {message}")]
    S3 {
        /// The object.
        location: String,
        /// The service's answer.
        message: String,
    },
}

impl VersionedStore {
    /// Opens `s3://bucket[/prefix]` or a directory path.
    pub async fn open(uri: &str) -> Result<Self, VersionedError> {
        match uri.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(VersionedError::InvalidUri(uri.to_owned()));
                }
                let prefix = prefix.trim_matches('/');
                let prefix = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}/")
                };
                Ok(Self::S3 {
                    client: crate::aws::s3_client().await,
                    bucket: bucket.to_owned(),
                    prefix,
                })
            }
            None if uri.contains("://") => Err(VersionedError::InvalidUri(uri.to_owned())),
            None => Ok(Self::Local(PathBuf::from(uri))),
        }
    }

    /// The file at `key`, if it exists.
    pub async fn get(&self, key: &str) -> Result<Option<Versioned>, VersionedError> {
        match self {
            Self::Local(root) => match std::fs::read(root.join(key)) {
                Ok(bytes) => {
                    let tag = hex(&Sha256::digest(&bytes));
                    Ok(Some(Versioned { bytes, tag }))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io(root.join(key), e)),
            },
            Self::S3 {
                client,
                bucket,
                prefix,
            } => {
                let answer = client
                    .get_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{key}"))
                    .send()
                    .await;
                let object = match answer {
                    Ok(object) => object,
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                        return Ok(None);
                    }
                    Err(e) => return Err(s3(bucket, prefix, key, crate::aws::describe(&e))),
                };
                let tag = object.e_tag.clone().unwrap_or_default();
                let body = object
                    .body
                    .collect()
                    .await
                    .map_err(|e| s3(bucket, prefix, key, e.to_string()))?;
                Ok(Some(Versioned {
                    bytes: body.into_bytes().to_vec(),
                    tag,
                }))
            }
        }
    }

    /// Writes `key` only if it does not exist yet; returns its tag.
    pub async fn create(&self, key: &str, bytes: &[u8]) -> Result<String, VersionedError> {
        match self {
            Self::Local(root) => {
                let path = root.join(key);
                let parent = path.parent().expect("versioned keys have a directory");
                std::fs::create_dir_all(parent).map_err(|e| io(parent.to_owned(), e))?;
                let mut file = match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(VersionedError::Exists(key.to_owned()));
                    }
                    Err(e) => return Err(io(path, e)),
                };
                file.write_all(bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io(path, e))?;
                Ok(hex(&Sha256::digest(bytes)))
            }
            Self::S3 {
                client,
                bucket,
                prefix,
            } => s3_put(client, bucket, prefix, key, bytes, None)
                .await?
                .ok_or_else(|| VersionedError::Exists(key.to_owned())),
        }
    }

    /// Replaces `key` only if it is still what was read (`tag`), or creates it if `tag` is None,
    /// so two writers cannot silently overwrite each other; returns the new tag.
    pub async fn replace(
        &self,
        key: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<String, VersionedError> {
        match self {
            Self::Local(root) => {
                // An advisory lock makes read-compare-write atomic between local writers; the
                // system drops it when its holder dies, so a crash never leaves it stuck.
                let path = root.join(key);
                std::fs::create_dir_all(path.parent().expect("versioned keys have a directory"))
                    .map_err(|e| io(path.clone(), e))?;
                let lock = path.with_extension("lock");
                let lock_file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock)
                    .map_err(|e| io(lock.clone(), e))?;
                lock_file.lock().map_err(|e| io(lock.clone(), e))?;
                let current = self.get_local(&path)?;
                if current.as_deref() != tag {
                    return Err(VersionedError::Conflict(key.to_owned()));
                }
                let temporary = path.with_extension("tmp");
                std::fs::write(&temporary, bytes)
                    .and_then(|()| std::fs::File::open(&temporary)?.sync_all())
                    .map_err(|e| io(temporary.clone(), e))?;
                std::fs::rename(&temporary, &path).map_err(|e| io(path, e))?;
                Ok(hex(&Sha256::digest(bytes)))
            }
            Self::S3 {
                client,
                bucket,
                prefix,
            } => s3_put(client, bucket, prefix, key, bytes, tag)
                .await?
                .ok_or_else(|| VersionedError::Conflict(key.to_owned())),
        }
    }

    fn get_local(&self, path: &Path) -> Result<Option<String>, VersionedError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(hex(&Sha256::digest(&bytes)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path.to_owned(), e)),
        }
    }

    /// The names directly under `dir/` (one level, like a directory listing).
    pub async fn list(&self, dir: &str) -> Result<Vec<String>, VersionedError> {
        let mut names = Vec::new();
        match self {
            Self::Local(root) => {
                let path = root.join(dir);
                let entries = match std::fs::read_dir(&path) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
                    Err(e) => return Err(io(path, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| io(path.clone(), e))?;
                    if entry.path().is_dir() {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            Self::S3 {
                client,
                bucket,
                prefix,
            } => {
                let mut pages = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(format!("{prefix}{dir}/"))
                    .delimiter("/")
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page =
                        page.map_err(|e| s3(bucket, prefix, dir, crate::aws::describe(&e)))?;
                    for common in page.common_prefixes.unwrap_or_default() {
                        let full = common.prefix.unwrap_or_default();
                        let name = full
                            .trim_end_matches('/')
                            .rsplit('/')
                            .next()
                            .unwrap_or_default();
                        names.push(name.to_owned());
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }
}

/// A conditional put: only if the object is still `tag` (its ETag), or absent when `tag` is
/// None. Returns the new ETag, or None when the condition failed.
async fn s3_put(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    key: &str,
    bytes: &[u8],
    tag: Option<&str>,
) -> Result<Option<String>, VersionedError> {
    let put = client
        .put_object()
        .bucket(bucket)
        .key(format!("{prefix}{key}"));
    let put = match tag {
        Some(tag) => put.if_match(tag),
        None => put.if_none_match("*"),
    };
    match put.body(ByteStream::from(bytes.to_vec())).send().await {
        Ok(answer) => Ok(Some(answer.e_tag.unwrap_or_default())),
        // 412: the condition failed; 409: a concurrent conditional write won.
        Err(e) if matches!(status(&e), Some(412 | 409)) => Ok(None),
        Err(e) => Err(s3(bucket, prefix, key, crate::aws::describe(&e))),
    }
}

fn status<E, R: HttpStatus>(error: &aws_sdk_s3::error::SdkError<E, R>) -> Option<u16> {
    error.raw_response().map(HttpStatus::status_code)
}

/// The HTTP status of a raw SDK response.
trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn io(path: PathBuf, source: std::io::Error) -> VersionedError {
    VersionedError::Io { path, source }
}

fn s3(bucket: &str, prefix: &str, key: &str, message: String) -> VersionedError {
    VersionedError::S3 {
        location: format!("s3://{bucket}/{prefix}{key}"),
        message,
    }
}
