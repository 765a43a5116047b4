//! The local AWS stand-in (moto's server, started by `scripts/test`) from the tests' side:
//! clients, streams and buckets with unique names, reading a stream and a bucket back, and
//! checking that every record sent ended in the lake or the failed bucket.

use aws_sdk_kinesis::types::ShardIteratorType;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use weir::lake::envelope::Envelope;
use weir::source::record::Timestamp;
use weir::source::sequence::Position;

/// The stand-in's endpoint, from `WEIR_TEST_AWS_ENDPOINT` (set by `scripts/test`).
pub fn endpoint() -> String {
    std::env::var("WEIR_TEST_AWS_ENDPOINT")
        .expect("WEIR_TEST_AWS_ENDPOINT is not set: run the tests with scripts/test, which starts the local AWS stand-in")
}

/// A name no other test uses: `prefix-<pid>-<n>`, valid for streams and buckets.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Points a child process at `endpoint` with test credentials.
pub fn aws_env(command: &mut Command, endpoint: &str) {
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_ENDPOINT_URL_KINESIS");
}

/// Clients for the stand-in.
#[derive(Debug, Clone)]
pub struct Aws {
    /// Kinesis.
    pub kinesis: aws_sdk_kinesis::Client,
    /// S3, path-style.
    pub s3: aws_sdk_s3::Client,
    /// The Glue Data Catalog.
    pub glue: aws_sdk_glue::Client,
}

/// One user record as it sits in the stream (aggregates expanded).
#[derive(Debug, Clone)]
pub struct SentRecord {
    /// The shard.
    pub shard: String,
    /// Sequence and sub-sequence number.
    pub position: Position,
    /// The user record's partition key.
    pub partition_key: String,
    /// Its bytes.
    pub data: Vec<u8>,
    /// Kinesis' approximate arrival time.
    pub arrival: Timestamp,
}

impl Aws {
    /// Clients for `endpoint`.
    pub async fn connect(endpoint: &str) -> Self {
        let credentials =
            aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .load()
            .await;
        let s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        Self {
            kinesis: aws_sdk_kinesis::Client::new(&config),
            s3: aws_sdk_s3::Client::from_conf(s3),
            glue: aws_sdk_glue::Client::new(&config),
        }
    }

    /// Creates a stream and waits until it is active.
    pub async fn create_stream(&self, name: &str, shards: i32) {
        self.kinesis
            .create_stream()
            .stream_name(name)
            .shard_count(shards)
            .send()
            .await
            .expect("CreateStream");
        self.wait_active(name).await;
    }

