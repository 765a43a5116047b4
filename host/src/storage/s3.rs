//! An S3 bucket and prefix as lake or failed location.

use super::StoreError;
use crate::lake::object::Object;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;

/// Objects under `s3://bucket/prefix/`. Each put carries a CRC32C checksum that S3 verifies
/// before it stores the object, and metadata naming the transform and the sequence range.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Store {
    /// Parses `s3://bucket[/prefix]` and connects with the shared SDK configuration.
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        let (bucket, prefix) = parse_location(location)?;
        Ok(Self {
            client: crate::aws::s3_client().await,
            bucket,
            prefix,
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, empty or ending in `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Writes the object; the SDK retries throttling and 5xx with backoff before giving up.
    pub async fn put(&self, object: &Object) -> Result<(), StoreError> {
        let key = format!("{}{}", self.prefix, object.key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(object.body.clone()))
            .content_type(object.format.content_type())
            .set_content_encoding(object.format.content_encoding().map(str::to_owned))
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .metadata("weir-transform", &object.transform.name)
            .metadata("weir-transform-sha256", &object.transform.sha256)
            .metadata(
                "weir-transform-version",
                object.transform.version.as_deref().unwrap_or("-"),
            )
            .metadata("weir-first-sequence", object.first.to_string())
            .metadata("weir-last-sequence", object.last.to_string())
            .metadata("weir-records", object.records.to_string())
            .send()
            .await
            .map_err(|e| StoreError::S3 {
                bucket: self.bucket.clone(),
                key,
                source: crate::aws::describe(&e).into(),
            })?;
        Ok(())
    }
}

impl S3Store {
    /// Writes `body` at `key` as is (compacted objects, manifests), with a CRC32C checksum.
    pub async fn put_bytes(
        &self,
        key: &str,
        body: bytes::Bytes,
        content_type: &str,
        content_encoding: Option<&str>,
    ) -> Result<(), StoreError> {
        let full = format!("{}{key}", self.prefix);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(body))
            .content_type(content_type)
            .set_content_encoding(content_encoding.map(str::to_owned))
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .map_err(|e| self.error(&full, crate::aws::describe(&e)))?;
        Ok(())
    }

    /// Every object key under `prefix` (relative to the store's prefix), sorted.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list_sized(prefix)
            .await?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    /// Every object key under `prefix` with its size in bytes, sorted by key.
    pub async fn list_sized(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut keys = Vec::new();
        let full = format!("{}{prefix}", self.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(&full, crate::aws::describe(&e)))?;
            for object in page.contents.unwrap_or_default() {
                if let Some(key) = object
                    .key
                    .as_deref()
                    .and_then(|k| k.strip_prefix(&self.prefix))
                {
                    let size = object.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                    keys.push((key.to_owned(), size));
                }
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// The object at `key`.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let full = format!("{}{key}", self.prefix);
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.error(&full, crate::aws::describe(&e)))?;
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| self.error(&full, e.to_string()))?;
        Ok(body.into_bytes().to_vec())
    }

    /// The object at `key`, or `None` if S3 says there is no such key.
    pub async fn get_if_exists(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let full = format!("{}{key}", self.prefix);
        let answer = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await;
        let object = match answer {
            Ok(object) => object,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.error(&full, crate::aws::describe(&e))),
        };
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| self.error(&full, e.to_string()))?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    /// Whether S3 holds an object at `key` (a HEAD: no bytes read).
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let full = format!("{}{key}", self.prefix);
        let answer = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await;
        match answer {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(self.error(&full, crate::aws::describe(&e))),
        }
    }

    /// Copies the object at `from` to `to` inside the bucket, server-side (no bytes through
    /// the host), keeping its content type and encoding.
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let (source, target) = (
            format!("{}{from}", self.prefix),
            format!("{}{to}", self.prefix),
        );
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(&target)
            .copy_source(format!("{}/{}", self.bucket, encode_key(&source)))
            .send()
            .await
            .map_err(|e| self.error(&target, crate::aws::describe(&e)))?;
        Ok(())
    }

    /// Removes the object at `key`.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let full = format!("{}{key}", self.prefix);
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.error(&full, crate::aws::describe(&e)))?;
        Ok(())
    }

    fn error(&self, key: &str, message: String) -> StoreError {
        StoreError::S3 {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            source: message.into(),
        }
    }
}

impl std::fmt::Display for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// A key as `x-amz-copy-source` takes it: URL-encoded, `/` kept (partition values hold `%`).
fn encode_key(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `s3://bucket/some/prefix` -> (`bucket`, `some/prefix/`).
fn parse_location(location: &str) -> Result<(String, String), StoreError> {
    let invalid = || StoreError::InvalidLocation(location.to_owned());
    let rest = location.strip_prefix("s3://").ok_or_else(invalid)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !bucket_ok {
        return Err(invalid());
    }
    let prefix = prefix.trim_matches('/');
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    Ok((bucket.to_owned(), prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_are_url_encoded() {
        assert_eq!(
            encode_key("lake/retail/section=Home%2FGarden/x y.json.gz"),
            "lake/retail/section%3DHome%252FGarden/x%20y.json.gz"
        );
    }

    #[test]
    fn parses_bucket_and_prefix() {
        assert_eq!(
            parse_location("s3://lake").unwrap(),
            ("lake".into(), String::new())
        );
        assert_eq!(
            parse_location("s3://lake/").unwrap(),
            ("lake".into(), String::new())
        );
        assert_eq!(
            parse_location("s3://my.lake/raw/events/").unwrap(),
            ("my.lake".into(), "raw/events/".into())
        );
        for bad in ["s3://", "s3://A_b", "lake", "s3://ab", "http://lake"] {
            assert!(parse_location(bad).is_err(), "{bad}");
        }
    }
}
