//! Tables: a partitioning change writes a new table beside the old one (never a second layout
//! in one table), `weir repartition` moves the old table's records into the new one exactly
//! once, and a layout a table does not hold goes to the failed location with the reason.

use std::collections::BTreeMap;
use std::path::Path;
use weir_tests::aws::{Aws, endpoint, unique};
use weir_tests::cli::{ok, refused, weir};
use weir_tests::{
    data_dir, guest_wat, read_envelopes, read_objects, retail_daily_wasm, retail_wasm, wasm,
};

/// A location's visible objects: `(key, NDJSON lines)`.
type Objects = Vec<(String, Vec<Vec<u8>>)>;

/// Every record line of each table: table -> sorted lines (a multiset).
fn lines_by_table(objects: &Objects) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut tables: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (key, lines) in objects {
        let table = key.split('/').next().unwrap().to_owned();
        tables
            .entry(table)
            .or_default()
            .extend(lines.iter().cloned());
    }
    tables.values_mut().for_each(|lines| lines.sort());
    tables
}

/// Checks that every object of `table` sits under exactly `columns`, in order.
fn assert_layout(objects: &Objects, table: &str, columns: &[&str]) {
    let mut seen = 0;
    for (key, _) in objects
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{table}/")))
    {
        let levels: Vec<&str> = key.split('/').collect();
        let names: Vec<&str> = levels[1..levels.len() - 1]
            .iter()
            .map(|level| level.split_once('=').expect("a partition level").0)
            .collect();
        assert_eq!(names, columns, "{key}");
        seen += 1;
    }
    assert!(seen > 0, "table {table} holds objects");
}

/// A registry scenario on `lake` and `failed` (local directories or s3:// locations): v1
/// (retail) ingests, v2 (retail without the hour) is published, announced as a new table and
/// ingests, then the old table is repartitioned into the new one. `read` lists a location's
/// visible objects.
fn change_the_partitioning(
    endpoint: Option<&str>,
    registry: &str,
    lake: &str,
    failed: &str,
    read: &dyn Fn(&str) -> Objects,
) {
    let publish = |version: &str, module: &Path, extra: &[&str]| {
        let module = module.display().to_string();
        let args = [
            &[
                "transform",
                "publish",
                "--registry",
                registry,
                "--name",
                "retail",
                "--version",
                version,
                "--activate",
            ][..],
            extra,
            &[module.as_str()],
        ]
        .concat();
        ok(weir(endpoint, &args))
    };
    let ingest = |input: &str| {
        let input = data_dir().join(input).display().to_string();
        let args = [
            "run",
            "--registry",
            registry,
            "--transform",
            "retail",
            "--input",
            &input,
            "--lake",
            lake,
            "--failed",
            failed,
        ];
        ok(weir(endpoint, &args))
    };
    let cases = data_dir().display().to_string();
    let first = publish("v1", &retail_wasm(), &["--cases", &cases]);
    assert!(
        first.contains("writing table retail (section, dt, hr)"),
        "{first}"
    );
    ingest("seed");
    let second = publish("v2", &retail_daily_wasm(), &[]);
    assert!(
        second.contains("writing table retail_v2 (section, dt)") && second.contains("NEW TABLE"),
        "publish says, before anything is written, that v2 writes another table:\n{second}"
    );
    ingest("valid");
    let before = read(lake);
    assert_layout(&before, "retail", &["section", "dt", "hr"]);
    assert_layout(&before, "retail_v2", &["section", "dt"]);
    let tables = lines_by_table(&before);
    assert_eq!(tables.len(), 2, "{:?}", tables.keys());

    let repartition = |extra: &[&str]| {
        let args = [
            &[
                "repartition",
                "--registry",
                registry,
                "--transform",
                "retail",
                "--from",
                "retail",
                "--lake",
                lake,
                "--failed",
                failed,
            ][..],
            extra,
        ]
        .concat();
        ok(weir(endpoint, &args))
    };
    let summary = repartition(&[]);
    let moved = tables["retail"].len();
    assert!(
        summary.contains(&format!("{moved} now in retail_v2, 0 failed")),
        "{summary}"
    );
    let after = read(lake);
    let mut expected = tables["retail_v2"].clone();
    expected.extend(tables["retail"].iter().cloned());
    expected.sort();
    let now = lines_by_table(&after);
    assert_eq!(
        now["retail_v2"], expected,
        "the new table holds its own records and the old table's, each once"
    );
    assert_eq!(
        now["retail"], tables["retail"],
        "the old table stays until asked"
    );
    assert_layout(&after, "retail_v2", &["section", "dt"]);

    // Run again: nothing is read twice, nothing changes.
    let again = repartition(&[]);
    assert!(again.contains("0 records from 0 objects"), "{again}");
    assert_eq!(read(lake), after);

    let removed = repartition(&["--remove-old"]);
    assert!(removed.contains("old objects removed"), "{removed}");
    let last = lines_by_table(&read(lake));
    assert_eq!(last.keys().collect::<Vec<_>>(), ["retail_v2"]);
    assert_eq!(last["retail_v2"], expected);

    let back = ok(weir(
        endpoint,
        &[
            "transform",
            "rollback",
            "--registry",
            registry,
            "--name",
            "retail",
        ],
    ));
    assert!(
        back.contains("rolled back retail to v1")
            && back.contains("NEW TABLE: retail@v1 writes table retail (section, dt, hr)"),
        "a rollback says where records land again:\n{back}"
    );
}

