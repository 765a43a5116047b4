//! The fault campaign: many records through `weir run --input kinesis://…` and through the real
//! Lambda, against the local AWS stand-in behind the fault proxy. About 20% of S3 object
//! writes get 503 SlowDown or a reset connection, the failed bucket is unreachable for a
//! while, and the host process is killed at random points and restarted: the poller (each run
//! killed at a random moment after it stored a batch of its own) from its durable checkpoint,
//! the Lambda by the event source mapping retrying the batch it lost.
//! At the end every record sent is accounted for by shard and sequence number.
//!
//! `WEIR_CAMPAIGN_RECORDS` sets the size (20,000 by default; the README gives the figures of a
//! 1,000,000 run). Each run writes `target/campaign-report-<mode>.{json,md}`.

use crate::lambda::{kinesis_event, start_bootstrap};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use weir_tests::aws::{Aws, aws_env, endpoint, unique, weir};
use weir_tests::campaign::{Dice, Scale, Tally, tally, tally_figures, write_events, write_report};
use weir_tests::fault_proxy::{FaultPolicy, FaultProxy, FaultStats};
use weir_tests::lambda_api::RuntimeApi;
use weir_tests::{retail_wasm, weir_bin};

/// 15% SlowDown on object writes plus 5% resets on every S3 request: about 20% of writes fail.
const POLICY: FaultPolicy = FaultPolicy {
    slow_down: 0.16,
    reset: 0.05,
    seed: 2026,
};

/// Few SDK attempts, so some writes fail for good and the retry paths run.
const AWS_MAX_ATTEMPTS: &str = "3";

struct Setup {
    aws: Aws,
    endpoint: String,
    stream: String,
    lake: String,
    failed: String,
    scale: Scale,
    sent_in: Duration,
}

/// A stream of `scale.records` campaign events (as KPL aggregates) and empty buckets.
async fn setup(name: &str, shards: i32, buckets: &[&str]) -> Setup {
    let scale = Scale::from_env();
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let (stream, lake, failed) = (unique(name), unique("lake"), unique("failed"));
    aws.create_stream(&stream, shards).await;
    for bucket in [lake.as_str(), failed.as_str()].iter().chain(buckets) {
        aws.create_bucket(bucket).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("campaign.ndjson");
    write_events(&events, scale.records);
    let started = Instant::now();
    let aggregate = scale.aggregate.to_string();
    weir(
        &endpoint,
        &[
            "send",
            "--stream",
            &stream,
            "--aggregate",
            &aggregate,
            events.to_str().unwrap(),
        ],
    );
    Setup {
        aws,
        endpoint,
        stream,
        lake,
        failed,
        scale,
        sent_in: started.elapsed(),
    }
}

/// Reads everything back and counts; asserts nothing is lost or misplaced.
async fn account(setup: &Setup, lake_prefix: &str) -> (Tally, Duration) {
    let started = Instant::now();
    let sent = setup.aws.read_stream(&setup.stream).await;
    assert_eq!(
        sent.len(),
        setup.scale.records,
        "the stream holds every event"
    );
    let lake = setup.aws.objects(&setup.lake, lake_prefix).await;
    let failed = setup.aws.envelopes(&setup.failed, "").await;
    let tally = tally(&sent, &lake, &failed);
    (tally, started.elapsed())
}

/// Adds the run's own figures (`extra`) to the accounting's, writes the report for `mode`, prints
/// it and checks the accounting.
fn report_and_check(mode: &str, mut figures: Value, extra: Value, tally: &Tally) {
    if let (Some(all), Value::Object(extra)) = (figures.as_object_mut(), extra) {
        all.extend(extra);
    }
    let report = write_report(mode, &figures);
    println!("campaign ({mode}): {figures}");
    check(tally, &report);
}

fn check(tally: &Tally, report: &std::path::Path) {
    assert!(
        tally.lost.is_empty(),
        "{} lost (report {}), first: {:?}",
        tally.lost.len(),
        report.display(),
        &tally.lost[..tally.lost.len().min(10)]
    );
    assert!(
        tally.misplaced.is_empty(),
        "misplaced: {:?}",
        tally.misplaced
    );
    assert_eq!(tally.unknown, 0);
    assert_eq!(tally.in_lake + tally.in_failed, tally.sent);
    // One event in 20 is not JSON and one in 20 is rejected: a tenth ends in the failed bucket.
    let broken = (0..tally.sent)
        .filter(|n| n % 20 == 7 || n % 20 == 13)
        .count();
    assert_eq!(tally.in_failed, broken);
}

fn proxy_figures(stats: FaultStats) -> Value {
    let total = stats.forwarded + stats.slowed_down + stats.reset;
    json!({
        "s3_requests": total,
        "slowed_down": stats.slowed_down,
        "reset": stats.reset,
    })
}

/// `weir run` on the stream through the proxy, with a durable checkpoint; its output goes to
/// `log` (appended across restarts).
fn start_poller(setup: &Setup, proxy: &FaultProxy, checkpoint: &str, log: &std::fs::File) -> Child {
    let wasm = retail_wasm();
    let mut command = Command::new(weir_bin());
    command.args([
        "run",
        "--input",
        &format!("kinesis://{}", setup.stream),
        "--checkpoint",
        checkpoint,
        "--stop-when-idle",
        "--transform",
        wasm.to_str().unwrap(),
        "--lake",
        &format!("s3://{}/events", setup.lake),
        "--failed",
        &format!("s3://{}", setup.failed),
    ]);
    aws_env(&mut command, &proxy.endpoint());
    command
        .env("AWS_MAX_ATTEMPTS", AWS_MAX_ATTEMPTS)
        .env("WEIR_LOG", "warn,weir::source=info")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log.try_clone().unwrap()))
        .spawn()
        .expect("weir starts")
}

