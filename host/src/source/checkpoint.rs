//! Durable shard checkpoints for the Kinesis poller (`weir run --checkpoint URI`).
//!
//! One small JSON object per shard, `<URI>/<stream>/<shard>.json`, holds the last position of
//! that shard whose records, and every record before them, are durably stored:
//!
//! ```json
//! {"stream":"events","shard":"shardId-000000000000","sequence_number":"4959…","sub_sequence_number":7}
//! ```
//!
//! It is written only after a batch's objects are all stored, so it never runs ahead of the
//! data: a process killed between storing a batch and writing its checkpoint reads that batch
//! again on restart, and the deterministic object keys make the rewrite an overwrite. A
//! checkpoint that cannot be written is only late, never wrong, so the poller logs it and goes
//! on; the next batch writes a newer one.
//!
//! With an exactly-once [`Ledger`] (what `weir run --checkpoint` sets up), the ledger's
//! watermark is the checkpoint: one idea of "stored" for the poller and the Lambda. A shard
//! whose ledger has no watermark yet resumes from its old checkpoint object, if it has one.

use crate::batch::ledger::Ledger;
use crate::source::record::source_label;
use crate::source::sequence::Position;
use crate::storage::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint location failed.
    #[error("checkpoint {key} in {location}")]
    Store {
        /// The location (`--checkpoint`).
        location: String,
        /// The checkpoint's key.
        key: String,
        /// The storage error.
        #[source]
        source: StoreError,
    },
    /// The shard's ledger document could not be read.
    #[error("the ledger of shard {shard}: {message}")]
    Ledger {
        /// The shard.
        shard: String,
        /// Why.
        message: String,
    },
    /// The object is not a checkpoint Weir wrote.
    #[error("checkpoint {key} in {location} is not valid: {reason}")]
    Invalid {
        /// The location (`--checkpoint`).
        location: String,
        /// The checkpoint's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The stored form of one shard's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    stream: String,
    shard: String,
    sequence_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub_sequence_number: Option<u32>,
}

/// Where a stream's shard checkpoints live; without a location they live in memory only, for
/// the life of the process.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    store: Option<Arc<Store>>,
    stream: String,
    ledger: Option<Arc<Ledger>>,
}

impl Checkpoints {
    /// Checkpoints for `stream` in `store` (a directory or `s3://bucket/prefix`), or none.
    pub fn new(store: Option<Arc<Store>>, stream: &str) -> Self {
        Self {
            store,
            stream: stream.to_owned(),
            ledger: None,
        }
    }

