//! `weir check`: what a transform decides for each event, as JSON lines on stdout.
//!
//! Runs the very stages `weir run` runs (size check, transform, partition path), so what it
//! prints is what the lake would get.

use super::TransformOptions;
use crate::batch::pipeline::PipelineConfig;
use crate::batch::sort::transform_batch;
use crate::source::failure::ErrorType;
use crate::source::{BatchLimits, FileSource};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct CheckArgs {
    #[command(flatten)]
    transform: TransformOptions,
    /// Event files: one JSON event each, or NDJSON (.ndjson, .jsonl) for one event per line.
    #[arg(required = true)]
    events: Vec<PathBuf>,
}

pub(super) async fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let transform = args.transform.load().await?;
    let config = PipelineConfig {
        max_record_bytes: args.transform.max_record_bytes,
        ..PipelineConfig::default()
    };
    let mut out = std::io::stdout().lock();
    for path in &args.events {
        let mut source = FileSource::open(path)?;
        while let Some(batch) = source.next_batch(&BatchLimits::default())? {
            let sorted = transform_batch(&batch, &mut transform.session(), &config);
            let mut lines = vec![serde_json::Value::Null; batch.records.len()];
            for group in &sorted.groups {
                for member in &group.members {
                    let mut line = json!({"outcome": "accept", "partition": group.partition});
                    if let Some(body) = &member.body {
                        line["body"] = String::from_utf8_lossy(&sorted.bodies[body.clone()]).into();
                    }
                    lines[member.record] = line;
                }
            }
            for (record, failure) in &sorted.failures {
                lines[*record] = match failure.error_type {
                    ErrorType::Rejected => {
                        json!({"outcome": "reject", "code": failure.code, "message": failure.message})
                    }
                    ErrorType::Trap | ErrorType::InvalidOutput => json!({
                        "outcome": "trap", "error_type": failure.error_type.as_str(),
                        "code": failure.code, "reason": failure.message,
                    }),
                    ErrorType::InvalidRecord | ErrorType::InvalidPartition => json!({
                        "outcome": "fail", "error_type": failure.error_type.as_str(),
                        "code": failure.code, "message": failure.message,
                    }),
                };
            }
            for (record, mut line) in batch.records.iter().zip(lines) {
                line["input"] = record.partition_key.clone().into();
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