    /// Waits until the stream is active (after creating or resharding it).
    pub async fn wait_active(&self, name: &str) {
        for _ in 0..100 {
            let summary = self
                .kinesis
                .describe_stream_summary()
                .stream_name(name)
                .send()
                .await
                .expect("DescribeStreamSummary");
            let status = summary.stream_description_summary.map(|d| d.stream_status);
            if status == Some(aws_sdk_kinesis::types::StreamStatus::Active) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("stream {name} did not become active");
    }

    /// Creates a bucket.
    pub async fn create_bucket(&self, name: &str) {
        self.s3
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("CreateBucket");
    }

    /// Every user record in the stream, shard by shard, in order.
    pub async fn read_stream(&self, stream: &str) -> Vec<SentRecord> {
        let shards = self
            .kinesis
            .list_shards()
            .stream_name(stream)
            .send()
            .await
            .expect("ListShards");
        let mut sent = Vec::new();
        for shard in shards.shards.unwrap_or_default() {
            let mut iterator = self
                .kinesis
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(shard.shard_id())
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("GetShardIterator")
                .shard_iterator;
            while let Some(current) = iterator {
                let answer = self
                    .kinesis
                    .get_records()
                    .shard_iterator(current)
                    .send()
                    .await
                    .expect("GetRecords");
                let done =
                    answer.records.is_empty() && answer.millis_behind_latest.unwrap_or(0) == 0;
                for record in answer.records {
                    let position =
                        Position::parse(&record.sequence_number).expect("Kinesis numbers records");
                    let arrival = record
                        .approximate_arrival_timestamp
                        .map_or(0, |t| t.to_millis().expect("a time"));
                    let mut users = Vec::new();
                    weir::source::kinesis::push_records(
                        record.data.into_inner(),
                        record.partition_key.unwrap_or_default(),
                        position,
                        Timestamp::from_unix_millis(arrival),
                        &mut users,
                    );
                    sent.extend(users.into_iter().map(|user| SentRecord {
                        shard: shard.shard_id().to_owned(),
                        position: user.position,
                        partition_key: user.partition_key,
                        data: user.data,
                        arrival: user.arrival,
                    }));
                }
                iterator = if done {
                    None
                } else {
                    answer.next_shard_iterator
                };
            }
        }
        sent
    }

    /// Every object under `s3://bucket/prefix`: `(key without the prefix, NDJSON lines)`.
    pub async fn objects(&self, bucket: &str, prefix: &str) -> Vec<(String, Vec<Vec<u8>>)> {
        let mut objects = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for object in page.expect("ListObjectsV2").contents.unwrap_or_default() {
                let key = object.key.expect("listed objects have keys");
                if !crate::is_visible(&key[prefix.len()..]) {
                    continue;
                }
                let body = self
                    .s3
                    .get_object()
                    .bucket(bucket)
                    .key(&key)
                    .send()
                    .await
                    .expect("GetObject");
                let bytes = body.body.collect().await.expect("object body").into_bytes();
                let ndjson = crate::gunzip(&bytes);
                let lines = ndjson
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect();
                objects.push((key[prefix.len()..].to_owned(), lines));
            }
        }
        objects.sort();
        objects
    }

    /// Every failed envelope under `s3://bucket/prefix`, with its key.
    pub async fn envelopes(&self, bucket: &str, prefix: &str) -> Vec<(String, Envelope)> {
        self.objects(bucket, prefix)
            .await
            .into_iter()
            .flat_map(|(key, lines)| {
                lines.into_iter().map(move |line| {
                    (
                        key.clone(),
                        serde_json::from_slice(&line).expect("an envelope"),
                    )
                })
            })
            .collect()
    }
}

/// How the records sent ended up.
#[derive(Debug, Default)]
pub struct Accounting {
    /// Records found in the lake.
    pub in_lake: usize,
    /// Records found in the failed bucket.
    pub in_failed: usize,
    /// Records found nowhere.
    pub lost: Vec<String>,
    /// Lake lines and envelopes beyond one per record (from partial-batch retries).
    pub duplicates: usize,
}

/// Finds every sent record, by shard and sequence number, in the lake objects (whose keys carry
/// the shard and sequence range) or among the failed envelopes, and checks each against
/// `tests/data/expected.json` when its partition key names a case there.
pub fn account(
    sent: &[SentRecord],
    lake: &[(String, Vec<Vec<u8>>)],
    failed: &[(String, Envelope)],
) -> Accounting {
    let mut accounting = Accounting::default();
    for record in sent {
        let sequence = record.position.sequence_number();
        let sub = record.position.sub_sequence_number();
        let in_failed = failed.iter().any(|(_, e)| {
            e.source == record.shard
                && e.sequence_number == sequence
                && e.sub_sequence_number == sub
        });
        let mut line = Vec::new();
        weir::lake::encode::push_line(&mut line, &record.data);
        line.pop();
        let in_lake = lake.iter().any(|(key, lines)| {
            covers(key, &record.shard, &record.position) && lines.contains(&line)
        });
        match (in_lake, in_failed) {
            (true, false) => accounting.in_lake += 1,
            (false, true) => accounting.in_failed += 1,
            // Stored twice: counted once here, the other copy shows up as a duplicate below.
            (true, true) => accounting.in_lake += 1,
            (false, false) => accounting
                .lost
                .push(format!("{}/{}", record.shard, record.position)),
        }
    }
    let stored: usize = lake.iter().map(|(_, lines)| lines.len()).sum::<usize>() + failed.len();
    accounting.duplicates = stored.saturating_sub(accounting.in_lake + accounting.in_failed);
    accounting
}

