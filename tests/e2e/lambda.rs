//! The real `bootstrap` binary under a Lambda Runtime API emulator, fed Kinesis events built
//! from GetRecords by the test, which plays the event source mapping: it honours the
//! partial-batch response as the checkpoint and retries from it.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use weir_tests::aws::{Aws, account, aws_env, check_cases, endpoint, send_test_data, unique};
use weir_tests::lambda_api::RuntimeApi;
use weir_tests::{bootstrap_bin, expected_cases, retail_wasm};

/// The Lambda binary's process; its stdout and stderr go to files, so a chatty function never
/// blocks on a full pipe.
pub(crate) struct Function {
    child: Child,
    logs: tempfile::TempDir,
}

impl Function {
    /// Stops the function and returns (stdout, stderr).
    pub(crate) fn stop(mut self) -> (String, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output()
    }

    /// Waits for the function to exit by itself: (succeeded, stdout, stderr).
    pub(crate) fn wait(mut self) -> (bool, String, String) {
        let status = self.child.wait().expect("the function's exit status");
        let (stdout, stderr) = self.output();
        (status.success(), stdout, stderr)
    }

    fn output(&self) -> (String, String) {
        let read = |name| std::fs::read_to_string(self.logs.path().join(name)).unwrap_or_default();
        (read("stdout"), read("stderr"))
    }
}

/// Starts the Lambda binary against `api`, with its configuration in `env`.
pub(crate) fn start_bootstrap(
    api: &RuntimeApi,
    aws_endpoint: &str,
    env: &[(&str, &str)],
) -> Function {
    let logs = tempfile::tempdir().expect("a temp dir for the function's logs");
    let file = |name| std::fs::File::create(logs.path().join(name)).expect("a log file");
    let mut command = Command::new(bootstrap_bin());
    aws_env(&mut command, aws_endpoint);
    command
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "weir")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/weir")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .envs(env.iter().copied())
        .stdout(Stdio::from(file("stdout")))
        .stderr(Stdio::from(file("stderr")));
    Function {
        child: command.spawn().expect("the bootstrap binary starts"),
        logs,
    }
}

/// What one invocation got and answered.
#[derive(Debug)]
pub(crate) struct Invocation {
    /// The shard.
    pub(crate) shard: String,
    /// The event's records: (sequence number, data).
    pub(crate) records: Vec<(String, Vec<u8>)>,
    /// The function's answer.
    pub(crate) response: Value,
}

/// Plays the event source mapping for every shard of `stream`: batches of `batch_size` from
/// GetRecords, one invocation each, resuming from the reported item failure, if any.
/// `between` runs after each invocation, before the mapping acts on its answer.
pub(crate) async fn play_event_source_mapping(
    aws: &Aws,
    api: &RuntimeApi,
    stream: &str,
    batch_size: i32,
    mut between: impl AsyncFnMut(&Invocation),
) -> Vec<Invocation> {
    use aws_sdk_kinesis::types::ShardIteratorType;
    let mut invocations = Vec::new();
    let shards = aws
        .kinesis
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap()
        .shards
        .unwrap_or_default();
    for shard in shards {
        let iterator = |kind: ShardIteratorType, at: Option<String>| {
            aws.kinesis
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(shard.shard_id())
                .shard_iterator_type(kind)
                .set_starting_sequence_number(at)
                .send()
        };
        let mut current = iterator(ShardIteratorType::TrimHorizon, None)
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        loop {
            let answer = aws
                .kinesis
                .get_records()
                .shard_iterator(&current)
                .limit(batch_size)
                .send()
                .await
                .unwrap();
            if answer.records.is_empty() {
                if answer.millis_behind_latest.unwrap_or(0) == 0 {
                    break;
                }
                current = answer.next_shard_iterator.unwrap();
                continue;
            }
            let event = kinesis_event(stream, shard.shard_id(), &answer.records);
            let response = api
                .invoke(event, Duration::from_secs(120))
                .await
                .expect("the function answers");
            let invocation = Invocation {
                shard: shard.shard_id().to_owned(),
                records: answer
                    .records
                    .iter()
                    .map(|r| (r.sequence_number.clone(), r.data.as_ref().to_vec()))
                    .collect(),
                response,
            };
            between(&invocation).await;
            let failure = invocation.response["batchItemFailures"]
                .as_array()
                .and_then(|f| f.first())
                .cloned();
            invocations.push(invocation);
            match failure {
                Some(failure) => {
                    let at = failure["itemIdentifier"]
                        .as_str()
                        .expect("a failure names its sequence number")
                        .to_owned();
                    let last = invocations.last().unwrap();
                    assert!(
                        last.records.iter().any(|(seq, _)| *seq == at),
                        "the reported {at} is a record of the batch"
                    );
                    current = iterator(ShardIteratorType::AtSequenceNumber, Some(at))
                        .await
                        .unwrap()
                        .shard_iterator
                        .unwrap();
                }
                None => current = answer.next_shard_iterator.unwrap(),
            }
            assert!(invocations.len() < 500, "the mapping makes progress");
        }
    }
    invocations
}

