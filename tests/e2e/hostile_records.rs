//! Hostile partition values, the hostile-input corpus (`tests/data/hostile`) and a failing
//! store, through the whole pipeline to local directories: every file stays under the lake
//! root, one level per partition column, every case lands where its manifest says, and what
//! could not be stored is reported by its lowest position.

use std::sync::Arc;
use weir::source::kinesis::push_records;
use weir::source::record::{Batch, Timestamp};
use weir::source::sequence::Position;
use weir::transform::{TransformLimits, WasmTransform};
use weir_tests::{
    batch_of, echo_section_wat, hostile, local_pipeline, read_envelopes, read_objects, retail_wasm,
    wasm,
};

fn echo() -> Arc<WasmTransform> {
    WasmTransform::from_bytes(
        "echo",
        &wasm(&echo_section_wat()),
        TransformLimits::default(),
    )
    .map(Arc::new)
    .expect("the echo guest loads")
}

#[tokio::test]
async fn hostile_values_stay_inside_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local_pipeline(dir.path());
    let transform = echo();
    let too_long = "x".repeat(300);
    let values: Vec<&[u8]> = vec![
        b"..",
        b"../../../../tmp/escape",
        b"/etc/passwd",
        b"a=b/c=d",
        b"%2F..%2F",
        b"\\..\\..\\",
        b"\x00",
        b"\n\r\t\x1b",
        "\u{2215}\u{ff0f}".as_bytes(),
        b"__HIVE_DEFAULT_PARTITION__",
        b".",
        too_long.as_bytes(),
    ];
    let batch = batch_of(&values, 1);
    let report = pipeline.process(batch, &transform).await;
    assert_eq!(report.unstored, None);
    assert_eq!(report.stored + report.failed, values.len());

    let objects = read_objects(&dir.path().join("lake"));
    assert_eq!(
        objects.len(),
        values.len() - 1,
        "one partition per value, except the over-long one"
    );
    for (key, _) in &objects {
        let levels: Vec<&str> = key.split('/').collect();
        assert_eq!(levels.len(), 2, "{key}");
        assert!(
            levels[0].starts_with("section=") && !levels[0][8..].contains(['/', '\\', '\0']),
            "{key}"
        );
    }
    let envelopes = read_envelopes(&dir.path().join("failed"));
    assert_eq!(envelopes.len(), 1);
    assert_eq!(envelopes[0].1.code, "segment_too_long");
    let mut top: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["failed", "lake"],
        "nothing was written outside the two locations"
    );
}

#[tokio::test]
async fn reports_the_lowest_position_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local_pipeline(dir.path());
    // A file where a partition directory must go: its objects cannot be written.
    std::fs::write(dir.path().join("lake/section=B"), b"in the way").unwrap();
    std::fs::write(dir.path().join("lake/section=C"), b"in the way").unwrap();
    let transform = echo();
    // Numbered 8, 9, 10, ...: "10" sorts before "9" as a string, not as a number.
    let batch = batch_of(&[b"A", b"C", b"B", b"A", b"", b"C"], 8);
    let report = pipeline.process(batch, &transform).await;
    assert_eq!(report.stored, 2, "both A records");
    assert_eq!(report.failed, 1, "the empty record");
    assert_eq!(
        report.unstored,
        Some(Position::from_index(9)),
        "C's first record is the lowest not stored"
    );
    assert_eq!(report.store_errors.len(), 2);
}

/// `tests/data/hostile`: every case, decoded as a Kinesis record (so KPL aggregates are
/// de-aggregated) and run through the pipeline with the real retail transform, lands where the
/// manifest says, with its reason; every lake key stays inside the lake.
#[tokio::test]
async fn the_hostile_corpus_lands_where_its_manifest_says() {
    let manifest = hostile::manifest();
    assert!(manifest.len() >= 50, "{} cases", manifest.len());
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local_pipeline(dir.path());
    let module = std::fs::read(retail_wasm()).unwrap();
    let transform =
        Arc::new(WasmTransform::from_bytes("retail", &module, TransformLimits::default()).unwrap());
    let arrival = Timestamp::from_unix_millis(1_700_000_000_000);
    let mut cases = Vec::new();
    for (n, (name, case)) in manifest.iter().enumerate() {
        let data = hostile::case_bytes(name, case);
        // One batch per case, so each object's key names its case.
        let label = format!("case{n}");
        let mut records = Vec::new();
        push_records(
            data.clone(),
            name.clone(),
            Position::from_index(7),
            arrival,
            &mut records,
        );
        let batch = Batch {
            source: label.clone(),
            stream: None,
            records,
        };
        let report = pipeline.process(batch, &transform).await;
        assert_eq!(report.unstored, None, "{name}: {:?}", report.store_errors);
        cases.push((name, case, label, data));
    }

    let lake = read_objects(&dir.path().join("lake"));
    let envelopes = read_envelopes(&dir.path().join("failed"));
    for (key, _) in &lake {
        let label = key.rsplit('/').next().unwrap().split('-').next().unwrap();
        assert!(
            key.strip_prefix("retail/")
                .is_some_and(|key| hostile::confined(key, label)),
            "{key} leaves the table's layout"
        );
    }
    for (name, case, label, data) in &cases {
        let here: Vec<&(String, Vec<Vec<u8>>)> = lake
            .iter()
            .filter(|(key, _)| {
                key.rsplit('/')
                    .next()
                    .unwrap()
                    .starts_with(&format!("{label}-"))
            })
            .collect();
        let failed: Vec<&weir::lake::envelope::Envelope> = envelopes
            .iter()
            .map(|(_, e)| e)
            .filter(|e| e.source == *label)
            .collect();
        match case["expect"].as_str() {
            Some("lake") => {
                let partitions: Vec<&str> = match &case["partition"] {
                    serde_json::Value::Array(list) => {
                        list.iter().filter_map(|p| p.as_str()).collect()
                    }
                    one => vec![one.as_str().expect("lake cases name their partition")],
                };
                let mut found: Vec<&str> = here
                    .iter()
                    .map(|(key, _)| {
                        key.rsplit_once('/')
                            .unwrap()
                            .0
                            .trim_start_matches("retail/")
                    })
                    .collect();
                found.sort();
                let mut expected = partitions.clone();
                expected.sort();
                assert_eq!(found, expected, "{name}");
                if partitions.len() == 1 && case.get("failed").is_none() {
                    let mut line = Vec::new();
                    weir::lake::encode::push_line(&mut line, data);
                    line.pop();
                    assert_eq!(here[0].1, [line], "{name}: stored as sent");
                }
            }
            Some("failed") => {
                assert!(here.is_empty(), "{name}: in the lake too");
                assert_eq!(failed.len(), 1, "{name}");
                let envelope = failed[0];
                assert_eq!(
                    (envelope.error_type.as_str(), envelope.code.as_str()),
                    (
                        case["error_type"].as_str().unwrap(),
                        case["code"].as_str().unwrap()
                    ),
                    "{name}: {}",
                    envelope.message
                );
                assert_eq!(envelope.original().unwrap(), *data, "{name}");
                assert_eq!(envelope.sequence_number, "7");
            }
            other => panic!("{name}: unknown expectation {other:?}"),
        }
        // Aggregates with some bad user records: those fail on their own.
        if let Some(expect) = case.get("failed") {
            let codes: Vec<&str> = failed.iter().map(|e| e.code.as_str()).collect();
            assert_eq!(codes, [expect["code"].as_str().unwrap()], "{name}");
        }
    }
    let mut top: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(top, ["failed", "lake"], "nothing was written elsewhere");
}
