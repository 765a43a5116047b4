//! The batch pipeline: check -> transform -> partition ([`crate::batch::sort`]) -> encode -> store ->
//! report.
//!
//! Every record of a batch ends in exactly one place: a lake object, a failed object, or (when
//! storing fails) the report's lowest unstored position, which the caller retries from. Record
//! failures are data; only storage problems make a batch incomplete.

pub use crate::batch::config::PipelineConfig;
use crate::batch::ledger::Ledger;
use crate::batch::sort::{Sorted, transform_batch};
use crate::batch::tables::{Admission, Tables};
use crate::catalog::Catalog;
use crate::lake::encode;
use crate::lake::envelope::Envelope;
use crate::lake::format::Format;
use crate::lake::object::{self, Destination, Object};
use crate::source::failure::{ErrorType, Failure};
use crate::source::record::Batch;
use crate::source::sequence::Position;
use crate::storage::Store;
use crate::transform::WasmTransform;
use crate::transform::{RecordTransform, TransformId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// What happened to a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Records in the batch.
    pub records: usize,
    /// Records durably stored in the lake.
    pub stored: usize,
    /// Records durably stored in the failed location.
    pub failed: usize,
    /// Failed records by class.
    pub failed_by_type: BTreeMap<ErrorType, usize>,
    /// Objects written.
    pub objects: usize,
    /// The lowest position not durably stored, if any: the caller must retry from it.
    pub unstored: Option<Position>,
    /// Why objects could not be stored.
    pub store_errors: Vec<String>,
    /// Time spent transforming, grouping and encoding.
    pub transform_time: Duration,
    /// Time spent storing.
    pub store_time: Duration,
    /// Records skipped because the ledger shows them stored already (a redelivery).
    pub deduplicated: usize,
    /// Objects of abandoned earlier attempts removed before this batch's were written.
    pub abandoned_objects: usize,
    /// Ledger reads and conditional writes this batch made, and HEADs of an open cut's objects.
    pub ledger_requests: usize,
    /// Whether the shard's ledger document was unusable, so this batch ran at least once.
    pub ledger_fallback: bool,
    /// The lake folders (`<table>/<partition path>`) that received an object.
    pub partitions: BTreeSet<String>,
    /// Parquet: the `metadata` fields of the lake objects prepared.
    pub metadata_fields: BTreeSet<String>,
}

/// A batch's objects, as [`encode_batch`] makes them.
#[derive(Debug, Default)]
pub struct Encoded {
    /// Lake and failed objects.
    pub objects: Vec<Object>,
    /// Parquet: the `metadata` fields of the lake objects (empty for NDJSON).
    pub metadata_fields: BTreeSet<String>,
}

/// Encodes the sorted batch: one lake object per partition (in `format`), one failed object per
/// error type and arrival date.
pub fn encode_batch(
    batch: &Batch,
    sorted: &Sorted,
    transform: &TransformId,
    gzip_level: u32,
    format: Format,
) -> Encoded {
    let mut objects = Vec::with_capacity(sorted.groups.len() + 1);
    let mut metadata_fields = BTreeSet::new();
    let mut ndjson = Vec::new();
    let mut gzip = encode::Gzip::new(gzip_level);
    let mut zstd = None;
    for group in &sorted.groups {
        let lines = group.members.iter().map(|member| match &member.body {
            Some(range) => &sorted.bodies[range.clone()],
            None => &batch.records[member.record].data[..],
        });
        let body = match format {
            Format::Json => {
                ndjson.clear();
                lines.for_each(|line| encode::push_line(&mut ndjson, line));
                gzip.compress(&ndjson)
            }
            Format::JsonZstd => {
                ndjson.clear();
                lines.for_each(|line| encode::push_line(&mut ndjson, line));
                zstd.get_or_insert_with(|| encode::Zstd::new(encode::DEFAULT_ZSTD_LEVEL))
                    .compress(&ndjson)
            }
            Format::Parquet => {
                let rows: Vec<_> = lines.map(crate::lake::event_row::split).collect();
                for fields in rows.iter().filter_map(|row| row.metadata.as_ref()) {
                    for (name, _) in fields {
                        if !metadata_fields.contains(name) {
                            metadata_fields.insert(name.clone());
                        }
                    }
                }
                crate::lake::parquet_file::write(&rows)
                    .expect("string columns of valid names always encode into memory")
            }
        };
        let indices = group.members.iter().map(|m| m.record);
        let (first, last) = span(batch, indices);
        let name = object::object_name(&batch.source, &first, &last, transform, format);
        objects.push(Object {
            destination: Destination::Lake,
            key: object::lake_key(sorted.table.as_deref(), &group.partition, &name),
            body: body.into(),
            format,
            first,
            last,
            records: group.members.len(),
            transform: transform.clone(),
        });
    }
    let mut by_type_and_day: BTreeMap<(ErrorType, String), Vec<&(usize, Failure)>> =
        BTreeMap::new();
    for failure in &sorted.failures {
        let day = batch.records[failure.0].arrival.utc_date();
        by_type_and_day
            .entry((failure.1.error_type, day))
            .or_default()
            .push(failure);
    }
    for ((error_type, day), failures) in by_type_and_day {
        ndjson.clear();
        for (i, failure) in &failures {
            let envelope = Envelope::new(&batch.records[*i], failure, &batch.source, transform);
            encode::push_line(&mut ndjson, &envelope.to_json());
        }
        let (first, last) = span(batch, failures.iter().map(|(i, _)| *i));
        let name = object::object_name(&batch.source, &first, &last, transform, Format::Json);
        objects.push(Object {
            destination: Destination::Failed,
            key: object::failed_key(error_type, &day, &name),
            body: gzip.compress(&ndjson).into(),
            format: Format::Json,
            first,
            last,
            records: failures.len(),
            transform: transform.clone(),
        });
    }
    Encoded {
        objects,
        metadata_fields,
    }
}

