//! Helpers for Weir's end-to-end tests: where the built artifacts are, hand-written guest
//! modules, and reading a lake back.
//!
//! The tests run against release builds made by `scripts/test` (the `weir` binary and the
//! retail transform for wasm32-wasip1); `WEIR_BIN` and `WEIR_RETAIL_WASM` override the paths.

pub mod aws;
pub mod campaign;
pub mod cli;
pub mod components;
pub mod fault_proxy;
pub mod hostile;
mod http_server;
pub mod lambda_api;

use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_owned()
}

/// `tests/data`.
pub fn data_dir() -> PathBuf {
    workspace_root().join("tests/data")
}

/// The cargo profile directory this test binary was built into (`target/release`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    // target/<profile>/deps/e2e-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps")
        .to_owned()
}

/// The cargo target directory (`target`), where reports go.
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("the profile directory sits in target/")
        .to_owned()
}

fn built(var: &str, default: PathBuf) -> PathBuf {
    let path = std::env::var_os(var).map_or(default, PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test, which builds it first (or set {var})",
        path.display()
    );
    path
}

/// The `weir` binary.
pub fn weir_bin() -> PathBuf {
    built("WEIR_BIN", profile_dir().join("weir"))
}

/// The Lambda binary.
pub fn bootstrap_bin() -> PathBuf {
    built("WEIR_BOOTSTRAP", profile_dir().join("bootstrap"))
}

/// The retail transform, built for wasm32-wasip1.
pub fn retail_wasm() -> PathBuf {
    transform_wasm("WEIR_RETAIL_WASM", "retail.wasm")
}

/// The retail transform with the hour dropped (`transforms/retail-daily`), built for
/// wasm32-wasip1.
pub fn retail_daily_wasm() -> PathBuf {
    transform_wasm("WEIR_RETAIL_DAILY_WASM", "retail_daily.wasm")
}

fn transform_wasm(var: &str, file: &str) -> PathBuf {
    let profile = profile_dir();
    let name = profile
        .file_name()
        .expect("a profile directory has a name")
        .to_owned();
    let target = profile
        .parent()
        .expect("the profile directory sits in target/");
    built(var, target.join("wasm32-wasip1").join(name).join(file))
}

/// `tests/data/expected.json`: each case's expected outcome.
pub fn expected_cases() -> std::collections::BTreeMap<String, serde_json::Value> {
    let text = std::fs::read(data_dir().join("expected.json"))
        .expect("tests/data/expected.json is readable");
    serde_json::from_slice(&text).expect("expected.json is a JSON object")
}

/// An accepted case's partition path, with the arrival-time placeholders filled in.
pub fn expected_partition(
    expect: &serde_json::Value,
    arrival: weir::source::record::Timestamp,
) -> String {
    expect["partition"]
        .as_str()
        .expect("accepted cases name their partition")
        .replace("{arrival_dt}", &arrival.utc_date())
        .replace("{arrival_hr}", &arrival.utc_hour())
}

/// A minimal ABI v1 guest in WAT whose `weir_v1_transform` body is `transform_body`.
///
/// Memory: the input buffer starts at 1024; the string "section" is at 16 and "boom" at 32.
/// Locals: `$data_len`, `$key_len`, `$seq_len` (i32) and `$arrival` (i64). Imports `$partition`,
/// `$body`, `$reject` and `$panic` from `weir_v1`; `extra` adds module-level items.
pub fn guest_wat(transform_body: &str, extra: &str) -> String {
    format!(
        r#"(module
  (import "weir_v1" "partition" (func $partition (param i32 i32 i32 i32)))
  (import "weir_v1" "body" (func $body (param i32 i32)))
  (import "weir_v1" "reject" (func $reject (param i32 i32 i32 i32)))
  (import "weir_v1" "panic" (func $panic (param i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "section")
  (data (i32.const 32) "boom")
  (func (export "weir_v1_init"))
  (func (export "weir_v1_input") (param i32) (result i32) i32.const 1024)
  (func (export "weir_v1_transform")
    (param $data_len i32) (param $key_len i32) (param $seq_len i32) (param $arrival i64)
    (result i32)
    {transform_body})
  {extra}
)"#
    )
}

/// A guest that accepts every record into `section=<the record's bytes>`: hostile values go
/// straight into the partition path.
pub fn echo_section_wat() -> String {
    guest_wat(
        "(call $partition (i32.const 16) (i32.const 7) (i32.const 1024) (local.get $data_len)) i32.const 0",
        "",
    )
}

/// A batch from source `test` of `values`, numbered from `first`, all arriving at one instant.
pub fn batch_of(values: &[&[u8]], first: u64) -> weir::source::record::Batch {
    let records = values
        .iter()
        .zip(first..)
        .map(|(data, n)| {
            weir::source::record::Record::new(
                data.to_vec(),
                format!("k{n}"),
                weir::source::sequence::Position::from_index(n),
                weir::source::record::Timestamp::from_unix_millis(1_700_000_000_000),
            )
        })
        .collect();
    weir::source::record::Batch {
        source: "test".into(),
        stream: None,
        records,
    }
}

/// A pipeline into `dir/lake` and `dir/failed`, local directories.
pub fn local_pipeline(dir: &Path) -> weir::batch::pipeline::Pipeline {
    let open = |name| {
        let store =
            weir::storage::LocalStore::open(&dir.join(name)).expect("a temp directory opens");
        std::sync::Arc::new(weir::storage::Store::Local(store))
    };
    weir::batch::pipeline::Pipeline {
        lake: open("lake"),
        failed: open("failed"),
        config: Default::default(),
        ledger: None,
        catalog: None,
        tables: Some(std::sync::Arc::new(weir::batch::tables::Tables::new(
            weir::storage::VersionedStore::Local(dir.join("lake/_weir/tables")),
        ))),
    }
}

/// Compiles WAT text to a module.
pub fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("test modules are valid WAT")
}

