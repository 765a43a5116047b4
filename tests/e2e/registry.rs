//! The transform registry, on a local directory and on S3 (the local stand-in): publish with
//! contract cases, activate, roll back, immutable versions, verified fetches, lineage.

use std::path::Path;
use std::process::{Command, Output};
use weir_tests::aws::{Aws, aws_env, endpoint, unique};
use weir_tests::cli::{ok, refused, weir};
use weir_tests::{data_dir, read_envelopes, retail_wasm, weir_bin};

/// `weir transform VERB --registry REGISTRY --name retail ARGS...`.
fn transform(endpoint: Option<&str>, registry: &str, verb: &str, args: &[&str]) -> Output {
    weir(
        endpoint,
        &[
            &[
                "transform",
                verb,
                "--registry",
                registry,
                "--name",
                "retail",
            ],
            args,
        ]
        .concat(),
    )
}

/// Publishes, activates, rolls back and refuses what it must, on the registry at `registry`.
fn exercise(endpoint: Option<&str>, registry: &str) {
    let wasm = retail_wasm().display().to_string();
    let cases = data_dir().display().to_string();
    let publish = |version: &str, extra: &[&str]| {
        transform(
            endpoint,
            registry,
            "publish",
            &[&["--version", version], extra, &[wasm.as_str()]].concat(),
        )
    };
    assert!(ok(publish("v1", &["--cases", &cases, "--activate"])).contains("activated retail@v1"));
    let again = refused(publish("v1", &[]));
    assert!(again.contains("immutable"), "{again}");
    ok(publish("v2", &["--description", "same code, new version"]));
    let listing = ok(transform(endpoint, registry, "list", &[]));
    assert!(
        listing.contains("v1")
            && listing.contains("v2")
            && listing
                .lines()
                .any(|l| l.starts_with("v1") && l.ends_with("(active)")),
        "{listing}"
    );
    ok(transform(
        endpoint,
        registry,
        "activate",
        &["--version", "v2"],
    ));
    let rolled = ok(transform(endpoint, registry, "rollback", &[]));
    assert!(rolled.contains("rolled back retail to v1"), "{rolled}");
    let none = refused(transform(endpoint, registry, "rollback", &[]));
    assert!(none.contains("no earlier active version"), "{none}");
    let shown: serde_json::Value = serde_json::from_str(&ok(transform(
        endpoint,
        registry,
        "show",
        &["--version", "v2"],
    )))
    .unwrap();
    assert_eq!(shown["manifest"]["description"], "same code, new version");
    assert_eq!(shown["active"]["version"], "v1");
}

