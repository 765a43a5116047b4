//! The Lambda's configuration, from environment variables, read and checked once at cold start.

use crate::batch::pipeline::PipelineConfig;
use crate::lake::format::Format;
use crate::transform::TransformLimits;
use std::time::Duration;

/// Why the configuration is unusable; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{var} is not set: {what}")]
    Missing {
        /// The variable.
        var: &'static str,
        /// What it should hold.
        what: &'static str,
    },
    /// A variable holds something unusable.
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: String,
    },
}

/// Everything the Lambda needs, from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `WEIR_LAKE`: `s3://bucket/prefix` (or a directory, for local runs).
    pub lake: String,
    /// `WEIR_FAILED`: `s3://bucket/prefix` (or a directory).
    pub failed: String,
    /// `WEIR_TRANSFORM`: the transform module, `s3://bucket/key.wasm` or a file path; with a
    /// registry, `NAME` (its active version) or `NAME@VERSION`.
    pub transform: String,
    /// `WEIR_REGISTRY`: the transform registry, `s3://bucket/prefix` (optional).
    pub registry: Option<String>,
    /// `WEIR_REFRESH_SECONDS`: how often the registry's active pointer is re-read.
    pub refresh: Duration,
    /// Sandbox limits: `WEIR_FUEL_PER_RECORD`, `WEIR_MEMORY_MIB`, `WEIR_DEADLINE_MS`.
    pub limits: TransformLimits,
    /// `WEIR_MAX_RECORD_BYTES`, `WEIR_GZIP_LEVEL`, `WEIR_FORMAT`, `WEIR_STORE_CONCURRENCY`.
    pub pipeline: PipelineConfig,
    /// `WEIR_LEDGER`: where the exactly-once ledger keeps one document per shard (default
    /// `<lake>/_weir/ledger`); None when set to `off` (retries of the same cut overwrite, a
    /// re-cut retry may store records twice).
    pub ledger: Option<String>,
    /// `WEIR_PARALLELIZATION_FACTOR`: the event source mapping's `ParallelizationFactor` (1-10,
    /// default 1). It must match the mapping's: the ledger relies on it.
    pub parallelization: u32,
    /// `WEIR_CATALOG`: `glue://DATABASE` to register tables and partitions in (optional).
    pub catalog: Option<String>,
}

/// What a process of the Lambda package does, from `WEIR_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `ingest` (the default): Kinesis batches in, lake objects out.
    Ingest,
    /// `compact`: scheduled compaction of closed partitions (see [`CompactConfig`]).
    Compact,
}

impl Mode {
    /// Reads `WEIR_MODE`.
    pub fn from_env() -> Result<Self, ConfigError> {
        match std::env::var("WEIR_MODE").ok().as_deref().map(str::trim) {
            None | Some("" | "ingest") => Ok(Self::Ingest),
            Some("compact") => Ok(Self::Compact),
            Some(other) => Err(ConfigError::Invalid {
                var: "WEIR_MODE",
                value: other.to_owned(),
                reason: "expected ingest or compact".into(),
            }),
        }
    }
}

/// The scheduled compaction's configuration (`WEIR_MODE=compact`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactConfig {
    /// `WEIR_LAKE`: the lake root.
    pub lake: String,
    /// `WEIR_CATALOG`: `glue://DATABASE`, kept right where objects move (optional).
    pub catalog: Option<String>,
    /// `WEIR_COMPACT_OLDER_THAN_SECONDS`: a partition is closed once its hour or day ended
    /// this long ago (default 90,000 s, 25 h: longer than the stream's default 24 h retention).
    pub older_than: Duration,
    /// `WEIR_COMPACT_TARGET_MB`: merged objects grow to about this size (default 128).
    pub target_size: u64,
    /// `WEIR_COMPACT_GZIP_LEVEL`: gzip level of merged NDJSON objects (default 6).
    pub gzip_level: u32,
}

impl CompactConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let ingest_like = |var: &str| match var {
            // Compaction needs neither: give Config what it requires so its checks apply.
            "WEIR_FAILED" | "WEIR_TRANSFORM" => lookup(var).or_else(|| Some("unused".into())),
            _ => lookup(var),
        };
        let shared = Config::from_lookup(ingest_like)?;
        let number = |var: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            whole_number(
                var,
                lookup(var).filter(|v| !v.trim().is_empty()),
                default,
                range,
            )
        };
        Ok(Self {
            lake: shared.lake,
            catalog: shared.catalog,
            older_than: Duration::from_secs(number(
                "WEIR_COMPACT_OLDER_THAN_SECONDS",
                90_000,
                0..=366 * 86_400,
            )?),
            target_size: number("WEIR_COMPACT_TARGET_MB", 128, 1..=5_000)? * 1_000_000,
            gzip_level: number("WEIR_COMPACT_GZIP_LEVEL", 6, 0..=9)? as u32,
        })
    }
}

