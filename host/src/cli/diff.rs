//! `weir diff`: a shadow run of two transform versions over the same events.

use crate::diff::DiffReport;
use crate::pipeline::PipelineConfig;
use crate::source::{BatchLimits, FileSource};
use crate::transform::TransformLimits;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Events: files or directories, read as `weir run` reads them.
    #[arg(long, required = true, num_args = 1..)]
    input: Vec<PathBuf>,
}

pub(super) async fn diff(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let limits = TransformLimits::default();
    // NAME@VERSION comes from the registry; anything else is a module path (or s3:// key), so a
    // candidate can be compared before it is published.
    let load = async |spec: &str| match args.registry.as_deref().filter(|_| spec.contains('@')) {
        Some(registry) => crate::app::load_from_registry(registry, spec, limits).await,
        None => crate::app::load_transform(spec, limits).await,
    };
    let before = load(&args.from).await?;
    let after = load(&args.to).await?;
    let config = PipelineConfig::default();
    let mut report = DiffReport::default();
    for input in &args.input {
        let mut source = FileSource::open(input)?;
        while let Some(batch) = source.next_batch(&BatchLimits::default())? {
            report.add(&batch, &before, &after, &config);
        }
    }
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
