//! `weir compact` on local and S3 lakes, in both formats: every record stays exactly once,
//! closed partitions end in few objects, and an interrupted run is finished by the next one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use weir_tests::aws::{Aws, endpoint, unique};
use weir_tests::{data_dir, retail_wasm, weir_bin};

/// Ingests tests/data in batches of 3 (many small objects per partition) into `lake`.
fn ingest(lake: &str, failed: &str, format: &str, endpoint: Option<&str>) {
    let inputs = ["seed", "valid", "events.ndjson"].map(|i| data_dir().join(i));
    let mut command = Command::new(weir_bin());
    command
        .arg("run")
        .arg("--input")
        .args(inputs)
        .arg("--transform")
        .arg(retail_wasm())
        .args(["--lake", lake, "--failed", failed, "--batch-size", "3"])
        .args(["--format", format]);
    let output = run(command, endpoint);
    assert!(output.status.success(), "{}", describe(&output));
}

fn compact(lake: &str, extra: &[&str], endpoint: Option<&str>) -> Output {
    let mut command = Command::new(weir_bin());
    command
        .args(["compact", "--lake", lake, "--partition-older-than", "1h"])
        .args(extra);
    run(command, endpoint)
}

fn run(mut command: Command, endpoint: Option<&str>) -> Output {
    if let Some(endpoint) = endpoint {
        weir_tests::aws::aws_env(&mut command, endpoint);
    }
    command.output().expect("weir runs")
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every record in a local lake, counted: NDJSON lines, or Parquet rows.
fn records(lake: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for path in files(lake) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let rows: Vec<String> = if name.ends_with(".parquet") {
            let body = std::fs::read(&path).unwrap();
            weir::lake::parquet_file::read(body.into())
                .unwrap()
                .iter()
                .map(|row| format!("{row:?}"))
                .collect()
        } else if name.ends_with(".json.gz") {
            let text = weir_tests::gunzip(&std::fs::read(&path).unwrap());
            String::from_utf8(text)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        } else {
            continue;
        };
        let partition = path.parent().unwrap().strip_prefix(lake).unwrap();
        for row in rows {
            *counts
                .entry(format!("{}\t{row}", partition.display()))
                .or_default() += 1;
        }
    }
    counts
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn manifests(lake: &Path) -> Vec<PathBuf> {
    files(lake)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("_weir-compaction-")
        })
        .collect()
}

/// Partitions of events.ndjson (event times in 2024, long closed) and their object counts.
fn closed_partitions(lake: &Path) -> BTreeMap<PathBuf, usize> {
    let mut counts = BTreeMap::new();
    for path in files(lake) {
        let partition = path
            .parent()
            .unwrap()
            .strip_prefix(lake)
            .unwrap()
            .to_owned();
        if partition.to_string_lossy().contains("/dt=2024-") {
            *counts.entry(partition).or_default() += 1;
        }
    }
    counts
}

#[test]
fn compacts_closed_partitions_and_keeps_every_record_once() {
    for format in ["json", "parquet"] {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let lake_arg = lake.to_str().unwrap();
        ingest(
            lake_arg,
            dir.path().join("failed").to_str().unwrap(),
            format,
            None,
        );
        let before = records(&lake);
        let partitions = closed_partitions(&lake);
        assert!(
            partitions.values().any(|n| *n > 1),
            "{format}: batches of 3 leave several objects in some partition"
        );

        let output = compact(lake_arg, &[], None);
        assert!(output.status.success(), "{format}: {}", describe(&output));
        assert_eq!(records(&lake), before, "{format}: every record once");
        let after = closed_partitions(&lake);
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            partitions.keys().collect::<Vec<_>>()
        );
        assert!(
            after.values().all(|n| *n == 1),
            "{format}: one object per closed partition: {after:?}"
        );
        assert!(manifests(&lake).is_empty());

        let again = compact(lake_arg, &[], None);
        assert!(
            String::from_utf8_lossy(&again.stdout).contains(" 0 objects merged into 0 "),
            "{format}: a second run has nothing to do: {}",
            describe(&again)
        );
        assert_eq!(records(&lake), before);
    }
}

