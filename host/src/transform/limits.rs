//! The sandbox's bounds on each record and instance.

use std::time::Duration;

/// Bounds every guest runs under; see `guest-sdk/ABI.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformLimits {
    /// Deterministic CPU budget per record, in wasmtime fuel units (about one per instruction).
    pub fuel_per_record: u64,
    /// Wall-clock backstop per record (epoch interruption), for time spent outside fuel.
    pub deadline: Duration,
    /// Linear memory an instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// Bytes a record's answer (segments, body, rejection) may take.
    pub max_output_bytes: usize,
    /// Largest module accepted, in bytes.
    pub max_module_bytes: usize,
    /// Most partition segments a guest may emit per record.
    pub max_segments: usize,
}

impl Default for TransformLimits {
    fn default() -> Self {
        Self {
            fuel_per_record: 100_000_000,
            deadline: Duration::from_secs(1),
            memory_bytes: 64 << 20,
            max_output_bytes: 2 << 20,
            max_module_bytes: 32 << 20,
            max_segments: 8,
        }
    }
}
