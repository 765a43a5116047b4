//! The `weir` command line.

mod catalog;
mod check;
mod compact;
mod diff;
mod repartition;
mod replay;
mod run;
mod send;
mod transform;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Weir: streaming ingest from events to a partitioned data lake, with sandboxed wasm transforms.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ingest events into the lake; failed records go to the failed location.
    Run(run::RunArgs),
    /// Show what a transform decides for each event, one JSON line per event.
    Check(check::CheckArgs),
    /// Send events from files to a Kinesis stream (PutRecords, retrying refused entries).
    Send(send::SendArgs),
    /// Compare two transform versions over the same events, writing nothing.
    Diff(diff::DiffArgs),
    /// Run failed records again through a (new) transform version.
    Replay(replay::ReplayArgs),
    /// Move a table's records into a transform version's table (after a partitioning change).
    Repartition(repartition::RepartitionArgs),
    /// Publish, list, activate, roll back and show transform versions in a registry.
    Transform(transform::TransformArgs),
    /// Merge the per-batch objects of closed partitions into few large ones.
    Compact(compact::CompactArgs),
    /// Register the lake in the Glue Data Catalog, or print Athena DDL with projection.
    Catalog(catalog::CatalogArgs),
}

/// Parses the arguments, runs the command and prints any error with its whole chain.
pub fn main() -> ExitCode {
    crate::logging::init_cli();
    let cli = Cli::parse();
    let result = tokio::runtime::Runtime::new()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                match cli.command {
                    Command::Run(args) => run::run(args).await,
                    Command::Check(args) => check::check(args).await,
                    Command::Send(args) => send::send(args).await,
                    Command::Transform(args) => transform::transform(args).await,
                    Command::Replay(args) => replay::replay_command(args).await,
                    Command::Repartition(args) => repartition::repartition_command(args).await,
                    Command::Diff(args) => diff::diff(args).await,
                    Command::Compact(args) => compact::compact_command(args).await,
                    Command::Catalog(args) => catalog::catalog_command(args).await,
                }
            })
        });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("weir: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Options shared by every command that runs a transform.
#[derive(Debug, clap::Args)]
struct TransformOptions {
    /// The transform module (`.wasm`, built with weir-guest-sdk): a path or s3://bucket/key;
    /// with --registry, NAME (its active version) or NAME@VERSION.
    #[arg(long)]
    transform: String,
    /// A transform registry (a directory or s3://bucket/prefix) to load --transform from.
    #[arg(long)]
    registry: Option<String>,
    /// With --registry and a bare NAME: re-read the active version every this many seconds and
    /// switch to it between batches.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    refresh: u64,
    /// CPU budget per record, in fuel units (about one per wasm instruction).
    #[arg(long, default_value_t = crate::transform::TransformLimits::default().fuel_per_record)]
    fuel_per_record: u64,
    /// Memory cap per transform instance, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// Wall-clock limit per record, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    deadline_ms: u64,
    /// Records larger than this many bytes go to the failed location untransformed.
    #[arg(long, default_value_t = crate::batch::pipeline::PipelineConfig::default().max_record_bytes)]
    max_record_bytes: usize,
}

impl TransformOptions {
    /// The transform, followed in its registry when one is given.
    async fn active(&self) -> anyhow::Result<crate::registry::active::ActiveTransform> {
        let refresh = std::time::Duration::from_secs(self.refresh);
        Ok(crate::app::active_transform(
            self.registry.as_deref(),
            &self.transform,
            self.limits(),
            refresh,
        )
        .await?)
    }

    /// The transform as loaded now.
    async fn load(&self) -> anyhow::Result<crate::transform::WasmTransform> {
        Ok(crate::app::transform(self.registry.as_deref(), &self.transform, self.limits()).await?)
    }

    fn limits(&self) -> crate::transform::TransformLimits {
        crate::transform::TransformLimits {
            fuel_per_record: self.fuel_per_record,
            memory_bytes: self.memory_mib << 20,
            deadline: std::time::Duration::from_millis(self.deadline_ms),
            ..Default::default()
        }
    }
}

/// A progress bar on stderr, drawn only when stderr is a terminal:
/// `replaying [#########                     ] 3/10 objects`.
struct ProgressBar {
    verb: &'static str,
    terminal: bool,
}

impl ProgressBar {
    fn new(verb: &'static str) -> Self {
        use std::io::IsTerminal;
        Self {
            verb,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, done: usize, total: usize) {
        if self.terminal {
            let width = 30;
            let filled = (done * width).checked_div(total).unwrap_or(width);
            eprint!(
                "\r{} [{}{}] {done}/{total} objects",
                self.verb,
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
        }
    }

    fn finish(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}
