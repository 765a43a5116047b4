//! Compaction on a schedule: what the Lambda package does with `WEIR_MODE=compact` when
//! EventBridge Scheduler invokes it. One pass over the closed partitions, stopping cleanly
//! before the invocation's deadline, then the catalog brought in line with the lake, then
//! one metrics line.

use crate::batch::metrics::emf_counts;
use crate::catalog::Catalog;
use crate::catalog::sync::{SyncReport, sync};
use crate::lake::compact::catalogued::CatalogTables;
use crate::lake::compact::{CompactError, CompactOptions, CompactReport, compact_registered};
use crate::storage::Store;
use serde::Serialize;
use std::time::SystemTime;

/// What one scheduled pass did: the invocation's result, and its metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScheduledReport {
    /// Closed partitions looked at.
    pub partitions: usize,
    /// Source objects merged (and deleted).
    pub objects_merged: usize,
    /// Merged objects written.
    pub objects_written: usize,
    /// Bytes of the merged objects.
    pub bytes: u64,
    /// Records in the merged objects.
    pub records: usize,
    /// Whether the deadline came first: the next pass goes on.
    pub unfinished: bool,
    /// Registered partitions left for the next pass because the catalog could not be moved.
    pub catalog_skipped: usize,
    /// Partitions registered (or found) in the catalog.
    pub catalog_partitions: usize,
    /// Why the catalog could not be brought in line, if it could not (compaction still ran).
    pub catalog_error: Option<String>,
}

/// Compacts `lake`'s closed partitions, then registers the lake in `catalog`.
pub async fn run_scheduled(
    lake: &Store,
    catalog: Option<&Catalog>,
    options: &CompactOptions,
    now: SystemTime,
) -> Result<ScheduledReport, CompactError> {
    let tables = match catalog {
        Some(catalog) => Some(CatalogTables::load(catalog, lake).await?),
        None => None,
    };
    let compacted: CompactReport = compact_registered(lake, tables.as_ref(), options, now).await?;
    let mut report = ScheduledReport {
        partitions: compacted.closed,
        objects_merged: compacted.removed,
        objects_written: compacted.written,
        bytes: compacted.bytes,
        records: compacted.records,
        unfinished: compacted.unfinished,
        catalog_skipped: compacted.catalog_skipped,
        ..ScheduledReport::default()
    };
    if let Some(catalog) = catalog {
        match sync(catalog, lake).await {
            Ok(SyncReport {
                partitions,
                skipped,
                ..
            }) => {
                report.catalog_partitions = partitions;
                if !skipped.is_empty() {
                    report.catalog_error = Some(skipped.join("; "));
                }
            }
            Err(error) => report.catalog_error = Some(error.to_string()),
        }
        if let Some(error) = &report.catalog_error {
            tracing::warn!(database = %catalog.database(), error, "catalog not in line with the lake; the next pass retries");
        }
    }
    Ok(report)
}

/// The pass's metrics, one CloudWatch EMF line.
pub fn emf(report: &ScheduledReport, lake: &str, timestamp_millis: i64) -> String {
    let counts = [
        ("CompactionPartitions", report.partitions as f64),
        ("CompactionObjectsMerged", report.objects_merged as f64),
        ("CompactionObjectsWritten", report.objects_written as f64),
        ("CompactionBytes", report.bytes as f64),
        ("CompactionRecords", report.records as f64),
        (
            "CompactionUnfinished",
            f64::from(u8::from(report.unfinished)),
        ),
        (
            "CatalogErrors",
            f64::from(u8::from(report.catalog_error.is_some())),
        ),
    ];
    emf_counts(("Lake", lake), &counts, timestamp_millis)
}
