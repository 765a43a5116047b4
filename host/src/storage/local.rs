//! A local directory as lake or failed location.

use super::StoreError;
use crate::lake::object::Object;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// Objects as files under a root directory, each written to a hidden temporary file, synced and
/// renamed into place, so a reader never sees half an object.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Uses `root`, creating it if needed.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(root).map_err(|source| StoreError::Io {
            path: root.to_owned(),
            source,
        })?;
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes the object at `root/key`.
    pub async fn put(&self, object: &Object) -> Result<(), StoreError> {
        let path = self.path_of(&object.key)?;
        let body = object.body.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &body))
            .await
            .expect("file writes do not panic")
    }

    /// Writes `body` at `root/key`, atomically.
    pub async fn put_bytes(&self, key: &str, body: bytes::Bytes) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        tokio::task::spawn_blocking(move || write_atomically(&path, &body))
            .await
            .expect("file writes do not panic")
    }

    /// Copies the object at `from` to `to`, atomically.
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let body = bytes::Bytes::from(self.get(from)?);
        self.put_bytes(to, body).await
    }

    /// The object at `key`, or `None` if there is no such file.
    pub fn get_if_exists(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(key)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Whether a file is stored at `key`.
    pub fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let path = self.path_of(key)?;
        match std::fs::metadata(&path) {
            Ok(meta) => Ok(meta.is_file()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Every object key under `prefix` (hidden temporary files excluded), sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list_sized(prefix)?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    /// Every object key under `prefix` with its size in bytes, sorted by key.
    pub fn list_sized(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut keys = Vec::new();
        walk(&self.root, &self.root, &mut keys).map_err(|source| StoreError::Io {
            path: self.root.clone(),
            source,
        })?;
        keys.retain(|(key, _)| key.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }

    /// The object at `key`.
    pub fn get(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.path_of(key)?;
        std::fs::read(&path).map_err(|source| StoreError::Io { path, source })
    }

    /// Removes the object at `key`.
    pub fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path_of(key)?;
        std::fs::remove_file(&path).map_err(|source| StoreError::Io { path, source })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        let relative = Path::new(key);
        let confined = !key.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !confined {
            return Err(StoreError::UnsafeKey(key.to_owned()));
        }
        Ok(self.root.join(relative))
    }
}

fn walk(root: &Path, dir: &Path, keys: &mut Vec<(String, u64)>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, keys)?;
        } else if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            let key = path.strip_prefix(root).expect("walked under the root");
            keys.push((key.to_string_lossy().into_owned(), entry.metadata()?.len()));
        }
    }
    Ok(())
}

fn write_atomically(path: &Path, body: &[u8]) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .expect("a key has at least one component under the root");
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .expect("keys end in a file name")
        .to_string_lossy();
    // Hidden (leading dot) so Spark and Hive skip it while it is being written.
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&temporary).map_err(io)?;
    file.write_all(body)
        .and_then(|()| file.sync_data())
        .map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_keys_that_leave_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        for key in ["../x", "/etc/passwd", "a/../../b", "", "./a"] {
            assert!(
                matches!(store.path_of(key), Err(StoreError::UnsafeKey(_))),
                "{key:?}"
            );
        }
        assert!(
            store
                .path_of("section=a%2Fb/dt=2024-01-01/x.json.gz")
                .is_ok()
        );
    }
}
