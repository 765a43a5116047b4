//! `weir repartition`: a table's records through a transform version, into its table.

use super::{ProgressBar, TransformOptions};
use crate::batch::handler::Handler;
use crate::batch::pipeline::PipelineConfig;
use crate::registry::repartition::repartition;
use crate::storage::Store;
use anyhow::Context;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub(super) struct RepartitionArgs {
    /// The lake: a directory or s3://bucket/prefix.
    #[arg(long)]
    lake: String,
    /// The table to read (a folder under the lake); `.` for a lake written before tables,
    /// whose partitions sit at its root.
    #[arg(long)]
    from: String,
    #[command(flatten)]
    transform: TransformOptions,
    /// Where records the version refuses go.
    #[arg(long)]
    failed: String,
    /// How the new table's objects are encoded (its descriptor must agree).
    #[arg(long, value_enum, default_value_t = crate::lake::format::Format::Json)]
    format: crate::lake::format::Format,
    /// Once every record is in the new table (or the failed location), delete the old table's
    /// objects and descriptor.
    #[arg(long)]
    remove_old: bool,
}

pub(super) async fn repartition_command(args: RepartitionArgs) -> anyhow::Result<ExitCode> {
    let transform = args.transform.active().await?;
    let config = PipelineConfig {
        max_record_bytes: args.transform.max_record_bytes,
        format: args.format,
        ..PipelineConfig::default()
    };
    let pipeline = crate::app::pipeline(&args.lake, &args.failed, config).await?;
    let lake = Store::open(&args.lake)
        .await
        .with_context(|| format!("cannot open {}", args.lake))?;
    let handler = Handler::new(pipeline, Arc::new(transform), false);
    let bar = ProgressBar::new("repartitioning");
    let summary = repartition(
        &lake,
        &handler,
        &args.from,
        args.remove_old,
        |done, total| bar.show(done, total),
    )
    .await?;
    bar.finish();
    let to = handler.transform().current().await;
    let to = to.table().map_or("", |t| t.name.as_str());
    println!(
        "{} records from {} objects of {} ({} objects done before): {} now in {to}, {} failed{}",
        summary.records,
        summary.objects - summary.already_done,
        args.from,
        summary.already_done,
        summary.stored,
        summary.failed,
        if args.remove_old {
            format!(", {} old objects removed", summary.removed)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
