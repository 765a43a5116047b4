//! Building component transforms for the tests: the Python retail transform through
//! `weir transform build`, and bare modules through componentize-py itself.

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

/// Builds the project in `dir` with `weir transform build`; returns the module's path.
pub fn build_project(dir: &Path) -> PathBuf {
    let output = Command::new(weir_bin())
        .args(["transform", "build"])
        .arg(dir)
        .env("WEIR_COMPONENTIZE_PY", componentize_py())
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

/// `transforms/retail-python`, built once per test process (a copy, under target/).
pub fn python_retail_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = target_dir().join(format!("retail-python-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let source = workspace_root().join("transforms/retail-python");
            std::fs::copy(source.join("transform.py"), dir.join("transform.py")).unwrap();
            let built = build_project(&dir);
            let module = target_dir().join("retail-python.wasm");
            std::fs::rename(&built, &module).unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
            module
        })
        .clone()
}

/// Componentizes the Python module `source` (named `app`) for `wit` (default: Weir's world),
/// with or without componentize-py's WASI stubs; returns the component.
pub fn componentize(dir: &Path, source: &str, wit: Option<&str>, stub_wasi: bool) -> Vec<u8> {
    std::fs::create_dir_all(dir.join("wit")).unwrap();
    std::fs::write(dir.join("app.py"), source).unwrap();
    let (wit_dir, world) = match wit {
        Some(text) => {
            std::fs::write(dir.join("wit/world.wit"), text).unwrap();
            let world = text
                .split_once("world ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .expect("the WIT names a world")
                .to_owned();
            (dir.join("wit"), world)
        }
        None => (
            workspace_root().join("guest-sdk/wit"),
            "transform".to_owned(),
        ),
    };
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
