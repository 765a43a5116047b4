//! `weir run`: ingest files, directories, stdin or a Kinesis stream into the lake.

use super::TransformOptions;
use crate::batch::handler::Handler;
use crate::batch::pipeline::{BatchReport, PipelineConfig};
use crate::source::failure::ErrorType;
use crate::source::sequence::Position;
use crate::source::{
    BatchLimits, Checkpoints, FileSource, Input, PollOptions, StartAt, StdinSource, poll_stream,
};
use crate::storage::Store;
use anyhow::Context;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    /// Files holding one JSON event, NDJSON files (.ndjson, .jsonl), directories (recursed),
    /// `-` for NDJSON on stdin, or kinesis://STREAM. Each argument is one source, like a shard.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<Input>,
    #[command(flatten)]
    transform: TransformOptions,
    /// The lake: a directory or s3://bucket/prefix.
    #[arg(long)]
    lake: String,
    /// The failed location: a directory or s3://bucket/prefix.
    #[arg(long)]
    failed: String,
    /// Records per batch at most. The default is the largest batch a Lambda receives: fewer,
    /// larger objects. Above it a batch is larger than any invocation's (the cost model replays
    /// invocations of gzip frames, which expand past 10,000 records, that way).
    #[arg(long, default_value_t = crate::source::MAX_BATCH_RECORDS as u32, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    batch_size: u32,
    /// Record bytes per batch at most: by default 6 MiB, like a Lambda payload.
    #[arg(long, default_value_t = crate::source::MAX_BATCH_BYTES as u64, value_parser = clap::value_parser!(u64).range(1..=(1 << 30)))]
    batch_bytes: u64,
    /// On stdin, close a batch when no line has arrived for this many milliseconds.
    #[arg(long, default_value_t = 200)]
    batch_window_ms: u64,
    /// How lake objects are encoded: gzip'd NDJSON or Parquet (failed records stay NDJSON).
    #[arg(long, value_enum, default_value_t = crate::lake::format::Format::Json)]
    format: crate::lake::format::Format,
    /// Gzip level of NDJSON objects (0-9).
    #[arg(long, default_value_t = crate::lake::encode::DEFAULT_GZIP_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9))]
    gzip_level: u32,
    /// Objects written at once.
    #[arg(long, default_value_t = PipelineConfig::default().store_concurrency)]
    store_concurrency: usize,
    /// Kinesis: where shards start when there is no checkpoint yet.
    #[arg(long, value_enum, default_value_t = StartAt::TrimHorizon)]
    from: StartAt,
    /// Kinesis: keep each shard's checkpoint in this directory or s3://bucket/prefix (one small
    /// JSON object per shard, written after each batch is stored) and resume from it on start.
    #[arg(long)]
    checkpoint: Option<String>,
    /// Kinesis: stop once every shard is read to its tip, instead of polling forever.
    #[arg(long)]
    stop_when_idle: bool,
    /// Print one CloudWatch Embedded Metric Format line per batch on stdout.
    #[arg(long)]
    metrics: bool,
    /// Register every table and partition written in this catalog: glue://DATABASE.
    #[arg(long)]
    catalog: Option<String>,
}

/// How long `weir run` waits, at its end, for the catalog to register what it wrote (through
/// retries due within it).
const CATALOG_FLUSH: Duration = Duration::from_secs(30);

/// Totals over all batches.
#[derive(Debug, Default)]
struct Totals {
    records: usize,
    stored: usize,
    failed: usize,
    deduplicated: usize,
    objects: usize,
    failed_by_type: BTreeMap<ErrorType, usize>,
    /// Per source, the lowest position not stored.
    unstored: Vec<(String, Position, Vec<String>)>,
}

impl Totals {
    fn add(&mut self, source: &str, report: &BatchReport) {
        self.records += report.records;
        self.stored += report.stored;
        self.failed += report.failed;
        self.deduplicated += report.deduplicated;
        self.objects += report.objects;
        for (error_type, count) in &report.failed_by_type {
            *self.failed_by_type.entry(*error_type).or_default() += count;
        }
        if let Some(position) = &report.unstored {
            self.unstored.push((
                source.to_owned(),
                position.clone(),
                report.store_errors.clone(),
            ));
        }
    }

    /// A batch of the Kinesis poller: it retries unstored records itself and fails the run
    /// only when retries run out, so a batch's unstored position is not the run's.
    fn add_retried(&mut self, source: &str, report: &BatchReport) {
        let unstored = self.unstored.len();
        self.add(source, report);
        self.unstored.truncate(unstored);
    }

