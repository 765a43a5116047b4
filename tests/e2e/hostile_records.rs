//! Hostile partition values written through the whole pipeline to a local lake: every file
//! stays under the lake root, one level per partition column.

use std::sync::Arc;
use weir::pipeline::{Pipeline, PipelineConfig};
use weir::record::{Batch, Record, Timestamp};
use weir::sequence::Position;
use weir::storage::Store;
use weir::transform::{TransformLimits, WasmTransform};
use weir_tests::{echo_section_wat, read_envelopes, read_objects, wasm};

#[tokio::test]
async fn hostile_values_stay_inside_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let failed = dir.path().join("failed");
    let pipeline = Pipeline {
        lake: Arc::new(Store::open(lake.to_str().unwrap()).unwrap()),
        failed: Arc::new(Store::open(failed.to_str().unwrap()).unwrap()),
        config: PipelineConfig::default(),
    };
    let transform = WasmTransform::from_bytes(
        "echo",
        &wasm(&echo_section_wat()),
        TransformLimits::default(),
    )
    .unwrap();
    let values: Vec<Vec<u8>> = vec![
        b"..".to_vec(),
        b"../../../../tmp/escape".to_vec(),
        b"/etc/passwd".to_vec(),
        b"a=b/c=d".to_vec(),
        b"%2F..%2F".to_vec(),
        b"\\..\\..\\".to_vec(),
        b"\x00".to_vec(),
        b"\n\r\t\x1b".to_vec(),
        "\u{2215}\u{ff0f}".as_bytes().to_vec(),
        b"__HIVE_DEFAULT_PARTITION__".to_vec(),
        b".".to_vec(),
        "x".repeat(300).into_bytes(),
    ];
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            data: v.clone(),
            partition_key: "k".into(),
            position: Position::from_index(i as u64 + 1),
            arrival: Timestamp::from_unix_millis(0),
        })
        .collect();
    let batch = Batch {
        source: "hostile".into(),
        records,
    };
    let report = pipeline
        .process(&batch, &mut transform.session(), transform.id())
        .await;
    assert_eq!(report.unstored, None);
    assert_eq!(report.stored + report.failed, values.len());

    let objects = read_objects(&lake);
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
    let envelopes = read_envelopes(&failed);
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
    let lake = dir.path().join("lake");
    std::fs::create_dir(&lake).unwrap();
    // A file where the partition directories must go: their objects cannot be written.
    std::fs::write(lake.join("section=B"), b"in the way").unwrap();
    std::fs::write(lake.join("section=C"), b"in the way").unwrap();
    let pipeline = Pipeline {
        lake: Arc::new(Store::open(lake.to_str().unwrap()).unwrap()),
        failed: Arc::new(Store::open(dir.path().join("failed").to_str().unwrap()).unwrap()),
        config: PipelineConfig::default(),
    };
    let transform = WasmTransform::from_bytes(
        "echo",
        &wasm(&echo_section_wat()),
        TransformLimits::default(),
    )
    .unwrap();
    let records = ["A", "C", "B", "A", "", "C"]
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            data: v.as_bytes().to_vec(),
            partition_key: "k".into(),
            // Sequence numbers 8, 9, 10, ...: "10" sorts before "9" as a string, not as a number.
            position: Position::from_index(i as u64 + 8),
            arrival: Timestamp::from_unix_millis(0),
        })
        .collect();
    let batch = Batch {
        source: "s".into(),
        records,
    };
    let report = pipeline
        .process(&batch, &mut transform.session(), transform.id())
        .await;
    assert_eq!(report.stored, 2, "both A records");
    assert_eq!(report.failed, 1, "the empty record");
    assert_eq!(
        report.unstored,
        Some(Position::from_index(9)),
        "C's first record is the lowest not stored"
    );
    assert_eq!(report.store_errors.len(), 2);
}
