//! Python projects: `transform.py` on the `weir` SDK, componentized with componentize-py into
//! a `weir:transform` component with CPython inside and no imports but the host's log.

use super::{run, write};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The module a Python project's transform is in.
pub(super) const MODULE_FILE: &str = "transform.py";
/// The componentize-py `weir transform build` installs when it finds none.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.0";

const SDK: &str = include_str!("../../../guest-sdk/python/weir.py");
const GLUE: &str = include_str!("../../../guest-sdk/python/weir_component.py");
const WIT: &str = include_str!("../../../guest-sdk/wit/transform.wit");
/// The module componentize-py starts from: the author's transform, then the world's exports.
const ENTRY: &str = "import transform  # noqa: F401 (declares the transform)\nfrom weir_component import WitWorld  # noqa: F401\n";

/// Writes the example transform, its pytest tests and the SDK (`weir.py`, so that the tests
/// run with plain pytest).
pub(super) fn scaffold(dir: &Path) -> anyhow::Result<()> {
    write(
        dir,
        MODULE_FILE,
        include_str!("../../../transforms/retail-python/transform.py"),
    )?;
    write(
        dir,
        "test_transform.py",
        include_str!("../../../transforms/retail-python/test_transform.py"),
    )?;
    write(dir, "weir.py", SDK)
}

/// Componentizes the project. The project's own `weir.py`, when it has one, comes first on the
/// path; the SDK this `weir` carries is the fallback.
pub(super) fn build(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let work = dir.join(".weir");
    let sdk = work.join("sdk");
    write(&work, "wit/transform.wit", WIT)?;
    write(&sdk, "weir.py", SDK)?;
    write(&sdk, "weir_component.py", GLUE)?;
    write(&sdk, "weir_entry.py", ENTRY)?;
    let componentize = componentize_py(&work)?;
    run(
        Command::new(&componentize)
            .arg("-d")
            .arg(work.join("wit"))
            .args(["-w", "transform", "componentize", "weir_entry"])
            .arg("-p")
            .arg(dir)
            .arg("-p")
            .arg(&sdk)
            .arg("--stub-wasi")
            .arg("-o")
            .arg(out),
        "componentize-py",
    )
}

/// `$WEIR_COMPONENTIZE_PY`, or the one in `.weir/venv`, installed there on first use.
fn componentize_py(work: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("WEIR_COMPONENTIZE_PY") {
        return Ok(PathBuf::from(path));
    }
    let venv = work.join("venv");
    let installed = venv.join("bin/componentize-py");
    if installed.is_file() {
        return Ok(installed);
    }
    eprintln!(
        "installing {COMPONENTIZE_PY} into {} (once)",
        venv.display()
    );
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )?;
    run(
        Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            COMPONENTIZE_PY,
        ]),
        "pip install componentize-py",
    )?;
    installed
        .is_file()
        .then_some(installed.clone())
        .with_context(|| format!("pip installed no {}", installed.display()))
}
