//! Repartition: every record of one table runs again through a transform version and lands in
//! that version's table (or in the failed location, with the new reason).
//!
//! Each source object becomes batches of a source named after the object's key, so the objects
//! written for it have deterministic keys: a rerun or a resumed run overwrites them with the
//! same bytes instead of adding copies. A progress document
//! (`<lake>/_weir/repartition/<from>-to-<table>.json`) lists the source objects done, so a
//! crashed run resumes where it stopped and a finished one changes nothing when run again.
//! The old table is removed only when asked, and only once every one of its objects is done.

use crate::batch::handler::Handler;
use crate::lake::compact::merge::Records;
use crate::lake::event_row::EventRow;
use crate::lake::format::Format;
use crate::lake::table::{DESCRIPTORS, check_table_name};
use crate::source::record::{Batch, Record, Timestamp};
use crate::source::sequence::Position;
use crate::storage::{Store, StoreError};
use crate::transform::hex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// The source that names a table written before tables: the lake root's partitions.
pub const LAKE_ROOT: &str = ".";

/// Records per batch handed to the pipeline (a compacted object can hold millions).
const BATCH_RECORDS: usize = 10_000;

/// How often (in source objects) the progress document is saved.
const SAVE_EVERY: usize = 25;

/// What a repartition did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepartitionSummary {
    /// Source objects in the old table.
    pub objects: usize,
    /// Source objects done by an earlier run, skipped.
    pub already_done: usize,
    /// Records read from the objects done by this run.
    pub records: usize,
    /// Of those, records now in the new table.
    pub stored: usize,
    /// Of those, records the version refused, now in the failed location.
    pub failed: usize,
    /// Old objects removed (with `remove_old`).
    pub removed: usize,
}

