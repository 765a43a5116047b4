//! Exactly once, scenario by scenario: the real `bootstrap` under the Runtime API emulator, S3
//! behind the fault proxy, and the event source mapping's inconvenient moves played by hand:
//! a half-stored attempt retried with a shorter cut, a duplicate delivery, a corrupt ledger.
//! The campaign (`campaign.rs`) plays the same moves at random and at scale.

use crate::esm::read_shard;
use crate::lambda::{Function, kinesis_event, start_bootstrap};
use aws_sdk_kinesis::types::Record;
use serde_json::Value;
use std::time::Duration;
use weir_tests::aws::{Aws, endpoint, unique, weir};
use weir_tests::campaign::{Tally, tally, write_events};
use weir_tests::fault_proxy::{FaultPolicy, FaultProxy};
use weir_tests::lambda_api::RuntimeApi;
use weir_tests::retail_wasm;

const NO_FAULTS: FaultPolicy = FaultPolicy {
    slow_down: 0.0,
    reset: 0.0,
    stored_then_error: 0.0,
    seed: 1,
};

/// One shard of campaign events, a lake and a failed bucket, and the function behind a proxy.
struct Scene {
    aws: Aws,
    stream: String,
    shard: String,
    lake: String,
    failed: String,
    records: Vec<Record>,
    proxy: FaultProxy,
    api: RuntimeApi,
    function: Option<Function>,
}

impl Scene {
    async fn new(events: usize) -> Self {
        let endpoint = endpoint();
        let aws = Aws::connect(&endpoint).await;
        let (stream, lake, failed) = (unique("once"), unique("lake"), unique("failed"));
        aws.create_stream(&stream, 1).await;
        aws.create_bucket(&lake).await;
        aws.create_bucket(&failed).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ndjson");
        write_events(&path, events);
        weir(
            &endpoint,
            &["send", "--stream", &stream, path.to_str().unwrap()],
        );
        let shard = aws
            .kinesis
            .list_shards()
            .stream_name(&stream)
            .send()
            .await
            .unwrap();
        let shard = shard.shards()[0].shard_id().to_owned();
        let records = read_shard(&aws, &stream, &shard).await;
        assert_eq!(records.len(), events);
        let upstream = endpoint.trim_start_matches("http://").parse().unwrap();
        let proxy = FaultProxy::start(upstream, NO_FAULTS).await.unwrap();
        let api = RuntimeApi::start().await.unwrap();
        let mut scene = Scene {
            aws,
            stream,
            shard,
            lake,
            failed,
            records,
            proxy,
            api,
            function: None,
        };
        scene.function = Some(scene.start());
        scene
    }

    fn start(&self) -> Function {
        let (lake, failed, wasm) = (
            format!("s3://{}/events", self.lake),
            format!("s3://{}", self.failed),
            retail_wasm(),
        );
        let env = [
            ("WEIR_LAKE", lake.as_str()),
            ("WEIR_FAILED", failed.as_str()),
            ("WEIR_TRANSFORM", wasm.to_str().unwrap()),
            ("AWS_MAX_ATTEMPTS", "1"),
        ];
        start_bootstrap(&self.api, &self.proxy.endpoint(), &env)
    }

    /// Invokes the function with records `range` of the shard; returns the reported failure.
    async fn invoke(&self, range: std::ops::Range<usize>) -> Option<String> {
        let shard = self.shard();
        let event = kinesis_event(&self.stream, &shard, &self.records[range]);
        let response: Value = self
            .api
            .invoke(event, Duration::from_secs(60))
            .await
            .expect("the function answers");
        response["batchItemFailures"]
            .get(0)
            .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
    }

    fn shard(&self) -> String {
        self.shard.clone()
    }

    fn sequence(&self, index: usize) -> String {
        self.records[index].sequence_number().to_owned()
    }

    fn ledger_key(&self) -> String {
        format!("events/_weir/ledger/{}/{}.json", self.stream, self.shard())
    }

    async fn ledger(&self) -> Value {
        let object = self
            .aws
            .s3
            .get_object()
            .bucket(&self.lake)
            .key(self.ledger_key())
            .send()
            .await
            .expect("the shard has a ledger");
        serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap()
    }

