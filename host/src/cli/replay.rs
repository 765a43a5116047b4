//! `weir replay`: failed records through a (new) transform version, into the lake.

use super::{ProgressBar, TransformOptions};
use crate::batch::handler::Handler;
use crate::batch::pipeline::PipelineConfig;
use crate::registry::replay::{ReplayFilter, replay};
use crate::storage::Store;
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub(super) struct ReplayArgs {
    /// The failed location to replay from (and where records that fail again go).
    #[arg(long)]
    failed: String,
    #[command(flatten)]
    transform: TransformOptions,
    /// The lake: a directory or s3://bucket/prefix.
    #[arg(long)]
    lake: String,
    /// Only failed records that arrived on or after this day (YYYY-MM-DD).
    #[arg(long)]
    since: Option<String>,
    /// Only these error types (repeatable), e.g. rejected, trap.
    #[arg(long = "error-type")]
    error_types: Vec<String>,
    /// How replayed records are encoded: the format of the table they go to.
    #[arg(long, value_enum, default_value_t = crate::lake::format::Format::Json)]
    format: crate::lake::format::Format,
}

pub(super) async fn replay_command(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let transform = args.transform.active().await?;
    let config = PipelineConfig {
        max_record_bytes: args.transform.max_record_bytes,
        format: args.format,
        ..PipelineConfig::default()
    };
    let pipeline = crate::app::pipeline(&args.lake, &args.failed, config).await?;
    let failed = Store::open(&args.failed)
        .await
        .with_context(|| format!("cannot open {}", args.failed))?;
    let handler = Handler::new(pipeline, Arc::new(transform), false);
    let filter = ReplayFilter {
        since: args.since,
        error_types: args.error_types,
    };
    let bar = ProgressBar::new("replaying");
    let summary = replay(&failed, &handler, &filter, |done, total| {
        bar.show(done, total)
    })
    .await?;
    bar.finish();
    println!(
        "{} records from {} failed objects: {} now in the lake, {} failed again ({} objects already judged by this version)",
        summary.records,
        summary.objects,
        summary.stored,
        summary.failed_again,
        summary.already_judged
    );
    Ok(ExitCode::SUCCESS)
}