#[test]
fn a_partitioning_change_writes_a_new_table_and_repartition_moves_the_old_one_locally() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let read = |lake: &str| read_objects(Path::new(lake));
    change_the_partitioning(
        None,
        &path("registry"),
        &path("lake"),
        &path("failed"),
        &read,
    );
    assert!(
        !dir.path().join("lake/_weir/tables/retail.json").exists(),
        "the old table's descriptor goes with it"
    );
    let descriptor: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("lake/_weir/tables/retail_v2.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(descriptor["columns"], serde_json::json!(["section", "dt"]));
    assert_eq!(descriptor["created_by"]["version"], "v2");
    assert!(
        read_envelopes(&dir.path().join("failed"))
            .iter()
            .all(|(_, e)| !["table_conflict", "undeclared_columns"].contains(&e.code.as_str())),
        "no layout conflict on the way"
    );
}

#[test]
fn a_partitioning_change_writes_a_new_table_and_repartition_moves_the_old_one_on_s3() {
    let endpoint = endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let aws = runtime.block_on(Aws::connect(&endpoint));
    let bucket = unique("tables");
    runtime.block_on(aws.create_bucket(&bucket));
    let read = |lake: &str| {
        let prefix = lake
            .trim_start_matches(&format!("s3://{bucket}/"))
            .to_owned()
            + "/";
        runtime.block_on(aws.objects(&bucket, &prefix))
    };
    change_the_partitioning(
        Some(&endpoint),
        &format!("s3://{bucket}/registry"),
        &format!("s3://{bucket}/lake"),
        &format!("s3://{bucket}/failed"),
        &read,
    );
}

