//! A Kinesis shard poller: the non-Lambda deployment mode, and the local stand-in for the
//! event source mapping.
//!
//! Each shard is read in order (ListShards, GetShardIterator, GetRecords), cut into the batches
//! Lambda would build, and handed to the shared [`Handler`](crate::batch::handler::Handler) (or a
//! shadow run's sink). A shard's checkpoint is the last
//! position of its last batch stored whole ([`Checkpoints`], durable with `--checkpoint`). When
//! a batch could not be stored whole, the shard resumes after its checkpoint after a backoff:
//! the same batch is read again and its objects overwritten under the same keys, where resuming
//! from the lowest unstored record would cut the batch differently and store duplicates. After
//! a reshard, a child shard starts once all its parents are read to their end, so per-key order
//! holds across the split or merge.

use super::checkpoint::{CheckpointError, Checkpoints};
use super::{BatchLimits, take_batch};
use crate::batch::handler::BatchSink;
use crate::batch::pipeline::BatchReport;
use crate::source::kinesis::push_records;
use crate::source::record::{Batch, Timestamp};
use crate::source::sequence::Position;
use aws_sdk_kinesis::types::ShardIteratorType;
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use tokio::task::JoinSet;

/// Where a shard without a checkpoint starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartAt {
    /// The oldest record still in the stream.
    TrimHorizon,
    /// Only records written from now on.
    Latest,
}

/// How the poller runs.
#[derive(Debug, Clone, Copy)]
pub struct PollOptions {
    /// Where shards start.
    pub start_at: StartAt,
    /// Return once every shard is read up to its tip (or closed), instead of polling forever.
    pub stop_when_idle: bool,
    /// Batch bounds (records per GetRecords call, bytes per batch).
    pub limits: BatchLimits,
    /// Pause between polls of a shard that had nothing new.
    pub idle_poll: Duration,
    /// Consecutive failed attempts to store the same checkpoint before giving up.
    pub max_store_attempts: u32,
}

/// Why polling stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// A Kinesis API call failed after the SDK's retries.
    #[error("Kinesis {call} failed for stream {stream}")]
    Kinesis {
        /// The API call.
        call: &'static str,
        /// The stream.
        stream: String,
        /// The SDK error with its context.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A shard's checkpoint could not be read.
    #[error("cannot read the checkpoint of shard {shard}")]
    Checkpoint {
        /// The shard.
        shard: String,
        /// Why.
        #[source]
        source: CheckpointError,
    },
    /// A shard's records kept failing to store.
    #[error(
        "shard {shard}: records from sequence number {position} could not be stored after {attempts} attempts: {errors}"
    )]
    Unstored {
        /// The shard.
        shard: String,
        /// Its checkpoint.
        position: Position,
        /// Attempts made.
        attempts: u32,
        /// The last storage errors.
        errors: String,
    },
}

/// Reads `stream` through `handler` until idle (with `stop_when_idle`) or forever, each shard
/// from its checkpoint in `checkpoints` if it has one; `on_batch` sees every batch's report.
pub async fn poll_stream(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    handler: &impl BatchSink,
    checkpoints: &Checkpoints,
    options: PollOptions,
    on_batch: impl Fn(&str, &BatchReport) + Clone + Send + 'static,
) -> Result<(), PollError> {
    // `latest` means "from now on", for every shard: children met later start where their
    // records begin, which is after now anyway.
    let start = match options.start_at {
        StartAt::TrimHorizon => IteratorAt::TrimHorizon,
        StartAt::Latest => IteratorAt::Timestamp(aws_sdk_kinesis::primitives::DateTime::from(
            std::time::SystemTime::now(),
        )),
    };
    let mut finished: HashSet<String> = HashSet::new();
    let mut started: HashSet<String> = HashSet::new();
    let mut running = JoinSet::new();
    loop {
        let shards = list_shards(client, stream).await?;
        for shard in ready_shards(&shards, &finished) {
            if !started.insert(shard.to_owned()) {
                continue;
            }
            let shard_id = shard.to_owned();
            let (client, stream, handler, checkpoints, on_batch, start) = (
                client.clone(),
                stream.to_owned(),
                handler.clone(),
                checkpoints.clone(),
                on_batch.clone(),
                start.clone(),
            );
            running.spawn(async move {
                let shard = Shard {
                    client: &client,
                    stream: &stream,
                    id: &shard_id,
                };
                let result =
                    poll_shard(shard, &handler, &checkpoints, start, options, on_batch).await;
                (shard_id, result)
            });
        }
        let Some(joined) = running.join_next().await else {
            // Nothing running and nothing ready: every shard is done.
            return Ok(());
        };
        let (shard_id, result) = joined.expect("shard pollers do not panic");
        result?;
        finished.insert(shard_id);
    }
}

