//! Hostile partition values and a failing store, through the whole pipeline to local
//! directories: every file stays under the lake root, one level per partition column, and
//! what could not be stored is reported by its lowest position.

use std::sync::Arc;
use weir::sequence::Position;
use weir::transform::{TransformLimits, WasmTransform};
use weir_tests::{batch_of, echo_section_wat, local_pipeline, read_envelopes, read_objects, wasm};

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
