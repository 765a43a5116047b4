//! `weir run` on `tests/data`: the Hive layout, every record accounted for, hostile values
//! confined, deterministic keys.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use weir::lake::envelope::Envelope;
use weir::source::record::Timestamp;
use weir_tests::{data_dir, read_envelopes, read_objects, retail_wasm, weir_bin};

const INPUTS: [&str; 4] = ["seed", "valid", "invalid", "events.ndjson"];

/// Runs `weir run` on `inputs` into `dir/lake` and `dir/failed`.
fn weir_run_on(dir: &Path, inputs: &[PathBuf], transform: &Path, extra: &[&str]) -> Output {
    Command::new(weir_bin())
        .arg("run")
        .arg("--input")
        .args(inputs)
        .arg("--transform")
        .arg(transform)
        .arg("--lake")
        .arg(dir.join("lake"))
        .arg("--failed")
        .arg(dir.join("failed"))
        .args(extra)
        .output()
        .expect("weir runs")
}

/// Runs `weir run` with the retail transform on all of `tests/data`.
fn weir_run(dir: &Path, extra: &[&str]) -> Output {
    let inputs: Vec<PathBuf> = INPUTS.iter().map(|i| data_dir().join(i)).collect();
    weir_run_on(dir, &inputs, &retail_wasm(), extra)
}

