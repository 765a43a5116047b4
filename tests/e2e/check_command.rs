//! `weir check`: one JSON line per event with the transform's decision.

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use weir::source::record::Timestamp;
use weir_tests::{data_dir, retail_wasm, weir_bin};

#[test]
fn reports_each_events_outcome_as_a_json_line() {
    let expected: BTreeMap<String, Value> =
        serde_json::from_slice(&std::fs::read(data_dir().join("expected.json")).unwrap()).unwrap();
    let output = Command::new(weir_bin())
        .args(["check", "--transform"])
        .arg(retail_wasm())
        .args(
            expected
                .keys()
                .filter(|k| !k.contains(':'))
                .map(|k| data_dir().join(k)),
        )
        .arg(data_dir().join("events.ndjson"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), expected.len());
    let prefix = format!("{}/", data_dir().display());
    for line in lines {
        let input = line["input"].as_str().unwrap();
        let case = input.strip_prefix(&prefix).unwrap();
        let expect = &expected[case];
        match expect["outcome"].as_str().unwrap() {
            "accept" => {
                assert_eq!(line["outcome"], "accept", "{case}: {line}");
                let file = data_dir().join(case.split(':').next().unwrap());
                let modified = std::fs::metadata(file).unwrap().modified().unwrap();
                let arrival = Timestamp::from_unix_millis(
                    modified
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_millis() as i64,
                );
                let partition = expect["partition"]
                    .as_str()
                    .unwrap()
                    .replace("{arrival_dt}", &arrival.utc_date())
                    .replace("{arrival_hr}", &arrival.utc_hour());
                assert_eq!(line["partition"], partition.as_str(), "{case}");
            }
            "reject" => {
                assert_eq!(line["outcome"], "reject", "{case}: {line}");
                assert_eq!(line["code"], expect["code"], "{case}: {line}");
                assert!(!line["message"].as_str().unwrap().is_empty());
            }
            "failed" => {
                assert_eq!(line["outcome"], "fail", "{case}: {line}");
                assert_eq!(line["error_type"], expect["error_type"], "{case}: {line}");
            }
            other => panic!("{case}: unknown outcome {other}"),
        }
    }
}

#[test]
fn names_the_field_in_a_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let event = dir.path().join("e.json");
    std::fs::write(
        &event,
        r#"{"metadata":{"uuid":5,"section":"x"},"payload":{}}"#,
    )
    .unwrap();
    let output = Command::new(weir_bin())
        .args(["check", "--transform"])
        .arg(retail_wasm())
        .arg(&event)
        .output()
        .unwrap();
    let line: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(line["outcome"], "reject");
    assert!(
        line["message"].as_str().unwrap().contains("metadata.uuid"),
        "{line}"
    );
}
