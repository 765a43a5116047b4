//! Building component transforms for the tests: the Python and JavaScript retail transforms
//! through `weir transform build`, and bare modules through componentize-py and ComponentizeJS
//! themselves.

use crate::{target_dir, weir_bin, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// componentize-py: `$WEIR_COMPONENTIZE_PY`, else the one scripts/test installs into .venv.
pub fn componentize_py() -> PathBuf {
    let path = std::env::var_os("WEIR_COMPONENTIZE_PY").map_or_else(
        || workspace_root().join(".venv/bin/componentize-py"),
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "{} is missing: run scripts/test, which installs it (or set WEIR_COMPONENTIZE_PY)",
        path.display()
    );
    path
}

/// The ComponentizeJS toolchain: `$WEIR_COMPONENTIZE_JS`, else guest-sdk/js, where
/// scripts/test installs it with `npm ci`.
pub fn componentize_js() -> PathBuf {
    let path = std::env::var_os("WEIR_COMPONENTIZE_JS")
        .map_or_else(|| workspace_root().join("guest-sdk/js"), PathBuf::from);
    assert!(
        path.join("node_modules/@bytecodealliance/componentize-js")
            .is_dir(),
        "{} has no node_modules: run scripts/test, which installs them (or set WEIR_COMPONENTIZE_JS)",
        path.display()
    );
    path
}

/// Builds the project in `dir` with `weir transform build`; returns the module's path.
pub fn build_project(dir: &Path) -> PathBuf {
    let output = Command::new(weir_bin())
        .args(["transform", "build"])
        .arg(dir)
        .env("WEIR_COMPONENTIZE_PY", componentize_py())
        .env("WEIR_COMPONENTIZE_JS", componentize_js())
        .output()
        .expect("weir runs");
    assert!(
        output.status.success(),
        "weir transform build {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let name = dir.canonicalize().unwrap().file_name().unwrap().to_owned();
    let module = dir.join("build").join(name).with_extension("wasm");
    assert!(module.is_file(), "{} was not built", module.display());
    module
}

/// `transforms/retail-python`, built once per test process.
pub fn python_retail_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_retail("retail-python", "transform.py"))
        .clone()
}

/// `transforms/retail-js`, built once per test process (the SDK from the build, as the
/// project's `weir.js` is a link into guest-sdk).
pub fn js_retail_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| build_retail("retail-js", "transform.js"))
        .clone()
}

/// Builds a copy of `transforms/<name>` (its transform alone) under target/, into
/// `target/<name>.wasm`.
fn build_retail(name: &str, file: &str) -> PathBuf {
    let dir = target_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let source = workspace_root().join("transforms").join(name);
    std::fs::copy(source.join(file), dir.join(file)).unwrap();
    let built = build_project(&dir);
    let module = target_dir().join(name).with_extension("wasm");
    std::fs::rename(&built, &module).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    module
}

/// Componentizes the Python module `source` (named `app`) for `wit` (default: Weir's world),
/// with or without componentize-py's WASI stubs; returns the component.
pub fn componentize(dir: &Path, source: &str, wit: Option<&str>, stub_wasi: bool) -> Vec<u8> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("app.py"), source).unwrap();
    let (wit_dir, world) = wit_and_world(dir, wit);
    let out = dir.join("app.wasm");
    let mut command = Command::new(componentize_py());
    command
        .arg("-d")
        .arg(&wit_dir)
        .args(["-w", &world, "componentize", "app", "-p"])
        .arg(dir)
        .arg("-o")
        .arg(&out);
    if stub_wasi {
        command.arg("--stub-wasi");
    }
    let output = command.output().expect("componentize-py runs");
    assert!(
        output.status.success(),
        "componentize-py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(out).unwrap()
}

/// Componentizes the JavaScript module `source` with ComponentizeJS itself, no SDK between it
/// and the world (default: Weir's), with or without the engine's WASI features.
pub fn componentize_js_module(dir: &Path, source: &str, wit: Option<&str>, wasi: bool) -> Vec<u8> {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("app.js"), source).unwrap();
    let (wit_dir, world) = wit_and_world(dir, wit);
    let library = componentize_js()
        .join("node_modules/@bytecodealliance/componentize-js/src/componentize.js");
    let disabled = if wasi {
        "[]"
    } else {
        r#"["stdio", "random", "clocks", "http", "fetch-event"]"#
    };
    let script = format!(
        "import {{ componentize }} from {library:?};\n\
         import {{ writeFile }} from 'node:fs/promises';\n\
         const {{ component }} = await componentize({{ sourcePath: {source:?}, witPath: {wit:?}, \
         worldName: {world:?}, disableFeatures: {disabled} }});\n\
         await writeFile('app.wasm', component);\n",
        source = dir.join("app.js"),
        wit = wit_dir,
    );
    std::fs::write(dir.join("build.mjs"), script).unwrap();
    let output = Command::new("node")
        .arg("build.mjs")
        .current_dir(dir)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "componentize-js failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(dir.join("app.wasm")).unwrap()
}

/// The WIT directory and world to build for: `wit` written into `dir/wit` (its first world),
/// or Weir's.
fn wit_and_world(dir: &Path, wit: Option<&str>) -> (PathBuf, String) {
    let Some(text) = wit else {
        return (
            workspace_root().join("guest-sdk/wit"),
            "transform".to_owned(),
        );
    };
    std::fs::create_dir_all(dir.join("wit")).unwrap();
    std::fs::write(dir.join("wit/world.wit"), text).unwrap();
    let world = text
        .split_once("world ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .expect("the WIT names a world")
        .to_owned();
    (dir.join("wit"), world)
}
