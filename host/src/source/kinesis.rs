//! A Kinesis shard poller: the non-Lambda deployment mode, and the local stand-in for the
//! event source mapping.
//!
//! Each shard is read in order (ListShards, GetShardIterator, GetRecords), cut into the batches
//! Lambda would build, and handed to the shared [`Handler`]. Its report is the checkpoint: when
//! records could not be stored, the shard resumes from the lowest one after a backoff, exactly
//! as Lambda retries from a reported item failure. After a reshard, a child shard starts once
//! all its parents are read to their end, so per-key order holds across the split or merge.

use super::{BatchLimits, take_batch};
use crate::handler::Handler;
use crate::kinesis::push_records;
use crate::pipeline::BatchReport;
use crate::record::{Batch, Timestamp};
use crate::sequence::Position;
use aws_sdk_kinesis::types::{Shard, ShardIteratorType};
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

/// Reads `stream` through `handler` until idle (with `stop_when_idle`) or forever; `on_batch`
/// sees every batch's report.
pub async fn poll_stream(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    handler: &Handler,
    options: PollOptions,
    on_batch: impl Fn(&str, &BatchReport) + Clone + Send + 'static,
) -> Result<(), PollError> {
    let mut finished: HashSet<String> = HashSet::new();
    let mut started: HashSet<String> = HashSet::new();
    let mut running = JoinSet::new();
    loop {
        let shards = list_shards(client, stream).await?;
        let known: HashSet<&str> = shards.iter().map(|s| s.shard_id()).collect();
        for shard in &shards {
            let parents = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()];
            // A parent no longer listed has expired: nothing of it is left to read first.
            let ready = parents
                .iter()
                .flatten()
                .all(|p| finished.contains(*p) || !known.contains(p));
            if ready && started.insert(shard.shard_id().to_owned()) {
                let is_child = parents.iter().any(Option::is_some);
                let start_at = if is_child {
                    StartAt::TrimHorizon
                } else {
                    options.start_at
                };
                let shard_id = shard.shard_id().to_owned();
                let (client, stream, handler, on_batch) = (
                    client.clone(),
                    stream.to_owned(),
                    handler.clone(),
                    on_batch.clone(),
                );
                running.spawn(async move {
                    let result = poll_shard(
                        &client, &stream, &shard_id, &handler, start_at, options, on_batch,
                    )
                    .await;
                    (shard_id, result)
                });
            }
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

async fn list_shards(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Result<Vec<Shard>, PollError> {
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

/// Reads one shard to its end (closed) or, with `stop_when_idle`, to its tip.
async fn poll_shard(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    shard: &str,
    handler: &Handler,
    start_at: StartAt,
    options: PollOptions,
    on_batch: impl Fn(&str, &BatchReport),
) -> Result<(), PollError> {
    let kind = match start_at {
        StartAt::TrimHorizon => ShardIteratorType::TrimHorizon,
        StartAt::Latest => ShardIteratorType::Latest,
    };
    let mut iterator = shard_iterator(client, stream, shard, kind, None).await?;
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
        let mut pending: VecDeque<_> = records.into();
        let mut checkpoint = None;
        while !pending.is_empty() {
            let batch = Batch {
                source: shard.to_owned(),
                records: take_batch(&mut pending, &options.limits),
            };
            let report = handler.handle_batch(batch).await;
            on_batch(shard, &report);
            if let Some(position) = report.unstored {
                checkpoint = Some((position, report.store_errors.join("; ")));
                break;
            }
        }
        if let Some((position, errors)) = checkpoint {
            failed_attempts += 1;
            if failed_attempts >= options.max_store_attempts {
                return Err(PollError::Unstored {
                    shard: shard.to_owned(),
                    position,
                    attempts: failed_attempts,
                    errors,
                });
            }
            tracing::warn!(shard, sequence_number = %position, attempt = failed_attempts, "records not stored; retrying from the checkpoint");
            tokio::time::sleep(backoff(failed_attempts)).await;
            let at = position.sequence_number().to_owned();
            iterator = shard_iterator(
                client,
                stream,
                shard,
                ShardIteratorType::AtSequenceNumber,
                Some(at),
            )
            .await?;
            continue;
        }
        if got_records {
            failed_attempts = 0;
        }
        let Some(next) = answer.next_shard_iterator else {
            tracing::info!(shard, "shard closed: read to its end");
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

async fn shard_iterator(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    shard: &str,
    kind: ShardIteratorType,
    sequence_number: Option<String>,
) -> Result<String, PollError> {
    let answer = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_starting_sequence_number(sequence_number)
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

fn kinesis_error<E>(call: &'static str, stream: &str, error: E) -> PollError
where
    E: std::error::Error + Send + Sync + 'static,
{
    PollError::Kinesis {
        call,
        stream: stream.to_owned(),
        source: aws_sdk_kinesis::error::DisplayErrorContext(error)
            .to_string()
            .into(),
    }
}
