//! A batch stored exactly once: the pipeline's stages around the shard's [`Ledger`].
//!
//! ```text
//! read the ledger (cached) ∥ transform + encode the batch
//!   -> settle open cuts the batch overlaps or has passed (single lane: all objects stored?)
//!   -> skip records a committed cut holds; abandon overlapped attempts
//!   -> open the cut, committing finished ones (conditional PUT) -> delete abandoned objects
//!   -> write the cut's objects -> commit the cut (conditional PUT), or defer it to the next
//!      open -> report
//! ```
//!
//! A cut is committed whole or not at all: if anything fails, the report names the cut's first
//! record, so the event source mapping retries from there, and the retry (however it is cut)
//! finds this cut open, with an object missing, and replaces it.

use crate::batch::ledger::state::{ObjectRef, OpenCut, ShardState, Span};
use crate::batch::ledger::{Ledger, LedgerError, Snapshot};
use crate::batch::pipeline::{BatchReport, Pipeline, Prepared};
use crate::lake::object::Destination;
use crate::source::record::{Batch, Record, source_label};
use crate::source::sequence::Position;
use crate::transform::WasmTransform;
use std::sync::Arc;
use std::time::Instant;

/// Conditional writes retried after a conflict (another process wrote the document) before
/// the batch is reported for retry.
const CONFLICT_RETRIES: usize = 5;