fn expected() -> BTreeMap<String, Value> {
    let text = std::fs::read(data_dir().join("expected.json")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

/// The file and, for NDJSON entries, the line an `expected.json` key names.
fn locate(case: &str) -> (PathBuf, Option<usize>) {
    match case.rsplit_once(':') {
        Some((file, line)) => (data_dir().join(file), Some(line.parse().unwrap())),
        None => (data_dir().join(case), None),
    }
}

/// The stored line for a case: its bytes, folded to one line as the lake stores them.
fn stored_line(case: &str) -> Vec<u8> {
    let (file, line) = locate(case);
    let data = std::fs::read(&file).unwrap();
    let data = match line {
        Some(n) => data.split(|&b| b == b'\n').nth(n - 1).unwrap().to_vec(),
        None => data,
    };
    let mut out = Vec::new();
    weir::lake::encode::push_line(&mut out, &data);
    out.pop();
    out
}

fn arrival_of(case: &str) -> Timestamp {
    let modified = std::fs::metadata(locate(case).0)
        .unwrap()
        .modified()
        .unwrap();
    let millis = modified
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_unix_millis(millis as i64)
}

#[test]
fn ingests_test_data_into_a_hive_partitioned_lake_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = weir_run(dir.path(), &["--batch-size", "7"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "weir run failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let lake = read_objects(&dir.path().join("lake"));
    let envelopes = read_envelopes(&dir.path().join("failed"));
    let cases = expected();
    assert!(cases.len() >= 25, "tests/data holds at least 25 cases");
    let lake_lines: usize = lake.iter().map(|(_, lines)| lines.len()).sum();
    assert_eq!(
        lake_lines + envelopes.len(),
        cases.len(),
        "every record is in the lake or failed, once"
    );
    assert!(
        stdout.contains(&format!("{} records", cases.len())),
        "{stdout}"
    );

    for (case, expect) in &cases {
        let outcome = expect["outcome"].as_str().unwrap();
        if outcome == "accept" {
            let arrival = arrival_of(case);
            let partition = expect["partition"]
                .as_str()
                .unwrap()
                .replace("{arrival_dt}", &arrival.utc_date())
                .replace("{arrival_hr}", &arrival.utc_hour());
            let line = stored_line(case);
            let found = lake.iter().any(|(key, lines)| {
                key.rsplit_once('/').unwrap().0 == format!("retail/{partition}")
                    && lines.contains(&line)
            });
            assert!(found, "{case}: not found in partition {partition}");
            continue;
        }
        let (file, line) = locate(case);
        let key = match line {
            Some(n) => format!("{}:{n}", file.display()),
            None => file.display().to_string(),
        };
        let (_, envelope) = envelopes
            .iter()
            .find(|(_, e)| e.partition_key == key)
            .unwrap_or_else(|| panic!("{case}: no envelope in the failed location"));
        match outcome {
            "reject" => {
                assert_eq!(envelope.error_type, "rejected", "{case}");
                assert_eq!(
                    envelope.code,
                    expect["code"].as_str().unwrap(),
                    "{case}: {}",
                    envelope.message
                );
            }
            "failed" => assert_eq!(
                envelope.error_type,
                expect["error_type"].as_str().unwrap(),
                "{case}"
            ),
            other => panic!("{case}: unknown outcome {other}"),
        }
        assert!(!envelope.message.is_empty(), "{case}: a failure says why");
        let original = envelope.original().unwrap();
        assert_eq!(
            original,
            std::fs::read(&file)
                .map(|d| match line {
                    Some(n) => d.split(|&b| b == b'\n').nth(n - 1).unwrap().to_vec(),
                    None => d,
                })
                .unwrap(),
            "{case}: the original bytes are recoverable exactly"
        );
    }

    // Nothing outside the two locations, and every key has the documented shape.
    let mut top: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(top, ["failed", "lake"]);
    for (key, _) in &lake {
        let levels: Vec<&str> = key.split('/').collect();
        assert_eq!(levels.len(), 5, "{key}");
        assert_eq!(
            levels[0], "retail",
            "the table, named after the module: {key}"
        );
        for (level, name) in levels[1..].iter().zip(["section=", "dt=", "hr="]) {
            assert!(level.starts_with(name), "{key}");
        }
        assert!(
            levels[4].ends_with(".json.gz") && !levels[4].starts_with(['.', '_']),
            "{key}"
        );
    }
    for (key, envelope) in &envelopes {
        let prefix = format!("error_type={}/dt=", envelope.error_type);
        assert!(key.starts_with(&prefix), "{key}");
        assert_eq!(key.split('/').count(), 3, "{key}");
    }
}

#[test]
fn rerunning_overwrites_the_same_objects() {
    let dir = tempfile::tempdir().unwrap();
    assert!(weir_run(dir.path(), &[]).status.success());
    let keys = |root: &Path| {
        read_objects(root)
            .into_iter()
            .map(|(k, lines)| (k, lines.len()))
            .collect::<Vec<_>>()
    };
    let (lake, failed) = (
        keys(&dir.path().join("lake")),
        keys(&dir.path().join("failed")),
    );
    assert!(weir_run(dir.path(), &[]).status.success());
    assert_eq!(keys(&dir.path().join("lake")), lake);
    assert_eq!(keys(&dir.path().join("failed")), failed);
}

#[test]
fn ingests_ndjson_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(weir_bin())
        .args(["run", "--input", "-", "--transform"])
        .arg(retail_wasm())
        .arg("--lake")
        .arg(dir.path().join("lake"))
        .arg("--failed")
        .arg(dir.path().join("failed"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let events = std::fs::read(data_dir().join("events.ndjson")).unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&events).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines = events
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    let stored: usize = read_objects(&dir.path().join("lake"))
        .iter()
        .map(|(_, l)| l.len())
        .sum();
    let failed = read_envelopes(&dir.path().join("failed"));
    assert_eq!(stored + failed.len(), lines);
    assert!(
        failed
            .iter()
            .all(|(_, e)| e.source.starts_with("stdin-") && e.partition_key.starts_with("stdin:"))
    );
}

#[test]
fn a_record_over_the_size_limit_goes_to_failed_intact() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!(
        r#"{{"metadata":{{"uuid":"1","section":"Books"}},"payload":{{"blob":"{}"}}}}"#,
        "x".repeat(2 << 20)
    );
    let input = dir.path().join("big.json");
    std::fs::write(&input, &big).unwrap();
    let output = weir_run_on(dir.path(), &[input], &retail_wasm(), &[]);
    assert!(output.status.success());
    let failed = read_envelopes(&dir.path().join("failed"));
    assert_eq!(failed.len(), 1);
    let (key, envelope): &(String, Envelope) = &failed[0];
    assert!(key.starts_with("error_type=invalid_record/"), "{key}");
    assert_eq!(envelope.code, "too_large");
    assert_eq!(envelope.original().unwrap(), big.as_bytes());
}

#[test]
fn a_broken_transform_is_a_clear_error_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("broken.wasm");
    std::fs::write(&module, b"\0asm garbage").unwrap();
    let output = weir_run_on(dir.path(), &[data_dir().join("seed")], &module, &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot load transform")
            && stderr.contains("not a valid WebAssembly module"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("lake").exists(),
        "nothing is written when the transform cannot load"
    );
}

#[test]
fn parquet_output_keeps_every_accepted_event_faithfully() {
    let dir = tempfile::tempdir().unwrap();
    let output = weir_run(dir.path(), &["--format", "parquet", "--batch-size", "7"]);
    assert!(output.status.success(), "{output:?}");
    let lake = dir.path().join("lake");
    // The table's descriptor records its layout and format, for tools and later writers.
    let descriptor: Value =
        serde_json::from_slice(&std::fs::read(lake.join("_weir/tables/retail.json")).unwrap())
            .unwrap();
    assert_eq!(descriptor["format"], "weir-table/1");
    assert_eq!(
        descriptor["columns"],
        serde_json::json!(["section", "dt", "hr"])
    );
    assert_eq!(descriptor["object_format"], "parquet");
    assert_eq!(descriptor["created_by"]["transform"], "retail");
    let mut rows = Vec::new();
    for key in object_keys(&lake) {
        if key.starts_with("_weir/") {
            continue;
        }
        assert!(key.ends_with(".parquet"), "{key}");
        let body = std::fs::read(lake.join(&key)).unwrap();
        assert_eq!(&body[..4], b"PAR1", "{key}");
        let partition = key.rsplit_once('/').unwrap().0;
        let partition = partition.strip_prefix("retail/").unwrap().to_owned();
        for row in weir::lake::parquet_file::read(body.into()).unwrap() {
            rows.push((partition.clone(), row));
        }
    }
    let accepted: Vec<_> = expected()
        .into_iter()
        .filter(|(_, e)| e["outcome"] == "accept")
        .collect();
    assert_eq!(rows.len(), accepted.len(), "one row per accepted event");
    for (case, expect) in &accepted {
        let arrival = arrival_of(case);
        let partition = weir_tests::expected_partition(expect, arrival);
        let event: Value = serde_json::from_slice(&stored_line(case)).unwrap();
        let found = rows.iter().any(|(p, row)| {
            // The event comes back whole: from `raw`, or from its columns.
            let back: Value = match &row.raw {
                Some(raw) => serde_json::from_slice(raw).unwrap(),
                None => {
                    let metadata: serde_json::Map<String, Value> = row
                        .metadata
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
                        .collect();
                    let payload: Value =
                        serde_json::from_str(row.payload.as_deref().unwrap()).unwrap();
                    serde_json::json!({"metadata": metadata, "payload": payload})
                }
            };
            *p == partition && back == event
        });
        assert!(found, "{case}: not found whole in partition {partition}");
    }
}

/// The key of every file under `root`, sorted.
fn object_keys(root: &Path) -> Vec<String> {
    let mut keys = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let key = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                keys.push(key);
            }
        }
    }
    keys.sort();
    keys
}
