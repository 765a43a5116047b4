//! Transforms as components of the `weir:transform` world, built from Python with
//! componentize-py: the retail transform in Python against the Rust one's contract cases and
//! hostile records, and broken or malicious components, each refused at load with a clear
//! error or failing only its own records.

use weir::batch::pipeline::PipelineConfig;
use weir::batch::sort::transform_batch;
use weir::source::record::Batch;
use weir::transform::{LoadError, TransformLimits, WasmTransform};
use weir_tests::components::{build_project, componentize, python_retail_wasm};
use weir_tests::{batch_of, data_dir, retail_wasm, weir_bin};

/// What a batch came to: accepted partition paths by record, failures by record.
fn outcomes(transform: &WasmTransform, batch: &Batch) -> Vec<(usize, String)> {
    let sorted = transform_batch(batch, &mut transform.session(), &PipelineConfig::default());
    let mut answers: Vec<(usize, String)> = sorted
        .groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| (m.record, g.partition.clone())))
        .chain(
            sorted
                .failures
                .iter()
                .map(|(i, f)| (*i, format!("{}/{}", f.error_type.as_str(), f.code))),
        )
        .collect();
    answers.sort();
    answers
}

fn load(bytes: &[u8]) -> Result<WasmTransform, LoadError> {
    WasmTransform::from_bytes("component", bytes, TransformLimits::default())
}

#[test]
fn the_python_retail_transform_passes_the_rust_ones_contract_cases() {
    let module = python_retail_wasm();
    let output = std::process::Command::new(weir_bin())
        .args(["transform", "test"])
        .arg(&module)
        .arg("--cases")
        .arg(data_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let loaded = load(&std::fs::read(&module).unwrap()).unwrap();
    let table = loaded.table().expect("the component declares its columns");
    assert_eq!(table.columns, ["section", "dt", "hr"]);
}

#[test]
fn python_and_rust_agree_on_every_hostile_record() {
    let python = load(&std::fs::read(python_retail_wasm()).unwrap()).unwrap();
    let rust = load(&std::fs::read(retail_wasm()).unwrap()).unwrap();
    let mut records: Vec<Vec<u8>> = Vec::new();
    for dir in ["hostile", "invalid", "valid"] {
        let mut files: Vec<_> = std::fs::read_dir(data_dir().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        records.extend(files.iter().map(|f| std::fs::read(f).unwrap()));
    }
    records.extend(
        std::fs::read_to_string(data_dir().join("events.ndjson"))
            .unwrap()
            .lines()
            .map(|l| l.as_bytes().to_vec()),
    );
    assert!(records.len() > 100, "{}", records.len());
    let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
    let batch = batch_of(&refs, 1);
    let (python, rust) = (outcomes(&python, &batch), outcomes(&rust, &batch));
    let differ: Vec<_> = python
        .iter()
        .zip(&rust)
        .filter(|(p, r)| p != r)
        .map(|(p, r)| {
            let data = String::from_utf8_lossy(&records[p.0]);
            format!(
                "{}: python {} rust {}",
                &data[..data.len().min(120)],
                p.1,
                r.1
            )
        })
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}

const HOSTILE_PY: &str = r#"
import weir

@weir.transform(columns=["kind"])
def route(record):
    text = record.text()
    if text == "boom":
        raise ValueError("boom on purpose")
    if text == "loop":
        while True:
            pass
    if text == "alloc":
        hog = [bytearray(1 << 20) for _ in range(4096)]
    if text == "other-column":
        return weir.accept(other="x")
    if text == "surrogate":
        return weir.accept(kind="\ud800")
    if text == "chatty":
        for i in range(1000):
            weir.log(f"line {i}")
    return weir.accept(kind=text)
"#;

#[test]
fn a_python_transform_fails_only_the_records_it_raises_loops_or_allocates_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("transform.py"), HOSTILE_PY).unwrap();
    let module = build_project(dir.path());
    let transform = load(&std::fs::read(module).unwrap()).unwrap();
    let records: &[&[u8]] = &[
        b"a",
        b"boom",
        b"b",
        b"loop",
        b"c",
        b"alloc",
        b"d",
        b"other-column",
        b"surrogate",
        b"chatty",
        b"e",
    ];
    let got = outcomes(&transform, &batch_of(records, 1));
    let want: Vec<(usize, String)> = [
        "kind=a",
        "trap/exception",
        "kind=b",
        "trap/cpu_budget",
        "kind=c",
        "trap/memory_cap",
        "kind=d",
        "invalid_partition/undeclared_columns",
        "trap/exception",
        "kind=chatty",
        "kind=e",
    ]
    .iter()
    .enumerate()
    .map(|(i, s)| (i, s.to_string()))
    .collect();
    assert_eq!(got, want);
    // The same records one by one (a fresh session each): the same outcomes, whatever their
    // neighbours were.
    for (i, record) in records.iter().enumerate() {
        let alone = outcomes(&transform, &batch_of(&[record], 1));
        assert_eq!(alone[0].1, want[i].1, "{}", String::from_utf8_lossy(record));
    }
    let sorted = transform_batch(
        &batch_of(&[b"boom"], 1),
        &mut transform.session(),
        &PipelineConfig::default(),
    );
    assert!(
        sorted.failures[0].1.message.contains("boom on purpose"),
        "{}",
        sorted.failures[0].1.message
    );
}

/// A module on the world's raw bindings, with no SDK between it and the host.
const RAW_PY: &str = r#"
import wit_world
from wit_world import Accepted, Outcome_Accept, Outcome_Error, Outcome_Reject, Rejected, Segment

