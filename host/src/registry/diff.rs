//! Shadow runs: two transform versions over the same records, writing nothing, to show what a
//! new version would change before it is activated.

use crate::batch::handler::BatchSink;
use crate::batch::pipeline::{BatchReport, PipelineConfig};
use crate::batch::sort::{Sorted, transform_batch};
use crate::source::failure::ErrorType;
use crate::source::record::Batch;
use crate::transform::WasmTransform;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How many examples of each change a report keeps.
const EXAMPLES: usize = 3;

/// What changes between two versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffReport {
    /// Records compared.
    pub records: usize,
    /// Records whose outcome (partition, or failure) differs.
    pub changed: usize,
    /// `(before, after) -> count` for every outcome that moves.
    pub moves: BTreeMap<(String, String), usize>,
    /// A few records of each move: `(before, after) -> record partition keys`.
    pub examples: BTreeMap<(String, String), Vec<String>>,
}

impl DiffReport {
    /// Adds one batch, run through both versions.
    pub fn add(
        &mut self,
        batch: &Batch,
        before: &WasmTransform,
        after: &WasmTransform,
        config: &PipelineConfig,
    ) {
        let old = outcomes(
            batch,
            &transform_batch(batch, &mut before.session(), config),
        );
        let new = outcomes(batch, &transform_batch(batch, &mut after.session(), config));
        self.records += batch.records.len();
        for ((record, old), new) in batch.records.iter().zip(old).zip(new) {
            if old == new {
                continue;
            }
            self.changed += 1;
            let key = (old, new);
            *self.moves.entry(key.clone()).or_default() += 1;
            let examples = self.examples.entry(key).or_default();
            if examples.len() < EXAMPLES {
                examples.push(record.partition_key.clone());
            }
        }
    }

    /// Adds another report's counts and examples.
    pub fn merge(&mut self, other: DiffReport) {
        self.records += other.records;
        self.changed += other.changed;
        for (key, count) in other.moves {
            *self.moves.entry(key).or_default() += count;
        }
        for (key, found) in other.examples {
            let examples = self.examples.entry(key).or_default();
            let room = EXAMPLES.saturating_sub(examples.len());
            examples.extend(found.into_iter().take(room));
        }
    }
}

/// A [`BatchSink`] that compares two versions on every batch and stores nothing, so any source
/// (files, a Kinesis stream, a failed location) can feed a shadow run.
#[derive(Debug, Clone)]
pub struct ShadowRun {
    before: Arc<WasmTransform>,
    after: Arc<WasmTransform>,
    config: PipelineConfig,
    report: Arc<Mutex<DiffReport>>,
}

impl ShadowRun {
    /// A shadow run of `before` against `after`.
    pub fn new(before: WasmTransform, after: WasmTransform, config: PipelineConfig) -> Self {
        Self {
            before: Arc::new(before),
            after: Arc::new(after),
            config,
            report: Arc::default(),
        }
    }

    /// What changed so far.
    pub fn report(&self) -> DiffReport {
        self.report.lock().expect("never poisoned").clone()
    }
}

impl BatchSink for ShadowRun {
    async fn handle_batch(&self, batch: Batch) -> BatchReport {
        let run = self.clone();
        let records = batch.records.len();
        // Transforming is CPU work: off the async workers, like the pipeline's.
        let diff = tokio::task::spawn_blocking(move || {
            let mut diff = DiffReport::default();
            diff.add(&batch, &run.before, &run.after, &run.config);
            diff
        })
        .await
        .expect("shadow runs do not panic");
        self.report.lock().expect("never poisoned").merge(diff);
        // Nothing is stored, and nothing needs retrying.
        BatchReport {
            records,
            ..BatchReport::default()
        }
    }
}

/// Each record's outcome: its partition path, `rejected <code>`, or `<error type> <code>`.
fn outcomes(batch: &Batch, sorted: &Sorted) -> Vec<String> {
    let mut outcomes = vec![String::new(); batch.records.len()];
    for group in &sorted.groups {
        for member in &group.members {
            outcomes[member.record] = group.partition.clone();
        }
    }
    for (record, failure) in &sorted.failures {
        outcomes[*record] = match failure.error_type {
            ErrorType::Rejected => format!("rejected {}", failure.code),
            other => format!("{other} {}", failure.code),
        };
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(moves: &[((&str, &str), usize)]) -> DiffReport {
        let mut report = DiffReport::default();
        for ((old, new), count) in moves {
            let key = (old.to_string(), new.to_string());
            report.records += count;
            report.changed += count;
            report.moves.insert(key.clone(), *count);
            let examples = (0..*count).map(|i| format!("{old}-{i}")).take(EXAMPLES);
            report.examples.insert(key, examples.collect());
        }
        report
    }

    #[test]
    fn merging_sums_counts_and_keeps_a_few_examples() {
        let mut total = report(&[(("a", "b"), 2)]);
        total.merge(report(&[(("a", "b"), 5), (("c", "d"), 1)]));
        assert_eq!((total.records, total.changed), (8, 8));
        let ab = ("a".to_string(), "b".to_string());
        assert_eq!(total.moves[&ab], 7);
        assert_eq!(total.examples[&ab], ["a-0", "a-1", "a-0"]);
        assert_eq!(total.moves.len(), 2);
    }
}
