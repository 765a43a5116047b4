//! The fault campaign: many records through `weir run --input kinesis://…` and through the real
//! Lambda, against the local AWS stand-in behind the fault proxy. About 20% of S3 object
//! writes get 503 SlowDown or a reset connection, the failed bucket is unreachable for a
//! while, and the host process is killed at random points and restarted: the poller (each run
//! killed at a random moment after it stored a batch of its own) from its durable checkpoint,
//! the Lambda under an event source mapping player that re-cuts retries, bisects after function
//! errors, delivers batches twice and runs two lanes per shard (`crate::esm`).
//! At the end every record sent is accounted for by shard and sequence number: none lost, none
//! stored twice.
//!
//! `WEIR_CAMPAIGN_RECORDS` sets the size (20,000 by default; docs/reliability.md gives the figures
//! of 1,000,000-record runs). Each run writes `target/campaign-report-<mode>.{json,md}`.

use crate::esm::{self, Mapping};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use weir_tests::aws::{Aws, aws_env, endpoint, unique, weir};
use weir_tests::campaign::{Dice, Scale, Tally, tally, tally_figures, write_events, write_report};
use weir_tests::fault_proxy::{FaultPolicy, FaultProxy, FaultStats};
use weir_tests::{retail_wasm, weir_bin};

/// 15% SlowDown on object writes plus 5% resets on every S3 request: about 20% of writes fail.
const POLICY: FaultPolicy = FaultPolicy {
    slow_down: 0.16,
    reset: 0.05,
    stored_then_error: 0.0,
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
async fn setup(name: &str, shards: i32, buckets: &[&str], aggregate: Option<usize>) -> Setup {
    let mut scale = Scale::from_env();
    if let Some(aggregate) = aggregate {
        scale.aggregate = aggregate;
    }
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
    assert_eq!(
        tally.duplicates,
        0,
        "records stored twice (report {})",
        report.display()
    );
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
        "stored_then_error": stats.stored_then_error,
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
    let setup = setup("campaign-poll", 4, &[&checkpoints], None).await;
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

/// The faults of the independent harness: 15% of object writes answered 503 SlowDown, 5%
/// stored but answered 500, 2% of S3 connections dropped, and only 2 attempts per SDK call.
const LAMBDA_POLICY: FaultPolicy = FaultPolicy {
    slow_down: 0.15,
    reset: 0.02,
    stored_then_error: 0.05,
    seed: 2027,
};

/// The mapping as AWS runs it: batches of up to 100 records, about 5% of invocations killed,
/// 5% of successful batches delivered twice.
const MAPPING: Mapping = Mapping {
    batch_size: 100,
    parallelization: 1,
    duplicate: 0.05,
    kill: 0.05,
    seed: 2026,
};

/// The real `bootstrap` under the mapping player, with S3 faults and kills, `aggregate` user
/// records per Kinesis record.
async fn lambda_campaign(name: &str, aggregate: usize, mapping: Mapping) {
    let setup = setup(name, 2, &[], Some(aggregate)).await;
    let upstream = setup
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = FaultProxy::start(upstream, LAMBDA_POLICY).await.unwrap();
    let (lake_uri, failed_uri, wasm) = (
        format!("s3://{}/events", setup.lake),
        format!("s3://{}", setup.failed),
        retail_wasm(),
    );
    let parallelization = mapping.parallelization.to_string();
    let env = [
        ("WEIR_LAKE", lake_uri.as_str()),
        ("WEIR_FAILED", failed_uri.as_str()),
        ("WEIR_TRANSFORM", wasm.to_str().unwrap()),
        ("WEIR_PARALLELIZATION_FACTOR", parallelization.as_str()),
        ("AWS_MAX_ATTEMPTS", "2"),
        ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
    ];
    let started = Instant::now();
    let played = esm::play(&setup.aws, &setup.stream, &proxy.endpoint(), &env, mapping).await;
    let ingest = started.elapsed();

    let (tally, accounting_time) = account(&setup, "events/").await;
    let figures = tally_figures(&tally);
    let stats = proxy.stats();
    let extra = json!({
        "mode": format!(
            "Lambda bootstrap under the event source mapping player (2 shards, ParallelizationFactor {})",
            mapping.parallelization
        ),
        "kpl_aggregate": aggregate,
        "batch_size": mapping.batch_size,
        "invocations": played.invocations,
        "kills": played.kills,
        "partial_batch_retries": played.partial_retries,
        "recut_retries": played.recuts,
        "bisections": played.bisections,
        "duplicate_deliveries": played.duplicates,
        "proxy": proxy_figures(stats),
        "ledger_requests": stats.ledger,
        "ledger_requests_per_invocation": stats.ledger as f64 / played.invocations.max(1) as f64,
        "send_seconds": setup.sent_in.as_secs_f64(),
        "ingest_seconds": ingest.as_secs_f64(),
        "accounting_seconds": accounting_time.as_secs_f64(),
    });
    report_and_check(name, figures, extra, &tally);
    assert!(played.kills > 0, "invocations were killed: {played:?}");
    assert!(
        played.partial_retries > 0 && played.recuts > 0,
        "{played:?}"
    );
    assert!(played.bisections > 0, "{played:?}");
    assert!(played.duplicates > 0, "{played:?}");
    assert!(
        stats.slowed_down > 0 && stats.stored_then_error > 0,
        "{stats:?}"
    );
}

/// `WEIR_CAMPAIGN_AGGREGATE` when set (runs by hand at 1,000,000 records: the stand-in's
/// PutRecords is linear in the shard's length), else `default`.
fn aggregate_or(default: usize) -> usize {
    match std::env::var("WEIR_CAMPAIGN_AGGREGATE") {
        Ok(_) => Scale::from_env().aggregate,
        Err(_) => default,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn campaign_through_the_lambda_under_the_real_mapping() {
    lambda_campaign("lambda", aggregate_or(1), MAPPING).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn campaign_through_the_lambda_with_two_lanes_per_shard_and_kpl() {
    let mapping = Mapping {
        parallelization: 2,
        seed: 2028,
        ..MAPPING
    };
    // Small aggregates by default, so even 20,000 records make enough invocations to kill.
    lambda_campaign("lambda-pf2-kpl", aggregate_or(4), mapping).await;
}
