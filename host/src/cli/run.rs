//! `weir run`: ingest files, directories or stdin into the lake.

use super::TransformOptions;
use crate::failure::ErrorType;
use crate::pipeline::{BatchReport, Pipeline, PipelineConfig};
use crate::record::Batch;
use crate::sequence::Position;
use crate::source::{BatchLimits, FileSource, Input, StdinSource};
use crate::storage::Store;
use crate::transform::WasmTransform;
use anyhow::Context;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    /// Files holding one JSON event, NDJSON files (.ndjson, .jsonl), directories (recursed), or
    /// `-` for NDJSON on stdin. Each argument is one source, like a shard.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<Input>,
    #[command(flatten)]
    transform: TransformOptions,
    /// The lake: a directory.
    #[arg(long)]
    lake: String,
    /// The failed location: a directory.
    #[arg(long)]
    failed: String,
    /// Records per batch at most (a batch is also capped at 6 MB, like a Lambda payload).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch_size: u32,
    /// On stdin, close a batch when no line has arrived for this many milliseconds.
    #[arg(long, default_value_t = 200)]
    batch_window_ms: u64,
    /// Gzip level of lake and failed objects (0-9).
    #[arg(long, default_value_t = crate::encode::DEFAULT_GZIP_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9))]
    gzip_level: u32,
}

/// Totals over all batches.
#[derive(Debug, Default)]
struct Totals {
    records: usize,
    stored: usize,
    failed: usize,
    objects: usize,
    failed_by_type: BTreeMap<ErrorType, usize>,
    /// Per source, the lowest position not stored.
    unstored: Vec<(String, Position, Vec<String>)>,
}

impl Totals {
    fn add(&mut self, source: &str, report: BatchReport) {
        self.records += report.records;
        self.stored += report.stored;
        self.failed += report.failed;
        self.objects += report.objects;
        for (error_type, count) in report.failed_by_type {
            *self.failed_by_type.entry(error_type).or_default() += count;
        }
        if let Some(position) = report.unstored {
            self.unstored
                .push((source.to_owned(), position, report.store_errors));
        }
    }
}

pub(super) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let transform = args.transform.load()?;
    let config = PipelineConfig {
        max_record_bytes: args.transform.max_record_bytes,
        gzip_level: args.gzip_level,
        ..PipelineConfig::default()
    };
    let open = |what, location: &str| {
        Store::open(location)
            .map(Arc::new)
            .with_context(|| format!("cannot open the {what} {location:?}"))
    };
    let pipeline = Pipeline {
        lake: open("lake", &args.lake)?,
        failed: open("failed location", &args.failed)?,
        config,
    };
    let limits = BatchLimits {
        max_records: args.batch_size as usize,
        window: Duration::from_millis(args.batch_window_ms),
        ..BatchLimits::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let totals = runtime.block_on(ingest(&args.input, &transform, &pipeline, &limits))?;

    let mut summary = format!(
        "{} records: {} stored, {} failed",
        totals.records, totals.stored, totals.failed
    );
    if !totals.failed_by_type.is_empty() {
        let by_type: Vec<String> = totals
            .failed_by_type
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        summary.push_str(&format!(" ({})", by_type.join(", ")));
    }
    summary.push_str(&format!(
        ", {} objects, {:.2?}",
        totals.objects,
        started.elapsed()
    ));
    println!("{summary}");
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

async fn ingest(
    inputs: &[Input],
    transform: &WasmTransform,
    pipeline: &Pipeline,
    limits: &BatchLimits,
) -> anyhow::Result<Totals> {
    let mut totals = Totals::default();
    let process = async |batch: Batch, totals: &mut Totals| {
        let mut session = transform.session();
        let report = pipeline.process(&batch, &mut session, transform.id()).await;
        totals.add(&batch.source, report);
    };
    for input in inputs {
        match input {
            Input::Path(path) => {
                let mut source = FileSource::open(path)?;
                while let Some(batch) = source.next_batch(limits)? {
                    process(batch, &mut totals).await;
                }
            }
            Input::Stdin => {
                let mut source = StdinSource::open();
                while let Some(batch) = source
                    .next_batch(limits)
                    .await
                    .context("cannot read stdin")?
                {
                    process(batch, &mut totals).await;
                }
            }
        }
    }
    Ok(totals)
}
