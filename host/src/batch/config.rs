//! The settings every batch runs under: record and path bounds, the lake's encoding, and how
//! many objects are written at once.

use crate::lake::encode::DEFAULT_GZIP_LEVEL;
use crate::lake::format::Format;
use crate::lake::partition::PartitionLimits;

/// Bounds and encoding settings for batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineConfig {
    /// Records larger than this go to the failed location without reaching the transform.
    pub max_record_bytes: usize,
    /// Bounds on partition paths.
    pub partition: PartitionLimits,
    /// Gzip level for gzip'd NDJSON objects.
    pub gzip_level: u32,
    /// How lake objects are encoded (failed objects are always gzip'd NDJSON).
    pub format: Format,
    /// Objects written at once.
    pub store_concurrency: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            max_record_bytes: 1 << 20,
            partition: PartitionLimits::default(),
            gzip_level: DEFAULT_GZIP_LEVEL,
            format: Format::Json,
            store_concurrency: 16,
        }
    }
}