#[test]
fn repartition_resumes_after_a_crash_without_storing_a_record_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, failed) = (dir.path().join("lake"), dir.path().join("failed"));
    let run = |module: &Path, input: &str| {
        let args = [
            "run",
            "--transform",
            module.to_str().unwrap(),
            "--input",
            &data_dir().join(input).display().to_string(),
            "--lake",
            lake.to_str().unwrap(),
            "--failed",
            failed.to_str().unwrap(),
            "--batch-size",
            "3",
        ];
        ok(weir(None, &args))
    };
    run(&retail_wasm(), "seed");
    run(&retail_wasm(), "valid");
    let old = lines_by_table(&read_objects(&lake))["retail"].clone();
    let repartition = || {
        weir(
            None,
            &[
                "repartition",
                "--transform",
                retail_daily_wasm().to_str().unwrap(),
                "--from",
                "retail",
                "--lake",
                lake.to_str().unwrap(),
                "--failed",
                failed.to_str().unwrap(),
            ],
        )
    };
    // A file where one of the new partitions must go: the run stops there, as a crash would.
    let blocked = lake.join("retail_daily/section=Electronics");
    std::fs::create_dir_all(blocked.parent().unwrap()).unwrap();
    std::fs::write(&blocked, b"in the way").unwrap();
    let stopped = refused(repartition());
    assert!(stopped.contains("rerun to resume"), "{stopped}");
    let progress = || -> serde_json::Value {
        let path = lake.join("_weir/repartition/retail-to-retail_daily.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    assert!(
        !progress()["pending"].as_array().unwrap().is_empty(),
        "the chunk in flight is on record"
    );
    std::fs::remove_file(&blocked).unwrap();
    ok(repartition());
    assert_eq!(progress()["pending"], serde_json::json!([]));
    let tables = lines_by_table(&read_objects(&lake));
    assert_eq!(
        tables["retail_daily"], old,
        "every record of the old table, once, however the run was cut"
    );
    assert_layout(&read_objects(&lake), "retail_daily", &["section", "dt"]);

    // A lake written before tables, its partitions at the root: `--from .` upgrades it.
    let legacy = dir.path().join("legacy");
    for (key, _) in read_objects(&lake.join("retail")) {
        let to = legacy.join(&key);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(lake.join("retail").join(&key), to).unwrap();
    }
    let upgraded = ok(weir(
        None,
        &[
            "repartition",
            "--transform",
            retail_daily_wasm().to_str().unwrap(),
            "--from",
            ".",
            "--lake",
            legacy.to_str().unwrap(),
            "--failed",
            failed.to_str().unwrap(),
            "--remove-old",
        ],
    ));
    assert!(
        upgraded.contains(&format!("{} now in retail_daily", old.len())),
        "{upgraded}"
    );
    let tables = lines_by_table(&read_objects(&legacy));
    assert_eq!(tables.keys().collect::<Vec<_>>(), ["retail_daily"]);
    assert_eq!(tables["retail_daily"], old);
}

#[test]
fn records_outside_their_tables_layout_go_to_failed_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (lake, failed) = (dir.path().join("lake"), dir.path().join("failed"));
    let seed = data_dir().join("seed").display().to_string();
    let run = |module: &Path, extra: &[&str]| {
        let args = [
            &[
                "run",
                "--transform",
                module.to_str().unwrap(),
                "--input",
                &seed,
                "--lake",
                lake.to_str().unwrap(),
                "--failed",
                failed.to_str().unwrap(),
            ][..],
            extra,
        ]
        .concat();
        ok(weir(None, &args))
    };
    let codes = || {
        let mut codes: BTreeMap<String, usize> = BTreeMap::new();
        for (_, e) in read_envelopes(&failed) {
            *codes
                .entry(format!("{}/{}", e.error_type, e.code))
                .or_default() += 1;
        }
        codes
    };
    let seeds = std::fs::read_dir(data_dir().join("seed")).unwrap().count();

    // A module that declares `section` but names `layout`.
    let liar = dir.path().join("liar.wasm");
    let extra = r#"(data (i32.const 64) "layout") (@custom "weir.partition_columns" "section\n")"#;
    let body =
        "(call $partition (i32.const 64) (i32.const 6) (i32.const 64) (i32.const 6)) i32.const 0";
    std::fs::write(&liar, wasm(&guest_wat(body, extra))).unwrap();
    run(&liar, &[]);
    assert_eq!(
        codes(),
        BTreeMap::from([("invalid_partition/undeclared_columns".to_owned(), seeds)])
    );
    let reason = read_envelopes(&failed)[0].1.message.clone();
    assert!(
        reason.contains("names (layout)") && reason.contains("declares (section)"),
        "{reason}"
    );
    assert!(read_objects(&lake).is_empty());
    std::fs::remove_dir_all(&failed).unwrap();

    // A table that holds another layout, then a damaged descriptor, then another format.
    let descriptors = lake.join("_weir/tables");
    std::fs::create_dir_all(&descriptors).unwrap();
    let other = r#"{"format":"weir-table/1","table":"retail","columns":["section"],"object_format":"json","created_by":{"transform":"x","sha256":"00"},"created_at":"2026-01-01T00:00:00Z"}"#;
    for (descriptor, why) in [
        (
            other,
            "table retail has columns (section), the transform writes (section, dt, hr)",
        ),
        ("not json", "the descriptor of table retail is unusable"),
    ] {
        std::fs::write(descriptors.join("retail.json"), descriptor).unwrap();
        run(&retail_wasm(), &[]);
        let envelopes = read_envelopes(&failed);
        let conflicts: Vec<_> = envelopes
            .iter()
            .filter(|(_, e)| e.code == "table_conflict")
            .collect();
        assert!(!conflicts.is_empty());
        assert!(
            conflicts.iter().all(|(_, e)| e.message.contains(why)),
            "{:?}",
            conflicts[0].1.message
        );
        assert!(
            read_objects(&lake).is_empty(),
            "nothing written into the table"
        );
        std::fs::remove_dir_all(&failed).unwrap();
    }
    std::fs::remove_file(descriptors.join("retail.json")).unwrap();
    run(&retail_wasm(), &[]);
    assert!(!read_objects(&lake).is_empty(), "a new table is created");
    std::fs::remove_dir_all(&failed).unwrap();
    let objects = read_objects(&lake).len();
    run(&retail_wasm(), &["--format", "parquet"]);
    assert!(
        read_envelopes(&failed)
            .iter()
            .any(|(_, e)| e.code == "table_conflict" && e.message.contains("holds json objects")),
        "a Parquet writer never adds to a JSON table"
    );
    assert_eq!(read_objects(&lake).len(), objects);
}