/// The shards that may be read now: those whose parents are read to their end, or no longer
/// listed (expired, so nothing of them is left to read first). This keeps each partition key's
/// records in order across a split or a merge.
fn ready_shards<'a>(
    shards: &'a [aws_sdk_kinesis::types::Shard],
    finished: &HashSet<String>,
) -> Vec<&'a str> {
    let listed: HashSet<&str> = shards.iter().map(|s| s.shard_id()).collect();
    shards
        .iter()
        .filter(|shard| {
            [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .all(|parent| finished.contains(parent) || !listed.contains(parent))
        })
        .map(|shard| shard.shard_id())
        .collect()
}

/// Where a shard iterator starts.
#[derive(Debug, Clone)]
enum IteratorAt {
    TrimHorizon,
    Timestamp(aws_sdk_kinesis::primitives::DateTime),
    Sequence(String),
}

async fn list_shards(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Result<Vec<aws_sdk_kinesis::types::Shard>, PollError> {
    let mut shards = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let request = match &next_token {
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(stream),
        };
        let page = request
            .send()
            .await
            .map_err(|e| kinesis_error("ListShards", stream, e))?;
        shards.extend(page.shards.unwrap_or_default());
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => return Ok(shards),
        }
    }
}

/// One shard of one stream, with the client that reads it.
#[derive(Clone, Copy)]
struct Shard<'a> {
    client: &'a aws_sdk_kinesis::Client,
    stream: &'a str,
    id: &'a str,
}

/// Reads one shard to its end (closed) or, with `stop_when_idle`, to its tip, starting after
/// its checkpoint if it has one.
async fn poll_shard(
    shard: Shard<'_>,
    handler: &impl BatchSink,
    checkpoints: &Checkpoints,
    start: IteratorAt,
    options: PollOptions,
    on_batch: impl Fn(&str, &BatchReport),
) -> Result<(), PollError> {
    let Shard { client, stream, .. } = shard;
    let id = shard.id;
    // Everything up to and including `stored` is durably stored.
    let mut stored = checkpoints
        .load(id)
        .await
        .map_err(|source| PollError::Checkpoint {
            shard: id.to_owned(),
            source,
        })?;
    if let Some(position) = &stored {
        tracing::info!(shard = id, sequence_number = %position, "resuming after the checkpoint");
    }
    let resume_at = |stored: &Option<Position>| match stored {
        // At, not after: the rest of a KPL aggregate may follow the checkpoint.
        Some(position) => IteratorAt::Sequence(position.sequence_number().to_owned()),
        None => start.clone(),
    };
    let mut iterator = shard_iterator(shard, resume_at(&stored)).await?;
    let mut failed_attempts = 0;
    loop {
        let limit = i32::try_from(options.limits.max_records.min(10_000)).unwrap_or(10_000);
        let answer = client
            .get_records()
            .shard_iterator(&iterator)
            .limit(limit)
            .send()
            .await
            .map_err(|e| kinesis_error("GetRecords", stream, e))?;
        let got_records = !answer.records.is_empty();
        let mut records = Vec::with_capacity(answer.records.len());
        for record in answer.records {
            let position =
                Position::parse(&record.sequence_number).map_err(|e| PollError::Kinesis {
                    call: "GetRecords",
                    stream: stream.to_owned(),
                    source: Box::new(e),
                })?;
            let arrival = record
                .approximate_arrival_timestamp
                .map_or(0, |t| t.to_millis().unwrap_or(0));
            push_records(
                record.data.into_inner(),
                record.partition_key.unwrap_or_default(),
                position,
                Timestamp::from_unix_millis(arrival),
                &mut records,
            );
        }
        records.retain(|r| stored.as_ref().is_none_or(|s| r.position > *s));
        let mut pending: VecDeque<_> = records.into();
        let mut unstored = None;
        while !pending.is_empty() {
            let records = take_batch(&mut pending, &options.limits);
            let last = records.last().map(|r| r.position.clone());
            let batch = Batch {
                source: id.to_owned(),
                stream: None,
                records,
            };
            let report = handler.handle_batch(batch).await;
            on_batch(id, &report);
            if let Some(position) = report.unstored {
                unstored = Some((position, report.store_errors.join("; ")));
                break;
            }
            stored = last;
            // Progress: the attempt budget counts failures in a row, not per GetRecords answer
            // (one answer of KPL aggregates can hold hundreds of batches).
            failed_attempts = 0;
            if let Some(position) = &stored
                && let Err(error) = checkpoints.save(id, position).await
            {
                // Late, not wrong: a restart re-reads a little more, into the same keys.
                tracing::warn!(shard = id, sequence_number = %position, error = %error, "checkpoint not written");
            }
        }
        if let Some((position, errors)) = unstored {
            failed_attempts += 1;
            if failed_attempts >= options.max_store_attempts {
                return Err(PollError::Unstored {
                    shard: id.to_owned(),
                    position,
                    attempts: failed_attempts,
                    errors,
                });
            }
            tracing::warn!(shard = id, sequence_number = %position, attempt = failed_attempts, "records not stored; retrying after the checkpoint");
            tokio::time::sleep(backoff(failed_attempts)).await;
            iterator = shard_iterator(shard, resume_at(&stored)).await?;
            continue;
        }
        let Some(next) = answer.next_shard_iterator else {
            tracing::info!(shard = id, "shard closed: read to its end");
            return Ok(());
        };
        iterator = next;
        let at_tip = answer.millis_behind_latest.unwrap_or(0) == 0;
        if !got_records && at_tip {
            if options.stop_when_idle {
                return Ok(());
            }
            tokio::time::sleep(options.idle_poll).await;
        }
    }
}

