//! The catalog: after ingest, the Glue Data Catalog's tables and partitions are exactly the
//! lake's; a partitioning change registers a second table; a catalog that is down, throttles
//! or holds a conflicting table never blocks or loses a record, and `weir catalog sync` makes
//! the catalog right afterwards; scheduled compaction (the Lambda package with
//! `WEIR_MODE=compact`) merges closed partitions and keeps the catalog right.

use crate::lambda::start_bootstrap;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use weir::lake::partition::unescape_value;
use weir_tests::aws::{Aws, data_inputs, endpoint, unique};
use weir_tests::cli::{ok, weir};
use weir_tests::fault_proxy::{FaultPolicy, FaultProxy};
use weir_tests::lambda_api::RuntimeApi;
use weir_tests::{retail_daily_wasm, retail_wasm};

/// A Glue database no other test uses.
async fn create_database(aws: &Aws) -> String {
    let name = unique("weir_e2e").replace('-', "_");
    aws.glue
        .create_database()
        .database_input(
            aws_sdk_glue::types::DatabaseInput::builder()
                .name(&name)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateDatabase");
    name
}

/// The partition values the catalog holds for `table`, and each one's location.
async fn catalog_partitions(
    aws: &Aws,
    database: &str,
    table: &str,
) -> BTreeSet<(Vec<String>, String)> {
    let mut partitions = BTreeSet::new();
    let mut pages = aws
        .glue
        .get_partitions()
        .database_name(database)
        .table_name(table)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for partition in page.expect("GetPartitions").partitions.unwrap_or_default() {
            let location = partition
                .storage_descriptor()
                .and_then(|s| s.location())
                .expect("a partition has a location")
                .to_owned();
            partitions.insert((partition.values().to_vec(), location));
        }
    }
    partitions
}

/// The partitions that hold a data object under `s3://bucket/<prefix><table>/`: values
/// (unescaped, as the catalog holds them) and the folder's location.
async fn lake_partitions(
    aws: &Aws,
    bucket: &str,
    prefix: &str,
    table: &str,
) -> BTreeSet<(Vec<String>, String)> {
    let root = format!("{prefix}{table}/");
    let mut partitions = BTreeSet::new();
    let mut pages = aws
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(&root)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for object in page.expect("ListObjectsV2").contents.unwrap_or_default() {
            let key = object.key.expect("listed objects have keys");
            if !weir_tests::is_visible(&key[root.len()..]) {
                continue;
            }
            let (dir, _) = key[root.len()..]
                .rsplit_once('/')
                .expect("objects sit in partitions");
            let values = dir
                .split('/')
                .map(|level| unescape_value(level.split_once('=').expect("k=v").1))
                .collect();
            partitions.insert((values, format!("s3://{bucket}/{root}{dir}/")));
        }
    }
    partitions
}

/// `weir run` of the test data through `module` into `s3://bucket/<lake>` with `extra`. The
/// data's files are dated days ago, so every partition is closed whatever the time of day.
fn ingest(
    endpoint: &str,
    bucket: &str,
    lake: &str,
    module: &std::path::Path,
    extra: &[&str],
) -> String {
    let data = tempfile::tempdir().unwrap();
    let inputs = weir_tests::aged_test_data(data.path());
    let lake = format!("s3://{bucket}/{lake}");
    let failed = format!("s3://{bucket}/failed");
    let module = module.display().to_string();
    let mut args = vec![
        "run",
        "--transform",
        &module,
        "--lake",
        &lake,
        "--failed",
        &failed,
    ];
    args.extend(extra);
    args.push("--input");
    args.extend(inputs.iter().map(String::as_str));
    ok(weir(Some(endpoint), &args))
}

async fn table(aws: &Aws, database: &str, name: &str) -> aws_sdk_glue::types::Table {
    aws.glue
        .get_table()
        .database_name(database)
        .name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("table {name} is in the catalog: {e:?}"))
        .table
        .expect("GetTable answers a table")
}

