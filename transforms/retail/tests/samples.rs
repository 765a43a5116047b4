//! Runs the transform natively over every sample event in `tests/data` and checks each outcome
//! against `tests/data/expected.json`, the same expectations the end-to-end tests hold the host
//! to.
//!
//! The transform-level parts are checked here: accept or reject, the rejection code, and the
//! partition's raw segment values (found by undoing the Hive escaping of the expected path).
//! Outcomes only the host produces (`failed`) are checked for what the transform does with those
//! records.

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
};

use serde_json::{Map, Value};
use weir_guest_sdk::{Outcome, Record, Timestamp};

/// 2024-03-10T15:42:07Z: what `{arrival_dt}` and `{arrival_hr}` stand for below.
const ARRIVAL: Timestamp = Timestamp::from_unix_millis(1_710_085_327_000);
const ARRIVAL_DT: &str = "2024-03-10";
const ARRIVAL_HR: &str = "15";

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

fn expectations() -> Map<String, Value> {
    let path = data_dir().join("expected.json");
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("parsing {}: {error}", path.display()))
}

/// `(key in expected.json, contents)` of every sample file under `valid/`, `invalid/` and
/// `seed/`.
fn sample_files() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for dir in ["valid", "invalid", "seed"] {
        let entries = fs::read_dir(data_dir().join(dir))
            .unwrap_or_else(|error| panic!("listing tests/data/{dir}: {error}"));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().expect("a file name").to_string_lossy();
            let data = fs::read(&path).unwrap_or_else(|error| panic!("reading {name}: {error}"));
            files.push((format!("{dir}/{name}"), data));
        }
    }
    files.sort();
    files
}

/// `(key in expected.json, line)` of every line of `events.ndjson`.
fn ndjson_lines() -> Vec<(String, Vec<u8>)> {
    let data = fs::read(data_dir().join("events.ndjson")).expect("reading events.ndjson");
    data.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .enumerate()
        .map(|(index, line)| (format!("events.ndjson:{}", index + 1), line.to_vec()))
        .collect()
}

fn run(data: &[u8]) -> Outcome {
    retail::transform(&Record::new(data).with_arrival(ARRIVAL))
}

/// The raw `(name, value)` segments of an expected partition path: Hive's `%XX` escapes undone,
/// arrival placeholders filled in.
fn segments_of(path: &str) -> Vec<(String, String)> {
    path.split('/')
        .map(|segment| {
            let (name, value) = segment
                .split_once('=')
                .unwrap_or_else(|| panic!("segment {segment:?} has no '='"));
            let value = value
                .replace("{arrival_dt}", ARRIVAL_DT)
                .replace("{arrival_hr}", ARRIVAL_HR);
            (name.to_owned(), unescape(&value))
        })
        .collect()
}

/// `__HIVE_DEFAULT_PARTITION__` (an empty value) stays as it is: the transform rejects empty
/// sections, so in an accepted partition it can only be a section that says so literally.
fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut raw = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = std::str::from_utf8(&bytes[at + 1..at + 3]).expect("ASCII hex digits");
            raw.push(u8::from_str_radix(hex, 16).expect("two hex digits after '%'"));
            at += 3;
        } else {
            raw.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(raw).expect("unescaped values are UTF-8")
}

/// What is wrong with `outcome` for the record `key`, if anything.
fn mismatch(key: &str, outcome: &Outcome, expected: &Value) -> Option<String> {
    let field = |name: &str| expected[name].as_str().unwrap_or_default();
    match (field("outcome"), outcome) {
        ("accept", Ok(partition)) => {
            let actual: Vec<_> = partition
                .segments()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect();
            let wanted = segments_of(field("partition"));
            (actual != wanted).then(|| format!("{key}: partition {actual:?}, expected {wanted:?}"))
        }
        ("reject", Err(rejection)) => (rejection.code() != field("code")).then(|| {
            format!(
                "{key}: rejected as {rejection}, expected code {}",
                field("code")
            )
        }),
        // The escaped segment is too long: the transform accepts, the host fails the record.
        ("failed", Ok(_)) if field("error_type") == "invalid_partition" => None,
        // An empty record never reaches a transform; were it to, it must not be accepted.
        ("failed", Err(rejection)) if field("error_type") == "invalid_record" => {
            (rejection.code() != "invalid_json").then(|| format!("{key}: rejected as {rejection}"))
        }
        (wanted, actual) => Some(format!(
            "{key}: got {actual:?}, expected {wanted} ({expected})"
        )),
    }
}

fn check_all(records: Vec<(String, Vec<u8>)>) {
    let expected = expectations();
    let problems: Vec<String> = records
        .iter()
        .filter_map(|(key, data)| match expected.get(key) {
            Some(wanted) => mismatch(key, &run(data), wanted),
            None => Some(format!("{key}: missing from expected.json")),
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn sample_files_get_their_expected_outcomes() {
    check_all(sample_files());
}

#[test]
fn ndjson_lines_get_their_expected_outcomes() {
    check_all(ndjson_lines());
}

#[test]
fn every_expectation_has_a_sample() {
    let samples: BTreeSet<String> = sample_files()
        .into_iter()
        .chain(ndjson_lines())
        .map(|(key, _)| key)
        .collect();
    let expected: BTreeSet<String> = expectations().keys().cloned().collect();
    let orphans: Vec<_> = expected.difference(&samples).collect();
    assert!(
        orphans.is_empty(),
        "expected.json names missing samples: {orphans:?}"
    );
}

#[test]
fn samples_cover_every_outcome() {
    let expected = expectations();
    let outcomes: BTreeSet<String> = expected
        .values()
        .map(|value| {
            let code = value.get("code").or_else(|| value.get("error_type"));
            format!("{} {}", value["outcome"], code.unwrap_or(&Value::Null))
        })
        .collect();
    for wanted in [
        r#""accept" null"#,
        r#""reject" "invalid_json""#,
        r#""reject" "invalid_event""#,
        r#""reject" "empty_field""#,
        r#""failed" "invalid_partition""#,
        r#""failed" "invalid_record""#,
    ] {
        assert!(
            outcomes.contains(wanted),
            "no sample expects {wanted}: {outcomes:?}"
        );
    }
}
