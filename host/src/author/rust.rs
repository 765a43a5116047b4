//! Rust projects: a standalone crate on weir-guest-sdk, built for wasm32-wasip1.

use super::{NewOptions, run, write};
use anyhow::{Context, bail};
use std::path::Path;
use std::process::Command;

const TARGET: &str = "wasm32-wasip1";

/// Writes `Cargo.toml` and `src/lib.rs`.
pub(super) fn scaffold(name: &str, dir: &Path, options: &NewOptions) -> anyhow::Result<()> {
    // The SDK this `weir` was built with, while its checkout exists; else the published crate.
    let built_with = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    let sdk = match options
        .sdk
        .clone()
        .or_else(|| built_with.canonicalize().ok())
    {
        Some(path) => {
            let path = path
                .canonicalize()
                .with_context(|| format!("no weir-guest-sdk at {}", path.display()))?;
            format!("{{ path = {:?} }}", path.display().to_string())
        }
        None => format!("{:?}", env!("CARGO_PKG_VERSION")),
    };
    let manifest = include_str!("templates/rust-Cargo.toml")
        .replace("{crate}", name)
        .replace("{sdk}", &sdk);
    write(dir, "Cargo.toml", &manifest)?;
    let lib = include_str!("templates/rust-lib.rs").replace("{name}", name);
    write(dir, "src/lib.rs", &lib)
}

/// `cargo build --release --target wasm32-wasip1`, after adding the target (rustup does not
/// add it by itself where `RUSTUP_AUTO_INSTALL=0`).
pub(super) fn build(dir: &Path, out: &Path) -> anyhow::Result<()> {
    if Command::new("rustup").arg("--version").output().is_ok() {
        run(
            Command::new("rustup").args(["target", "add", TARGET]),
            "rustup target add",
        )?;
    }
    let output = Command::new("cargo")
        .args(["build", "--release", "--target", TARGET])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        bail!("cargo build failed ({})", output.status);
    }
    // The .wasm is wherever cargo put it (CARGO_TARGET_DIR included): it says so.
    let module = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|file| file.as_str().map(str::to_owned))
        .rfind(|file| file.ends_with(".wasm"))
        .context("cargo built no .wasm: is the crate a cdylib?")?;
    std::fs::copy(&module, out)
        .with_context(|| format!("cannot copy {module} to {}", out.display()))?;
    Ok(())
}
