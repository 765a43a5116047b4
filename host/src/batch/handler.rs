//! The batch handler every deployment mode shares: the Lambda, the Kinesis shard poller and
//! `weir run` on files all hand it batches and act on its answer.

use crate::batch::metrics::{emf_counts, emf_line};
use crate::batch::pipeline::{BatchReport, Pipeline};
use crate::catalog::CatalogStats;
use crate::registry::active::ActiveTransform;
use crate::source::kinesis::{KinesisEvent, batches_from_event};
use crate::source::record::Batch;
use crate::source::sequence::InvalidSequenceNumber;

use aws_lambda_events::event::streams::KinesisEventResponse;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where sources hand their batches: the [`Handler`], or a shadow run that stores nothing.
pub trait BatchSink: Clone + Send + Sync + 'static {
    /// Processes one source's batch; the report's `unstored` is where to resume from.
    fn handle_batch(&self, batch: Batch) -> impl Future<Output = BatchReport> + Send;
}

impl BatchSink for Handler {
    fn handle_batch(&self, batch: Batch) -> impl Future<Output = BatchReport> + Send {
        Handler::handle_batch(self, batch)
    }
}

/// How long a Lambda invocation gives the catalog to register what its batches wrote, before
/// it returns (what is left is registered during the next invocation, or by compaction).
pub const CATALOG_BUDGET: Duration = Duration::from_secs(2);

/// Runs batches through the pipeline with the active transform.
#[derive(Debug, Clone)]
pub struct Handler {
    pipeline: Pipeline,
    transform: Arc<ActiveTransform>,
    emit_metrics: bool,
    /// The catalog counters last reported as metrics.
    catalog_reported: Arc<Mutex<CatalogStats>>,
}

impl Handler {
    /// A handler; `emit_metrics` prints one CloudWatch EMF line per batch on stdout.
    pub fn new(pipeline: Pipeline, transform: Arc<ActiveTransform>, emit_metrics: bool) -> Self {
        Self {
            pipeline,
            transform,
            emit_metrics,
            catalog_reported: Arc::default(),
        }
    }

    /// The same handler, storing batches exactly once through `ledger`.
    pub fn with_ledger(&self, ledger: Arc<crate::batch::ledger::Ledger>) -> Self {
        let mut handler = self.clone();
        handler.pipeline.ledger = Some(ledger);
        handler
    }

    /// The transform source.
    pub fn transform(&self) -> &ActiveTransform {
        &self.transform
    }

    /// Processes one source's batch; the report's `unstored` is where to resume from.
    pub async fn handle_batch(&self, batch: Batch) -> BatchReport {
        let transform = self.transform.current().await;
        let report = self.pipeline.process(batch, &transform).await;
        let load_failures = self.transform.take_load_failures();
        if self.emit_metrics {
            let now = crate::source::record::now().unix_millis();
            println!(
                "{}",
                emf_line(&report, &transform.id().name, load_failures, now)
            );
        }
        report
    }

    /// A Lambda invocation: every record is stored in the lake or the failed bucket, or its
    /// shard's lowest unstored sequence number is reported so Lambda retries from there.
    pub async fn handle_event(
        &self,
        event: KinesisEvent,
    ) -> Result<KinesisEventResponse, InvalidSequenceNumber> {
        let mut response = KinesisEventResponse::default();
        for batch in batches_from_event(event)? {
            let source = batch.source.clone();
            let report = self.handle_batch(batch).await;
            if let Some(position) = report.unstored {
                tracing::warn!(shard = %source, sequence_number = %position, errors = ?report.store_errors, "records not stored; reporting for retry");
                response.add_failure(position.sequence_number());
            }
        }
        self.flush_catalog(CATALOG_BUDGET).await;
        Ok(response)
    }

    /// Gives the catalog up to `budget` to register what was noted, then reports its counters
    /// (registered and failed since the last report, pending now) as metrics.
    pub async fn flush_catalog(&self, budget: Duration) -> Option<CatalogStats> {
        let catalog = self.pipeline.catalog.as_ref()?;
        catalog.flush(budget).await;
        let now = catalog.stats();
        let before = std::mem::replace(
            &mut *self.catalog_reported.lock().expect("not poisoned"),
            now,
        );
        if self.emit_metrics {
            let counts = [
                (
                    "CatalogPartitionsRegistered",
                    (now.registered - before.registered) as f64,
                ),
                ("CatalogErrors", (now.errors - before.errors) as f64),
                ("CatalogPending", now.pending as f64),
            ];
            let millis = crate::source::record::now().unix_millis();
            println!(
                "{}",
                emf_counts(("Database", catalog.database()), &counts, millis)
            );
        }
        Some(now)
    }
}
