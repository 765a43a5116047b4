//! `weir send`: put events from files into a Kinesis stream with PutRecords, as a producer
//! would, retrying the entries the service refuses.

use crate::source::kinesis::{MAX_EXPANSION, UserRecord, aggregate, compress, fits_frame};
use crate::source::record::Record;
use crate::source::{BatchLimits, FileSource};
use anyhow::{Context, bail};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// PutRecords takes at most 500 entries and 5 MiB per call.
const MAX_ENTRIES: usize = 500;
const MAX_REQUEST_BYTES: usize = 5 << 20;
/// Kinesis' limit on one record's data plus partition key.
const MAX_RECORD_BYTES: usize = 1 << 20;
/// Kinesis' limit on a partition key, in Unicode characters.
const MAX_KEY_CHARS: usize = 256;
const MAX_ATTEMPTS: u32 = 10;

#[derive(Debug, clap::Args)]
pub(super) struct SendArgs {
    /// The Kinesis stream's name.
    #[arg(long)]
    stream: String,
    /// Files or directories of events, read as `weir run` reads them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Pack up to this many events into each Kinesis record as KPL aggregates, as the Kinesis
    /// Producer Library does.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    aggregate: Option<u32>,
    /// Compress up to this many events into each Kinesis record as gzip frames (NDJSON, a line
    /// each), which the host expands: several times more events per batch, fewer S3 requests.
    #[arg(long, conflicts_with = "aggregate", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    gzip: Option<u32>,
}

