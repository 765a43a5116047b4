//! JavaScript projects: `transform.js` on the `weir` SDK (`weir.js`), componentized with
//! ComponentizeJS into a `weir:transform` component with a JavaScript engine inside and no
//! imports but the host's log.
//!
//! ComponentizeJS sees one directory, so the build stages the project's JavaScript (symlinks
//! followed) under `.weir/js/src`, beside the SDK's glue, and componentizes from there. A
//! transform may import its own relative files; npm packages must be bundled first.

use super::{run, write};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The module a JavaScript project's transform is in.
pub(super) const MODULE_FILE: &str = "transform.js";

const SDK: &str = include_str!("../../../guest-sdk/js/weir.js");
const GLUE: &str = include_str!("../../../guest-sdk/js/weir_component.js");
const WIT: &str = include_str!("../../../guest-sdk/wit/transform.wit");
/// The toolchain: ComponentizeJS at the version the lockfile pins, and the script that runs it.
const TOOLCHAIN: [(&str, &str); 3] = [
    (
        "package.json",
        include_str!("../../../guest-sdk/js/package.json"),
    ),
    (
        "package-lock.json",
        include_str!("../../../guest-sdk/js/package-lock.json"),
    ),
    ("build.mjs", include_str!("../../../guest-sdk/js/build.mjs")),
];
/// The module ComponentizeJS starts from: the author's transform, then the world's exports.
const ENTRY: &str = "import \"./src/transform.js\";\nexport { columns, transformBatch } from \"./weir_component.js\";\n";
/// What staging leaves out: builds, dependencies, Weir's own work.
const SKIPPED: [&str; 4] = ["build", "node_modules", "target", "cases"];

/// Writes the example transform, its `node --test` tests, `package.json` and the SDK
/// (`weir.js`, so that the tests run with plain Node).
pub(super) fn scaffold(name: &str, dir: &Path) -> anyhow::Result<()> {
    write(
        dir,
        MODULE_FILE,
        include_str!("../../../transforms/retail-js/transform.js"),
    )?;
    write(
        dir,
        "transform.test.js",
        include_str!("../../../transforms/retail-js/transform.test.js"),
    )?;
    let package = include_str!("../../../transforms/retail-js/package.json")
        .replace("\"retail-js\"", &format!("{name:?}"));
    write(dir, "package.json", &package)?;
    write(dir, "weir.js", SDK)
}

/// Componentizes the project. The project's own `weir.js`, when it has one, is the one its
/// transform imports; the glue uses the SDK this `weir` carries (both agree through globals).
pub(super) fn build(dir: &Path, out: &Path) -> anyhow::Result<()> {
    let work = dir.join(".weir");
    let staged = work.join("js");
    if staged.exists() {
        std::fs::remove_dir_all(&staged)
            .with_context(|| format!("cannot clear {}", staged.display()))?;
    }
    stage(dir, &staged.join("src"))?;
    if !staged.join("src/weir.js").is_file() {
        write(&staged, "src/weir.js", SDK)?;
    }
    write(&staged, "weir.js", SDK)?;
    write(&staged, "weir_component.js", GLUE)?;
    write(&staged, "entry.js", ENTRY)?;
    write(&work, "wit/transform.wit", WIT)?;
    let toolchain = toolchain(&work)?;
    let out = std::path::absolute(out)?;
    // Run from the staging directory: ComponentizeJS maps the working directory as the
    // component's root when the source is inside it.
    let staged = staged.canonicalize()?;
    run(
        Command::new("node")
            .arg(toolchain.join("build.mjs"))
            .arg(staged.join("entry.js"))
            .arg(work.join("wit").canonicalize()?)
            .arg(&out)
            .current_dir(&staged),
        "componentize-js",
    )
}

/// Copies the project's `.js`, `.mjs` and `.json` files into `to`, following symlinks and
/// leaving out hidden folders and those in `SKIPPED`.
fn stage(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') || SKIPPED.contains(&&*name) {
            continue;
        }
        if path.is_dir() {
            stage(&path, &to.join(&*name))?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["js", "mjs", "json"].contains(&e))
        {
            std::fs::copy(&path, to.join(&*name))
                .with_context(|| format!("cannot copy {}", path.display()))?;
        }
    }
    Ok(())
}

/// `$WEIR_COMPONENTIZE_JS` (a directory holding the toolchain, installed), or `.weir/toolchain`,
/// installed there with `npm ci` on first use and again when this `weir` pins another lockfile.
fn toolchain(work: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("WEIR_COMPONENTIZE_JS") {
        let path = PathBuf::from(path);
        if !path
            .join("node_modules/@bytecodealliance/componentize-js")
            .is_dir()
        {
            bail!(
                "WEIR_COMPONENTIZE_JS={} holds no installed componentize-js: run `npm ci` there",
                path.display()
            );
        }
        return Ok(path.canonicalize()?);
    }
    let dir = work.join("toolchain");
    for (file, text) in TOOLCHAIN {
        write(&dir, file, text)?;
    }
    // What the installed tree was installed from: the lockfile, kept beside it.
    let installed = dir.join("node_modules/.weir-lock.json");
    let lock = TOOLCHAIN[1].1;
    if std::fs::read_to_string(&installed).ok().as_deref() != Some(lock) {
        eprintln!("installing componentize-js into {} (once)", dir.display());
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel", "error"])
                .current_dir(&dir),
            "npm ci",
        )?;
        std::fs::write(&installed, lock)?;
    }
    Ok(dir.canonicalize()?)
}
