//! The author loop as a user runs it, outside Weir's repository: `weir transform new`, the
//! language's own unit tests, `build`, `test` against the contract cases, `publish`, and a
//! running host that picks the new version up without a restart.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use weir_tests::components::{build_project, componentize_js, componentize_py};
use weir_tests::{read_objects, weir_bin, workspace_root};

fn weir(args: &[&str]) -> Output {
    Command::new(weir_bin())
        .args(args)
        .env("WEIR_COMPONENTIZE_PY", componentize_py())
        .env("WEIR_COMPONENTIZE_JS", componentize_js())
        .output()
        .expect("weir runs")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn eventually(what: &str, found: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !found() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `weir transform test MODULE --cases CASES`.
fn contract_test(module: &Path, cases: &Path) -> Output {
    weir(&["transform", "test", path(module), "--cases", path(cases)])
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A component language's author loop: what the scaffold holds, its unit-test command and
/// the edit that drops the hour from the partition.
struct Loop {
    lang: &'static str,
    files: [&'static str; 3],
    unit_test: fn() -> Command,
    source: &'static str,
    edits: [(&'static str, &'static str); 2],
}

#[test]
fn a_python_transform_from_new_to_new_partitions_in_a_running_host() {
    from_new_to_new_partitions(&Loop {
        lang: "python",
        files: ["transform.py", "test_transform.py", "weir.py"],
        unit_test: || {
            let mut pytest = Command::new(workspace_root().join(".venv/bin/python"));
            pytest.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"]);
            pytest
        },
        source: "transform.py",
        edits: [
            (
                r#"columns=["section", "dt", "hr"]"#,
                r#"columns=["section", "dt"]"#,
            ),
            (", hr=weir.utc_hour(millis)", ""),
        ],
    });
}

#[test]
fn a_js_transform_from_new_to_new_partitions_in_a_running_host() {
    from_new_to_new_partitions(&Loop {
        lang: "js",
        files: ["transform.js", "transform.test.js", "weir.js"],
        unit_test: || {
            let mut node = Command::new("node");
            node.arg("--test");
            node
        },
        source: "transform.js",
        edits: [
            (
                r#"columns: ["section", "dt", "hr"]"#,
                r#"columns: ["section", "dt"]"#,
            ),
            (", hr: weir.utcHour(millis)", ""),
        ],
    });
}

fn from_new_to_new_partitions(lang: &Loop) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("shop");
    let (registry, lake, failed) = (
        dir.path().join("registry"),
        dir.path().join("lake"),
        dir.path().join("failed"),
    );
    ok(weir(&[
        "transform",
        "new",
        "shop",
        "--lang",
        lang.lang,
        "--dir",
        path(&project),
    ]));
    for file in lang.files.iter().chain(&["cases/expected.json"]) {
        assert!(project.join(file).is_file(), "{file} is not scaffolded");
    }
    // The scaffold's unit tests run with the language's own runner, without WebAssembly or
    // Weir's checkout.
    let unit = (lang.unit_test)().current_dir(&project).output().unwrap();
    assert!(
        unit.status.success(),
        "{}{}",
        String::from_utf8_lossy(&unit.stdout),
        String::from_utf8_lossy(&unit.stderr)
    );

    let module = build_project(&project);
    let cases = project.join("cases");
    ok(contract_test(&module, &cases));
    let publish = |version: &str| {
        ok(weir(&[
            "transform",
            "publish",
            "--registry",
            path(&registry),
            "--name",
            "shop",
            "--version",
            version,
            "--cases",
            path(&cases),
            "--activate",
            path(&module),
        ]))
    };
    publish("v1");

    let mut host = Command::new(weir_bin())
        .args(["run", "--registry", path(&registry), "--transform", "shop"])
        .args(["--refresh", "1", "--batch-window-ms", "20", "--input", "-"])
        .args(["--lake", path(&lake), "--failed", path(&failed)])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = host.stdin.take().unwrap();
    let event = r#"{"metadata":{"uuid":"1","section":"Books","event_time":"2024-03-10T15:42:07Z"},"payload":{}}"#;
    let objects_under = |prefix: &str| {
        read_objects(&lake)
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .count()
    };
    writeln!(stdin, "{event}").unwrap();
    eventually("v1's partitions", || {
        objects_under("shop/section=Books/dt=2024-03-10/hr=15/") == 1
    });

    // The data scientist drops the hour: edit, build, check, publish, activate.
    let saved = Instant::now();
    let source = std::fs::read_to_string(project.join(lang.source)).unwrap();
    let edited = lang.edits.iter().fold(source, |text, (from, to)| {
        assert!(
            text.contains(from),
            "the scaffold's transform changed shape: no {from}"
        );
        text.replace(from, to)
    });
    std::fs::write(project.join(lang.source), edited).unwrap();
    let expected = std::fs::read_to_string(cases.join("expected.json")).unwrap();
    let expected: String = expected
        .lines()
        .map(|line| match line.find("/hr=") {
            Some(at) => format!("{}\"", &line[..at]) + if line.ends_with(',') { "," } else { "" },
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(cases.join("expected.json"), expected).unwrap();
    let module = build_project(&project);
    assert!(module.ends_with("build/shop.wasm"));
    let published = publish("v2");
    assert!(
        published.contains("writing table shop_v2 (section, dt)"),
        "{published}"
    );

    writeln!(stdin, "{event}").unwrap();
    eventually("v2's partitions, without a restart", || {
        objects_under("shop_v2/section=Books/dt=2024-03-10/") >= 1
    });
    eprintln!(
        "{}: from saving {} to new partitions in the lake: {:.1} s",
        lang.lang,
        lang.source,
        saved.elapsed().as_secs_f64()
    );
    drop(stdin);
    let output = host.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(objects_under("shop/"), 1, "v1's table keeps its one object");
}

#[test]
fn a_rust_transform_scaffolded_outside_the_repository_builds_and_passes_its_cases() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("orders");
    ok(weir(&[
        "transform",
        "new",
        "orders",
        "--lang",
        "rust",
        "--dir",
        path(&project),
    ]));
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("[workspace]"), "{manifest}");
    // Its own target directory, so the build is the user's, not the workspace's.
    let build = Command::new(weir_bin())
        .args(["transform", "build", path(&project)])
        .env("CARGO_TARGET_DIR", project.join("target"))
        .output()
        .unwrap();
    let stdout = ok(build);
    assert!(
        stdout.contains("partition columns: section, dt, hr"),
        "{stdout}"
    );
    let module = project.join("build/orders.wasm");
    let cases = project.join("cases");
    ok(contract_test(&module, &cases));
    // A case that fails is reported, and the command fails.
    let expected = std::fs::read_to_string(cases.join("expected.json")).unwrap();
    std::fs::write(
        cases.join("expected.json"),
        expected.replacen("Electronics", "Toys", 1),
    )
    .unwrap();
    let failing = contract_test(&module, &cases);
    assert!(!failing.status.success());
    let stderr = String::from_utf8_lossy(&failing.stderr);
    assert!(stderr.contains("1 of the contract cases"), "{stderr}");
}