/// Lowest and highest position among the given records (there is at least one).
fn span(batch: &Batch, mut indices: impl Iterator<Item = usize>) -> (Position, Position) {
    let first = indices
        .next()
        .expect("a group or failure bucket holds at least one record");
    let start = &batch.records[first].position;
    let (low, high) = indices.fold((start, start), |(low, high), i| {
        let p = &batch.records[i].position;
        (low.min(p), high.max(p))
    });
    (low.clone(), high.clone())
}

/// Stores the objects, at most `concurrency` at a time, and reports the batch.
pub async fn store_batch(
    lake: &Arc<Store>,
    failed: &Arc<Store>,
    objects: Vec<Object>,
    records: usize,
    concurrency: usize,
) -> BatchReport {
    let mut report = BatchReport {
        records,
        ..BatchReport::default()
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut puts = tokio::task::JoinSet::new();
    for object in objects {
        let store = Arc::clone(match object.destination {
            Destination::Lake => lake,
            Destination::Failed => failed,
        });
        let permits = Arc::clone(&permits);
        puts.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let result = store.put(&object).await;
            (object, result)
        });
    }
    while let Some(joined) = puts.join_next().await {
        let (object, result) = joined.expect("object puts do not panic");
        match result {
            Ok(()) => {
                report.objects += 1;
                match object.destination {
                    Destination::Lake => {
                        report.stored += object.records;
                        if let Some((dir, _)) = object.key.rsplit_once('/') {
                            report.partitions.insert(dir.to_owned());
                        }
                    }
                    Destination::Failed => report.failed += object.records,
                }
            }
            Err(error) => {
                tracing::warn!(key = %object.key, first = %object.first, error = %error, "object not stored");
                report.store_errors.push(format!("{}: {error}", object.key));
                if report
                    .unstored
                    .as_ref()
                    .is_none_or(|lowest| object.first < *lowest)
                {
                    report.unstored = Some(object.first);
                }
            }
        }
    }
    report
}

/// The whole pipeline for one destination pair: what the CLI and the Lambda run per batch.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Where accepted records go.
    pub lake: Arc<Store>,
    /// Where failed records go.
    pub failed: Arc<Store>,
    /// Bounds and encoding.
    pub config: PipelineConfig,
    /// The exactly-once ledger of Kinesis shards, if batches are to be stored exactly once.
    pub ledger: Option<Arc<Ledger>>,
    /// The lake's table descriptors (None: no check, as for a `discard:` lake).
    pub tables: Option<Arc<Tables>>,
    /// The catalog the tables and partitions written are registered in, if any.
    pub catalog: Option<Catalog>,
}

/// A batch after the CPU stages: its objects, ready to store.
#[derive(Debug)]
pub struct Prepared {
    /// Lake and failed objects.
    pub objects: Vec<Object>,
    /// Records in the batch.
    pub records: usize,
    /// Failed records by class.
    pub failed_by_type: BTreeMap<ErrorType, usize>,
    /// Time spent transforming, grouping and encoding.
    pub transform_time: Duration,
    /// Parquet: the `metadata` fields of the lake objects.
    pub metadata_fields: BTreeSet<String>,
}

