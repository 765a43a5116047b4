//! The Lambda behind a fault-injecting proxy: S3 answers a share of object writes with
//! 503 SlowDown and drops connections, and the failed bucket is unreachable at first. After
//! every invocation the reported checkpoint is checked against what S3 durably holds and what
//! the shard's ledger has committed, and at the end every record sent is in the lake or the
//! failed bucket, once.

use crate::lambda::{Invocation, play_event_source_mapping, start_bootstrap};
use serde_json::Value;
use std::cell::Cell;
use weir::source::sequence::Position;
use weir_tests::aws::{Aws, SentRecord, account, endpoint, send_test_data, unique};
use weir_tests::fault_proxy::{FaultPolicy, FaultProxy};
use weir_tests::lambda_api::RuntimeApi;
use weir_tests::retail_wasm;

/// The invocation's records as the lake should hold them (no aggregates are sent here).
fn records_of(invocation: &Invocation) -> Vec<SentRecord> {
    invocation
        .records
        .iter()
        .map(|(sequence, data)| SentRecord {
            shard: invocation.shard.clone(),
            position: Position::parse(sequence).unwrap(),
            partition_key: String::new(),
            data: data.clone(),
            arrival: weir::source::record::Timestamp::from_unix_millis(0),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_lost_when_s3_throttles_and_drops_connections() {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let (stream, lake, failed) = (unique("faults"), unique("lake"), unique("failed"));
    aws.create_stream(&stream, 1).await;
    aws.create_bucket(&lake).await;
    aws.create_bucket(&failed).await;
    send_test_data(&endpoint, &stream, &[]);

    let upstream = endpoint.trim_start_matches("http://").parse().unwrap();
    let policy = FaultPolicy {
        slow_down: 0.3,
        reset: 0.1,
        stored_then_error: 0.0,
        seed: 7,
    };
    let proxy = FaultProxy::start(upstream, policy).await.unwrap();
    proxy.set_unavailable(&failed, true);
    let api = RuntimeApi::start().await.unwrap();
    let (lake_uri, failed_uri, wasm) = (
        format!("s3://{lake}/events"),
        format!("s3://{failed}"),
        retail_wasm(),
    );
    let env = [
        ("WEIR_LAKE", lake_uri.as_str()),
        ("WEIR_FAILED", failed_uri.as_str()),
        ("WEIR_TRANSFORM", wasm.to_str().unwrap()),
        // Few retries, so some writes really fail and the checkpoint is exercised.
        ("AWS_MAX_ATTEMPTS", "3"),
    ];
    let function = start_bootstrap(&api, &proxy.endpoint(), &env);

    let reported = Cell::new(0);
    let invocations = play_event_source_mapping(&aws, &api, &stream, 5, async |invocation| {
        let objects = aws.objects(&lake, "events/").await;
        let envelopes = aws.envelopes(&failed, "").await;
        let records = records_of(invocation);
        let failure: Option<&Value> = invocation.response["batchItemFailures"].get(0);
        let checkpoint =
            failure.map(|f| Position::parse(f["itemIdentifier"].as_str().unwrap()).unwrap());
        let before: Vec<_> = records
            .into_iter()
            .filter(|r| checkpoint.as_ref().is_none_or(|c| r.position < *c))
            .collect();
        let stored_before = account(&before, &objects, &envelopes);
        assert!(
            stored_before.lost.is_empty(),
            "reported {checkpoint:?} but {:?} are not stored",
            stored_before.lost
        );
        if let Some(checkpoint) = checkpoint {
            // The reported record is not stored: no committed cut holds it. (Its cut's objects
            // may be in S3 already: the retry replaces them.)
            let key = format!("events/_weir/ledger/{stream}/{}.json", invocation.shard);
            let ledger = aws.s3.get_object().bucket(&lake).key(&key).send().await;
            if let Ok(ledger) = ledger {
                let bytes = ledger.body.collect().await.unwrap().into_bytes();
                let ledger: Value = serde_json::from_slice(&bytes).unwrap();
                let watermark = ledger["stored"]
                    .as_str()
                    .map(|s| Position::parse(s).unwrap());
                assert!(
                    watermark.as_ref().is_none_or(|w| *w < checkpoint),
                    "reported {checkpoint}, which the ledger holds as stored ({watermark:?})"
                );
            }
            reported.set(reported.get() + 1);
            // The failed bucket comes back once it has forced a retry.
            proxy.set_unavailable(&failed, false);
        }
    })
    .await;
    let (_, stderr) = function.stop();

    let sent = aws.read_stream(&stream).await;
    let accounting = account(
        &sent,
        &aws.objects(&lake, "events/").await,
        &aws.envelopes(&failed, "").await,
    );
    let stats = proxy.stats();
    println!(
        "fault test: {} records sent, {} in the lake, {} failed, {} lost, {} duplicates; {} invocations, {} checkpoints reported; proxy {stats:?}",
        sent.len(),
        accounting.in_lake,
        accounting.in_failed,
        accounting.lost.len(),
        accounting.duplicates,
        invocations.len(),
        reported.get()
    );
    assert!(
        accounting.lost.is_empty(),
        "lost: {:?}\n{stderr}",
        accounting.lost
    );
    assert_eq!(accounting.in_lake + accounting.in_failed, sent.len());
    assert_eq!(accounting.duplicates, 0);
    assert!(
        reported.get() > 0,
        "the unreachable failed bucket forced at least one retry"
    );
    assert!(
        stats.slowed_down > 0 && stats.reset > 0,
        "faults were injected: {stats:?}"
    );
}
