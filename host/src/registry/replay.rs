//! Replay: failed records run again through a (new) transform version.
//!
//! Each failed object is read back, its envelopes turned into the original records (same
//! source, sequence numbers and arrival times), and the records handed to the handler as
//! batches: records now accepted land in the lake, those still failing land in the failed
//! location with their new reason. Only once everything from an object is durably stored is the
//! object removed. Keys are deterministic, so an interrupted or repeated replay overwrites
//! rather than duplicates, and objects already judged by this very version are left alone.

use crate::batch::handler::Handler;
use crate::lake::envelope::Envelope;
use crate::source::record::{Batch, Record, Timestamp};
use crate::source::sequence::Position;
use crate::storage::{Store, StoreError};
use flate2::read::MultiGzDecoder;
use std::io::Read;

/// Which failed objects to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Only objects of arrival days on or after this one (`YYYY-MM-DD`).
    pub since: Option<String>,
    /// Only these error types (all when empty).
    pub error_types: Vec<String>,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Failed objects replayed (and removed).
    pub objects: usize,
    /// Records replayed.
    pub records: usize,
    /// Records now in the lake.
    pub stored: usize,
    /// Records that failed again, with their new reason.
    pub failed_again: usize,
    /// Objects skipped because this transform version already judged them.
    pub already_judged: usize,
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The failed location could not be read or cleaned up.
    #[error("failed location")]
    Store(#[from] StoreError),
    /// A failed object is not what Weir writes.
    #[error("{key} is not a failed-records object: {message}")]
    Malformed {
        /// The object.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Replayed records could not be stored; the object is kept.
    #[error(
        "{key}: records from position {position} on were not stored; the failed object is kept"
    )]
    Unstored {
        /// The object being replayed.
        key: String,
        /// The lowest position not stored.
        position: Position,
    },
}

/// Replays the failed objects in `failed` that match `filter`; `progress(done, total)` is
/// called after each object.
pub async fn replay(
    failed: &Store,
    handler: &Handler,
    filter: &ReplayFilter,
    mut progress: impl FnMut(usize, usize),
) -> Result<ReplaySummary, ReplayError> {
    let version = handler.transform().current().await.id().short().to_owned();
    let keys: Vec<String> = failed
        .list("error_type=")
        .await?
        .into_iter()
        .filter(|key| filter.matches(key))
        .collect();
    let mut summary = ReplaySummary::default();
    for (done, key) in keys.iter().enumerate() {
        if key.ends_with(&format!("-{version}.json.gz")) {
            summary.already_judged += 1;
            progress(done + 1, keys.len());
            continue;
        }
        for batch in original_batches(key, &failed.get(key).await?)? {
            summary.records += batch.records.len();
            let report = handler.handle_batch(batch).await;
            summary.stored += report.stored;
            summary.failed_again += report.failed;
            if let Some(position) = report.unstored {
                return Err(ReplayError::Unstored {
                    key: key.clone(),
                    position,
                });
            }
        }
        failed.delete(key).await?;
        summary.objects += 1;
        progress(done + 1, keys.len());
    }
    Ok(summary)
}

impl ReplayFilter {
    /// Whether a failed key (`error_type=T/dt=D/name`) is selected.
    fn matches(&self, key: &str) -> bool {
        let mut levels = key.split('/');
        let error_type = levels
            .next()
            .and_then(|l| l.strip_prefix("error_type="))
            .unwrap_or_default();
        let day = levels
            .next()
            .and_then(|l| l.strip_prefix("dt="))
            .unwrap_or_default();
        (self.error_types.is_empty() || self.error_types.iter().any(|t| t == error_type))
            && self.since.as_deref().is_none_or(|since| day >= since)
    }
}

/// The original records of one failed object (its `key` names it in errors), as one batch per
/// source, in sequence order.
pub fn original_batches(key: &str, object: &[u8]) -> Result<Vec<Batch>, ReplayError> {
    let malformed = |message: String| ReplayError::Malformed {
        key: key.to_owned(),
        message,
    };
    let mut ndjson = Vec::new();
    MultiGzDecoder::new(object)
        .read_to_end(&mut ndjson)
        .map_err(|e| malformed(e.to_string()))?;
    let mut batches: Vec<Batch> = Vec::new();
    for line in ndjson.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let envelope: Envelope =
            serde_json::from_slice(line).map_err(|e| malformed(e.to_string()))?;
        let data = envelope.original().map_err(|e| malformed(e.to_string()))?;
        let mut position =
            Position::parse(&envelope.sequence_number).map_err(|e| malformed(e.to_string()))?;
        if let Some(sub) = envelope.sub_sequence_number {
            position = position.with_sub(sub);
        }
        let arrival = Timestamp::parse_rfc3339(&envelope.arrival_time).unwrap_or_default();
        let record = Record::new(data, envelope.partition_key, position, arrival);
        match batches.iter_mut().find(|b| b.source == envelope.source) {
            Some(batch) => batch.records.push(record),
            None => batches.push(Batch {
                source: envelope.source,
                stream: None,
                records: vec![record],
            }),
        }
    }
    for batch in &mut batches {
        batch.records.sort_by(|a, b| a.position.cmp(&b.position));
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_error_type_and_day() {
        let key = "error_type=rejected/dt=2026-11-25/src-1-9-0123456789ab.json.gz";
        assert!(ReplayFilter::default().matches(key));
        let rejected = ReplayFilter {
            error_types: vec!["rejected".into()],
            since: Some("2026-11-25".into()),
        };
        assert!(rejected.matches(key));
        let trap = ReplayFilter {
            error_types: vec!["trap".into()],
            ..ReplayFilter::default()
        };
        assert!(!trap.matches(key));
        let later = ReplayFilter {
            since: Some("2026-11-26".into()),
            ..ReplayFilter::default()
        };
        assert!(!later.matches(key));
    }
}
