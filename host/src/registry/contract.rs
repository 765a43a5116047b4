//! Contract tests: sample events with their expected outcomes, shipped beside a transform and
//! run before it is published.
//!
//! A cases directory holds event files and an `expected.json` mapping each file (relative path;
//! `file.ndjson:<line>` for NDJSON lines) to its expected outcome, as `tests/data` does:
//! `{"outcome": "accept", "partition": "section=…/dt=…/hr=…"}` (`{arrival_dt}` and
//! `{arrival_hr}` stand for the arrival time's UTC day and hour, which is the file's
//! modification time), `{"outcome": "reject", "code": "…"}`, or
//! `{"outcome": "failed", "error_type": "…"}` for records the host refuses.

use crate::batch::pipeline::PipelineConfig;
use crate::batch::sort::transform_batch;
use crate::source::failure::ErrorType;
use crate::source::record::Record;
use crate::source::{BatchLimits, FileSource};
use crate::transform::WasmTransform;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Why the cases could not be run.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// `expected.json` is missing or not a JSON object.
    #[error("cannot read {path}: {message}")]
    Expected {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A case file cannot be read.
    #[error("cannot read case {case}")]
    Case {
        /// The case.
        case: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs every case in `dir` through `transform`; returns the cases whose outcome differs, with
/// what happened instead.
pub fn run_cases(transform: &WasmTransform, dir: &Path) -> Result<Vec<String>, ContractError> {
    let path = dir.join("expected.json");
    let expected_error = |message: String| ContractError::Expected {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read(&path).map_err(|e| expected_error(e.to_string()))?;
    let cases: BTreeMap<String, Value> =
        serde_json::from_slice(&text).map_err(|e| expected_error(e.to_string()))?;
    let mut mismatches = Vec::new();
    for (case, expect) in &cases {
        let record = case_record(dir, case).map_err(|source| ContractError::Case {
            case: case.clone(),
            source,
        })?;
        let batch = crate::source::record::Batch {
            source: "contract".into(),
            stream: None,
            records: vec![record],
        };
        let sorted = transform_batch(&batch, &mut transform.session(), &PipelineConfig::default());
        let actual = match (sorted.groups.first(), sorted.failures.first()) {
            (Some(group), _) => format!("accept {}", group.partition),
            (None, Some((_, f))) if f.error_type == ErrorType::Rejected => {
                format!("reject {}", f.code)
            }
            (None, Some((_, f))) => format!("failed {}", f.error_type),
            (None, None) => "nothing".to_owned(),
        };
        let arrival = batch.records[0].arrival;
        let wanted = match expect["outcome"].as_str() {
            Some("accept") => format!(
                "accept {}",
                expect["partition"]
                    .as_str()
                    .unwrap_or_default()
                    .replace("{arrival_dt}", &arrival.utc_date())
                    .replace("{arrival_hr}", &arrival.utc_hour())
            ),
            Some("reject") => format!("reject {}", expect["code"].as_str().unwrap_or_default()),
            Some("failed") => format!(
                "failed {}",
                expect["error_type"].as_str().unwrap_or_default()
            ),
            other => format!("an unknown outcome {other:?}"),
        };
        if actual != wanted {
            mismatches.push(format!("{case}: expected {wanted}, got {actual}"));
        }
    }
    Ok(mismatches)
}

/// The record a case names: a whole file, or one line of an NDJSON file.
fn case_record(dir: &Path, case: &str) -> std::io::Result<Record> {
    let (file, line) = match case.rsplit_once(':') {
        Some((file, line)) if line.parse::<usize>().is_ok() => (file, Some(line)),
        _ => (case, None),
    };
    let mut source = FileSource::open(&dir.join(file))?;
    let limits = BatchLimits {
        max_records: 10_000,
        ..BatchLimits::default()
    };
    while let Some(batch) = source.next_batch(&limits)? {
        for record in batch.records {
            let key_line = record.partition_key.rsplit_once(':').map(|(_, l)| l);
            if line.is_none() || key_line == line {
                return Ok(record);
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("no record at {case}"),
    ))
}
