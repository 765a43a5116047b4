//! The author loop: scaffold a transform project that builds outside Weir's repository, and
//! build it into the module the registry publishes (`weir transform new` and `build`).
//!
//! A project's language is told by its files: `Cargo.toml` is Rust (a core module, ABI v1),
//! `transform.py` is Python and `transform.js` JavaScript (components of the `weir:transform`
//! world). Its name is its directory's. All build to `build/<name>.wasm`, and all carry
//! `cases/`, the contract cases publishing checks.

mod js;
mod python;
mod rust;

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The languages a transform can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate on weir-guest-sdk, built for wasm32-wasip1.
    Rust,
    /// A Python module on the `weir` SDK, built with componentize-py.
    Python,
    /// A JavaScript module on the `weir` SDK, built with ComponentizeJS.
    Js,
}

impl Lang {
    /// The language of the project in `dir`, told by its files.
    pub fn detect(dir: &Path) -> anyhow::Result<Self> {
        if dir.join("Cargo.toml").is_file() {
            Ok(Self::Rust)
        } else if dir.join(python::MODULE_FILE).is_file() {
            Ok(Self::Python)
        } else if dir.join(js::MODULE_FILE).is_file() {
            Ok(Self::Js)
        } else {
            bail!(
                "{} holds no transform project (no Cargo.toml, {} or {}): start one with `weir transform new`",
                dir.display(),
                python::MODULE_FILE,
                js::MODULE_FILE
            )
        }
    }
}

/// What `new` needs besides the project's name and language.
#[derive(Debug, Default)]
pub struct NewOptions {
    /// For Rust: where weir-guest-sdk is (a path dependency); default, the SDK of the
    /// checkout this `weir` was built from when it still exists, else the crates.io version.
    pub sdk: Option<PathBuf>,
}

/// Scaffolds the project `name` in `dir` (which must not exist or be empty): the transform,
/// its unit tests, contract cases, a README and a .gitignore.
pub fn new_project(name: &str, lang: Lang, dir: &Path, options: &NewOptions) -> anyhow::Result<()> {
    check_name(name)?;
    if dir.exists() && dir.read_dir()?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    std::fs::create_dir_all(dir.join("cases"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let (lang_name, unit_test) = match lang {
        Lang::Rust => {
            rust::scaffold(name, dir, options)?;
            ("Rust", "cargo test")
        }
        Lang::Python => {
            python::scaffold(dir)?;
            ("Python", "python -m pytest")
        }
        Lang::Js => {
            js::scaffold(name, dir)?;
            ("JavaScript", "node --test")
        }
    };
    let readme = include_str!("templates/README.md")
        .replace("{name}", name)
        .replace("{lang_name}", lang_name)
        .replace("{unit_test}", unit_test);
    write(dir, "README.md", &readme)?;
    write(dir, ".gitignore", include_str!("templates/gitignore"))?;
    write_cases(&dir.join("cases"))
}

/// Builds the project in `dir` into `build/<name>.wasm`, installing what it can (the wasm
/// target; componentize-py into `.weir/venv`; ComponentizeJS into `.weir/toolchain`).
/// Returns the module's path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let name = project_name(dir)?;
    let out = dir.join("build").join(format!("{name}.wasm"));
    std::fs::create_dir_all(dir.join("build"))?;
    match Lang::detect(dir)? {
        Lang::Rust => rust::build(dir, &out)?,
        Lang::Python => python::build(dir, &out)?,
        Lang::Js => js::build(dir, &out)?,
    }
    Ok(out)
}

/// The project's name: its directory's.
fn project_name(dir: &Path) -> anyhow::Result<String> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot find {}", dir.display()))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("the project directory has no name")?;
    Ok(name)
}

/// Names become crate names, file names and registry names: keep them plain.
fn check_name(name: &str) -> anyhow::Result<()> {
    let plain = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if name.is_empty() || name.len() > 64 || !name.chars().all(plain) || name.starts_with('-') {
        bail!("a transform's name is 1-64 characters of a-z, 0-9, - and _: {name:?}");
    }
    Ok(())
}

fn write(dir: &Path, file: &str, text: &str) -> anyhow::Result<()> {
    let path = dir.join(file);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The retail sample events and their expected outcomes: the project's first contract cases.
fn write_cases(dir: &Path) -> anyhow::Result<()> {
    const EVENTS: &str = include_str!("../../../tests/data/events.ndjson");
    const EXPECTED: &str = include_str!("../../../tests/data/expected.json");
    let all: serde_json::Map<String, serde_json::Value> = serde_json::from_str(EXPECTED)?;
    let events: serde_json::Map<_, _> = all
        .into_iter()
        .filter(|(case, _)| case.starts_with("events.ndjson:"))
        .collect();
    write(dir, "events.ndjson", EVENTS)?;
    write(
        dir,
        "expected.json",
        &format!("{}\n", serde_json::to_string_pretty(&events)?),
    )
}

/// Runs a build step, failing with its output when it fails.
fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    tracing::debug!(?command, "running");
    let output = command
        .output()
        .with_context(|| format!("cannot run {what} ({:?})", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
