//! Why a record went to the failed location: data, not an `Err`.

use std::fmt;

/// The class of a record failure; the failed location is partitioned by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorType {
    /// The record could not be handed to the transform (empty, over the size limit, or not
    /// decodable from its Kinesis envelope).
    InvalidRecord,
    /// The transform rejected the record.
    Rejected,
    /// The transform trapped: panic, CPU budget, memory cap, deadline, or another wasm trap.
    Trap,
    /// The transform answered something the ABI does not allow (oversized output, a bad status,
    /// a buffer outside its memory).
    InvalidOutput,
    /// The transform's partition could not become a safe path (bad name, value too long, ...).
    InvalidPartition,
}

impl ErrorType {
    /// The snake_case name used in envelopes and in the `error_type=` level of failed paths.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRecord => "invalid_record",
            Self::Rejected => "rejected",
            Self::Trap => "trap",
            Self::InvalidOutput => "invalid_output",
            Self::InvalidPartition => "invalid_partition",
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record's failure: its class, a short code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The class of failure.
    pub error_type: ErrorType,
    /// Short machine-readable reason, e.g. `invalid_json` or `cpu_budget`.
    pub code: String,
    /// What went wrong, naming the field, limit or trap involved.
    pub message: String,
}

impl Failure {
    /// A failure of the given class.
    pub fn new(error_type: ErrorType, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type,
            code: code.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.error_type, self.code, self.message)
    }
}