#[test]
fn publish_refuses_unusable_column_declarations_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry").display().to_string();
    let publish = |version: &str, module: &Path, extra: &[&str]| {
        let args = [
            &[
                "transform",
                "publish",
                "--registry",
                registry.as_str(),
                "--name",
                "retail",
                "--version",
                version,
            ][..],
            extra,
            &[module.to_str().unwrap()],
        ]
        .concat();
        weir(None, &args)
    };
    let module = |name: &str, declaration: &str| {
        let path = dir.path().join(format!("{name}.wasm"));
        let body = "(call $partition (i32.const 16) (i32.const 7) (i32.const 32) (i32.const 4)) i32.const 0";
        std::fs::write(&path, wasm(&guest_wat(body, declaration))).unwrap();
        path
    };
    let custom = |text: &str| format!(r#"(@custom "weir.partition_columns" "{text}")"#);
    let nine: String = (0..9).map(|i| format!("c{i}\\n")).collect();
    for (name, declaration, message) in [
        ("none", String::new(), "declares no partition columns"),
        ("twice", custom("dt\\ndt\\n"), "\"dt\" is declared twice"),
        (
            "upper",
            custom("Section\\n"),
            "\"Section\" is not a column name",
        ),
        (
            "nine",
            custom(&nine),
            "9 partition columns declared, at most 8",
        ),
        (
            "two",
            custom("a\\n") + &custom("b\\n"),
            "two `weir.partition_columns` sections",
        ),
    ] {
        let why = refused(publish(name, &module(name, &declaration), &[]));
        assert!(why.contains(message), "{name}: {why}");
    }
    ok(publish("v1", &retail_wasm(), &[]));
    let why = refused(publish("v2", &retail_daily_wasm(), &["--table", "retail"]));
    assert!(
        why.contains("table retail has columns (section, dt, hr)") && why.contains("(section, dt)"),
        "{why}"
    );
    let why = refused(publish("v2", &retail_daily_wasm(), &["--table", "_hidden"]));
    assert!(why.contains("table name \"_hidden\" is invalid"), "{why}");
    let same = ok(publish("v2", &retail_wasm(), &[]));
    assert!(
        same.contains("writing table retail (") && !same.contains("NEW TABLE"),
        "{same}"
    );
}