/// Gunzips an object.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("objects are valid gzip");
    out
}

/// Whether readers see the key: Spark and Hive skip every path component that starts with `_`
/// or `.` (the ledger under `_weir/`, compaction manifests).
pub fn is_visible(key: &str) -> bool {
    key.split('/')
        .all(|part| !part.starts_with('_') && !part.starts_with('.'))
}

/// Every object under `root` that readers see: `(key relative to root, its NDJSON lines)`,
/// sorted by key.
pub fn read_objects(root: &Path) -> Vec<(String, Vec<Vec<u8>>)> {
    let mut files = Vec::new();
    walk(root, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|path| {
            is_visible(
                &path
                    .strip_prefix(root)
                    .expect("walked under root")
                    .to_string_lossy(),
            )
        })
        .map(|path| {
            let key = path
                .strip_prefix(root)
                .expect("walked under root")
                .to_string_lossy()
                .into_owned();
            let ndjson = gunzip(&std::fs::read(&path).expect("objects are readable"));
            let lines = ndjson
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec)
                .collect();
            (key, lines)
        })
        .collect()
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("directory entries are readable").path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// Every failed envelope under `root`, with its object key.
pub fn read_envelopes(root: &Path) -> Vec<(String, weir::lake::envelope::Envelope)> {
    read_objects(root)
        .into_iter()
        .flat_map(|(key, lines)| {
            lines.into_iter().map(move |line| {
                let envelope = serde_json::from_slice(&line).expect("failed lines are envelopes");
                (key.clone(), envelope)
            })
        })
        .collect()
}

/// Seconds since the epoch, for [`check_compaction`].
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Checks what a compaction pass that counts a partition as closed once its hour (or day)
/// ended did to small lake objects (`before` and `after`, keys relative to the table): every
/// closed partition of more than one object holds one, the others are untouched, every record
/// is still there once, and its `answer` counts the closed partitions and the merged objects.
/// `clock` is the time before and after the pass: a partition that closed meanwhile may go
/// either way.
pub fn check_compaction(
    before: &[(String, Vec<Vec<u8>>)],
    after: &[(String, Vec<Vec<u8>>)],
    answer: &serde_json::Value,
    clock: (u64, u64),
) {
    let per_partition = |objects: &[(String, Vec<Vec<u8>>)]| {
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for (key, _) in objects {
            let (partition, _) = key.rsplit_once('/').expect("objects sit in partitions");
            *counts.entry(partition.to_owned()).or_default() += 1;
        }
        counts
    };
    let (was, now) = (per_partition(before), per_partition(after));
    let expect = |clock: u64| {
        let closed: Vec<&String> = was
            .keys()
            .filter(|p| weir::lake::compact::is_closed(p, clock, std::time::Duration::ZERO))
            .collect();
        let merged: usize = closed.iter().map(|p| was[*p]).filter(|n| *n > 1).sum();
        (closed, merged)
    };
    let (closed, merged) = [expect(clock.0), expect(clock.1)]
        .into_iter()
        .find(|(closed, merged)| {
            answer["partitions"] == closed.len() && answer["objects_merged"] == *merged
        })
        .unwrap_or_else(|| panic!("the pass's counts match the lake: {answer}"));
    assert!(merged > 0, "the test left something to merge");
    for (partition, count) in &was {
        let expected = if closed.contains(&partition) {
            1
        } else {
            *count
        };
        assert_eq!(now.get(partition), Some(&expected), "{partition}");
    }
    assert_eq!(now.len(), was.len());
    let lines = |objects: &[(String, Vec<Vec<u8>>)]| {
        let mut lines: Vec<Vec<u8>> = objects.iter().flat_map(|(_, l)| l.clone()).collect();
        lines.sort();
        lines
    };
    assert!(
        lines(after) == lines(before),
        "every record once, none lost"
    );
}

/// A copy of the test data `weir run` reads ([`aws::data_inputs`]) in `dir`, its files last
/// modified three days ago, so every partition the file source's arrival time puts records in
/// is closed; as `weir run` takes it.
pub fn aged_test_data(dir: &Path) -> Vec<String> {
    let aged = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86_400);
    let copy = |from: &Path, to: &Path| {
        std::fs::copy(from, to).expect("the test data copies");
        let file = std::fs::File::options().write(true).open(to).unwrap();
        file.set_modified(aged)
            .expect("the copy's mtime can be set");
    };
    let mut inputs = Vec::new();
    for name in ["seed", "valid", "invalid", "events.ndjson"] {
        let from = data_dir().join(name);
        let to = dir.join(from.file_name().unwrap());
        if from.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for file in std::fs::read_dir(&from).unwrap() {
                let file = file.unwrap().path();
                copy(&file, &to.join(file.file_name().unwrap()));
            }
        } else {
            copy(&from, &to);
        }
        inputs.push(to.display().to_string());
    }
    inputs
}