/// The Lambda event the event source mapping would send for these records of one shard.
pub(crate) fn kinesis_event(
    stream: &str,
    shard: &str,
    records: &[aws_sdk_kinesis::types::Record],
) -> Value {
    use base64::Engine as _;
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let arrival = r.approximate_arrival_timestamp.unwrap().as_secs_f64();
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64::engine::general_purpose::STANDARD.encode(r.data.as_ref()),
                    "approximateArrivalTimestamp": arrival
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard}:{}", r.sequence_number),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::000000000000:role/weir",
                "awsRegion": "us-east-1",
                "eventSourceARN": format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}")
            })
        })
        .collect();
    json!({ "Records": records })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_stores_every_record_of_a_kpl_stream() {
    stores_every_record_of_a_packed_stream(&["--aggregate", "4"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lambda_stores_every_record_of_a_gzip_stream() {
    stores_every_record_of_a_packed_stream(&["--gzip", "4"]).await;
}

/// Each test case's partition key (its file and line) by its bytes, as `weir send` keys them.
fn case_keys_by_data() -> std::collections::HashMap<Vec<u8>, String> {
    let mut keys = std::collections::HashMap::new();
    for input in weir_tests::aws::data_inputs() {
        let mut source = weir::source::FileSource::open(std::path::Path::new(&input)).unwrap();
        while let Some(batch) = source
            .next_batch(&weir::source::BatchLimits::default())
            .unwrap()
        {
            for record in batch.records {
                keys.entry(record.data).or_insert(record.partition_key);
            }
        }
    }
    keys
}

/// The test data sent packed (KPL aggregates or gzip frames) through the real bootstrap: every
/// event lands once, where its case says, numbered by its place in its Kinesis record.
async fn stores_every_record_of_a_packed_stream(packing: &[&str]) {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let (stream, lake, failed, registry) = (
        unique("lambda"),
        unique("lake"),
        unique("failed"),
        unique("registry"),
    );
    aws.create_stream(&stream, 1).await;
    for bucket in [&lake, &failed, &registry] {
        aws.create_bucket(bucket).await;
    }
    let module = std::fs::read(retail_wasm()).unwrap();
    aws.s3
        .put_object()
        .bucket(&registry)
        .key("retail/v1/retail.wasm")
        .body(module.into())
        .send()
        .await
        .unwrap();

    send_test_data(&endpoint, &stream, packing);

    let api = RuntimeApi::start().await.unwrap();
    let (lake_uri, failed_uri) = (format!("s3://{lake}/events"), format!("s3://{failed}"));
    let transform_uri = format!("s3://{registry}/retail/v1/retail.wasm");
    let started = std::time::Instant::now();
    let function = start_bootstrap(
        &api,
        &endpoint,
        &[
            ("WEIR_LAKE", &lake_uri),
            ("WEIR_FAILED", &failed_uri),
            ("WEIR_TRANSFORM", &transform_uri),
        ],
    );
    let mut first_answer = None;
    let invocations = play_event_source_mapping(&aws, &api, &stream, 7, async |_| {
        first_answer.get_or_insert_with(|| started.elapsed());
    })
    .await;
    // A figure for docs/performance.md, not an assertion: speed is the benchmark's business.
    println!(
        "cold start to the first handled batch: {:?} (transform fetched from S3 and compiled)",
        first_answer.unwrap()
    );
    let (stdout, stderr) = function.stop();
    assert!(
        invocations
            .iter()
            .all(|i| i.response["batchItemFailures"] == json!([])),
        "no storage failures"
    );

    let mut sent = aws.read_stream(&stream).await;
    assert_eq!(sent.len(), expected_cases().len());
    assert!(
        sent.iter()
            .any(|r| r.position.sub_sequence_number().is_some()),
        "the stream holds packed records"
    );
    // A gzip frame's events share its Kinesis partition key; the cases are told by their bytes.
    let cases = case_keys_by_data();
    for record in &mut sent {
        record.partition_key = cases[&record.data].clone();
    }
    let objects = aws.objects(&lake, "events/").await;
    let envelopes = aws.envelopes(&failed, "").await;
    let accounting = account(&sent, &objects, &envelopes);
    assert!(accounting.lost.is_empty(), "lost: {:?}", accounting.lost);
    assert_eq!(accounting.duplicates, 0);
    assert_eq!(check_cases(&sent, &objects, &envelopes), sent.len());
    // Packed records numbered inside their Kinesis record; one that could not be packed (a
    // blank or multi-line event in a gzip stream) goes alone.
    let numbered = |sequence: &str, sub: Option<u32>| {
        sent.iter().any(|r| {
            r.position.sequence_number() == sequence && r.position.sub_sequence_number() == sub
        })
    };
    assert!(
        envelopes
            .iter()
            .all(|(_, e)| numbered(&e.sequence_number, e.sub_sequence_number)),
        "envelopes keep sub-sequence numbers"
    );

    // One EMF line per invocation on stdout, JSON logs on stderr.
    let emf: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &Value| v.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), invocations.len());
    let records_in: f64 = emf.iter().map(|m| m["RecordsIn"].as_f64().unwrap()).sum();
    assert_eq!(records_in as usize, sent.len());
    assert!(
        stderr
            .lines()
            .any(|l| serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["fields"]["message"] == "ready")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_configuration_fails_the_init_naming_the_variable() {
    let api = RuntimeApi::start().await.unwrap();
    let base = [("WEIR_LAKE", "s3://lake"), ("WEIR_FAILED", "s3://failed")];
    for (extra, message) in [
        (vec![], "WEIR_TRANSFORM is not set"),
        (
            vec![
                ("WEIR_TRANSFORM", "s3://r/t.wasm"),
                ("WEIR_GZIP_LEVEL", "12"),
            ],
            "WEIR_GZIP_LEVEL=\\\"12\\\" is invalid",
        ),
    ] {
        let env: Vec<(&str, &str)> = base.iter().copied().chain(extra).collect();
        let (succeeded, _, stderr) = start_bootstrap(&api, &endpoint(), &env).wait();
        assert!(!succeeded);
        assert!(stderr.contains(message), "{message}: {stderr}");
    }
}
