//! Files and directories as a source.
//!
//! Each `--input` path is one source, like a shard: its files are read in name order
//! (directories recursively, hidden files skipped), records are numbered 1, 2, ... across the
//! source, and a record's partition key names its file (and line). A record's arrival time is
//! its file's modification time, so re-running the same files yields the same partitions and
//! object keys, which overwrite rather than duplicate.

use super::{BatchLimits, is_ndjson, take_batch};
use crate::source::record::{Batch, Record, Timestamp, source_label};
use crate::source::sequence::Position;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};

/// Batches from one file or directory.
#[derive(Debug)]
pub struct FileSource {
    label: String,
    files: VecDeque<PathBuf>,
    pending: VecDeque<Record>,
    next_index: u64,
}

impl FileSource {
    /// Lists the files under `path` (or `path` itself).
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut files = Vec::new();
        collect_files(path, &mut files).map_err(|e| annotate(e, path))?;
        files.sort();
        Ok(Self {
            label: file_source_label(path),
            files: files.into(),
            pending: VecDeque::new(),
            next_index: 1,
        })
    }

    /// The source's label in object keys and envelopes.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The next batch, or `None` when every file has been read.
    pub fn next_batch(&mut self, limits: &BatchLimits) -> io::Result<Option<Batch>> {
        while self.pending.len() < limits.max_records {
            let Some(file) = self.files.pop_front() else {
                break;
            };
            self.read_file(&file).map_err(|e| annotate(e, &file))?;
        }
        let records = take_batch(&mut self.pending, limits);
        Ok((!records.is_empty()).then(|| Batch {
            source: self.label.clone(),
            stream: None,
            records,
        }))
    }

    fn read_file(&mut self, path: &Path) -> io::Result<()> {
        let data = std::fs::read(path)?;
        let arrival = std::fs::metadata(path)?
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let arrival = Timestamp::from_unix_millis(arrival);
        let name = path.to_string_lossy();
        if !is_ndjson(path) {
            self.push(data, name.into_owned(), arrival);
            return Ok(());
        }
        for (line_number, line) in data.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.push(
                line.to_vec(),
                format!("{name}:{}", line_number + 1),
                arrival,
            );
        }
        Ok(())
    }

    fn push(&mut self, data: Vec<u8>, partition_key: String, arrival: Timestamp) {
        let position = Position::from_index(self.next_index);
        self.next_index += 1;
        self.pending
            .push_back(Record::new(data, partition_key, position, arrival));
    }
}

/// A readable label plus a digest of the canonical path: two paths that read alike once
/// sanitised (`a/b`, `a_b`) must never share object keys, or one would overwrite the other.
fn file_source_label(path: &Path) -> String {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let label = source_label(&path.to_string_lossy());
    format!(
        "{label}-{:02x}{:02x}{:02x}{:02x}",
        digest[0], digest[1], digest[2], digest[3]
    )
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    if !path.is_dir() {
        // Fails here, naming the path, if it does not exist.
        std::fs::metadata(path)?;
        files.push(path.to_owned());
        return Ok(());
    }
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        collect_files(&entry.path(), files)?;
    }
    Ok(())
}

fn annotate(error: io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_records_across_files_and_skips_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), b"{\n \"x\": 1\n}").unwrap();
        std::fs::write(dir.path().join("b.ndjson"), b"{\"y\":1}\n\n{\"y\":2}\r\n").unwrap();
        std::fs::write(dir.path().join(".hidden.json"), b"{}").unwrap();
        let mut source = FileSource::open(dir.path()).unwrap();
        let limits = BatchLimits {
            max_records: 2,
            ..BatchLimits::default()
        };
        let first = source.next_batch(&limits).unwrap().unwrap();
        let second = source.next_batch(&limits).unwrap().unwrap();
        assert!(source.next_batch(&limits).unwrap().is_none());
        assert_eq!(first.records.len(), 2);
        assert_eq!(first.records[0].data, b"{\n \"x\": 1\n}");
        assert!(first.records[1].partition_key.ends_with("b.ndjson:1"));
        assert_eq!(second.records[0].data, b"{\"y\":2}");
        assert!(second.records[0].partition_key.ends_with("b.ndjson:3"));
        assert_eq!(second.records[0].position, Position::from_index(3));
    }

    #[test]
    fn cuts_batches_at_the_byte_limit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("e.ndjson"),
            "{\"a\":\"0123456789\"}\n".repeat(10),
        )
        .unwrap();
        let mut source = FileSource::open(dir.path()).unwrap();
        let limits = BatchLimits {
            max_bytes: 50,
            ..BatchLimits::default()
        };
        let batch = source.next_batch(&limits).unwrap().unwrap();
        assert_eq!(batch.records.len(), 2);
    }

    #[test]
    fn paths_that_sanitise_alike_get_distinct_labels() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/b"), b"{}").unwrap();
        std::fs::write(dir.path().join("a_b"), b"{}").unwrap();
        let one = FileSource::open(&dir.path().join("a/b")).unwrap();
        let other = FileSource::open(&dir.path().join("a_b")).unwrap();
        assert_ne!(one.label(), other.label());
        let same = FileSource::open(&dir.path().join("a/../a/b")).unwrap();
        assert_eq!(
            one.label().rsplit('-').next(),
            same.label().rsplit('-').next()
        );
    }

    #[test]
    fn a_missing_path_is_an_error_naming_it() {
        let err = FileSource::open(Path::new("/no/such/weir/input")).unwrap_err();
        assert!(err.to_string().contains("/no/such/weir/input"), "{err}");
    }
}
