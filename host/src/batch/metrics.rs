//! Per-batch metrics as CloudWatch Embedded Metric Format: one JSON line on stdout per batch,
//! which CloudWatch turns into metrics without an API call from the function.

use crate::batch::pipeline::BatchReport;
use serde_json::{Map, Value, json};

/// The CloudWatch namespace of Weir's metrics.
pub const NAMESPACE: &str = "Weir";

/// The EMF document for one batch, dimensioned by transform name.
pub fn emf_line(
    report: &BatchReport,
    transform: &str,
    load_failures: u64,
    timestamp_millis: i64,
) -> String {
    let mut values = Map::new();
    let mut metric = |name: String, value: f64, unit: &str, definitions: &mut Vec<Value>| {
        definitions.push(json!({ "Name": name, "Unit": unit }));
        values.insert(name, json!(value));
    };
    let mut definitions = Vec::new();
    metric(
        "RecordsIn".into(),
        report.records as f64,
        "Count",
        &mut definitions,
    );
    metric(
        "RecordsStored".into(),
        report.stored as f64,
        "Count",
        &mut definitions,
    );
    metric(
        "RecordsFailed".into(),
        report.failed as f64,
        "Count",
        &mut definitions,
    );
    for (error_type, count) in &report.failed_by_type {
        metric(
            format!("Failed.{error_type}"),
            *count as f64,
            "Count",
            &mut definitions,
        );
    }
    let unstored = report
        .records
        .saturating_sub(report.stored + report.failed + report.deduplicated);
    metric(
        "RecordsNotStored".into(),
        unstored as f64,
        "Count",
        &mut definitions,
    );
    metric(
        "ObjectsWritten".into(),
        report.objects as f64,
        "Count",
        &mut definitions,
    );
    for (name, value) in [
        ("RecordsDeduplicated", report.deduplicated),
        ("AbandonedObjectsRemoved", report.abandoned_objects),
        ("LedgerRequests", report.ledger_requests),
        ("LedgerFallbacks", usize::from(report.ledger_fallback)),
    ] {
        metric(name.into(), value as f64, "Count", &mut definitions);
    }
    metric(
        "TransformLoadFailures".into(),
        load_failures as f64,
        "Count",
        &mut definitions,
    );
    metric(
        "TransformTime".into(),
        millis(report.transform_time),
        "Milliseconds",
        &mut definitions,
    );
    metric(
        "StoreTime".into(),
        millis(report.store_time),
        "Milliseconds",
        &mut definitions,
    );
    let mut document = json!({
        "_aws": {
            "Timestamp": timestamp_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Transform"]],
                "Metrics": definitions,
            }]
        },
        "Transform": transform,
    });
    document
        .as_object_mut()
        .expect("built as an object")
        .extend(values);
    document.to_string()
}

/// An EMF document of counts under one dimension, such as the catalog's or compaction's.
pub fn emf_counts(
    dimension: (&str, &str),
    counts: &[(&str, f64)],
    timestamp_millis: i64,
) -> String {
    let definitions: Vec<Value> = counts
        .iter()
        .map(|(name, _)| json!({ "Name": name, "Unit": "Count" }))
        .collect();
    let mut document = json!({
        "_aws": {
            "Timestamp": timestamp_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[dimension.0]],
                "Metrics": definitions,
            }]
        },
    });
    let fields = document.as_object_mut().expect("built as an object");
    fields.insert(dimension.0.to_owned(), json!(dimension.1));
    for (name, value) in counts {
        fields.insert((*name).to_owned(), json!(value));
    }
    document.to_string()
}

fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::failure::ErrorType;

    #[test]
    fn declares_every_value_it_carries() {
        let mut report = BatchReport {
            records: 10,
            stored: 7,
            failed: 2,
            objects: 3,
            ..BatchReport::default()
        };
        report.failed_by_type.insert(ErrorType::Rejected, 2);
        let line = emf_line(&report, "retail", 1, 1_700_000_000_000);
        assert!(!line.contains('\n'));
        let doc: Value = serde_json::from_str(&line).unwrap();
        let declared = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        for definition in declared {
            let name = definition["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name} is declared and present");
        }
        assert_eq!(doc["RecordsNotStored"], 1.0);
        assert_eq!(doc["Failed.rejected"], 2.0);
        assert_eq!(doc["Transform"], "retail");
        assert_eq!(doc["TransformLoadFailures"], 1.0);
    }

    #[test]
    fn counts_carry_their_dimension() {
        let line = emf_counts(("Database", "lake"), &[("CatalogErrors", 2.0)], 1);
        let doc: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(doc["Database"], "lake");
        assert_eq!(doc["CatalogErrors"], 2.0);
        let metrics = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(metrics["Dimensions"], json!([["Database"]]));
        assert_eq!(metrics["Metrics"][0]["Name"], "CatalogErrors");
    }
}
