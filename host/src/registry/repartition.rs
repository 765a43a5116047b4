//! Repartition: every record of one table runs again through a transform version and lands in
//! that version's table (or in the failed location, with the new reason).
//!
//! The old table's objects are taken in chunks (consecutive keys, up to [`CHUNK_OBJECTS`]
//! objects or [`CHUNK_BYTES`]), and each chunk's records become batches of a source named
//! after the chunk, so what a chunk writes has deterministic keys and few objects. A progress
//! document (`<lake>/_weir/repartition/<from>-to-<table>.json`) records the chunk in flight
//! before its records are written and the chunks done after: a crashed run resumes with the
//! very same chunk (overwriting what it had written, never adding copies), and a finished one
//! changes nothing when run again. The old table is removed only when asked, and only once
//! every one of its objects is done.

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

/// Most source objects in one chunk.
pub const CHUNK_OBJECTS: usize = 500;

/// Most stored bytes in one chunk (compressed, as listed).
pub const CHUNK_BYTES: u64 = 32 << 20;

/// Records per batch handed to the pipeline: as many as a Lambda batch.
const BATCH_RECORDS: usize = 10_000;

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

/// Why a repartition stopped. Progress up to the failing chunk is saved.
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
        /// The first source object of the chunk.
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
    /// Source objects whose records are all stored.
    done: BTreeSet<String>,
    /// The chunk being written: a resumed run finishes exactly this one first.
    #[serde(default)]
    pending: Vec<String>,
}

/// Repartitions table `from` ([`LAKE_ROOT`] for a lake written before tables) of `lake` through
/// the handler's transform; `progress(done, total)` is called after each chunk.
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
    let listing = source_objects(lake, from).await?;
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
            ..Progress::default()
        },
    };
    let mut summary = RepartitionSummary {
        objects: listing.len(),
        already_done: listing
            .iter()
            .filter(|(key, _)| state.done.contains(key))
            .count(),
        ..RepartitionSummary::default()
    };
    let todo: Vec<&(String, u64)> = listing
        .iter()
        .filter(|(key, _)| !state.done.contains(key) && !state.pending.contains(key))
        .collect();
    let mut todo = todo.into_iter().peekable();
    let mut finished = summary.already_done;
    loop {
        if state.pending.is_empty() {
            let (mut objects, mut bytes) = (0, 0);
            while let Some((key, size)) = todo.next_if(|(_, size)| {
                objects == 0 || (objects < CHUNK_OBJECTS && bytes + size <= CHUNK_BYTES)
            }) {
                state.pending.push(key.clone());
                objects += 1;
                bytes += size;
            }
            if state.pending.is_empty() {
                break;
            }
            save(lake, &progress_key, &state).await?;
        }
        copy_chunk(lake, handler, &state.pending, &mut summary).await?;
        finished += state.pending.len();
        state.done.extend(std::mem::take(&mut state.pending));
        save(lake, &progress_key, &state).await?;
        progress(finished, listing.len());
    }
    if remove_old {
        for (key, _) in &listing {
            lake.delete(key).await?;
            summary.removed += 1;
        }
        if from != LAKE_ROOT {
            lake.delete(&format!("{DESCRIPTORS}/{from}.json")).await?;
        }
    }
    Ok(summary)
}

/// The data objects of table `from` with their sizes, sorted by key.
async fn source_objects(lake: &Store, from: &str) -> Result<Vec<(String, u64)>, StoreError> {
    let prefix = if from == LAKE_ROOT {
        String::new()
    } else {
        format!("{from}/")
    };
    Ok(lake
        .list_sized(&prefix)
        .await?
        .into_iter()
        .filter(|(key, _)| Format::of_key(key).is_some())
        // The root's partitions start with `column=`: other tables and `_weir` do not.
        .filter(|(key, _)| {
            from != LAKE_ROOT || key.split('/').next().is_some_and(|top| top.contains('='))
        })
        .collect())
}

/// Stores the records of one chunk of source objects; a source object that is gone by now (a
/// resumed chunk) is skipped.
async fn copy_chunk(
    lake: &Store,
    handler: &Handler,
    chunk: &[String],
    summary: &mut RepartitionSummary,
) -> Result<(), RepartitionError> {
    let label = hex(&Sha256::digest(chunk.join("\n").as_bytes()));
    let source = format!("repartition-{}", &label[..16]);
    let mut records = Vec::new();
    let mut position = 0;
    for (i, key) in chunk.iter().enumerate() {
        let Some(body) = lake.get_if_exists(key).await? else {
            tracing::warn!(key, "a source object of the resumed chunk is gone; skipped");
            continue;
        };
        let arrival = partition_time(key);
        for data in records_of(key, body.into())? {
            position += 1;
            records.push(Record::new(
                data,
                String::new(),
                Position::from_index(position),
                arrival,
            ));
        }
        if records.len() >= BATCH_RECORDS || i + 1 == chunk.len() {
            let batch = Batch {
                source: source.clone(),
                stream: None,
                records: std::mem::take(&mut records),
            };
            summary.records += batch.records.len();
            let report = handler.handle_batch(batch).await;
            summary.stored += report.stored;
            summary.failed += report.failed;
            if let Some(position) = report.unstored {
                return Err(RepartitionError::Unstored {
                    key: chunk[0].clone(),
                    position,
                    errors: report.store_errors.join("; "),
                });
            }
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