    /// Takes checkpoints from the ledger's watermark (and writes none of its own).
    pub fn with_ledger(mut self, ledger: Arc<Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The ledger location that goes with a checkpoint location: `<location>/<stream>/ledger`.
    pub fn ledger_location(location: &str, stream: &str) -> String {
        format!(
            "{}/{}/ledger",
            location.trim_end_matches('/'),
            source_label(stream)
        )
    }

    /// The shard's checkpoint: the last position stored with everything before it.
    pub async fn load(&self, shard: &str) -> Result<Option<Position>, CheckpointError> {
        if let Some(ledger) = &self.ledger {
            let snapshot = ledger
                .fetch(shard)
                .await
                .map_err(|e| CheckpointError::Ledger {
                    shard: shard.to_owned(),
                    message: e.to_string(),
                })?;
            if let Some(stored) = snapshot.state.stored {
                return Ok(Some(stored));
            }
        }
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let key = self.key(shard);
        let bytes = store
            .get_if_exists(&key)
            .await
            .map_err(|source| self.store_error(&key, source))?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let invalid = |reason: String| CheckpointError::Invalid {
            location: store.to_string(),
            key: key.clone(),
            reason,
        };
        let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        if stored.stream != self.stream || stored.shard != shard {
            return Err(invalid(format!(
                "it belongs to {}/{}",
                stored.stream, stored.shard
            )));
        }
        let position =
            Position::parse(&stored.sequence_number).map_err(|e| invalid(e.to_string()))?;
        Ok(Some(match stored.sub_sequence_number {
            Some(sub) => position.with_sub(sub),
            None => position,
        }))
    }

    /// Records that the shard is durably stored up to and including `position`.
    pub async fn save(&self, shard: &str, position: &Position) -> Result<(), CheckpointError> {
        if self.ledger.is_some() {
            // The ledger's commit already recorded it.
            return Ok(());
        }
        let Some(store) = &self.store else {
            return Ok(());
        };
        let stored = Stored {
            stream: self.stream.clone(),
            shard: shard.to_owned(),
            sequence_number: position.sequence_number().to_owned(),
            sub_sequence_number: position.sub_sequence_number(),
        };
        let body = serde_json::to_vec(&stored).expect("a checkpoint of strings serialises");
        let key = self.key(shard);
        store
            .put_bytes(&key, body.into(), "application/json", None)
            .await
            .map_err(|source| self.store_error(&key, source))
    }

    /// `<stream>/<shard>.json`, both made safe as path components.
    fn key(&self, shard: &str) -> String {
        format!(
            "{}/{}.json",
            source_label(&self.stream),
            source_label(shard)
        )
    }

    fn store_error(&self, key: &str, source: StoreError) -> CheckpointError {
        CheckpointError::Store {
            location: self.store.as_ref().map_or(String::new(), |s| s.to_string()),
            key: key.to_owned(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStore;

    fn local(dir: &std::path::Path, stream: &str) -> Checkpoints {
        let store = Store::Local(LocalStore::open(dir).unwrap());
        Checkpoints::new(Some(Arc::new(store)), stream)
    }

    #[tokio::test]
    async fn saves_and_loads_positions_per_shard() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = local(dir.path(), "events");
        assert_eq!(checkpoints.load("shardId-0").await.unwrap(), None);
        let real = Position::parse("49590338271490256608559692538361571095921575989136588898")
            .unwrap()
            .with_sub(7);
        checkpoints.save("shardId-0", &real).await.unwrap();
        checkpoints
            .save("shardId-1", &Position::from_index(9))
            .await
            .unwrap();
        // A restarted process reads what the last one wrote.
        let again = local(dir.path(), "events");
        assert_eq!(again.load("shardId-0").await.unwrap(), Some(real));
        assert_eq!(
            again.load("shardId-1").await.unwrap(),
            Some(Position::from_index(9))
        );
        assert!(dir.path().join("events/shardId-0.json").is_file());
    }

    #[tokio::test]
    async fn refuses_a_checkpoint_of_another_stream_or_garbage() {
        let dir = tempfile::tempdir().unwrap();
        local(dir.path(), "a")
            .save("s", &Position::from_index(1))
            .await
            .unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::copy(dir.path().join("a/s.json"), dir.path().join("b/s.json")).unwrap();
        let err = local(dir.path(), "b").load("s").await.unwrap_err();
        assert!(err.to_string().contains("belongs to a/s"), "{err}");
        std::fs::write(dir.path().join("b/s.json"), b"{").unwrap();
        assert!(matches!(
            local(dir.path(), "b").load("s").await,
            Err(CheckpointError::Invalid { .. })
        ));
    }

    #[tokio::test]
    async fn with_a_ledger_its_watermark_is_the_checkpoint_and_old_ones_still_count() {
        let dir = tempfile::tempdir().unwrap();
        local(dir.path(), "events")
            .save("shardId-0", &Position::from_index(41))
            .await
            .unwrap();
        let location = Checkpoints::ledger_location(dir.path().to_str().unwrap(), "events");
        let ledger = Arc::new(Ledger::open(&location, 1).await.unwrap());
        let checkpoints = local(dir.path(), "events").with_ledger(Arc::clone(&ledger));
        // No watermark yet: the checkpoint an earlier release wrote.
        assert_eq!(
            checkpoints.load("shardId-0").await.unwrap(),
            Some(Position::from_index(41))
        );
        let read = ledger.fetch("shardId-0").await.unwrap();
        let mut state = read.state.clone();
        state.stored = Some(Position::from_index(77));
        ledger.write("shardId-0", &read, state).await.unwrap();
        assert_eq!(
            checkpoints.load("shardId-0").await.unwrap(),
            Some(Position::from_index(77))
        );
        // Saving is the ledger's commit: the old object is left as it was.
        checkpoints
            .save("shardId-0", &Position::from_index(90))
            .await
            .unwrap();
        assert_eq!(
            local(dir.path(), "events").load("shardId-0").await.unwrap(),
            Some(Position::from_index(41))
        );
    }

    #[tokio::test]
    async fn without_a_location_nothing_is_kept() {
        let checkpoints = Checkpoints::new(None, "events");
        checkpoints
            .save("s", &Position::from_index(3))
            .await
            .unwrap();
        assert_eq!(checkpoints.load("s").await.unwrap(), None);
    }
}
