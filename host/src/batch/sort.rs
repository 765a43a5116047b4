//! Sorting a batch by outcome: each record is size-checked, transformed, and either grouped
//! under its escaped partition path or set aside as a failure with its reason. A partition
//! that does not name its table's columns, in order, is a failure too (`invalid_partition`),
//! so a table never holds two layouts whatever a transform emits.

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
    /// The table the groups belong to (its folder prefixes their keys); None for the lake root.
    pub table: Option<String>,
}

impl Sorted {
    /// Sends every accepted record to the failed location instead: the table may not be
    /// written (see [`crate::batch::tables`]).
    pub fn refuse_table(&mut self, reason: &str) {
        for group in std::mem::take(&mut self.groups) {
            for member in group.members {
                let failure = Failure::new(ErrorType::InvalidPartition, "table_conflict", reason);
                self.failures.push((member.record, failure));
            }
        }
        self.failures.sort_by_key(|(record, _)| *record);
    }
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
    let table = transform.table().cloned();
    let mut sorted = Sorted {
        table: table.as_ref().map(|t| t.name.clone()),
        ..Sorted::default()
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut path = String::new();
    // Records the transform may see, by batch index; the others fail here.
    let mut eligible = Vec::with_capacity(batch.records.len());
    for (i, record) in batch.records.iter().enumerate() {
        match check_record(record, config.max_record_bytes) {
            Ok(()) => eligible.push(i),
            Err(failure) => sorted.failures.push((i, failure)),
        }
    }
    let records: Vec<&Record> = eligible.iter().map(|&i| &batch.records[i]).collect();
    transform.apply_each(&records, &mut |at, result| {
        let i = eligible[at];
        let output = match result {
            Ok(output) => output,
            Err(failure) => {
                sorted.failures.push((i, failure));
                return;
            }
        };
        if let Some((code, message)) = output.rejection() {
            let failure = Failure::new(ErrorType::Rejected, lossy(code), lossy(message));
            sorted.failures.push((i, failure));
            return;
        }
        if let Err(e) = build_path(output.segments(), &config.partition, &mut path) {
            sorted.failures.push((
                i,
                Failure::new(ErrorType::InvalidPartition, e.code(), e.to_string()),
            ));
            return;
        }
        if let Some(table) = &table
            && !output
                .segments()
                .map(|(name, _)| name)
                .eq(table.columns.iter().map(String::as_bytes))
        {
            sorted
                .failures
                .push((i, undeclared(&table.columns, output.segments())));
            return;
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
    });
    // Failures found before and by the transform, in batch order.
    sorted.failures.sort_by_key(|(record, _)| *record);
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

/// A partition whose names are not the table's columns.
fn undeclared<'a>(
    columns: &[String],
    segments: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Failure {
    let names: Vec<String> = segments.map(|(name, _)| lossy(name)).collect();
    Failure::new(
        ErrorType::InvalidPartition,
        "undeclared_columns",
        format!(
            "the partition names ({}), the transform declares ({})",
            names.join(", "),
            columns.join(", ")
        ),
    )
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
