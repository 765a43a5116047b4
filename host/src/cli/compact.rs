//! `weir compact`: merge the per-batch objects of closed partitions.

use crate::lake::compact::catalogued::CatalogTables;
use crate::lake::compact::{CompactOptions, compact_registered};
use crate::storage::Store;
use anyhow::Context;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

#[derive(Debug, clap::Args)]
pub(super) struct CompactArgs {
    /// The lake: a directory or s3://bucket/prefix.
    #[arg(long)]
    lake: String,
    /// Compact partitions whose hour (or day) ended at least this long ago: 90s, 30m, 6h, 2d.
    #[arg(long, value_parser = parse_duration)]
    partition_older_than: Duration,
    /// Merge objects up to about this size: 128MB, 64MiB, 500KB or bytes.
    #[arg(long, default_value = "128MB", value_parser = parse_size)]
    target_size: u64,
    /// Gzip level of merged NDJSON objects (0-9).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(0..=9))]
    gzip_level: u32,
    /// Keep this catalog right (glue://DATABASE; --lake must be the lake root): registered
    /// partitions are compacted so its readers never see a record twice, then every table
    /// and partition of the lake is registered.
    #[arg(long)]
    catalog: Option<String>,
    /// Test hook: stop after this many source deletes, as if the process died there.
    #[arg(long, hide = true)]
    stop_after_deletes: Option<usize>,
}

pub(super) async fn compact_command(args: CompactArgs) -> anyhow::Result<ExitCode> {
    let lake = Store::open(&args.lake)
        .await
        .with_context(|| format!("cannot open the lake {}", args.lake))?;
    let options = CompactOptions {
        older_than: args.partition_older_than,
        target_size: args.target_size,
        gzip_level: args.gzip_level,
        stop_after_deletes: args.stop_after_deletes,
        deadline: None,
    };
    let catalog = match &args.catalog {
        Some(uri) => Some(crate::app::catalog(uri, &args.lake).await?),
        None => None,
    };
    let tables = match &catalog {
        Some(catalog) => Some(CatalogTables::load(catalog, &lake).await?),
        None => None,
    };
    let report = compact_registered(&lake, tables.as_ref(), &options, SystemTime::now())
        .await
        .with_context(|| format!("compaction of {lake} stopped; run it again to finish"))?;
    println!(
        "{} closed partitions: {} objects merged into {} ({} records), {} interrupted merges finished; {} partitions still open",
        report.closed, report.removed, report.written, report.records, report.resumed, report.open
    );
    if let (Some(uri), Some(catalog)) = (&args.catalog, &catalog) {
        let synced = crate::catalog::sync::sync(catalog, &lake)
            .await
            .with_context(|| format!("compacted, but cannot register the lake in {uri}"))?;
        println!(
            "{uri}: {} tables, {} partitions registered",
            synced.tables, synced.partitions
        );
        for skipped in &synced.skipped {
            eprintln!("weir: skipped {skipped}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `90s`, `30m`, `6h`, `2d` (or plain seconds).
fn parse_duration(value: &str) -> Result<Duration, String> {
    let (number, unit) = split_unit(value);
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    Ok(Duration::from_secs(number?.saturating_mul(scale)))
}

/// `128MB`, `64MiB`, `500KB`, `1GB` (or plain bytes); decimal and binary units.
fn parse_size(value: &str) -> Result<u64, String> {
    let (number, unit) = split_unit(value);
    let scale: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "K" => 1_000,
        "MB" | "M" => 1_000_000,
        "GB" | "G" => 1_000_000_000,
        "KIB" => 1 << 10,
        "MIB" => 1 << 20,
        "GIB" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit {unit:?}: use KB, MB, GB, KiB, MiB or GiB"
            ));
        }
    };
    match number?.checked_mul(scale) {
        Some(0) | None => Err(format!("{value:?} is not a usable size")),
        Some(size) => Ok(size),
    }
}

fn split_unit(value: &str) -> (Result<u64, String>, &str) {
    let value = value.trim();
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    let number = number
        .parse()
        .map_err(|_| format!("{value:?}: expected a number and a unit"));
    (number, unit.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_sizes() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("1w").is_err() && parse_duration("h").is_err());
        assert_eq!(parse_size("128MB"), Ok(128_000_000));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert!(parse_size("0").is_err() && parse_size("12XB").is_err());
    }
}