/// The checkpoint objects in `bucket`: (key, ETag).
async fn checkpoints_in(aws: &Aws, bucket: &str) -> Vec<(String, String)> {
    let listed = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let mut objects: Vec<(String, String)> = listed
        .contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap_or_default().to_owned(),
                o.e_tag().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    objects.sort();
    objects
}

/// Waits until a checkpoint in `bucket` changes, or the poller has exited.
async fn wait_for_progress(aws: &Aws, bucket: &str, child: &mut Child) {
    let before = checkpoints_in(aws, bucket).await;
    while child.try_wait().unwrap().is_none() {
        if checkpoints_in(aws, bucket).await != before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The failed bucket is down from the first kill to the third.
fn failed_bucket_down(kills: usize) -> bool {
    (1..3).contains(&kills)
}

/// The last lines of the poller's log, for a failure message (the log's directory goes away).
fn log_tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn campaign_through_the_kinesis_poller_with_kills_and_faults() {
    let checkpoints = unique("checkpoints");
    let setup = setup("campaign-poll", 4, &[&checkpoints]).await;
    let upstream = setup
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = FaultProxy::start(upstream, POLICY).await.unwrap();
    let checkpoint = format!("s3://{checkpoints}/weir");
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("weir.log");
    let log = std::fs::File::create(&log_path).unwrap();

    let mut dice = Dice(POLICY.seed);
    let (mut kills, mut runs) = (0, 0);
    let started = Instant::now();
    loop {
        let mut child = start_poller(&setup, &proxy, &checkpoint, &log);
        runs += 1;
        if kills < setup.scale.kills {
            // While the failed bucket is up, each killed run first stores a batch of its own
            // (its checkpoints move), however slow the machine: the kill then lands mid-work,
            // and the next run resumes from a checkpoint.
            if !failed_bucket_down(kills) {
                wait_for_progress(&setup.aws, &checkpoints, &mut child).await;
            }
            // Anywhere in the run: while reading, transforming, storing or checkpointing.
            let delay = Duration::from_millis(dice.between(0, 1_500));
            tokio::time::sleep(delay).await;
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "weir run failed:\n{}",
                    log_tail(&log_path)
                );
                break;
            }
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            proxy.set_unavailable(&setup.failed, failed_bucket_down(kills));
            continue;
        }
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        assert!(
            status.success(),
            "weir run failed:\n{}",
            log_tail(&log_path)
        );
        break;
    }
    let ingest = started.elapsed();
    let log_text = std::fs::read_to_string(&log_path).unwrap();
    let resumed = log_text.matches("resuming after the checkpoint").count();
    let store_retries = log_text.matches("retrying after the checkpoint").count();

    let (tally, accounting_time) = account(&setup, "events/").await;
    let figures = tally_figures(&tally);
    let extra = json!({
        "mode": "weir run --input kinesis:// (4 shards, --checkpoint on S3)",
        "kpl_aggregate": setup.scale.aggregate,
        "kills": kills,
        "runs": runs,
        "shard_resumes_from_checkpoint": resumed,
        "batch_retries_after_store_failures": store_retries,
        "proxy": proxy_figures(proxy.stats()),
        "send_seconds": setup.sent_in.as_secs_f64(),
        "ingest_seconds": ingest.as_secs_f64(),
        "accounting_seconds": accounting_time.as_secs_f64(),
    });
    report_and_check("poller", figures, extra, &tally);
    assert!(resumed > 0, "a restart resumed from a checkpoint");
    let stats = proxy.stats();
    assert!(stats.slowed_down > 0 && stats.reset > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn campaign_through_the_lambda_with_kills_and_faults() {
    let setup = setup("campaign-lambda", 2, &[]).await;
    let upstream = setup
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = FaultProxy::start(upstream, POLICY).await.unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let (lake_uri, failed_uri, wasm) = (
        format!("s3://{}/events", setup.lake),
        format!("s3://{}", setup.failed),
        retail_wasm(),
    );
    let env = [
        ("WEIR_LAKE", lake_uri.as_str()),
        ("WEIR_FAILED", failed_uri.as_str()),
        ("WEIR_TRANSFORM", wasm.to_str().unwrap()),
        ("AWS_MAX_ATTEMPTS", AWS_MAX_ATTEMPTS),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
    ];
    let start = || start_bootstrap(&api, &proxy.endpoint(), &env);
    let mut function = start();
    proxy.set_unavailable(&setup.failed, true);

    // Kinesis records per invocation: about 500 user records.
    let per_invocation = i32::try_from((500 / setup.scale.aggregate).max(1)).unwrap();
    let mut dice = Dice(POLICY.seed);
    let (mut invocations, mut kills, mut item_failures) = (0, 0, 0);
    let started = Instant::now();
    let shards = setup
        .aws
        .kinesis
        .list_shards()
        .stream_name(&setup.stream)
        .send()
        .await
        .unwrap()
        .shards
        .unwrap_or_default();
    use aws_sdk_kinesis::types::ShardIteratorType;
    for shard in &shards {
        let iterator = async |kind: ShardIteratorType, at: Option<String>| {
            setup
                .aws
                .kinesis
                .get_shard_iterator()
                .stream_name(&setup.stream)
                .shard_id(shard.shard_id())
                .shard_iterator_type(kind)
                .set_starting_sequence_number(at)
                .send()
                .await
                .unwrap()
                .shard_iterator
                .unwrap()
        };
        let mut current = iterator(ShardIteratorType::TrimHorizon, None).await;
        loop {
            let answer = setup
                .aws
                .kinesis
                .get_records()
                .shard_iterator(&current)
                .limit(per_invocation)
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
            let event = kinesis_event(&setup.stream, shard.shard_id(), &answer.records);
            // Invoke until the function answers; a killed function loses its invocation and
            // the mapping sends the same batch again, as Lambda retries a crashed invocation.
            let response = loop {
                invocations += 1;
                let invoke = api.invoke(event.clone(), Duration::from_secs(120));
                let kill_now = kills < setup.scale.kills && dice.between(0, 100) < 20;
                let answer = if kill_now {
                    // The first kill comes before any answer can: at least one lands mid-batch.
                    let delay = match kills {
                        0 => Duration::from_millis(5),
                        _ => Duration::from_millis(dice.between(5, 400)),
                    };
                    tokio::select! {
                        answer = invoke => Some(answer),
                        () = tokio::time::sleep(delay) => None,
                    }
                } else {
                    Some(invoke.await)
                };
                match answer {
                    Some(answer) => break answer.expect("the function answers"),
                    None => {
                        let _ = function.stop();
                        kills += 1;
                        function = start();
                    }
                }
            };
            match response["batchItemFailures"].get(0) {
                Some(failure) => {
                    item_failures += 1;
                    let at = failure["itemIdentifier"].as_str().unwrap().to_owned();
                    assert!(
                        answer.records.iter().any(|r| r.sequence_number == at),
                        "the reported {at} is a record of the batch"
                    );
                    current = iterator(ShardIteratorType::AtSequenceNumber, Some(at)).await;
                    // The failed bucket comes back once it has forced a retry.
                    proxy.set_unavailable(&setup.failed, false);
                }
                None => current = answer.next_shard_iterator.unwrap(),
            }
        }
    }
    let ingest = started.elapsed();
    let _ = function.stop();

    let (tally, accounting_time) = account(&setup, "events/").await;
    let figures = tally_figures(&tally);
    let extra = json!({
        "mode": "Lambda bootstrap under the Runtime API emulator (2 shards)",
        "kpl_aggregate": setup.scale.aggregate,
        "invocations": invocations,
        "kills": kills,
        "batch_item_failures_reported": item_failures,
        "proxy": proxy_figures(proxy.stats()),
        "send_seconds": setup.sent_in.as_secs_f64(),
        "ingest_seconds": ingest.as_secs_f64(),
        "accounting_seconds": accounting_time.as_secs_f64(),
    });
    report_and_check("lambda", figures, extra, &tally);
    assert!(item_failures > 0, "storage failures were reported back");
    assert!(kills > 0, "the function was killed mid-invocation");
}
