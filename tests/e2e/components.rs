//! Transforms as components of the `weir:transform` world, built from Python with
//! componentize-py and from JavaScript with ComponentizeJS: the retail transform in both
//! against the Rust one's contract cases and hostile records, and broken or malicious
//! components, each refused at load with a clear error or failing only its own records.

use weir::batch::pipeline::PipelineConfig;
use weir::batch::sort::transform_batch;
use weir::source::record::Batch;
use weir::transform::{LoadError, TransformLimits, WasmTransform};
use weir_tests::components::{
    build_project, componentize, componentize_js, componentize_js_module, js_retail_wasm,
    python_retail_wasm,
};
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
fn the_python_and_js_retail_transforms_pass_the_rust_ones_contract_cases() {
    for module in [python_retail_wasm(), js_retail_wasm()] {
        passes_the_contract_cases(&module);
    }
}

fn passes_the_contract_cases(module: &std::path::Path) {
    let output = std::process::Command::new(weir_bin())
        .args(["transform", "test"])
        .arg(module)
        .arg("--cases")
        .arg(data_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let loaded = load(&std::fs::read(module).unwrap()).unwrap();
    let table = loaded.table().expect("the component declares its columns");
    assert_eq!(table.columns, ["section", "dt", "hr"]);
}

#[test]
fn python_js_and_rust_agree_on_every_hostile_record() {
    let rust = load(&std::fs::read(retail_wasm()).unwrap()).unwrap();
    for (name, module) in [("python", python_retail_wasm()), ("js", js_retail_wasm())] {
        let component = load(&std::fs::read(module).unwrap()).unwrap();
        agrees_with_rust(name, &component, &rust);
    }
}

fn agrees_with_rust(name: &str, component: &WasmTransform, rust: &WasmTransform) {
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
    let (component, rust) = (outcomes(component, &batch), outcomes(rust, &batch));
    let differ: Vec<_> = component
        .iter()
        .zip(&rust)
        .filter(|(p, r)| p != r)
        .map(|(p, r)| {
            let data = String::from_utf8_lossy(&records[p.0]);
            format!(
                "{}: {name} {} rust {}",
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

const HOSTILE_JS: &str = r#"
import * as weir from "./weir.js";

weir.transform({ columns: ["kind"] }, (record) => {
  const text = record.text();
  if (text === "boom") throw new Error("boom on purpose");
  if (text === "loop") for (;;) {}
  if (text === "alloc") {
    const hog = [];
    for (let i = 0; i < 256; i++) hog.push(new ArrayBuffer(16 << 20));
  }
  if (text === "other-column") return weir.accept({ other: "x" });
  if (text === "surrogate") return weir.accept({ kind: "\ud800" });
  if (text === "chatty") for (let i = 0; i < 1000; i++) weir.log(`line ${i}`);
  return weir.accept({ kind: text });
});
"#;

#[test]
fn a_python_or_js_transform_fails_only_the_records_it_raises_loops_or_allocates_on() {
    for (file, source) in [("transform.py", HOSTILE_PY), ("transform.js", HOSTILE_JS)] {
        fails_only_its_own_records(file, source);
    }
}

fn fails_only_its_own_records(file: &str, source: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file), source).unwrap();
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
    assert_eq!(got, want, "{file}");
    // The same records one by one (a fresh session each): the same outcomes, whatever their
    // neighbours were.
    for (i, record) in records.iter().enumerate() {
        let alone = outcomes(&transform, &batch_of(&[record], 1));
        let record = String::from_utf8_lossy(record);
        assert_eq!(alone[0].1, want[i].1, "{file}: {record}");
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

/// The same guest in JavaScript.
const RAW_JS: &str = r#"
let poisoned = false;
const accepted = (partition) => ({ tag: "accept", val: { partition, body: undefined } });
const ok = (text) => accepted([{ name: "kind", value: poisoned ? "poisoned" : text }]);

export function columns() {
  return ["kind"];
}

export function transformBatch(records) {
  const out = [];
  for (const record of records) {
    const text = new TextDecoder().decode(record.data);
    if (text === "two") out.push(ok(text), ok(text));
    else if (text === "none") return [];
    else if (text === "no-segment") out.push(accepted([]));
    else if (text === "nine-segments") out.push(accepted(Array(9).fill({ name: "kind", value: "x" })));
    else if (text === "reject") out.push({ tag: "reject", val: { code: "nope", message: "rejected on purpose" } });
    else if (text === "error-and-go-on") {
      poisoned = true;
      out.push({ tag: "error", val: "raised, then carried on" });
    } else if (text === "trap") throw new Error("uncaught, past the SDK");
    else out.push(ok(text));
  }
  return out;
}
"#;

#[test]
fn malformed_answers_fail_their_record_alone() {
    let dir = tempfile::tempdir().unwrap();
    let python = componentize(&dir.path().join("py"), RAW_PY, None, true);
    // componentize-py traps on an exception it does not catch.
    answers_malformed_alone(&load(&python).unwrap(), "trap/unreachable");
    let js = componentize_js_module(&dir.path().join("js"), RAW_JS, None, false);
    answers_malformed_alone(&load(&js).unwrap(), "trap/unreachable");
}

fn answers_malformed_alone(transform: &WasmTransform, uncaught: &str) {
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
    let got: Vec<String> = outcomes(transform, &batch_of(records, 1))
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
            uncaught,
            "kind=d",
        ]
    );
    // A guest that answers an error and goes on: the records after it are run again in a
    // fresh instance, not taken from the one that failed.
    let records: &[&[u8]] = &[b"x", b"error-and-go-on", b"y"];
    let got: Vec<String> = outcomes(transform, &batch_of(records, 1))
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

    // The same from JavaScript: the engine's WASI left in, and another world.
    let wasi_js = componentize_js_module(&dir.path().join("wasi-js"), RAW_JS, None, true);
    let err = load(&wasi_js).expect_err("a WASI import is refused");
    assert!(
        matches!(&err, LoadError::ForbiddenComponentImport { name } if name.starts_with("wasi:")),
        "{err}"
    );
    let other_js = "export function hello() { return 'hi'; }\n";
    let other = componentize_js_module(
        &dir.path().join("other-js"),
        other_js,
        Some(other_wit),
        false,
    );
    let err = load(&other).expect_err("another world is refused");
    assert!(matches!(err, LoadError::WrongWorld(_)), "{err}");
    let js_dir = dir.path().join("init-js");
    let throwing = RAW_JS.replace(
        "  return [\"kind\"];",
        "  throw new Error(\"no columns today\");",
    );
    let init = componentize_js_module(&js_dir, &throwing, None, false);
    let err = load(&init).expect_err("a throw in columns is refused");
    assert!(matches!(err, LoadError::Instantiate(_)), "{err}");
    let bad = RAW_JS.replace("return [\"kind\"];", "return [\"Kind/../x\"];");
    let columns = componentize_js_module(&dir.path().join("columns-js"), &bad, None, false);
    let err = load(&columns).expect_err("unusable columns are refused");
    assert!(matches!(err, LoadError::Columns(_)), "{err}");
    // A transform that throws while its module loads cannot be built: the build says why.
    let project = dir.path().join("top-level-js");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("transform.js"),
        "throw new Error(\"broken at load\");\n",
    )
    .unwrap();
    let build = std::process::Command::new(weir_bin())
        .args(["transform", "build"])
        .arg(&project)
        .env("WEIR_COMPONENTIZE_JS", componentize_js())
        .output()
        .unwrap();
    assert!(!build.status.success());
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(stderr.contains("broken at load"), "{stderr}");

    // Over the size limit.
    let limits = TransformLimits {
        max_module_bytes: 1 << 20,
        ..TransformLimits::default()
    };
    for component in [&wasi, &wasi_js] {
        let err = WasmTransform::from_bytes("big", component, limits)
            .expect_err("an oversized component is refused");
        assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
    }
}

#[test]
fn a_precompiled_component_loads_and_answers_like_the_component() {
    for module in [python_retail_wasm(), js_retail_wasm()] {
        precompiled_answers_alike(&module);
    }
}

fn precompiled_answers_alike(module: &std::path::Path) {
    let bytes = std::fs::read(module).unwrap();
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
