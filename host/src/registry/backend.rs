//! Where a registry keeps its files: a local directory or an S3 bucket and prefix, with the two
//! conditional writes the registry needs (create only if absent; replace only if unchanged).

use super::RegistryError;
use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A registry's storage.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Local(PathBuf),
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
    },
}

/// What a read returns: the bytes and a version tag for a later conditional replace.
pub(crate) struct Versioned {
    pub(crate) bytes: Vec<u8>,
    pub(crate) tag: String,
}

impl Backend {
    pub(crate) async fn open(uri: &str) -> Result<Self, RegistryError> {
        match uri.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(RegistryError::InvalidUri(uri.to_owned()));
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
            None if uri.contains("://") => Err(RegistryError::InvalidUri(uri.to_owned())),
            None => Ok(Self::Local(PathBuf::from(uri))),
        }
    }

    /// The file at `key`, if it exists.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Versioned>, RegistryError> {
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

    /// Writes `key` only if it does not exist yet: published versions are immutable.
    pub(crate) async fn create(&self, key: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        match self {
            Self::Local(root) => {
                let path = root.join(key);
                let parent = path.parent().expect("registry keys have a directory");
                std::fs::create_dir_all(parent).map_err(|e| io(parent.to_owned(), e))?;
                let mut file = match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(RegistryError::Exists(key.to_owned()));
                    }
                    Err(e) => return Err(io(path, e)),
                };
                file.write_all(bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| io(path, e))
            }
            Self::S3 {
                client,
                bucket,
                prefix,
            } => match s3_put(client, bucket, prefix, key, bytes, None).await? {
                true => Ok(()),
                false => Err(RegistryError::Exists(key.to_owned())),
            },
        }
    }

    /// Replaces `key` only if it is still what was read (`tag`), or creates it if `tag` is None:
    /// two publishers cannot silently overwrite each other's pointer.
    pub(crate) async fn replace(
        &self,
        key: &str,
        bytes: &[u8],
        tag: Option<&str>,
    ) -> Result<(), RegistryError> {
        match self {
            Self::Local(root) => {
                // A lock file makes read-compare-write atomic between local publishers.
                let path = root.join(key);
                let lock = path.with_extension("lock");
                std::fs::create_dir_all(path.parent().expect("registry keys have a directory"))
                    .map_err(|e| io(path.clone(), e))?;
                let _guard =
                    LockFile::take(&lock).map_err(|_| RegistryError::Conflict(key.to_owned()))?;
                let current = self.get_local(&path)?;
                if current.as_deref() != tag {
                    return Err(RegistryError::Conflict(key.to_owned()));
                }
                let temporary = path.with_extension("tmp");
                std::fs::write(&temporary, bytes).map_err(|e| io(temporary.clone(), e))?;
                std::fs::rename(&temporary, &path).map_err(|e| io(path, e))
            }
            Self::S3 {
                client,
                bucket,
                prefix,
            } => match s3_put(client, bucket, prefix, key, bytes, tag).await? {
                true => Ok(()),
                false => Err(RegistryError::Conflict(key.to_owned())),
            },
        }
    }

    fn get_local(&self, path: &Path) -> Result<Option<String>, RegistryError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(hex(&Sha256::digest(&bytes)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path.to_owned(), e)),
        }
    }

    /// The names directly under `dir/` (one level, like a directory listing).
    pub(crate) async fn list(&self, dir: &str) -> Result<Vec<String>, RegistryError> {
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
/// None. Returns false when the condition failed.
async fn s3_put(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    key: &str,
    bytes: &[u8],
    tag: Option<&str>,
) -> Result<bool, RegistryError> {
    let put = client
        .put_object()
        .bucket(bucket)
        .key(format!("{prefix}{key}"));
    let put = match tag {
        Some(tag) => put.if_match(tag),
        None => put.if_none_match("*"),
    };
    match put.body(ByteStream::from(bytes.to_vec())).send().await {
        Ok(_) => Ok(true),
        // 412: the condition failed; 409: a concurrent conditional write won.
        Err(e) if matches!(status(&e), Some(412 | 409)) => Ok(false),
        Err(e) => Err(s3(bucket, prefix, key, crate::aws::describe(&e))),
    }
}

/// An exclusive lock held while the file exists.
struct LockFile(PathBuf);

impl LockFile {
    fn take(path: &Path) -> std::io::Result<Self> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Self(path.to_owned()))
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
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

fn io(path: PathBuf, source: std::io::Error) -> RegistryError {
    RegistryError::Io { path, source }
}

fn s3(bucket: &str, prefix: &str, key: &str, message: String) -> RegistryError {
    RegistryError::S3 {
        location: format!("s3://{bucket}/{prefix}{key}"),
        message,
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