    async fn tally(&self) -> Tally {
        let sent = self.aws.read_stream(&self.stream).await;
        let lake = self.aws.objects(&self.lake, "events/").await;
        let failed = self.aws.envelopes(&self.failed, "").await;
        tally(&sent, &lake, &failed)
    }

    fn stop(&mut self) -> String {
        self.function.take().map(|f| f.stop().0).unwrap_or_default()
    }
}

/// The sum of one metric over the function's EMF lines.
fn metric_total(stdout: &str, name: &str) -> f64 {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|emf| emf[name].as_f64())
        .sum()
}

fn assert_exactly_once(tally: &Tally) {
    assert!(tally.lost.is_empty(), "lost: {:?}", tally.lost);
    assert_eq!(tally.duplicates, 0, "{tally:?}");
    assert_eq!(tally.in_lake + tally.in_failed, tally.sent, "{tally:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_half_stored_attempt_retried_with_other_cuts_leaves_each_record_once() {
    let mut scene = Scene::new(60).await;
    // The first attempt stores its lake objects but not its failed ones.
    scene.proxy.set_unavailable(&scene.failed, true);
    let reported = scene.invoke(0..40).await;
    assert_eq!(
        reported,
        Some(scene.sequence(0)),
        "the whole cut is retried"
    );
    let half_stored = scene.aws.objects(&scene.lake, "events/").await;
    assert!(!half_stored.is_empty(), "the attempt wrote lake objects");
    scene.proxy.set_unavailable(&scene.failed, false);

    // The mapping bisects, then moves on with a cut longer than the first attempt.
    assert_eq!(scene.invoke(0..15).await, None);
    assert_eq!(scene.invoke(15..60).await, None);
    // And delivers a batch again.
    assert_eq!(scene.invoke(10..30).await, None);

    assert_exactly_once(&scene.tally().await);
    // The last cut's commit waits for the shard's next open.
    let ledger = scene.ledger().await;
    assert_eq!(ledger["stored"], scene.sequence(14).as_str());
    assert_eq!(
        ledger["open"][0]["span"]["first"],
        scene.sequence(15).as_str()
    );
    assert_eq!(ledger["open"].as_array().unwrap().len(), 1, "{ledger}");
    let stdout = scene.stop();
    assert!(
        metric_total(&stdout, "AbandonedObjectsRemoved") > 0.0,
        "{stdout}"
    );
    assert_eq!(
        metric_total(&stdout, "RecordsDeduplicated"),
        20.0,
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_mid_invocation_is_repaired_by_a_bisected_retry() {
    let mut scene = Scene::new(40).await;
    // Kill the function while it works on the batch: wherever it stopped, retry both halves.
    let shard = scene.shard();
    let event = kinesis_event(&scene.stream, &shard, &scene.records[0..40]);
    let invoke = scene.api.invoke(event, Duration::from_secs(60));
    tokio::select! {
        _ = invoke => {},
        () = tokio::time::sleep(Duration::from_millis(150)) => {},
    }
    scene.stop();
    scene.function = Some(scene.start());
    assert_eq!(scene.invoke(0..20).await, None);
    assert_eq!(scene.invoke(20..40).await, None);
    assert_exactly_once(&scene.tally().await);
    scene.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_ledger_costs_one_batch_at_least_once_and_is_replaced() {
    let mut scene = Scene::new(30).await;
    assert_eq!(scene.invoke(0..10).await, None);
    // Restart, so the function reads the ledger instead of its cache, and break the document.
    scene.stop();
    scene
        .aws
        .s3
        .put_object()
        .bucket(&scene.lake)
        .key(scene.ledger_key())
        .body(b"{not a ledger".to_vec().into())
        .send()
        .await
        .unwrap();
    scene.function = Some(scene.start());
    assert_eq!(scene.invoke(10..20).await, None, "the stream is not stuck");
    assert_eq!(scene.ledger().await["format"], "weir-ledger/1");
    assert_eq!(scene.invoke(10..30).await, None);
    let stdout = scene.stop();
    assert_eq!(metric_total(&stdout, "LedgerFallbacks"), 1.0, "{stdout}");
    assert_exactly_once(&scene.tally().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_function_commits_an_answered_cut_it_finds_with_every_object_stored() {
    let mut scene = Scene::new(30).await;
    assert_eq!(scene.invoke(0..10).await, None);
    // Answered, and still open in the ledger: its commit was to ride on the next open.
    let ledger = scene.ledger().await;
    assert_eq!(ledger["stored"], Value::Null);
    assert_eq!(
        ledger["open"][0]["span"]["first"],
        scene.sequence(0).as_str()
    );
    // The process is gone, and the mapping re-delivers part of the batch with newer records
    // to a new one: abandoning the open cut would delete records 0-4 for good.
    scene.stop();
    scene.function = Some(scene.start());
    assert_eq!(scene.invoke(5..20).await, None);
    assert_eq!(scene.invoke(20..30).await, None);
    assert_exactly_once(&scene.tally().await);
    let ledger = scene.ledger().await;
    assert_eq!(ledger["stored"], scene.sequence(19).as_str(), "{ledger}");
    assert_eq!(ledger["open"].as_array().unwrap().len(), 1, "{ledger}");
    let stdout = scene.stop();
    assert_eq!(
        metric_total(&stdout, "RecordsDeduplicated"),
        5.0,
        "{stdout}"
    );
    assert_eq!(
        metric_total(&stdout, "AbandonedObjectsRemoved"),
        0.0,
        "{stdout}"
    );
    let heads = scene
        .proxy
        .log()
        .iter()
        .filter(|l| l.starts_with("HEAD "))
        .count();
    assert!(heads > 0, "the new process checked the cut's objects");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_the_mapping_gave_up_on_stops_holding_the_watermark_back() {
    let mut scene = Scene::new(60).await;
    scene.proxy.set_unavailable(&scene.failed, true);
    assert_eq!(scene.invoke(0..40).await, Some(scene.sequence(0)));
    scene.proxy.set_unavailable(&scene.failed, false);
    // Retries exhausted, the mapping moves on (the records go to its on-failure destination).
    assert_eq!(scene.invoke(40..50).await, None);
    assert_eq!(scene.invoke(50..60).await, None);
    let ledger = scene.ledger().await;
    assert_eq!(ledger["stored"], scene.sequence(49).as_str(), "{ledger}");
    assert_eq!(ledger["open"].as_array().unwrap().len(), 1, "{ledger}");
    assert_eq!(ledger["committed"], serde_json::json!([]), "{ledger}");
    scene.stop();
    let tally = scene.tally().await;
    assert_eq!(tally.duplicates, 0, "{tally:?}");
    assert!(
        !tally.lost.is_empty(),
        "the failed half of the given-up batch"
    );
    let given_up: Vec<String> = (0..40).map(|i| scene.sequence(i)).collect();
    assert!(
        tally
            .lost
            .iter()
            .all(|lost| given_up.iter().any(|seq| lost.contains(seq.as_str()))),
        "only records of the given-up batch are missing: {tally:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_function_adds_one_ledger_request_per_batch_and_one_round_trip_before_its_objects() {
    let mut scene = Scene::new(100).await;
    let batches = 10;
    for b in 0..batches {
        assert_eq!(scene.invoke(b * 10..b * 10 + 10).await, None);
    }
    scene.stop();
    assert_exactly_once(&scene.tally().await);
    let ledger = scene.proxy.stats().ledger as usize;
    // One GET at the cold start, then one open per batch, which commits the batch before.
    assert_eq!(ledger, 1 + batches, "{:#?}", scene.proxy.log());
    // Before each batch's first object PUT: only its open.
    let log = scene.proxy.log();
    let is_ledger = |line: &String| line.contains("/_weir/ledger/");
    let mut ledger_run = 0;
    let mut runs = Vec::new();
    for line in &log {
        if is_ledger(line) {
            ledger_run += 1;
        } else if line.starts_with("PUT ") && ledger_run > 0 {
            runs.push(ledger_run);
            ledger_run = 0;
        }
    }
    // The first batch reads then opens; every later one only opens.
    assert_eq!(runs[0], 2, "{log:#?}");
    // And its own open cut is known finished: nothing is checked.
    assert!(!log.iter().any(|l| l.starts_with("HEAD ")), "{log:#?}");
    assert!(runs[1..].iter().all(|&n| n == 1), "open only: {runs:?}");
    assert_eq!(runs.len(), batches);
}