#[test]
fn publishes_activates_and_rolls_back_on_a_local_registry() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry").display().to_string();
    exercise(None, &registry);

    // Ingest through the registry: lineage names the version.
    let (lake, failed) = (dir.path().join("lake"), dir.path().join("failed"));
    let run = |transform: &str| {
        weir(
            None,
            &[
                "run",
                "--registry",
                &registry,
                "--transform",
                transform,
                "--input",
                &data_dir().join("invalid").display().to_string(),
                "--lake",
                lake.to_str().unwrap(),
                "--failed",
                failed.to_str().unwrap(),
            ],
        )
    };
    ok(run("retail"));
    let envelopes = read_envelopes(&failed);
    assert!(
        !envelopes.is_empty()
            && envelopes
                .iter()
                .all(|(_, e)| e.transform.version.as_deref() == Some("v1"))
    );

    // Bytes changed after publishing are refused, and nothing is written with them.
    let module = Path::new(&registry).join("retail/v2/transform.wasm");
    let mut bytes = std::fs::read(&module).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&module, bytes).unwrap();
    std::fs::remove_dir_all(&failed).unwrap();
    let corrupted = refused(run("retail@v2"));
    assert!(
        corrupted.contains("does not match its manifest"),
        "{corrupted}"
    );
    assert!(!failed.exists());

    // Publishing precompiled the module for both Lambda architectures.
    let v1 = Path::new(&registry).join("retail/v1");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(v1.join("manifest.json")).unwrap()).unwrap();
    let keys: Vec<&String> = manifest["artifacts"].as_object().unwrap().keys().collect();
    for arch in ["x86_64-", "aarch64-"] {
        let key = keys.iter().find(|k| k.starts_with(arch)).expect(arch);
        assert!(v1.join(format!("{key}.cwasm")).is_file(), "{key}");
    }
    let own = v1.join(format!(
        "{}.cwasm",
        keys.iter()
            .find(|k| k.starts_with(std::env::consts::ARCH))
            .unwrap()
    ));

    // Without an artifact for this host, the module is compiled once, then taken from the
    // local compile cache.
    let saved = std::fs::read(&own).unwrap();
    std::fs::remove_file(&own).unwrap();
    let cache = dir.path().join("cache");
    let cached_run = || {
        let mut command = Command::new(weir_bin());
        command
            .env("WEIR_CACHE_DIR", &cache)
            .args(["run", "--registry", &registry, "--transform", "retail@v1"])
            .args(["--input", &data_dir().join("valid").display().to_string()])
            .args(["--lake", "discard:", "--failed", "discard:"]);
        ok(command.output().unwrap())
    };
    cached_run();
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert_eq!(entries.len(), 1, "one compiled module cached");
    let entry = entries[0].as_ref().unwrap().file_name();
    let sha256 = manifest["sha256"].as_str().unwrap();
    assert!(entry.to_string_lossy().starts_with(sha256), "{entry:?}");
    cached_run();
    std::fs::write(&own, saved).unwrap();

    // A precompiled artifact changed after publishing is never deserialized.
    let mut bytes = std::fs::read(&own).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&own, bytes).unwrap();
    let corrupted = refused(run("retail@v1"));
    assert!(
        corrupted.contains(".cwasm does not match its manifest"),
        "{corrupted}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn publishes_activates_and_rolls_back_on_s3() {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let bucket = unique("registry");
    aws.create_bucket(&bucket).await;
    let registry = format!("s3://{bucket}/transforms");
    tokio::task::spawn_blocking(move || exercise(Some(&endpoint), &registry))
        .await
        .unwrap();
    let active = aws
        .s3
        .get_object()
        .bucket(&bucket)
        .key("transforms/retail/active.json")
        .send()
        .await
        .unwrap();
    let active: serde_json::Value =
        serde_json::from_slice(&active.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(active["version"], "v1");
}

/// A module that puts every record under `layout=<tag>`.
fn layout_module(dir: &Path, tag: &str) -> String {
    let extra = format!(
        r#"(data (i32.const 64) "layout") (data (i32.const 80) "{tag}")
        (@custom "weir.partition_columns" "layout\n")"#
    );
    let body = format!(
        "(call $partition (i32.const 64) (i32.const 6) (i32.const 80) (i32.const {})) i32.const 0",
        tag.len()
    );
    let path = dir.join(format!("layout-{tag}.wasm"));
    std::fs::write(
        &path,
        weir_tests::wasm(&weir_tests::guest_wat(&body, &extra)),
    )
    .unwrap();
    path.display().to_string()
}

/// `weir diff --registry REGISTRY --from FROM --to TO --input INPUTS...`: its report.
fn diff_versions(registry: &str, from: &str, to: &str, inputs: &[&str]) -> String {
    let args = [
        "diff",
        "--registry",
        registry,
        "--from",
        from,
        "--to",
        to,
        "--input",
    ];
    ok(weir(None, &[&args[..], inputs].concat()))
}

/// Polls until `found` holds (a running host writes asynchronously).
fn eventually(what: &str, found: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !found() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A host started on `registry` follows the active version, switches without a restart, and
/// keeps the last good version when the active one is corrupted (by `corrupt`, given a key).
fn follows_the_active_version(registry: &str, endpoint: Option<&str>, corrupt: impl Fn(&str)) {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let registry = registry.to_owned();
    let (lake, failed) = (dir.path().join("lake"), dir.path().join("failed"));
    let publish = |version: &str, module: &str| {
        ok(transform(
            endpoint,
            &registry,
            "publish",
            &["--version", version, module],
        ))
    };
    let activate = |version: &str| {
        ok(transform(
            endpoint,
            &registry,
            "activate",
            &["--version", version],
        ))
    };
    publish("v1", &retail_wasm().display().to_string());
    activate("v1");
    publish("v2", &layout_module(dir.path(), "v2"));
    publish("v3", &layout_module(dir.path(), "v3"));

    let mut command = Command::new(weir_bin());
    if let Some(endpoint) = endpoint {
        aws_env(&mut command, endpoint);
    }
    let mut host = command
        .args([
            "run",
            "--registry",
            &registry,
            "--transform",
            "retail",
            "--refresh",
            "1",
            "--batch-window-ms",
            "20",
            "--input",
            "-",
        ])
        .arg("--lake")
        .arg(&lake)
        .arg("--failed")
        .arg(&failed)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = host.stdin.take().unwrap();
    let event = r#"{"metadata":{"uuid":"1","section":"Books"},"payload":{}}"#;
    let objects_under = |level: &str| {
        weir_tests::read_objects(&lake)
            .iter()
            .filter(|(key, _)| key.starts_with(level))
            .count()
    };

    writeln!(stdin, "{event}").unwrap();
    eventually("v1's layout", || {
        objects_under("retail/section=Books/") == 1
    });

    activate("v2");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    writeln!(stdin, "{event}").unwrap();
    eventually("v2's layout, without a restart", || {
        objects_under("retail_v2/layout=v2/") == 1
    });

    // v3's module changes after publishing: the host must refuse it and keep running v2.
    corrupt("retail/v3/transform.wasm");
    activate("v3");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    writeln!(stdin, "{event}").unwrap();
    eventually("the last good version to keep running", || {
        objects_under("retail_v2/layout=v2/") == 2
    });
    assert_eq!(objects_under("retail_v2/layout=v3/"), 0);

    drop(stdin);
    let output = host.wait_with_output().unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing the active version")
            && stderr.contains("does not match its manifest"),
        "{stderr}"
    );
}

#[test]
fn a_running_host_follows_the_active_version_on_a_local_registry() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    follows_the_active_version(registry.to_str().unwrap(), None, |key| {
        let path = registry.join(key);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_host_follows_the_active_version_on_s3() {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let bucket = unique("registry");
    aws.create_bucket(&bucket).await;
    let registry = format!("s3://{bucket}/transforms");
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        follows_the_active_version(&registry, Some(&endpoint), |key| {
            // Overwrite the object behind the registry's back, as a bad actor or a bug would.
            handle.block_on(async {
                let key = format!("transforms/{key}");
                let object = aws
                    .s3
                    .get_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .unwrap();
                let mut bytes = object.body.collect().await.unwrap().into_bytes().to_vec();
                let last = bytes.len() - 1;
                bytes[last] ^= 0xff;
                aws.s3
                    .put_object()
                    .bucket(&bucket)
                    .key(&key)
                    .body(bytes.into())
                    .send()
                    .await
                    .unwrap();
            });
        });
    })
    .await
    .unwrap();
}

#[test]
fn replay_after_fixing_the_transform_recovers_the_failed_records() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry").display().to_string();
    let (lake, failed) = (dir.path().join("lake"), dir.path().join("failed"));
    // v1 is broken: it rejects everything.
    let broken = dir.path().join("broken.wasm");
    let body =
        "(call $reject (i32.const 32) (i32.const 4) (i32.const 32) (i32.const 4)) i32.const 1";
    let columns = r#"(@custom "weir.partition_columns" "section\ndt\nhr\n")"#;
    std::fs::write(
        &broken,
        weir_tests::wasm(&weir_tests::guest_wat(body, columns)),
    )
    .unwrap();
    let publish = |version: &str, module: &str| {
        ok(transform(
            None,
            &registry,
            "publish",
            &["--version", version, "--activate", module],
        ))
    };
    publish("v1", broken.to_str().unwrap());
    let inputs = [data_dir().join("seed"), data_dir().join("invalid")];
    let paths: Vec<&str> = inputs.iter().map(|p| p.to_str().unwrap()).collect();
    let locations = [
        "--lake",
        lake.to_str().unwrap(),
        "--failed",
        failed.to_str().unwrap(),
    ];
    ok(weir(
        None,
        &[
            &[
                "run",
                "--registry",
                &registry,
                "--transform",
                "retail",
                "--input",
            ],
            &paths[..],
            &locations[..],
        ]
        .concat(),
    ));
    let before = read_envelopes(&failed);
    assert!(
        before.iter().any(|(_, e)| e.code == "boom"),
        "v1 rejected with its code"
    );
    assert!(weir_tests::read_objects(&lake).is_empty());

    publish("v2", &retail_wasm().display().to_string());

    // A shadow run over the failed location shows what replaying would change.
    let diff = diff_versions(
        &registry,
        "retail@v1",
        "retail@v2",
        &[failed.to_str().unwrap()],
    );
    let total = before.len();
    assert!(
        diff.lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("{total} records, ")),
        "{diff}"
    );
    let recovered = diff
        .lines()
        .filter(|l| l.contains("rejected boom  ->  section="));
    assert_eq!(recovered.count(), 3, "the seed events would land: {diff}");
    assert_eq!(
        read_envelopes(&failed).len(),
        total,
        "a diff writes nothing"
    );

    let replay = |extra: &[&str]| {
        ok(weir(
            None,
            &[
                &["replay", "--registry", &registry, "--transform", "retail"],
                &locations[..],
                extra,
            ]
            .concat(),
        ))
    };
    let summary = replay(&[]);
    assert!(summary.contains("3 now in the lake"), "{summary}");
    let lake_lines: usize = weir_tests::read_objects(&lake)
        .iter()
        .map(|(_, lines)| lines.len())
        .sum();
    assert_eq!(lake_lines, 3, "the seed events are recovered");
    let after = read_envelopes(&failed);
    assert_eq!(
        after.len() + 3,
        before.len(),
        "every other record failed again, once"
    );
    assert!(
        after
            .iter()
            .all(|(_, e)| e.code != "boom" && e.transform.version.as_deref() == Some("v2")),
        "new reasons, new lineage"
    );

    // Replaying again stores nothing twice.
    let again = replay(&[]);
    assert!(again.starts_with("0 records"), "{again}");
    assert_eq!(read_envelopes(&failed).len(), after.len());
    assert_eq!(
        weir_tests::read_objects(&lake)
            .iter()
            .map(|(_, lines)| lines.len())
            .sum::<usize>(),
        3
    );
}