/// `value` (of `var`) as a whole number within `range`, or `default` when unset.
fn whole_number(
    var: &'static str,
    value: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(value) => match value.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError::Invalid {
                var,
                value,
                reason: format!(
                    "expected a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            }),
        },
    }
}

/// The ledger's default location: beside the partitions, in a folder Spark and Hive skip.
pub fn default_ledger(lake: &str) -> String {
    format!("{}/_weir/ledger", lake.trim_end_matches('/'))
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads variables through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &'static str| lookup(var).filter(|v| !v.trim().is_empty());
        let required = |var: &'static str, what| get(var).ok_or(ConfigError::Missing { var, what });
        let number = |var: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            whole_number(var, get(var), default, range)
        };
        let location = |var: &'static str, what| {
            let value = required(var, what)?;
            if value.contains("://") && !value.starts_with("s3://") {
                return Err(ConfigError::Invalid {
                    var,
                    value,
                    reason: "expected s3://bucket[/prefix] or a path".into(),
                });
            }
            Ok(value)
        };
        let limits_default = TransformLimits::default();
        let pipeline_default = PipelineConfig::default();
        let limits = TransformLimits {
            fuel_per_record: number(
                "WEIR_FUEL_PER_RECORD",
                limits_default.fuel_per_record,
                1_000..=u64::MAX,
            )?,
            memory_bytes: number("WEIR_MEMORY_MIB", 64, 1..=4096)? as usize * (1 << 20),
            deadline: Duration::from_millis(number("WEIR_DEADLINE_MS", 1_000, 10..=900_000)?),
            ..limits_default
        };
        let format = match get("WEIR_FORMAT") {
            None => pipeline_default.format,
            Some(value) => Format::parse(&value).ok_or(ConfigError::Invalid {
                var: "WEIR_FORMAT",
                value,
                reason: "expected json or parquet".into(),
            })?,
        };
        let pipeline = PipelineConfig {
            format,
            max_record_bytes: number(
                "WEIR_MAX_RECORD_BYTES",
                pipeline_default.max_record_bytes as u64,
                1..=(64 << 20),
            )? as usize,
            gzip_level: number(
                "WEIR_GZIP_LEVEL",
                u64::from(pipeline_default.gzip_level),
                0..=9,
            )? as u32,
            store_concurrency: number(
                "WEIR_STORE_CONCURRENCY",
                pipeline_default.store_concurrency as u64,
                1..=256,
            )? as usize,
            ..pipeline_default
        };
        let lake = location("WEIR_LAKE", "the lake, s3://bucket/prefix")?;
        let ledger = match get("WEIR_LEDGER") {
            Some(value) if value.trim() == "off" => None,
            Some(_) => Some(location("WEIR_LEDGER", "the ledger, s3://bucket/prefix")?),
            // A lake that keeps nothing (benchmarks) needs no ledger.
            None if lake == "discard:" => None,
            None => Some(default_ledger(&lake)),
        };
        let catalog = match get("WEIR_CATALOG") {
            None => None,
            Some(value) => match crate::catalog::parse_uri(value.trim()) {
                Ok(_) => Some(value.trim().to_owned()),
                Err(error) => {
                    return Err(ConfigError::Invalid {
                        var: "WEIR_CATALOG",
                        value,
                        reason: error.to_string(),
                    });
                }
            },
        };
        Ok(Self {
            catalog,
            ledger,
            parallelization: number("WEIR_PARALLELIZATION_FACTOR", 1, 1..=10)? as u32,
            lake,
            failed: location("WEIR_FAILED", "the failed location, s3://bucket/prefix")?,
            transform: location(
                "WEIR_TRANSFORM",
                "the transform module, s3://bucket/key.wasm",
            )?,
            registry: get("WEIR_REGISTRY"),
            refresh: Duration::from_secs(number("WEIR_REFRESH_SECONDS", 30, 1..=86_400)?),
            limits,
            pipeline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|var| vars.get(var).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        ("WEIR_LAKE", "s3://lake/events"),
        ("WEIR_FAILED", "s3://failed"),
        ("WEIR_TRANSFORM", "s3://registry/retail.wasm"),
    ];

    #[test]
    fn reads_locations_and_defaults() {
        let config = config(&BASE).unwrap();
        assert_eq!(config.lake, "s3://lake/events");
        assert_eq!(config.limits, TransformLimits::default());
        assert_eq!(config.pipeline, PipelineConfig::default());
        assert_eq!(
            config.ledger.as_deref(),
            Some("s3://lake/events/_weir/ledger")
        );
        assert_eq!(config.parallelization, 1);
        assert_eq!(config.catalog, None);
        let mut vars = BASE.to_vec();
        vars.push(("WEIR_CATALOG", "glue://weir_lake"));
        assert_eq!(
            super::Config::from_lookup(|v| vars
                .iter()
                .find(|(k, _)| *k == v)
                .map(|(_, x)| x.to_string()))
            .unwrap()
            .catalog
            .as_deref(),
            Some("glue://weir_lake")
        );
    }

    #[test]
    fn turns_the_ledger_off_or_moves_it() {
        let discard = [("WEIR_LAKE", "discard:"), BASE[1], BASE[2]];
        assert_eq!(config(&discard).unwrap().ledger, None);
        let mut vars = BASE.to_vec();
        vars.push(("WEIR_LEDGER", "off"));
        assert_eq!(config(&vars).unwrap().ledger, None);
        vars.pop();
        vars.extend([
            ("WEIR_LEDGER", "s3://state/weir"),
            ("WEIR_PARALLELIZATION_FACTOR", "2"),
        ]);
        let config = config(&vars).unwrap();
        assert_eq!(config.ledger.as_deref(), Some("s3://state/weir"));
        assert_eq!(config.parallelization, 2);
    }

    #[test]
    fn names_the_missing_variable() {
        let err = config(&BASE[..2]).unwrap_err();
        assert!(
            err.to_string().starts_with("WEIR_TRANSFORM is not set"),
            "{err}"
        );
        let err = config(&[("WEIR_LAKE", " "), BASE[1], BASE[2]]).unwrap_err();
        assert!(err.to_string().starts_with("WEIR_LAKE is not set"), "{err}");
    }

    #[test]
    fn names_the_invalid_variable() {
        for (var, value) in [
            ("WEIR_GZIP_LEVEL", "11"),
            ("WEIR_MEMORY_MIB", "lots"),
            ("WEIR_LAKE", "gs://lake"),
            ("WEIR_FORMAT", "csv"),
            ("WEIR_PARALLELIZATION_FACTOR", "11"),
            ("WEIR_LEDGER", "gs://state"),
            ("WEIR_CATALOG", "hive://metastore"),
        ] {
            let mut vars = BASE.to_vec();
            vars.retain(|(k, _)| *k != var);
            vars.push((var, value));
            let err = config(&vars).unwrap_err();
            assert!(err.to_string().starts_with(&format!("{var}=")), "{err}");
        }
    }

    #[test]
    fn compaction_needs_only_the_lake() {
        let vars = [
            ("WEIR_LAKE", "s3://lake/events"),
            ("WEIR_COMPACT_TARGET_MB", "64"),
        ];
        let lookup = |v: &str| {
            vars.iter()
                .find(|(k, _)| *k == v)
                .map(|(_, x)| x.to_string())
        };
        let config = CompactConfig::from_lookup(lookup).unwrap();
        assert_eq!(config.lake, "s3://lake/events");
        assert_eq!(config.target_size, 64_000_000);
        assert_eq!(config.older_than, Duration::from_secs(90_000));
        assert_eq!(config.catalog, None);
        let bad = [
            ("WEIR_LAKE", "s3://lake"),
            ("WEIR_COMPACT_GZIP_LEVEL", "12"),
        ];
        let lookup = |v: &str| {
            bad.iter()
                .find(|(k, _)| *k == v)
                .map(|(_, x)| x.to_string())
        };
        let err = CompactConfig::from_lookup(lookup).unwrap_err();
        assert!(
            err.to_string().starts_with("WEIR_COMPACT_GZIP_LEVEL="),
            "{err}"
        );
    }

    #[test]
    fn reads_limits() {
        let mut vars = BASE.to_vec();
        vars.extend([
            ("WEIR_MEMORY_MIB", "128"),
            ("WEIR_DEADLINE_MS", "250"),
            ("WEIR_GZIP_LEVEL", "6"),
            ("WEIR_FORMAT", "parquet"),
        ]);
        let config = config(&vars).unwrap();
        assert_eq!(config.limits.memory_bytes, 128 << 20);
        assert_eq!(config.limits.deadline, Duration::from_millis(250));
        assert_eq!(config.pipeline.gzip_level, 6);
        assert_eq!(config.pipeline.format, Format::Parquet);
    }
}
