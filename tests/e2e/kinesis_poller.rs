//! `weir send` into a real Kinesis API, then `weir run --input kinesis://…` drains it into S3:
//! every record sent is in the lake or the failed bucket, by shard and sequence number.

use weir_tests::aws::{Aws, account, check_cases, endpoint, send_test_data, unique, weir};
use weir_tests::{expected_cases, retail_wasm};

#[tokio::test(flavor = "multi_thread")]
async fn drains_a_stream_into_s3_with_the_shard_poller() {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let (stream, lake, failed) = (unique("poll"), unique("lake"), unique("failed"));
    aws.create_stream(&stream, 2).await;
    aws.create_bucket(&lake).await;
    aws.create_bucket(&failed).await;

    let sent_line = send_test_data(&endpoint, &stream, &[]);
    let cases = expected_cases().len();
    assert!(
        sent_line.contains(&format!("sent {cases} events")),
        "{sent_line}"
    );

    let wasm = retail_wasm().display().to_string();
    let (lake_uri, failed_uri) = (
        format!("s3://{lake}/events"),
        format!("s3://{failed}/errors"),
    );
    let run = [
        "run",
        "--input",
        &format!("kinesis://{stream}"),
        "--stop-when-idle",
        "--batch-size",
        "16",
        "--transform",
        &wasm,
        "--lake",
        &lake_uri,
        "--failed",
        &failed_uri,
    ];
    let summary = weir(&endpoint, &run);
    assert!(summary.contains(&format!("{cases} records")), "{summary}");

    let sent = aws.read_stream(&stream).await;
    assert_eq!(sent.len(), cases);
    let objects = aws.objects(&lake, "events/").await;
    let envelopes = aws.envelopes(&failed, "errors/").await;
    let accounting = account(&sent, &objects, &envelopes);
    assert!(accounting.lost.is_empty(), "lost: {:?}", accounting.lost);
    assert_eq!(accounting.duplicates, 0);
    assert_eq!(check_cases(&sent, &objects, &envelopes), cases);
    for (key, envelope) in &envelopes {
        assert!(
            key.starts_with(&format!("error_type={}/dt=", envelope.error_type)),
            "{key}"
        );
        assert!(!envelope.message.is_empty() && envelope.source.starts_with("shardId-"));
    }

    // Objects say what they are and who wrote them.
    let (key, _) = &objects[0];
    let head = aws
        .s3
        .head_object()
        .bucket(&lake)
        .key(format!("events/{key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/x-ndjson"));
    assert_eq!(head.content_encoding(), Some("gzip"));
    let metadata = head.metadata().unwrap();
    assert_eq!(
        metadata.get("weir-transform").map(String::as_str),
        Some("retail")
    );
    assert!(
        metadata.contains_key("weir-first-sequence")
            && metadata.contains_key("weir-transform-sha256")
    );

    // Reading the stream again overwrites the same objects: nothing doubles.
    weir(&endpoint, &run);
    assert_eq!(aws.objects(&lake, "events/").await, objects);
    assert_eq!(
        aws.envelopes(&failed, "errors/").await.len(),
        envelopes.len()
    );
}
