//! Why a transform refused a record.

use std::fmt;

/// A transform's refusal of one record: a short machine-readable `code` and a message for people.
///
/// The host stores the record in the failed location with both. A rejection is an answer about
/// the data, not a crash: the record counts as handled and the stream goes on.
///
/// Codes the SDK itself produces (see [`Record::parse`](crate::Record::parse)): `invalid_json`
/// (the data is not JSON at all) and `invalid_event` (JSON of the wrong shape). Transforms pick
/// their own codes for their own rules; keep them short `snake_case` words, since they are
/// counted and grouped downstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    code: String,
    message: String,
}

impl Rejection {
    /// A rejection with a machine-readable `code` (such as `empty_field`) and a message that
    /// names what is wrong (such as `metadata.section must be a non-empty string`).
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// The machine-readable reason, such as `invalid_json`.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable explanation.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// `code: message`.
impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_code_then_message() {
        let rejection =
            Rejection::new("empty_field", "metadata.section must be a non-empty string");
        assert_eq!(rejection.code(), "empty_field");
        assert_eq!(
            rejection.message(),
            "metadata.section must be a non-empty string"
        );
        assert_eq!(
            rejection.to_string(),
            "empty_field: metadata.section must be a non-empty string"
        );
    }
}