    fn summary(&self, elapsed: Duration) -> String {
        let mut summary = format!(
            "{} records: {} stored, {} failed",
            self.records, self.stored, self.failed
        );
        if !self.failed_by_type.is_empty() {
            let by_type: Vec<String> = self
                .failed_by_type
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect();
            summary.push_str(&format!(" ({})", by_type.join(", ")));
        }
        if self.deduplicated > 0 {
            summary.push_str(&format!(", {} stored before", self.deduplicated));
        }
        summary.push_str(&format!(", {} objects, {elapsed:.2?}", self.objects));
        summary
    }
}

pub(super) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let transform = args.transform.active().await?;
    let config = PipelineConfig {
        max_record_bytes: args.transform.max_record_bytes,
        gzip_level: args.gzip_level,
        format: args.format,
        store_concurrency: args.store_concurrency.max(1),
        ..PipelineConfig::default()
    };
    let mut pipeline = crate::app::pipeline(&args.lake, &args.failed, config).await?;
    if let Some(uri) = &args.catalog {
        pipeline.catalog = Some(crate::app::catalog(uri, &args.lake).await?);
    }
    let handler = Handler::new(pipeline, Arc::new(transform), args.metrics);
    let limits = BatchLimits {
        max_records: args.batch_size as usize,
        max_bytes: args.batch_bytes as usize,
        window: Duration::from_millis(args.batch_window_ms),
    };
    let checkpoint_store = match &args.checkpoint {
        Some(location) => {
            Some(Arc::new(Store::open(location).await.with_context(
                || format!("cannot open the checkpoint location {location}"),
            )?))
        }
        None => None,
    };
    let totals = Arc::new(Mutex::new(Totals::default()));
    let record = {
        let totals = Arc::clone(&totals);
        move |source: &str, report: &BatchReport| {
            totals
                .lock()
                .expect("totals are never poisoned")
                .add(source, report)
        }
    };
    for input in &args.input {
        match input {
            Input::Path(path) => {
                let mut source = FileSource::open(path)?;
                while let Some(batch) = source.next_batch(&limits)? {
                    let label = batch.source.clone();
                    record(&label, &handler.handle_batch(batch).await);
                }
            }
            Input::Stdin => {
                let mut source = StdinSource::open();
                while let Some(batch) = source
                    .next_batch(&limits)
                    .await
                    .context("cannot read stdin")?
                {
                    let label = batch.source.clone();
                    record(&label, &handler.handle_batch(batch).await);
                }
            }
            Input::Kinesis(stream) => {
                let options = PollOptions {
                    start_at: args.from,
                    stop_when_idle: args.stop_when_idle,
                    limits,
                    idle_poll: Duration::from_millis(500),
                    max_store_attempts: 10,
                };
                let client = crate::aws::kinesis_client().await;
                let mut checkpoints = Checkpoints::new(checkpoint_store.clone(), stream);
                // A durable checkpoint location also holds the stream's exactly-once ledger.
                let handler = match &args.checkpoint {
                    Some(location) => {
                        // Commits not deferred: the poller's checkpoint follows them.
                        let ledger = Arc::new(
                            crate::app::ledger(&Checkpoints::ledger_location(location, stream), 1)
                                .await?,
                        );
                        checkpoints = checkpoints.with_ledger(Arc::clone(&ledger));
                        handler.with_ledger(ledger)
                    }
                    None => handler.clone(),
                };
                let totals = Arc::clone(&totals);
                let record = move |source: &str, report: &BatchReport| {
                    totals
                        .lock()
                        .expect("totals are never poisoned")
                        .add_retried(source, report)
                };
                poll_stream(&client, stream, &handler, &checkpoints, options, record)
                    .await
                    .with_context(|| format!("cannot read kinesis://{stream}"))?;
            }
        }
    }

    let catalog = handler.flush_catalog(CATALOG_FLUSH).await;
    let totals = totals.lock().expect("totals are never poisoned");
    // With --metrics, stdout carries EMF lines; the summary goes with the logs.
    let mut summary = totals.summary(started.elapsed());
    if let (Some(stats), Some(uri)) = (catalog, &args.catalog) {
        summary.push_str(&format!(
            "\ncatalog {uri}: {} partitions registered, {} pending, {} failed calls",
            stats.registered, stats.pending, stats.errors
        ));
        if stats.pending > 0 {
            summary.push_str(
                " (the pending ones are registered by `weir catalog sync` or the next compaction)",
            );
        }
    }
    if args.metrics {
        eprintln!("{summary}")
    } else {
        println!("{summary}")
    }
    if totals.unstored.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for (source, position, errors) in &totals.unstored {
        eprintln!(
            "weir: {source}: records from position {position} on were not stored: {}",
            errors.join("; ")
        );
    }
    Ok(ExitCode::FAILURE)
}