pub(super) async fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let mut events = Vec::new();
    for path in &args.paths {
        let mut source = FileSource::open(path)?;
        while let Some(batch) = source.next_batch(&BatchLimits::default())? {
            events.extend(batch.records);
        }
    }
    let entries = match (args.aggregate, args.gzip) {
        (Some(per_record), _) => aggregated_entries(&events, per_record as usize),
        (None, Some(per_frame)) => gzip_entries(&events, per_frame as usize),
        (None, None) => events
            .iter()
            .map(|e| entry(e.data.clone(), &e.partition_key))
            .collect(),
    };
    let (entries, too_large): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|(size, _)| *size <= MAX_RECORD_BYTES);
    let client = crate::aws::kinesis_client().await;
    let mut requests = 0;
    let mut retried = 0;
    let mut pending = entries
        .into_iter()
        .map(|(_, entry)| entry)
        .collect::<Vec<_>>();
    while !pending.is_empty() {
        let (chunk, rest) = split_request(pending);
        pending = rest;
        let (calls, retries) = put_with_retries(&client, &args.stream, chunk).await?;
        requests += calls;
        retried += retries;
    }
    let sent_records = events.len() - too_large.len();
    println!(
        "sent {sent_records} events to {} in {requests} PutRecords calls ({retried} entries retried)",
        args.stream
    );
    if !too_large.is_empty() {
        eprintln!(
            "weir: {} records exceed Kinesis' 1 MiB limit and were not sent",
            too_large.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// An entry and its size as Kinesis counts it (data plus partition key).
fn entry(data: Vec<u8>, partition_key: &str) -> (usize, PutRecordsRequestEntry) {
    let key: String = partition_key.chars().take(MAX_KEY_CHARS).collect();
    let key = if key.is_empty() { "-".to_owned() } else { key };
    let size = data.len() + key.len();
    let entry = PutRecordsRequestEntry::builder()
        .data(Blob::new(data))
        .partition_key(key)
        .build()
        .expect("data and partition key are set");
    (size, entry)
}

/// KPL aggregates of up to `per_record` events each, below the record size limit.
fn aggregated_entries(
    events: &[Record],
    per_record: usize,
) -> Vec<(usize, PutRecordsRequestEntry)> {
    let mut entries = Vec::new();
    let mut group: Vec<UserRecord> = Vec::new();
    let mut bytes = 0;
    let mut flush = |group: &mut Vec<UserRecord>| {
        if let Some(first) = group.first() {
            let key = first.partition_key.clone();
            entries.push(entry(aggregate(group), &key));
            group.clear();
        }
    };
    for event in events {
        let size = event.data.len() + event.partition_key.len() + 16;
        if group.len() == per_record || (bytes + size > MAX_RECORD_BYTES / 2 && !group.is_empty()) {
            flush(&mut group);
            bytes = 0;
        }
        let partition_key: String = event.partition_key.chars().take(MAX_KEY_CHARS).collect();
        group.push(UserRecord {
            partition_key,
            explicit_hash_key: None,
            data: event.data.clone(),
        });
        bytes += size;
    }
    flush(&mut group);
    entries
}

/// Gzip frames of up to `per_frame` events each, at most 1 MiB of events before compression (so
/// below the record size limit after it). A frame that compresses past what the host expands
/// is split in two until it does not; one event that still does is sent as it is. So is an
/// event a frame would change (pretty-printed JSON, a blank one, a trailing `\r`).
fn gzip_entries(events: &[Record], per_frame: usize) -> Vec<(usize, PutRecordsRequestEntry)> {
    fn push(group: &[&Record], entries: &mut Vec<(usize, PutRecordsRequestEntry)>) {
        let frame = compress(group.iter().map(|e| e.data.as_slice()));
        let raw: usize = group.iter().map(|e| e.data.len() + 1).sum();
        if raw <= frame.len() * MAX_EXPANSION {
            entries.push(entry(frame, &group[0].partition_key));
        } else if let [event] = group {
            entries.push(entry(event.data.clone(), &event.partition_key));
        } else {
            let (left, right) = group.split_at(group.len() / 2);
            push(left, entries);
            push(right, entries);
        }
    }
    let mut entries = Vec::new();
    let mut group: Vec<&Record> = Vec::new();
    let mut bytes = 0;
    for event in events {
        let fits = fits_frame(&event.data);
        let full = group.len() == per_frame || bytes + event.data.len() >= MAX_RECORD_BYTES;
        // In stream order: the frame so far goes before an event that cannot join it.
        if !group.is_empty() && (full || !fits) {
            push(&group, &mut entries);
            group.clear();
            bytes = 0;
        }
        if !fits {
            entries.push(entry(event.data.clone(), &event.partition_key));
            continue;
        }
        group.push(event);
        bytes += event.data.len() + 1;
    }
    if !group.is_empty() {
        push(&group, &mut entries);
    }
    entries
}

/// The next request's entries (at most 500 and 5 MiB), and the rest.
fn split_request(
    mut entries: Vec<PutRecordsRequestEntry>,
) -> (Vec<PutRecordsRequestEntry>, Vec<PutRecordsRequestEntry>) {
    let mut bytes = 0;
    let mut count = 0;
    for entry in &entries {
        let size = entry.data().as_ref().len() + entry.partition_key().map_or(0, str::len);
        if count == MAX_ENTRIES || (count > 0 && bytes + size > MAX_REQUEST_BYTES) {
            break;
        }
        bytes += size;
        count += 1;
    }
    let rest = entries.split_off(count);
    (entries, rest)
}

/// Puts the entries, resending those the answer marks as failed; returns (calls, retried entries).
async fn put_with_retries(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    mut entries: Vec<PutRecordsRequestEntry>,
) -> anyhow::Result<(usize, usize)> {
    let (mut calls, mut retried) = (0, 0);
    for attempt in 0..MAX_ATTEMPTS {
        calls += 1;
        let answer = client
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries.clone()))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(crate::aws::describe(&e)))
            .with_context(|| format!("PutRecords to stream {stream} failed"))?;
        if answer.failed_record_count.unwrap_or(0) == 0 {
            return Ok((calls, retried));
        }
        let failed: Vec<PutRecordsRequestEntry> = entries
            .into_iter()
            .zip(&answer.records)
            .filter(|(_, result)| result.error_code.is_some())
            .map(|(entry, _)| entry)
            .collect();
        tracing::warn!(
            stream,
            failed = failed.len(),
            attempt,
            "PutRecords refused entries; resending them"
        );
        retried += failed.len();
        entries = failed;
        tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
    }
    bail!(
        "PutRecords to stream {stream}: {} entries still refused after {MAX_ATTEMPTS} attempts",
        entries.len()
    )
}