#[test]
fn diff_shows_what_a_new_version_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry").display().to_string();
    let publish = |version: &str, module: &str| {
        ok(transform(
            None,
            &registry,
            "publish",
            &["--version", version, module],
        ))
    };
    publish("v1", &retail_wasm().display().to_string());
    publish("v2", &layout_module(dir.path(), "v2"));
    let seed = data_dir().join("seed").display().to_string();
    let invalid = data_dir()
        .join("invalid/uuid_empty.json")
        .display()
        .to_string();
    let report = diff_versions(&registry, "retail@v1", "retail@v2", &[&seed, &invalid]);
    assert!(
        report.starts_with(
            "NEW TABLE: retail@v2 partitions by (layout), retail@v1 by (section, dt, hr)"
        ) && report.contains("\n4 records, 4 change outcome"),
        "{report}"
    );
    assert!(
        report.contains("section=Electronics/dt=") && report.contains("->  layout=v2"),
        "{report}"
    );
    assert!(
        report.contains("rejected empty_field  ->  layout=v2"),
        "{report}"
    );
    assert!(
        report.contains("e.g. ") && report.contains("log_1.json"),
        "{report}"
    );
    let same = diff_versions(&registry, "retail@v1", "retail@v1", &[&seed]);
    assert!(
        same.starts_with("same partition columns (section, dt, hr)")
            && same.contains("\n3 records, 0 change outcome"),
        "{same}"
    );
    // Nothing was written anywhere.
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "only the registry and the module"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn diff_reads_a_kinesis_stream_like_the_same_files() {
    let endpoint = endpoint();
    let aws = Aws::connect(&endpoint).await;
    let stream = unique("weir-diff");
    aws.create_stream(&stream, 2).await;
    weir_tests::aws::send_test_data(&endpoint, &stream, &[]);
    let dir = tempfile::tempdir().unwrap();
    let (from, to) = (
        retail_wasm().display().to_string(),
        layout_module(dir.path(), "v2"),
    );
    let diff = |inputs: &[String]| {
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let args = [
            &["diff", "--from", &from, "--to", &to, "--input"],
            &inputs[..],
        ]
        .concat();
        ok(weir(Some(&endpoint), &args))
    };
    let from_stream = diff(&[format!("kinesis://{stream}")]);
    let from_files = diff(&weir_tests::aws::data_inputs());
    // The stream's records move exactly as the files they were sent from. Events without a
    // time fall back to their arrival (file modification vs Kinesis arrival): compare moves
    // up to the date.
    let summary = |report: &str| {
        let counts = report.split(" (").next().unwrap().to_owned();
        let mut moves: Vec<String> = report
            .lines()
            .filter(|l| l.contains("  ->  ") && !l.contains("e.g."))
            .map(|l| match l.split_once("/dt=") {
                Some((partition, _)) => partition.to_owned(),
                None => l.to_owned(),
            })
            .collect();
        moves.sort();
        (counts, moves)
    };
    assert_eq!(summary(&from_stream), summary(&from_files));
    assert!(from_stream.contains("->  layout=v2"), "{from_stream}");
}
