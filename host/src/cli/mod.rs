//! The `weir` command line.

mod check;
mod run;

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
}

/// Parses the arguments, runs the command and prints any error with its whole chain.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::check(args),
    };
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
    /// The transform module (`.wasm`), built with weir-guest-sdk.
    #[arg(long)]
    transform: std::path::PathBuf,
    /// CPU budget per record, in fuel units (about one per wasm instruction).
    #[arg(long, default_value_t = crate::transform::TransformLimits::default().fuel_per_record)]
    fuel_per_record: u64,
    /// Memory cap per transform instance, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// Records larger than this many bytes go to the failed location untransformed.
    #[arg(long, default_value_t = crate::pipeline::PipelineConfig::default().max_record_bytes)]
    max_record_bytes: usize,
}

impl TransformOptions {
    fn load(&self) -> anyhow::Result<crate::transform::WasmTransform> {
        use anyhow::Context;
        let limits = crate::transform::TransformLimits {
            fuel_per_record: self.fuel_per_record,
            memory_bytes: self.memory_mib << 20,
            ..Default::default()
        };
        crate::transform::WasmTransform::load(&self.transform, limits)
            .with_context(|| format!("cannot load transform {}", self.transform.display()))
    }
}