#[test]
fn an_interrupted_compaction_loses_nothing_and_a_rerun_finishes_it() {
    // `restart`: also undo the interrupted merge's output and restore its deleted source, as if
    // the process had died right after writing the manifest.
    for (format, stop_after, restart) in
        [("json", 1, false), ("parquet", 2, false), ("json", 1, true)]
    {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let lake_arg = lake.to_str().unwrap();
        ingest(
            lake_arg,
            dir.path().join("failed").to_str().unwrap(),
            format,
            None,
        );
        let before = records(&lake);
        let backup = dir.path().join("backup");
        std::fs::create_dir(&backup).unwrap();
        for path in files(&lake) {
            let copy = backup.join(path.strip_prefix(&lake).unwrap());
            std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
            std::fs::copy(&path, copy).unwrap();
        }

        let stop = stop_after.to_string();
        let output = compact(lake_arg, &["--stop-after-deletes", &stop], None);
        let text = describe(&output);
        assert!(!output.status.success(), "{text}");
        assert!(
            text.contains(&format!("stopped after {stop_after} deletes"))
                && text.contains("run it again"),
            "{text}"
        );
        let [manifest] = &manifests(&lake)[..] else {
            panic!("one merge in progress: {:?}", manifests(&lake));
        };
        let stopped = records(&lake);
        for (record, count) in &before {
            assert!(
                stopped.get(record).is_some_and(|n| n >= count),
                "{format}: {record} is absent while compaction is interrupted"
            );
        }

        if restart {
            let text = std::fs::read_to_string(manifest).unwrap();
            let plan: serde_json::Value = serde_json::from_str(&text).unwrap();
            std::fs::remove_file(lake.join(plan["output"].as_str().unwrap())).unwrap();
            for source in plan["sources"].as_array().unwrap() {
                let key = source.as_str().unwrap();
                if !lake.join(key).exists() {
                    std::fs::copy(backup.join(key), lake.join(key)).unwrap();
                }
            }
            assert_eq!(records(&lake), before);
        }

        let output = compact(lake_arg, &[], None);
        let text = describe(&output);
        assert!(output.status.success(), "{text}");
        if !restart {
            assert!(text.contains(" 1 interrupted merges finished"), "{text}");
        }
        assert_eq!(
            records(&lake),
            before,
            "{format}: no record twice, none missing"
        );
        assert!(closed_partitions(&lake).values().all(|n| *n == 1));
        assert!(manifests(&lake).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compacts_an_s3_lake_across_an_interruption() {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let bucket = unique("compact");
    aws.create_bucket(&bucket).await;
    let lake = format!("s3://{bucket}/lake");
    let failed = format!("s3://{bucket}/failed");
    let counted = |objects: Vec<(String, Vec<Vec<u8>>)>| {
        let mut counts: BTreeMap<(String, Vec<u8>), usize> = BTreeMap::new();
        for (key, lines) in objects {
            let partition = key.rsplit_once('/').unwrap().0.to_owned();
            for line in lines {
                *counts.entry((partition.clone(), line)).or_default() += 1;
            }
        }
        counts
    };
    let (lake_arg, failed_arg, ep) = (lake.clone(), failed.clone(), endpoint.clone());
    tokio::task::spawn_blocking(move || ingest(&lake_arg, &failed_arg, "json", Some(&ep)))
        .await
        .unwrap();
    let before_objects = aws.objects(&bucket, "lake/").await;
    let before = counted(before_objects.clone());

    let (lake_arg, ep) = (lake.clone(), endpoint.clone());
    let stopped = tokio::task::spawn_blocking(move || {
        compact(&lake_arg, &["--stop-after-deletes", "2"], Some(&ep))
    })
    .await
    .unwrap();
    assert!(!stopped.status.success(), "{}", describe(&stopped));

    let (lake_arg, ep) = (lake.clone(), endpoint.clone());
    let output = tokio::task::spawn_blocking(move || compact(&lake_arg, &[], Some(&ep)))
        .await
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let after_objects = aws.objects(&bucket, "lake/").await;
    assert!(after_objects.len() < before_objects.len());
    assert!(
        after_objects
            .iter()
            .all(|(key, _)| !key.contains("_weir-compaction-"))
    );
    assert_eq!(counted(after_objects), before, "every record once");
}