POISONED = False

def ok(text):
    # After an error the instance is suspect: show it, so a host that kept using it is caught.
    return Outcome_Accept(Accepted([Segment("kind", "poisoned" if POISONED else text)], None))

class WitWorld(wit_world.WitWorld):
    def columns(self):
        return ["kind"]

    def transform_batch(self, records):
        out = []
        for record in records:
            text = record.data.decode()
            if text == "two":
                out += [ok(text), ok(text)]
            elif text == "none":
                return []
            elif text == "no-segment":
                out.append(Outcome_Accept(Accepted([], None)))
            elif text == "nine-segments":
                out.append(Outcome_Accept(Accepted([Segment("kind", "x")] * 9, None)))
            elif text == "reject":
                out.append(Outcome_Reject(Rejected("nope", "rejected on purpose")))
            elif text == "error-and-go-on":
                global POISONED
                POISONED = True
                out.append(Outcome_Error("raised, then carried on"))
            elif text == "trap":
                raise RuntimeError("uncaught, past the SDK")
            else:
                out.append(ok(text))
        return out
"#;

#[test]
fn malformed_answers_fail_their_record_alone() {
    let dir = tempfile::tempdir().unwrap();
    let module = componentize(dir.path(), RAW_PY, None, true);
    let transform = load(&module).unwrap();
    let records: &[&[u8]] = &[
        b"a",
        b"two",
        b"b",
        b"none",
        b"c",
        b"no-segment",
        b"nine-segments",
        b"reject",
        b"error-and-go-on",
        b"trap",
        b"d",
    ];
    let got: Vec<String> = outcomes(&transform, &batch_of(records, 1))
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect();
    assert_eq!(
        got,
        [
            "kind=a",
            "invalid_output/outcome_count",
            "kind=b",
            "invalid_output/outcome_count",
            "kind=c",
            "invalid_output/no_partition",
            "invalid_output/too_many_segments",
            "rejected/nope",
            "trap/exception",
            "trap/unreachable", // componentize-py traps on an exception it does not catch
            "kind=d",
        ]
    );
    // A guest that answers an error and goes on: the records after it are run again in a
    // fresh instance, not taken from the one that failed.
    let records: &[&[u8]] = &[b"x", b"error-and-go-on", b"y"];
    let got: Vec<String> = outcomes(&transform, &batch_of(records, 1))
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect();
    assert_eq!(got, ["kind=x", "trap/exception", "kind=y"]);
}

#[test]
fn components_that_break_the_contract_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    // WASI left in: componentize-py without --stub-wasi.
    let wasi = componentize(&dir.path().join("wasi"), RAW_PY, None, false);
    let err = load(&wasi).expect_err("a WASI import is refused");
    assert!(
        matches!(&err, LoadError::ForbiddenComponentImport { name } if name.starts_with("wasi:")),
        "{err}"
    );
    assert!(err.to_string().contains("--stub-wasi"), "{err}");

    // Another world.
    let other_wit = "package other:thing;\nworld other {\n  export hello: func() -> string;\n}\n";
    let other_py = "import wit_world\nclass WitWorld(wit_world.WitWorld):\n    def hello(self):\n        return 'hi'\n";
    let other = componentize(&dir.path().join("other"), other_py, Some(other_wit), true);
    let err = load(&other).expect_err("another world is refused");
    assert!(matches!(err, LoadError::WrongWorld(_)), "{err}");
    assert!(err.to_string().contains("weir:transform@1.0.0"), "{err}");

    // A trap where the host asks for the columns.
    let no_columns = RAW_PY.replace(
        "        return [\"kind\"]",
        "        raise RuntimeError(\"no columns today\")",
    );
    let init = componentize(&dir.path().join("init"), &no_columns, None, true);
    let err = load(&init).expect_err("a trap in columns is refused");
    assert!(matches!(err, LoadError::Instantiate(_)), "{err}");

    // Unusable columns.
    let bad_columns = RAW_PY.replace("return [\"kind\"]", "return [\"Kind/../x\"]");
    let columns = componentize(&dir.path().join("columns"), &bad_columns, None, true);
    let err = load(&columns).expect_err("unusable columns are refused");
    assert!(matches!(err, LoadError::Columns(_)), "{err}");

    // Over the size limit.
    let limits = TransformLimits {
        max_module_bytes: 1 << 20,
        ..TransformLimits::default()
    };
    let err = WasmTransform::from_bytes("big", &wasi, limits)
        .expect_err("an oversized component is refused");
    assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
}

#[test]
fn a_precompiled_component_loads_and_answers_like_the_component() {
    let bytes = std::fs::read(python_retail_wasm()).unwrap();
    let artifact = weir::transform::precompile(&bytes, &weir::transform::host_target()).unwrap();
    assert_eq!(artifact.key, weir::transform::artifact_key());
    let compiled = load(&bytes).unwrap();
    let sha256 = compiled.id().sha256.clone();
    let precompiled = WasmTransform::from_precompiled(
        "retail",
        &sha256,
        &artifact.bytes,
        TransformLimits::default(),
    )
    .unwrap()
    .with_table(compiled.table().cloned());
    let events = std::fs::read_to_string(data_dir().join("events.ndjson")).unwrap();
    let lines: Vec<&[u8]> = events.lines().map(str::as_bytes).collect();
    let batch = batch_of(&lines, 1);
    assert_eq!(outcomes(&compiled, &batch), outcomes(&precompiled, &batch));
}