impl Pipeline {
    /// Processes one batch exactly once into the lake (see the module doc).
    pub async fn process_once(
        &self,
        ledger: &Ledger,
        batch: Batch,
        transform: &Arc<WasmTransform>,
        refusal: Option<&Arc<str>>,
    ) -> BatchReport {
        // Shard ids repeat across streams: a stream's shards get ledgers of their own.
        let shard = match &batch.stream {
            Some(stream) => format!("{}/{}", source_label(stream), batch.source),
            None => batch.source.clone(),
        };
        let records = batch.records.len();
        let Some(lowest) = batch.records.iter().map(|r| r.position.clone()).min() else {
            return BatchReport::default();
        };
        let batch = Arc::new(batch);
        let (read, prepared) = tokio::join!(
            ledger.read(&shard),
            self.prepare_blocking(Arc::clone(&batch), transform, refusal.cloned())
        );
        let (mut snapshot, mut requests) = match read {
            Ok(read) => read,
            Err(error) => return unstored(records, lowest, &error, 1),
        };
        let fallback = snapshot.fallback.is_some();
        // The prepared objects, and which records were skipped when they were prepared.
        let mut prepared = Some((prepared, vec![false; records]));
        let mut attempt = 0;
        let highest = batch
            .records
            .iter()
            .map(|r| r.position.clone())
            .max()
            .expect("the batch has a lowest record");
        let (cut, kept, prepared) = loop {
            match self.settle(ledger, &shard, &snapshot.state, &highest).await {
                Ok(made) => requests += made,
                Err(error) => return unstored(records, lowest, &error, requests),
            }
            // Finished cuts are committed by this batch's open; incomplete ones it has passed
            // are dropped.
            let finished = ledger.finished(&shard);
            let mut working = snapshot.state.clone();
            for span in &finished {
                working.commit(span);
            }
            for span in ledger.incomplete_below(&shard, &lowest) {
                if working.drop_open(&span) {
                    tracing::warn!(shard, first = %span.first, last = %span.last, "the mapping moved past an open cut with an object missing (it gave the records up, or they were compacted since): dropping it from the ledger");
                }
            }
            let plan = working.plan(&batch.records);
            let kept: Vec<&Record> = batch
                .records
                .iter()
                .zip(&plan.stored)
                .filter(|(_, stored)| !**stored)
                .map(|(record, _)| record)
                .collect();
            if kept.is_empty() {
                tracing::info!(
                    shard,
                    records,
                    "every record is stored already: a redelivery"
                );
                return BatchReport {
                    records,
                    deduplicated: records,
                    ledger_requests: requests,
                    ledger_fallback: fallback,
                    ..BatchReport::default()
                };
            }
            // The CPU stages ran on the whole batch; redo them only for a partial redelivery.
            let ready = match prepared.take() {
                Some((ready, skipped)) if skipped == plan.stored => ready,
                _ => {
                    let rest = Batch {
                        source: batch.source.clone(),
                        stream: batch.stream.clone(),
                        records: kept.iter().map(|&r| r.clone()).collect(),
                    };
                    self.prepare_blocking(Arc::new(rest), transform, refusal.cloned())
                        .await
                }
            };
            let mut objects: Vec<ObjectRef> = ready
                .objects
                .iter()
                .map(|o| ObjectRef {
                    destination: o.destination,
                    key: o.key.clone(),
                })
                .collect();
            objects.sort();
            let cut = OpenCut {
                span: Span::of(&kept, ledger.multi_lane()),
                objects,
                garbage: Vec::new(),
                advances: false,
            };
            let mut next = working;
            next.open_cut(cut, &plan.abandoned);
            let cut = next.open.last().expect("open_cut pushes the cut").clone();
            requests += 1;
            match ledger.write(&shard, &snapshot, next).await {
                Ok(written) => {
                    ledger.forget_finished(&shard, &finished);
                    snapshot = written;
                    break (cut, kept.len(), ready);
                }
                Err(LedgerError::Conflict(_)) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    prepared = Some((ready, plan.stored));
                    requests += 1;
                    snapshot = match ledger.fetch(&shard).await {
                        Ok(fresh) => fresh,
                        Err(error) => return unstored(records, lowest, &error, requests),
                    };
                }
                Err(error) => return unstored(records, lowest, &error, requests),
            }
        };
        let first = cut.span.first.clone();
        let deleted = match self.delete_abandoned(&cut.garbage).await {
            Ok(deleted) => deleted,
            Err(error) => return unstored(records, first, &error, requests),
        };
        let mut report = self.store(prepared).await;
        report.records = records;
        report.deduplicated = records - kept;
        report.abandoned_objects = deleted;
        report.ledger_fallback = fallback;
        if report.unstored.is_none() && ledger.defers_commits() {
            ledger.note_finished(&shard, cut.span.clone());
        } else if report.unstored.is_none() {
            match self.commit(ledger, &shard, snapshot, &cut.span).await {
                Ok(made) => requests += made,
                Err((made, error)) => {
                    report.store_errors.push(error);
                    report.unstored = Some(first.clone());
                    requests += made;
                }
            }
        }
        if report.unstored.is_some() {
            // Nothing of an uncommitted cut counts as stored: it is retried whole.
            report.unstored = Some(first);
            report.stored = 0;
            report.failed = 0;
            report.failed_by_type.clear();
        }
        report.ledger_requests = requests;
        report
    }

    /// The CPU stages on the blocking pool.
    pub(crate) async fn prepare_blocking(
        &self,
        batch: Arc<Batch>,
        transform: &Arc<WasmTransform>,
        refusal: Option<Arc<str>>,
    ) -> Prepared {
        let (pipeline, transform) = (self.clone(), Arc::clone(transform));
        // Inside the caller's span, so the CPU stages' logs carry the batch's fields.
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let refusal = refusal.as_deref();
                pipeline.prepare(&batch, &mut transform.session(), transform.id(), refusal)
            })
        })
        .await
        .expect("the CPU stages do not panic")
    }

    /// Checks the single-lane open cuts a batch reaching up to `highest` overlaps or has
    /// passed, once each per process: a cut whose objects are all stored is finished (its
    /// answer went out, its commit deferred or lost; or its last write failed after storing),
    /// and is committed with the next open; one with an object missing is incomplete: a batch
    /// that overlaps it abandons it, one above it drops it. Returns the requests made (one
    /// HEAD per object).
    async fn settle(
        &self,
        ledger: &Ledger,
        shard: &str,
        state: &ShardState,
        highest: &Position,
    ) -> Result<usize, String> {
        ledger.prune_incomplete(shard, state);
        let mut requests = 0;
        for cut in state.unsettled(highest) {
            if ledger.checked(shard, &cut.span) {
                continue;
            }
            requests += cut.objects.len();
            if self.all_stored(&cut.objects).await? {
                tracing::info!(shard, first = %cut.span.first, last = %cut.span.last, "an open cut's objects are all stored: committing it");
                ledger.note_finished(shard, cut.span.clone());
            } else {
                ledger.note_incomplete(shard, cut.span.clone());
            }
        }
        Ok(requests)
    }

    /// Whether every one of `objects` is stored (HEADs, at once).
    async fn all_stored(&self, objects: &[ObjectRef]) -> Result<bool, String> {
        let mut heads = tokio::task::JoinSet::new();
        for object in objects {
            let store = Arc::clone(self.store_of(object.destination));
            let key = object.key.clone();
            heads.spawn(async move { store.exists(&key).await.map_err(|e| format!("{key}: {e}")) });
        }
        let mut all = true;
        while let Some(done) = heads.join_next().await {
            all &= done
                .expect("HEADs do not panic")
                .map_err(|e| format!("cannot check an open cut's objects: {e}"))?;
        }
        Ok(all)
    }

    fn store_of(&self, destination: Destination) -> &Arc<crate::storage::Store> {
        match destination {
            Destination::Lake => &self.lake,
            Destination::Failed => &self.failed,
        }
    }

    /// Removes the objects of abandoned attempts (a missing one is fine: delete is idempotent).
    async fn delete_abandoned(&self, garbage: &[ObjectRef]) -> Result<usize, String> {
        let mut deletes = tokio::task::JoinSet::new();
        for object in garbage {
            let store = Arc::clone(self.store_of(object.destination));
            let key = object.key.clone();
            deletes
                .spawn(async move { store.delete(&key).await.map_err(|e| format!("{key}: {e}")) });
        }
        let mut errors = Vec::new();
        while let Some(done) = deletes.join_next().await {
            if let Err(error) = done.expect("deletes do not panic") {
                errors.push(error);
            }
        }
        if errors.is_empty() {
            if !garbage.is_empty() {
                tracing::info!(
                    objects = garbage.len(),
                    "removed the objects of abandoned attempts"
                );
            }
            Ok(garbage.len())
        } else {
            Err(format!(
                "cannot remove abandoned objects: {}",
                errors.join("; ")
            ))
        }
    }

    /// Commits the cut, re-reading the document after conflicts. Returns the requests made.
    async fn commit(
        &self,
        ledger: &Ledger,
        shard: &str,
        mut snapshot: Snapshot,
        span: &Span,
    ) -> Result<usize, (usize, String)> {
        let started = Instant::now();
        let mut requests = 0;
        for _ in 0..=CONFLICT_RETRIES {
            let mut next = snapshot.state.clone();
            if !next.commit(span) {
                tracing::error!(shard, first = %span.first, last = %span.last, "another invocation took over this cut; reporting it for retry");
                return Err((
                    requests,
                    "the cut was taken over by another invocation".into(),
                ));
            }
            requests += 1;
            match ledger.write(shard, &snapshot, next).await {
                Ok(_) => {
                    tracing::debug!(shard, elapsed = ?started.elapsed(), "cut committed");
                    return Ok(requests);
                }
                Err(LedgerError::Conflict(_)) => {
                    requests += 1;
                    snapshot = ledger
                        .fetch(shard)
                        .await
                        .map_err(|e| (requests, e.to_string()))?;
                }
                Err(error) => return Err((requests, error.to_string())),
            }
        }
        Err((
            requests,
            format!("the ledger document of {shard} kept changing"),
        ))
    }
}

/// A batch that stored nothing: every record is to be retried from `lowest`.
fn unstored(
    records: usize,
    lowest: crate::source::sequence::Position,
    error: &dyn std::fmt::Display,
    requests: usize,
) -> BatchReport {
    tracing::warn!(error = %error, "ledger step failed; reporting the batch for retry");
    BatchReport {
        records,
        unstored: Some(lowest),
        store_errors: vec![error.to_string()],
        ledger_requests: requests,
        ..BatchReport::default()
    }
}
