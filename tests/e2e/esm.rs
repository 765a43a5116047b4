//! An event source mapping player that behaves as AWS documents the Kinesis mapping, the
//! inconvenient parts included:
//!
//! - batches of up to `batch_size` plain Kinesis records (or KPL aggregates) and 6 MB of
//!   payload, cut anew each time;
//! - after a partial-batch response, a retry from the reported record: either a fresh cut of
//!   any size (shorter or longer than before) or the old batch's remaining records;
//! - after a function error (a crash, a kill mid-invocation, a timeout), the batch is bisected
//!   (`BisectBatchOnFunctionError`) and each half retried, down to single records;
//! - duplicate delivery: a batch that succeeded is sometimes delivered again;
//! - `ParallelizationFactor` > 1: each shard's records are split into lanes by partition-key
//!   hash, and the lanes run at once, each with its own function, so a batch is an interleaved
//!   subset of its shard.
//!
//! The player reads each shard with GetRecords from the AWS stand-in, invokes the real
//! `bootstrap` through the Runtime API emulator, and counts what it did.

use crate::lambda::{Function, kinesis_event, start_bootstrap};
use aws_sdk_kinesis::types::Record;
use std::time::Duration;
use weir_tests::aws::Aws;
use weir_tests::campaign::Dice;
use weir_tests::lambda_api::RuntimeApi;

/// The largest invocation payload Lambda accepts.
const MAX_PAYLOAD: usize = 6 << 20;

/// How the mapping behaves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mapping {
    /// Records per batch at most (`BatchSize`).
    pub(crate) batch_size: usize,
    /// Lanes per shard (`ParallelizationFactor`).
    pub(crate) parallelization: usize,
    /// Probability that a batch that succeeded is delivered again.
    pub(crate) duplicate: f64,
    /// Probability that an invocation is killed mid-way (a function error).
    pub(crate) kill: f64,
    /// Seeds the dice.
    pub(crate) seed: u64,
}

/// What the player did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Played {
    /// Invocations, all lanes.
    pub(crate) invocations: usize,
    /// Invocations killed mid-way.
    pub(crate) kills: usize,
    /// Partial-batch responses acted on.
    pub(crate) partial_retries: usize,
    /// Of those, retried with a fresh cut (the rest: the old batch's remainder).
    pub(crate) recuts: usize,
    /// Batches split in two after a function error.
    pub(crate) bisections: usize,
    /// Successful batches delivered again.
    pub(crate) duplicates: usize,
}

impl Played {
    fn add(&mut self, other: Played) {
        self.invocations += other.invocations;
        self.kills += other.kills;
        self.partial_retries += other.partial_retries;
        self.recuts += other.recuts;
        self.bisections += other.bisections;
        self.duplicates += other.duplicates;
    }
}

/// Plays the mapping over every shard of `stream` until each record is acknowledged, with one
/// function (started with `env`, talking to AWS at `aws_endpoint`) per lane.
pub(crate) async fn play(
    aws: &Aws,
    stream: &str,
    aws_endpoint: &str,
    env: &[(&str, &str)],
    mapping: Mapping,
) -> Played {
    let shards = aws
        .kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .shards
        .unwrap_or_default();
    let mut lanes = tokio::task::JoinSet::new();
    for (s, shard) in shards.iter().enumerate() {
        let records = read_shard(aws, stream, shard.shard_id()).await;
        for lane in 0..mapping.parallelization {
            let lane_records: Vec<Record> = records
                .iter()
                .filter(|r| {
                    lane_of(
                        r.partition_key().unwrap_or_default(),
                        mapping.parallelization,
                    ) == lane
                })
                .cloned()
                .collect();
            let (stream, shard_id) = (stream.to_owned(), shard.shard_id().to_owned());
            let (endpoint, env) = (
                aws_endpoint.to_owned(),
                env.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            );
            let seed = mapping.seed ^ ((s as u64) << 8 | lane as u64);
            lanes.spawn(async move {
                let api = RuntimeApi::start().await.unwrap();
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let mut player = Lane {
                    api: &api,
                    start: &|| start_bootstrap(&api, &endpoint, &env),
                    stream: &stream,
                    shard: &shard_id,
                    records: &lane_records,
                    mapping,
                    dice: Dice(seed),
                    played: Played::default(),
                };
                player.run().await
            });
        }
    }
    let mut played = Played::default();
    while let Some(lane) = lanes.join_next().await {
        played.add(lane.expect("a lane player does not panic"));
    }
    played
}

/// The lane a partition key falls in: FNV-1a, so lanes interleave within a shard.
fn lane_of(partition_key: &str, lanes: usize) -> usize {
    let hash = partition_key
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    (hash % lanes as u64) as usize
}

