//! Sorting a batch by outcome: each record is size-checked, transformed, and either grouped
//! under its escaped partition path or set aside as a failure with its reason.

use crate::batch::config::PipelineConfig;
use crate::lake::partition::build_path;
use crate::source::failure::{ErrorType, Failure};
use crate::source::record::{Batch, Record};
use crate::transform::RecordTransform;
use std::collections::HashMap;
use std::ops::Range;

/// A batch's records sorted by outcome: accepted ones grouped by partition, failed ones with
/// their reason. Records are referred to by index, never copied.
#[derive(Debug, Default)]
pub struct Sorted {
    /// Accepted records, one group per partition path, in first-seen order.
    pub groups: Vec<Group>,
    /// Failed records: `(record index, reason)`.
    pub failures: Vec<(usize, Failure)>,
    /// Rewritten bodies, referred to by [`Member::body`].
    pub bodies: Vec<u8>,
}

/// The accepted records of one partition.
#[derive(Debug)]
pub struct Group {
    /// The escaped partition path, e.g. `section=Home/dt=2024-01-02/hr=03`.
    pub partition: String,
    /// The records, in batch order.
    pub members: Vec<Member>,
}

/// An accepted record: its index in the batch and, if rewritten, its new body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Index into [`Batch::records`].
    pub record: usize,
    /// Range of the new body in [`Sorted::bodies`].
    pub body: Option<Range<usize>>,
}

/// Runs each record through the transform and sorts it into a partition group or a failure.
pub fn transform_batch(
    batch: &Batch,
    transform: &mut dyn RecordTransform,
    config: &PipelineConfig,
) -> Sorted {
    let mut sorted = Sorted::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut path = String::new();
    for (i, record) in batch.records.iter().enumerate() {
        if let Err(failure) = check_record(record, config.max_record_bytes) {
            sorted.failures.push((i, failure));
            continue;
        }
        let output = match transform.apply(record) {
            Ok(output) => output,
            Err(failure) => {
                sorted.failures.push((i, failure));
                continue;
            }
        };
        if let Some((code, message)) = output.rejection() {
            let failure = Failure::new(ErrorType::Rejected, lossy(code), lossy(message));
            sorted.failures.push((i, failure));
            continue;
        }
        if let Err(e) = build_path(output.segments(), &config.partition, &mut path) {
            sorted.failures.push((
                i,
                Failure::new(ErrorType::InvalidPartition, e.code(), e.to_string()),
            ));
            continue;
        }
        let body = output.body().map(|body| {
            let start = sorted.bodies.len();
            sorted.bodies.extend_from_slice(body);
            start..sorted.bodies.len()
        });
        let group = match index.get(path.as_str()) {
            Some(&group) => group,
            None => {
                index.insert(path.clone(), sorted.groups.len());
                sorted.groups.push(Group {
                    partition: path.clone(),
                    members: Vec::new(),
                });
                sorted.groups.len() - 1
            }
        };
        sorted.groups[group]
            .members
            .push(Member { record: i, body });
    }
    sorted
}

/// Refuses records the transform must not see.
fn check_record(record: &Record, max_bytes: usize) -> Result<(), Failure> {
    if let Some(failure) = &record.undecodable {
        return Err(Failure::clone(failure));
    }
    if record.data.is_empty() {
        return Err(Failure::new(
            ErrorType::InvalidRecord,
            "empty",
            "the record is empty",
        ));
    }
    if record.data.len() > max_bytes {
        let message = format!(
            "the record is {} bytes, the limit is {max_bytes}",
            record.data.len()
        );
        return Err(Failure::new(ErrorType::InvalidRecord, "too_large", message));
    }
    Ok(())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
