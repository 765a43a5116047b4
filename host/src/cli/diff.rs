//! `weir diff`: a shadow run of two transform versions over the same events.

use crate::batch::handler::BatchSink;
use crate::batch::pipeline::PipelineConfig;
use crate::registry::diff::ShadowRun;
use crate::registry::replay::original_batches;
use crate::source::{
    BatchLimits, Checkpoints, FileSource, Input, PollOptions, StartAt, poll_stream,
};
use crate::storage::Store;
use crate::transform::TransformLimits;
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(super) struct DiffArgs {
    /// The version running now: NAME@VERSION from --registry, or a module path.
    #[arg(long)]
    from: String,
    /// The candidate: NAME@VERSION from --registry, or a module path (not yet published).
    #[arg(long)]
    to: String,
    /// A transform registry (a directory or s3://bucket/prefix).
    #[arg(long)]
    registry: Option<String>,
    /// Events: files or directories (read as `weir run` reads them), kinesis://STREAM (read
    /// from its oldest record to its tip), or a failed location (s3://bucket/prefix, or a
    /// directory of `error_type=` folders) whose records are compared by their original bytes.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<String>,
}

pub(super) async fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let limits = TransformLimits::default();
    // NAME@VERSION comes from the registry; anything else is a module path (or s3:// key), so a
    // candidate can be compared before it is published.
    let load = async |spec: &str| match args.registry.as_deref().filter(|_| spec.contains('@')) {
        Some(registry) => crate::app::load_from_registry(registry, spec, limits).await,
        None => crate::app::load_transform(spec, limits).await,
    };
    let (from, to) = (load(&args.from).await?, load(&args.to).await?);
    println!("{}", layout_note(&from, &to, &args.from, &args.to));
    let shadow = ShadowRun::new(from, to, PipelineConfig::default());
    for input in &args.input {
        read(input, &shadow)
            .await
            .with_context(|| format!("cannot read {input}"))?;
    }
    let report = shadow.report();
    println!(
        "{} records, {} change outcome ({} -> {})",
        report.records, report.changed, args.from, args.to
    );
    for ((old, new), count) in &report.moves {
        println!("  {count:>6}  {old}  ->  {new}");
        for example in &report.examples[&(old.clone(), new.clone())] {
            println!("            e.g. {example}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Feeds every batch of one `--input` to the shadow run.
async fn read(input: &str, shadow: &ShadowRun) -> anyhow::Result<()> {
    if is_failed_location(input) {
        let failed = Store::open(input).await?;
        for key in failed.list("error_type=").await? {
            for batch in original_batches(&key, &failed.get(&key).await?)? {
                shadow.handle_batch(batch).await;
            }
        }
        return Ok(());
    }
    match input.parse::<Input>()? {
        Input::Path(path) => {
            let mut source = FileSource::open(&path)?;
            while let Some(batch) = source.next_batch(&BatchLimits::default())? {
                shadow.handle_batch(batch).await;
            }
        }
        Input::Kinesis(stream) => {
            let options = PollOptions {
                start_at: StartAt::TrimHorizon,
                stop_when_idle: true,
                limits: BatchLimits::default(),
                idle_poll: Duration::from_millis(500),
                max_store_attempts: 1,
            };
            let client = crate::aws::kinesis_client().await;
            // From the oldest record, every time: a shadow run keeps no checkpoint.
            let checkpoints = Checkpoints::new(None, &stream);
            poll_stream(&client, &stream, shadow, &checkpoints, options, |_, _| {}).await?;
        }
        Input::Stdin => anyhow::bail!("a shadow run reads files, streams or failed locations"),
    }
    Ok(())
}

/// Weir reads events from S3 only as failed records, and a local failed location is a
/// directory of `error_type=` folders.
fn is_failed_location(input: &str) -> bool {
    input.starts_with("s3://")
        || std::fs::read_dir(Path::new(input)).is_ok_and(|mut entries| {
            entries.any(|e| {
                e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("error_type="))
            })
        })
}

/// Whether the two versions write the same table layout: a new one is said first, loudly.
fn layout_note(
    from: &crate::transform::WasmTransform,
    to: &crate::transform::WasmTransform,
    from_name: &str,
    to_name: &str,
) -> String {
    let columns = |t: &crate::transform::WasmTransform| {
        t.table().map_or_else(
            || "no declared columns (the lake root)".to_owned(),
            |table| format!("({})", table.columns_text()),
        )
    };
    let (old, new) = (columns(from), columns(to));
    if old == new {
        format!("same partition columns {new}: published, {to_name} writes the same table")
    } else {
        format!(
            "NEW TABLE: {to_name} partitions by {new}, {from_name} by {old}. Published, it writes \
             a new table; the old one keeps its records (move them with `weir repartition`)."
        )
    }
}