async fn shard_iterator(shard: Shard<'_>, at: IteratorAt) -> Result<String, PollError> {
    let stream = shard.stream;
    let request = shard
        .client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard.id);
    let request = match at {
        IteratorAt::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        IteratorAt::Timestamp(time) => request
            .shard_iterator_type(ShardIteratorType::AtTimestamp)
            .timestamp(time),
        IteratorAt::Sequence(sequence_number) => request
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number(sequence_number),
    };
    let answer = request
        .send()
        .await
        .map_err(|e| kinesis_error("GetShardIterator", stream, e))?;
    answer.shard_iterator.ok_or_else(|| PollError::Kinesis {
        call: "GetShardIterator",
        stream: stream.to_owned(),
        source: "the answer carries no shard iterator".into(),
    })
}

/// Exponential backoff for store retries: 200 ms, 400 ms, ... up to 10 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(6)).min(10_000))
}

fn kinesis_error<E, R>(
    call: &'static str,
    stream: &str,
    error: aws_sdk_kinesis::error::SdkError<E, R>,
) -> PollError
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    PollError::Kinesis {
        call,
        stream: stream.to_owned(),
        source: crate::aws::describe(&error).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kinesis::types::{HashKeyRange, SequenceNumberRange};

    fn shard(id: &str, parents: [Option<&str>; 2]) -> aws_sdk_kinesis::types::Shard {
        aws_sdk_kinesis::types::Shard::builder()
            .shard_id(id)
            .set_parent_shard_id(parents[0].map(str::to_owned))
            .set_adjacent_parent_shard_id(parents[1].map(str::to_owned))
            .hash_key_range(
                HashKeyRange::builder()
                    .starting_hash_key("0")
                    .ending_hash_key("1")
                    .build()
                    .unwrap(),
            )
            .sequence_number_range(
                SequenceNumberRange::builder()
                    .starting_sequence_number("1")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    #[test]
    fn children_wait_for_all_their_parents() {
        // 0 split into 1 and 2; then 1 and 2 merged into 3. 9 is an unrelated shard.
        let shards = [
            shard("0", [None, None]),
            shard("1", [Some("0"), None]),
            shard("2", [Some("0"), None]),
            shard("3", [Some("1"), Some("2")]),
            shard("9", [None, None]),
        ];
        let finished = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        assert_eq!(ready_shards(&shards, &finished(&[])), ["0", "9"]);
        assert_eq!(
            ready_shards(&shards, &finished(&["0"])),
            ["0", "1", "2", "9"]
        );
        assert_eq!(
            ready_shards(&shards, &finished(&["0", "1"])),
            ["0", "1", "2", "9"]
        );
        assert_eq!(
            ready_shards(&shards, &finished(&["0", "1", "2"])),
            ["0", "1", "2", "3", "9"]
        );
    }

    #[test]
    fn a_child_whose_parent_expired_is_ready() {
        let shards = [shard("5", [Some("4"), None])];
        assert_eq!(ready_shards(&shards, &HashSet::new()), ["5"]);
    }
}