/// Why a repartition stopped. Progress up to the failing object is saved.
#[derive(Debug, thiserror::Error)]
pub enum RepartitionError {
    /// The lake could not be read or written.
    #[error("lake")]
    Store(#[from] StoreError),
    /// The source or target table is not usable.
    #[error("{0}")]
    Table(String),
    /// An object of the old table is not what Weir writes.
    #[error("{key} is not a lake object: {message}")]
    Malformed {
        /// The object.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Records could not be stored; rerun to resume.
    #[error(
        "{key}: records from position {position} on were not stored; rerun to resume: {errors}"
    )]
    Unstored {
        /// The source object.
        key: String,
        /// The lowest position not stored.
        position: Position,
        /// What the store said.
        errors: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    from: String,
    to: String,
    done: BTreeSet<String>,
}

/// Repartitions table `from` ([`LAKE_ROOT`] for a lake written before tables) of `lake` through
/// the handler's transform; `progress(done, total)` is called after each source object.
pub async fn repartition(
    lake: &Store,
    handler: &Handler,
    from: &str,
    remove_old: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<RepartitionSummary, RepartitionError> {
    let transform = handler.transform().current().await;
    let to = transform
        .table()
        .ok_or_else(|| {
            RepartitionError::Table(format!(
                "{} declares no partition columns, so it has no table to repartition into",
                transform.id().name
            ))
        })?
        .name
        .clone();
    if from != LAKE_ROOT {
        check_table_name(from).map_err(|e| RepartitionError::Table(e.to_string()))?;
    }
    if from == to {
        return Err(RepartitionError::Table(format!(
            "{from} is the table this version writes already"
        )));
    }
    let keys = source_objects(lake, from).await?;
    let progress_key = format!(
        "_weir/repartition/{}-to-{to}.json",
        if from == LAKE_ROOT { "_root" } else { from }
    );
    let mut state = match lake.get_if_exists(&progress_key).await? {
        Some(bytes) => {
            serde_json::from_slice::<Progress>(&bytes).map_err(|e| RepartitionError::Malformed {
                key: progress_key.clone(),
                message: e.to_string(),
            })?
        }
        None => Progress {
            from: from.to_owned(),
            to: to.clone(),
            done: BTreeSet::new(),
        },
    };
    let mut summary = RepartitionSummary {
        objects: keys.len(),
        ..RepartitionSummary::default()
    };
    let mut unsaved = 0;
    for (index, key) in keys.iter().enumerate() {
        if state.done.contains(key) {
            summary.already_done += 1;
            progress(index + 1, keys.len());
            continue;
        }
        let result = copy_object(lake, handler, key, &mut summary).await;
        if let Err(error) = result {
            save(lake, &progress_key, &state).await?;
            return Err(error);
        }
        state.done.insert(key.clone());
        unsaved += 1;
        if unsaved >= SAVE_EVERY {
            save(lake, &progress_key, &state).await?;
            unsaved = 0;
        }
        progress(index + 1, keys.len());
    }
    save(lake, &progress_key, &state).await?;
    if remove_old {
        for key in &keys {
            lake.delete(key).await?;
            summary.removed += 1;
        }
        if from != LAKE_ROOT {
            lake.delete(&format!("{DESCRIPTORS}/{from}.json")).await?;
        }
    }
    Ok(summary)
}

/// The data objects of table `from`, sorted by key.
async fn source_objects(lake: &Store, from: &str) -> Result<Vec<String>, StoreError> {
    let prefix = if from == LAKE_ROOT {
        String::new()
    } else {
        format!("{from}/")
    };
    let mut keys: Vec<String> = lake
        .list(&prefix)
        .await?
        .into_iter()
        .filter(|key| Format::of_key(key).is_some())
        // The root's partitions start with `column=`: other tables and `_weir` do not.
        .filter(|key| {
            from != LAKE_ROOT || key.split('/').next().is_some_and(|top| top.contains('='))
        })
        .collect();
    keys.sort();
    Ok(keys)
}

async fn copy_object(
    lake: &Store,
    handler: &Handler,
    key: &str,
    summary: &mut RepartitionSummary,
) -> Result<(), RepartitionError> {
    let records = records_of(key, lake.get(key).await?.into())?;
    let source = format!(
        "repartition-{}",
        &hex(&Sha256::digest(key.as_bytes()))[..16]
    );
    let arrival = partition_time(key);
    let mut position = 0;
    for chunk in records.chunks(BATCH_RECORDS) {
        let records = chunk
            .iter()
            .map(|data| {
                position += 1;
                Record::new(
                    data.clone(),
                    String::new(),
                    Position::from_index(position),
                    arrival,
                )
            })
            .collect();
        let batch = Batch {
            source: source.clone(),
            stream: None,
            records,
        };
        summary.records += chunk.len();
        let report = handler.handle_batch(batch).await;
        summary.stored += report.stored;
        summary.failed += report.failed;
        if let Some(position) = report.unstored {
            return Err(RepartitionError::Unstored {
                key: key.to_owned(),
                position,
                errors: report.store_errors.join("; "),
            });
        }
    }
    Ok(())
}

/// The records of one lake object, as the transform accepted (or rewrote) them.
fn records_of(key: &str, body: bytes::Bytes) -> Result<Vec<Vec<u8>>, RepartitionError> {
    let format = Format::of_key(key).expect("only data objects are listed");
    let mut records = Records::new(format);
    records
        .append(body)
        .map_err(|e| RepartitionError::Malformed {
            key: key.to_owned(),
            message: format!("{e:#}"),
        })?;
    Ok(match records {
        Records::Json(text) | Records::JsonZstd(text) => text
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
        Records::Parquet(rows) => rows.iter().map(EventRow::to_record).collect(),
    })
}

/// The lake keeps no arrival time per record: records get the start of their old partition's
/// hour (its `dt` and `hr` levels), else the epoch. A transform that partitions by the event's
/// own time (as the retail one does) never reads it.
fn partition_time(key: &str) -> Timestamp {
    let level = |name: &str| {
        key.split('/')
            .find_map(|level| level.strip_prefix(name)?.strip_prefix('='))
    };
    let hour = level("hr").unwrap_or("00");
    level("dt")
        .and_then(|day| Timestamp::parse_rfc3339(&format!("{day}T{hour}:00:00Z")))
        .unwrap_or_default()
}

async fn save(lake: &Store, key: &str, progress: &Progress) -> Result<(), StoreError> {
    let text = serde_json::to_vec(progress).expect("progress serializes");
    lake.put_bytes(key, text.into(), "application/json", None)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_the_hour_of_their_old_partition() {
        let at = partition_time("retail/section=A/dt=2026-11-25/hr=18/o.json.gz");
        assert_eq!(at.to_string(), "2026-11-25T18:00:00.000Z");
        let day = partition_time("t/dt=2026-11-25/o.json.gz");
        assert_eq!(day.to_string(), "2026-11-25T00:00:00.000Z");
        assert_eq!(partition_time("t/x=1/o.json.gz"), Timestamp::default());
        assert_eq!(
            partition_time("t/dt=garbage/o.json.gz"),
            Timestamp::default()
        );
    }

    #[test]
    fn ndjson_objects_give_back_their_lines() {
        let body = crate::lake::encode::Gzip::new(1).compress(b"{\"a\":1}\n{\"b\":2}\n");
        let records = records_of("t/p=1/o.json.gz", body.into()).unwrap();
        assert_eq!(records, vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        assert!(matches!(
            records_of("t/p=1/o.json.gz", bytes::Bytes::from_static(b"not gzip")),
            Err(RepartitionError::Malformed { .. })
        ));
    }
}