impl Pipeline {
    /// The CPU stages: transform, group, encode. Synchronous; see [`Pipeline::process`]. With a
    /// `refusal`, the table may not be written: accepted records go to the failed location.
    pub fn prepare(
        &self,
        batch: &Batch,
        transform: &mut dyn RecordTransform,
        id: &TransformId,
        refusal: Option<&str>,
    ) -> Prepared {
        let started = Instant::now();
        let mut sorted = transform_batch(batch, transform, &self.config);
        if let Some(reason) = refusal {
            sorted.refuse_table(reason);
        }
        let Encoded {
            objects,
            metadata_fields,
        } = encode_batch(
            batch,
            &sorted,
            id,
            self.config.gzip_level,
            self.config.format,
        );
        let mut failed_by_type = BTreeMap::new();
        for (_, failure) in &sorted.failures {
            *failed_by_type.entry(failure.error_type).or_default() += 1;
        }
        Prepared {
            objects,
            records: batch.records.len(),
            failed_by_type,
            transform_time: started.elapsed(),
            metadata_fields,
        }
    }

    /// Stores a prepared batch and reports what is durably stored.
    pub async fn store(&self, prepared: Prepared) -> BatchReport {
        let started = Instant::now();
        let concurrency = self.config.store_concurrency;
        let mut report = store_batch(
            &self.lake,
            &self.failed,
            prepared.objects,
            prepared.records,
            concurrency,
        )
        .await;
        report.failed_by_type = prepared.failed_by_type;
        report.transform_time = prepared.transform_time;
        report.metadata_fields = prepared.metadata_fields;
        report.store_time = started.elapsed();
        report
    }

    /// Processes one batch end to end with a wasm transform. The CPU stages run on the blocking
    /// pool, so the async runtime keeps serving I/O (other batches' puts, the Lambda runtime).
    pub async fn process(&self, batch: Batch, transform: &Arc<WasmTransform>) -> BatchReport {
        let span = tracing::info_span!(
            "batch",
            source = %batch.source,
            records = batch.records.len(),
            transform = %transform.id().short()
        );
        let refusal = match self.admit(transform).instrument(span.clone()).await {
            Ok(refusal) => refusal,
            Err(error) => return span.in_scope(|| not_admitted(&batch, &error)),
        };
        let report = match &self.ledger {
            Some(ledger) => {
                self.process_once(ledger, batch, transform, refusal.as_ref())
                    .instrument(span.clone())
                    .await
            }
            None => {
                // Without a ledger, deterministic keys make a retry of the same cut overwrite.
                let prepared = self
                    .prepare_blocking(Arc::new(batch), transform, refusal)
                    .instrument(span.clone())
                    .await;
                self.store(prepared).instrument(span.clone()).await
            }
        };
        if let (Some(catalog), Some(table)) = (&self.catalog, transform.table()) {
            let dirs = report.partitions.iter().map(String::as_str);
            catalog.note(table, self.config.format, dirs, &report.metadata_fields);
        }
        span.in_scope(|| {
            tracing::info!(
                stored = report.stored,
                failed = report.failed,
                deduplicated = report.deduplicated,
                objects = report.objects,
                unstored = ?report.unstored,
                "batch done"
            );
        });
        report
    }

    /// Asks the table guard whether the transform's table may be written; Some(reason) when it
    /// may not.
    async fn admit(&self, transform: &WasmTransform) -> Result<Option<Arc<str>>, String> {
        let (Some(tables), Some(table)) = (&self.tables, transform.table()) else {
            return Ok(None);
        };
        match tables
            .admit(table, self.config.format, transform.id())
            .await
        {
            Ok(Admission::Admitted) => Ok(None),
            Ok(Admission::Refused(reason)) => Ok(Some(reason.into())),
            Err(error) => Err(format!("table {}: {error}", table.name)),
        }
    }
}

/// A batch that stored nothing because its table's descriptor could not be read or written.
fn not_admitted(batch: &Batch, error: &str) -> BatchReport {
    tracing::warn!(
        error,
        "table descriptor unavailable; reporting the batch for retry"
    );
    BatchReport {
        records: batch.records.len(),
        unstored: batch.records.iter().map(|r| r.position.clone()).min(),
        store_errors: vec![error.to_owned()],
        ..BatchReport::default()
    }
}