fn partition_keys(table: &aws_sdk_glue::types::Table) -> Vec<&str> {
    table.partition_keys().iter().map(|c| c.name()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_holds_exactly_the_lakes_tables_and_partitions() {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let bucket = unique("catalog");
    aws.create_bucket(&bucket).await;
    let database = create_database(&aws).await;
    let catalog = format!("glue://{database}");

    let summary = ingest(
        &endpoint,
        &bucket,
        "lake",
        &retail_wasm(),
        &["--catalog", &catalog],
    );
    let lake = lake_partitions(&aws, &bucket, "lake/", "retail").await;
    assert!(
        lake.len() > 10,
        "the test data spreads over partitions: {lake:?}"
    );
    assert!(
        summary.contains(&format!(
            "catalog {catalog}: {} partitions registered, 0 pending",
            lake.len()
        )),
        "{summary}"
    );
    let retail = table(&aws, &database, "retail").await;
    assert_eq!(partition_keys(&retail), ["section", "dt", "hr"]);
    assert_eq!(retail.table_type(), Some("EXTERNAL_TABLE"));
    let storage = retail.storage_descriptor().unwrap();
    assert_eq!(
        storage.location(),
        Some(format!("s3://{bucket}/lake/retail/").as_str())
    );
    assert_eq!(
        storage.serde_info().and_then(|s| s.serialization_library()),
        Some("org.apache.hive.hcatalog.data.JsonSerDe")
    );
    assert_eq!(catalog_partitions(&aws, &database, "retail").await, lake);

    // The partitioning changes: the new version's table is registered beside the old one.
    ingest(
        &endpoint,
        &bucket,
        "lake",
        &retail_daily_wasm(),
        &["--catalog", &catalog],
    );
    let daily = table(&aws, &database, "retail_daily").await;
    assert_eq!(partition_keys(&daily), ["section", "dt"]);
    let daily_lake = lake_partitions(&aws, &bucket, "lake/", "retail_daily").await;
    assert_eq!(
        catalog_partitions(&aws, &database, "retail_daily").await,
        daily_lake
    );
    assert_eq!(
        catalog_partitions(&aws, &database, "retail").await,
        lake,
        "v1's table is untouched"
    );

    // A rerun writes the same partitions: nothing new to register, and nothing registered twice.
    let again = ingest(
        &endpoint,
        &bucket,
        "lake",
        &retail_wasm(),
        &["--catalog", &catalog],
    );
    assert!(
        again.contains(&format!("{} partitions registered, 0 pending", lake.len())),
        "{again}"
    );
    assert_eq!(catalog_partitions(&aws, &database, "retail").await, lake);

    // Parquet: the table declares the metadata fields its objects hold.
    let parquet_db = create_database(&aws).await;
    let parquet_catalog = format!("glue://{parquet_db}");
    ingest(
        &endpoint,
        &bucket,
        "lake-parquet",
        &retail_wasm(),
        &["--catalog", &parquet_catalog, "--format", "parquet"],
    );
    let parquet = table(&aws, &parquet_db, "retail").await;
    let columns: Vec<(&str, &str)> = parquet
        .storage_descriptor()
        .unwrap()
        .columns()
        .iter()
        .map(|c| (c.name(), c.r#type().unwrap_or_default()))
        .collect();
    let metadata = columns
        .iter()
        .find(|(n, _)| *n == "metadata")
        .expect("a metadata column")
        .1;
    for field in ["section:string", "uuid:string"] {
        assert!(metadata.contains(field), "{metadata}");
    }
    assert!(
        columns.contains(&("payload", "string")) && columns.contains(&("raw", "binary")),
        "{columns:?}"
    );
    assert_eq!(
        catalog_partitions(&aws, &parquet_db, "retail").await,
        lake_partitions(&aws, &bucket, "lake-parquet/", "retail").await
    );

    // Athena DDL with projection, for the same table.
    let ddl = ok(weir(
        Some(&endpoint),
        &[
            "catalog",
            "ddl",
            "--lake",
            &format!("s3://{bucket}/lake"),
            "--table",
            "retail",
            "--database",
            &database,
        ],
    ));
    assert!(
        ddl.contains(&format!("LOCATION 's3://{bucket}/lake/retail/'")),
        "{ddl}"
    );
    assert!(ddl.contains("'projection.dt.type' = 'date'"), "{ddl}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_that_is_down_throttles_or_conflicts_never_blocks_ingest() {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let bucket = unique("catalog-faults");
    aws.create_bucket(&bucket).await;
    let reference = ingest(&endpoint, &bucket, "reference", &retail_wasm(), &[]);
    let stored = |summary: &str| {
        summary
            .split(", ")
            .find(|part| part.ends_with(" stored"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("a stored count in {summary}"))
    };

    // Down: nothing answers on the catalog's endpoint. Every record is stored all the same.
    let database = create_database(&aws).await;
    let catalog = format!("glue://{database}");
    let inputs = data_inputs();
    let lake = format!("s3://{bucket}/down");
    let failed = format!("s3://{bucket}/failed");
    let module = retail_wasm().display().to_string();
    let mut args = vec![
        "run",
        "--transform",
        &module,
        "--lake",
        &lake,
        "--failed",
        &failed,
        "--catalog",
        &catalog,
        "--input",
    ];
    args.extend(inputs.iter().map(String::as_str));
    let mut command = std::process::Command::new(weir_tests::weir_bin());
    weir_tests::aws::aws_env(&mut command, &endpoint);
    let down = command
        .env("AWS_ENDPOINT_URL_GLUE", "http://127.0.0.1:9")
        .args(&args)
        .output()
        .unwrap();
    let summary = ok(down.clone());
    let logs = String::from_utf8_lossy(&down.stderr);
    assert_eq!(stored(&summary), stored(&reference));
    assert!(
        summary.contains(&format!("catalog {catalog}: 0 partitions registered")),
        "{summary}"
    );
    assert!(!summary.contains(" 0 pending"), "{summary}");
    assert!(
        logs.contains("catalog registration failed; will retry") && logs.contains("retail"),
        "{logs}"
    );
    // Once it is back, a sync registers every partition the run wrote.
    let synced = ok(weir(
        Some(&endpoint),
        &["catalog", "sync", "--lake", &lake, "--catalog", &catalog],
    ));
    let partitions = lake_partitions(&aws, &bucket, "down/", "retail").await;
    assert!(
        synced.contains(&format!(
            "1 tables, {} partitions registered",
            partitions.len()
        )),
        "{synced}"
    );
    assert_eq!(
        catalog_partitions(&aws, &database, "retail").await,
        partitions
    );

    // Throttling: more refusals than the SDK retries, so the registrar's own backoff is needed.
    let upstream = endpoint.trim_start_matches("http://").parse().unwrap();
    let policy = FaultPolicy {
        slow_down: 0.0,
        reset: 0.0,
        stored_then_error: 0.0,
        seed: 1,
    };
    let proxy = FaultProxy::start(upstream, policy).await.unwrap();
    proxy.throttle_glue(5);
    let database = create_database(&aws).await;
    let catalog = format!("glue://{database}");
    let summary = ingest(
        &proxy.endpoint(),
        &bucket,
        "throttled",
        &retail_wasm(),
        &["--catalog", &catalog],
    );
    assert_eq!(stored(&summary), stored(&reference));
    assert_eq!(proxy.stats().glue_throttled, 5);
    let partitions = lake_partitions(&aws, &bucket, "throttled/", "retail").await;
    assert!(
        summary.contains(&format!(
            "{} partitions registered, 0 pending",
            partitions.len()
        )),
        "{summary}"
    );
    assert_eq!(
        catalog_partitions(&aws, &database, "retail").await,
        partitions
    );

    // A conflicting table: another layout under the same name. It is left alone, reported, and
    // the records are stored.
    let database = create_database(&aws).await;
    let catalog = format!("glue://{database}");
    let foreign = aws_sdk_glue::types::TableInput::builder()
        .name("retail")
        .partition_keys(
            aws_sdk_glue::types::Column::builder()
                .name("dt")
                .r#type("string")
                .build()
                .unwrap(),
        )
        .storage_descriptor(
            aws_sdk_glue::types::StorageDescriptor::builder()
                .location("s3://elsewhere/retail/")
                .build(),
        )
        .build()
        .unwrap();
    aws.glue
        .create_table()
        .database_name(&database)
        .table_input(foreign)
        .send()
        .await
        .unwrap();
    let lake = format!("s3://{bucket}/conflict");
    let mut args = vec![
        "run",
        "--transform",
        &module,
        "--lake",
        &lake,
        "--failed",
        &failed,
        "--catalog",
        &catalog,
        "--input",
    ];
    args.extend(inputs.iter().map(String::as_str));
    let output = weir(Some(&endpoint), &args);
    let logs = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary = ok(output);
    assert_eq!(stored(&summary), stored(&reference));
    assert!(
        logs.contains("conflicts with the lake") && logs.contains("(dt)"),
        "{logs}"
    );
    let kept = table(&aws, &database, "retail").await;
    assert_eq!(
        partition_keys(&kept),
        ["dt"],
        "the foreign table is not rewritten"
    );
    assert!(
        catalog_partitions(&aws, &database, "retail")
            .await
            .is_empty()
    );
    let sync = weir(
        Some(&endpoint),
        &["catalog", "sync", "--lake", &lake, "--catalog", &catalog],
    );
    let stderr = weir_tests::cli::refused(sync);
    assert!(stderr.contains("catalog table retail"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_compaction_merges_closed_partitions_and_keeps_the_catalog_right() {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let bucket = unique("catalog-compact");
    aws.create_bucket(&bucket).await;
    let database = create_database(&aws).await;
    let catalog = format!("glue://{database}");
    // Small batches: many objects per partition, as the Lambda writes them.
    ingest(
        &endpoint,
        &bucket,
        "lake",
        &retail_wasm(),
        &["--batch-size", "7"],
    );
    let before = aws.objects(&bucket, "lake/retail/").await;
    let partitions = lake_partitions(&aws, &bucket, "lake/", "retail").await;
    let api = RuntimeApi::start().await.unwrap();
    let lake = format!("s3://{bucket}/lake");
    let env = [
        ("WEIR_MODE", "compact"),
        ("WEIR_LAKE", lake.as_str()),
        ("WEIR_CATALOG", catalog.as_str()),
        ("WEIR_COMPACT_OLDER_THAN_SECONDS", "0"),
    ];
    let function = start_bootstrap(&api, &endpoint, &env);
    // An invocation with less than the minute a pass keeps in hand merges nothing, and says so.
    let short = api
        .invoke(json!({ "weir": "compact" }), Duration::from_secs(30))
        .await
        .unwrap_or_else(|i| panic!("the short pass answers: {i:?}"));
    assert_eq!(short["unfinished"], true, "{short}");
    assert_eq!(short["objects_merged"], 0, "{short}");
    assert_eq!(aws.objects(&bucket, "lake/retail/").await, before);
    let started = weir_tests::unix_now();
    // What the stack's schedule sends.
    let answer = api
        .invoke(json!({ "weir": "compact" }), Duration::from_secs(120))
        .await
        .unwrap_or_else(|i| panic!("the compaction pass answers: {i:?}"));
    let (stdout, stderr) = function.stop();
    assert_eq!(answer["catalog_error"], Value::Null, "{answer}\n{stderr}");
    let after = aws.objects(&bucket, "lake/retail/").await;
    weir_tests::check_compaction(&before, &after, &answer, (started, weir_tests::unix_now()));
    assert_eq!(answer["catalog_partitions"], partitions.len(), "{answer}");
    assert_eq!(answer["unfinished"], false);
    // The second pass's line: the short pass printed one too.
    let metrics = stdout
        .lines()
        .rfind(|line| line.contains("CompactionObjectsMerged"))
        .unwrap_or_else(|| panic!("a metrics line: {stdout}"));
    let metrics: Value = serde_json::from_str(metrics).unwrap();
    assert_eq!(
        metrics["CompactionObjectsMerged"].as_f64(),
        answer["objects_merged"].as_f64()
    );
    assert_eq!(
        catalog_partitions(&aws, &database, "retail").await,
        partitions
    );
}

/// Every record line under `s3://bucket/<prefix>` (visible objects), sorted.
async fn lines_under(aws: &Aws, bucket: &str, prefix: &str) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = aws
        .objects(bucket, prefix)
        .await
        .into_iter()
        .flat_map(|(_, lines)| lines)
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_readers_never_see_a_record_twice_while_a_partition_is_compacted() {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let bucket = unique("catalog-window");
    aws.create_bucket(&bucket).await;
    let database = create_database(&aws).await;
    let catalog = format!("glue://{database}");
    ingest(
        &endpoint,
        &bucket,
        "lake",
        &retail_wasm(),
        &["--batch-size", "7", "--catalog", &catalog],
    );
    let lake = format!("s3://{bucket}/lake");
    let before = aws.objects(&bucket, "lake/retail/").await;
    let all_before = lines_under(&aws, &bucket, "lake/retail/").await;
    let compact = |extra: &[&str], glue: Option<&str>| {
        let mut command = std::process::Command::new(weir_tests::weir_bin());
        weir_tests::aws::aws_env(&mut command, &endpoint);
        if let Some(glue) = glue {
            command.env("AWS_ENDPOINT_URL_GLUE", glue);
        }
        let args = [
            "compact",
            "--lake",
            &lake,
            "--catalog",
            &catalog,
            "--partition-older-than",
            "0s",
        ];
        command.args(args).args(extra).output().unwrap()
    };

    // The catalog is down: registered partitions are left as they are, for the next pass.
    let down = compact(&[], Some("http://127.0.0.1:9"));
    weir_tests::cli::refused(down);
    assert_eq!(
        aws.objects(&bucket, "lake/retail/").await,
        before,
        "nothing moved"
    );
    assert!(
        aws.objects(&bucket, "lake/_weir/compaction/")
            .await
            .is_empty()
    );

    // Stopped after the first source delete: that partition's catalog location is its staging
    // folder, which holds each of its records once; its own folder holds every record.
    let stopped = compact(&["--stop-after-deletes", "1"], None);
    let stderr = weir_tests::cli::refused(stopped);
    assert!(stderr.contains("stopped after 1 deletes"), "{stderr}");
    let staged: Vec<(Vec<String>, String)> = catalog_partitions(&aws, &database, "retail")
        .await
        .into_iter()
        .filter(|(_, location)| location.contains("/_weir/compaction/"))
        .collect();
    assert_eq!(
        staged.len(),
        1,
        "one partition is being compacted: {staged:?}"
    );
    let staging = staged[0]
        .1
        .strip_prefix(&format!("s3://{bucket}/"))
        .unwrap();
    let folder = staging.replace("_weir/compaction/", "");
    let partition_before: Vec<Vec<u8>> = {
        let mut lines: Vec<Vec<u8>> = before
            .iter()
            .filter(|(key, _)| format!("lake/retail/{key}").starts_with(&folder))
            .flat_map(|(_, lines)| lines.clone())
            .collect();
        lines.sort();
        lines
    };
    assert!(!partition_before.is_empty());
    assert_eq!(
        lines_under(&aws, &bucket, staging).await,
        partition_before,
        "catalog readers: once"
    );
    let in_folder = lines_under(&aws, &bucket, &folder).await;
    assert!(
        in_folder.len() > partition_before.len(),
        "path readers see the window's duplicates"
    );
    for line in &partition_before {
        assert!(in_folder.contains(line), "path readers miss nothing");
    }

    // Only a pass through the catalog may finish it (the catalog points at the staging folder).
    let plain = weir(
        Some(&endpoint),
        &["compact", "--lake", &lake, "--partition-older-than", "0s"],
    );
    let stderr = weir_tests::cli::refused(plain);
    assert!(stderr.contains("run it again with --catalog"), "{stderr}");

    // The next pass finishes: every partition's location is its folder again, nothing staged.
    ok(compact(&[], None));
    assert!(
        aws.objects(&bucket, "lake/_weir/compaction/")
            .await
            .is_empty()
    );
    let partitions = lake_partitions(&aws, &bucket, "lake/", "retail").await;
    assert_eq!(
        catalog_partitions(&aws, &database, "retail").await,
        partitions
    );
    assert_eq!(
        lines_under(&aws, &bucket, "lake/retail/").await,
        all_before,
        "every record once"
    );
    assert_eq!(
        aws.objects(&bucket, "lake/retail/").await.len(),
        partitions.len()
    );
}