/// Every record of a shard, in order.
pub(crate) async fn read_shard(aws: &Aws, stream: &str, shard: &str) -> Vec<Record> {
    use aws_sdk_kinesis::types::ShardIteratorType;
    let mut iterator = aws
        .kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let mut records = Vec::new();
    loop {
        let answer = aws
            .kinesis
            .get_records()
            .shard_iterator(&iterator)
            .limit(10_000)
            .send()
            .await
            .unwrap();
        let empty = answer.records.is_empty();
        records.extend(answer.records);
        if empty && answer.millis_behind_latest.unwrap_or(0) == 0 {
            return records;
        }
        iterator = answer.next_shard_iterator.unwrap();
    }
}

/// One lane of one shard, played to its end.
struct Lane<'a> {
    api: &'a RuntimeApi,
    start: &'a (dyn Fn() -> Function + Sync),
    stream: &'a str,
    shard: &'a str,
    records: &'a [Record],
    mapping: Mapping,
    dice: Dice,
    played: Played,
}

/// How an invocation ended.
enum Answer {
    /// Every record handled.
    Done,
    /// A partial-batch response: retry from this index of the lane.
    RetryFrom(usize),
    /// A function error: crash, kill, timeout.
    FunctionError,
}

impl Lane<'_> {
    async fn run(&mut self) -> Played {
        let mut function = (self.start)();
        // Everything before `checkpoint` is acknowledged; `queue` holds bisected halves.
        let mut checkpoint = 0;
        let mut queue: Vec<(usize, usize)> = Vec::new();
        while checkpoint < self.records.len() {
            let (start, end) = queue.pop().unwrap_or_else(|| {
                let size = self.dice.between(1, self.mapping.batch_size as u64 + 1) as usize;
                (checkpoint, self.cut_end(checkpoint, size))
            });
            assert!(
                self.played.invocations < 50 * self.records.len() + 1_000,
                "the mapping makes progress on {}",
                self.shard
            );
            match self.invoke(&mut function, start, end).await {
                Answer::Done => {
                    checkpoint = end;
                    if self.roll(self.mapping.duplicate) {
                        self.played.duplicates += 1;
                        // At least once: the same batch again. Whatever it answers, the
                        // checkpoint already moved on.
                        let _ = self.invoke(&mut function, start, end).await;
                    }
                }
                Answer::RetryFrom(at) => {
                    self.played.partial_retries += 1;
                    checkpoint = at;
                    queue.clear();
                    if self.roll(0.5) {
                        self.played.recuts += 1;
                    } else {
                        queue.push((at, end));
                    }
                }
                Answer::FunctionError => {
                    checkpoint = start;
                    if end - start > 1 {
                        self.played.bisections += 1;
                        let middle = start + (end - start) / 2;
                        queue.push((middle, end));
                        queue.push((start, middle));
                    } else {
                        queue.push((start, end));
                    }
                }
            }
        }
        let _ = function.stop();
        self.played
    }

    /// Where a batch from `start` of at most `size` records ends: the mapping also stops at a
    /// 6 MB payload (base64 makes the event a third bigger than the data).
    fn cut_end(&self, start: usize, size: usize) -> usize {
        let mut bytes = 0;
        let mut end = start;
        while end < self.records.len() && end - start < size {
            bytes += self.records[end].data().as_ref().len() * 4 / 3 + 300;
            if end > start && bytes > MAX_PAYLOAD {
                break;
            }
            end += 1;
        }
        end
    }

    fn roll(&mut self, probability: f64) -> bool {
        (self.dice.between(0, 1_000_000) as f64) < probability * 1_000_000.0
    }

    async fn invoke(&mut self, function: &mut Function, start: usize, end: usize) -> Answer {
        let batch = &self.records[start..end];
        let event = kinesis_event(self.stream, self.shard, batch);
        self.played.invocations += 1;
        let kill = self.roll(self.mapping.kill);
        let invoke = self.api.invoke(event, Duration::from_secs(120));
        let answer = if kill {
            let delay = Duration::from_millis(self.dice.between(1, 300));
            tokio::select! {
                answer = invoke => Some(answer),
                () = tokio::time::sleep(delay) => None,
            }
        } else {
            Some(invoke.await)
        };
        let response = match answer {
            Some(Ok(response)) => response,
            Some(Err(_)) => return Answer::FunctionError,
            None => {
                self.played.kills += 1;
                let old = std::mem::replace(function, (self.start)());
                let _ = old.stop();
                return Answer::FunctionError;
            }
        };
        let Some(failure) = response["batchItemFailures"].get(0) else {
            return Answer::Done;
        };
        let at = failure["itemIdentifier"]
            .as_str()
            .expect("a failure names its sequence number");
        let index = batch
            .iter()
            .position(|r| r.sequence_number() == at)
            .unwrap_or_else(|| panic!("the reported {at} is a record of the batch"));
        Answer::RetryFrom(start + index)
    }
}