/// Whether the object at `key` (`.../<source>-<first>-<last>-<sha12>.json.gz`) is from
/// `shard` and its sequence range holds `position`.
pub fn covers(key: &str, shard: &str, position: &Position) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    let Some(stem) = name.strip_suffix(".json.gz") else {
        return false;
    };
    let mut parts = stem.rsplitn(4, '-');
    let (_sha, last, first, source) = (parts.next(), parts.next(), parts.next(), parts.next());
    let (Some(last), Some(first), Some(source)) = (last, first, source) else {
        return false;
    };
    source == shard
        && match (parse_position(first), parse_position(last)) {
            (Some(first), Some(last)) => first <= *position && *position <= last,
            _ => false,
        }
}

/// `123` or `123.4` (sequence number and sub-sequence number).
pub fn parse_position(text: &str) -> Option<Position> {
    match text.split_once('.') {
        Some((sequence, sub)) => Some(Position::parse(sequence).ok()?.with_sub(sub.parse().ok()?)),
        None => Position::parse(text).ok(),
    }
}

/// Checks every sent record that is a `tests/data` case against `expected.json`: accepted ones
/// sit under the expected partition (arrival placeholders filled from Kinesis' arrival time),
/// failed ones carry the expected error type and code.
pub fn check_cases(
    sent: &[SentRecord],
    lake: &[(String, Vec<Vec<u8>>)],
    failed: &[(String, Envelope)],
) -> usize {
    let expected = crate::expected_cases();
    let prefix = format!("{}/", crate::data_dir().display());
    let mut checked = 0;
    for record in sent {
        let Some(case) = record.partition_key.strip_prefix(&prefix) else {
            continue;
        };
        let Some(expect) = expected.get(case) else {
            continue;
        };
        let envelope = failed.iter().map(|(_, e)| e).find(|e| {
            e.source == record.shard
                && e.sequence_number == record.position.sequence_number()
                && e.sub_sequence_number == record.position.sub_sequence_number()
        });
        match (expect["outcome"].as_str(), envelope) {
            (Some("accept"), None) => {
                let partition = crate::expected_partition(expect, record.arrival);
                let mut line = Vec::new();
                weir::lake::encode::push_line(&mut line, &record.data);
                line.pop();
                let found = lake.iter().any(|(key, lines)| {
                    key.rsplit_once('/').map(|(dir, _)| dir)
                        == Some(&*format!("retail/{partition}"))
                        && lines.contains(&line)
                });
                assert!(found, "{case}: not in partition {partition}");
            }
            (Some("reject"), Some(e)) => {
                assert_eq!(
                    (e.error_type.as_str(), Some(e.code.as_str())),
                    ("rejected", expect["code"].as_str()),
                    "{case}"
                );
            }
            (Some("failed"), Some(e)) => assert_eq!(
                Some(e.error_type.as_str()),
                expect["error_type"].as_str(),
                "{case}"
            ),
            (outcome, envelope) => {
                panic!("{case}: expected {outcome:?}, found envelope {envelope:?}")
            }
        }
        checked += 1;
    }
    checked
}

/// Runs a `weir` subcommand against `endpoint`; panics with its output if it fails.
pub fn weir(endpoint: &str, args: &[&str]) -> String {
    let mut command = Command::new(crate::weir_bin());
    command.args(args);
    aws_env(&mut command, endpoint);
    let output = command.output().expect("weir runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "weir {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `weir send`s all of `tests/data` to `stream` (with `extra` options); returns its summary.
pub fn send_test_data(endpoint: &str, stream: &str, extra: &[&str]) -> String {
    let inputs = data_inputs();
    let mut args = vec!["send", "--stream", stream];
    args.extend(extra);
    args.extend(inputs.iter().map(String::as_str));
    weir(endpoint, &args)
}

/// `tests/data` as `weir send` and `weir run` take it.
pub fn data_inputs() -> Vec<String> {
    ["seed", "valid", "invalid", "events.ndjson"]
        .iter()
        .map(|input| crate::data_dir().join(input).display().to_string())
        .collect()
}
