//! `weir transform`: the author loop (new, build, test) and the registry (publish, list,
//! activate, roll back and show versions).

use crate::author::{self, Lang};
use crate::registry::Registry;
use crate::transform::{TransformLimits, WasmTransform};
use anyhow::{Context, bail};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub(super) struct TransformArgs {
    #[command(subcommand)]
    command: TransformCommand,
}

/// Which registry and transform a command works on.
#[derive(Debug, clap::Args)]
struct Target {
    /// The registry: a directory or s3://bucket/prefix.
    #[arg(long)]
    registry: String,
    /// The transform's name.
    #[arg(long)]
    name: String,
}

#[derive(Debug, Subcommand)]
enum TransformCommand {
    /// Start a transform project that builds on its own, outside Weir's repository: the
    /// transform, its unit tests and contract cases.
    New {
        /// The transform's name.
        name: String,
        /// Its language.
        #[arg(long, value_enum)]
        lang: Lang,
        /// The project's directory (its name names the built module); default ./NAME.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Rust: the weir-guest-sdk to depend on, by path (default: the one this weir was
        /// built with).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build the project in DIR into DIR/build/<DIR's name>.wasm, installing what it needs
    /// (the wasm32-wasip1 target; componentize-py into DIR/.weir/venv).
    Build {
        /// The project's directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run contract cases against a built module, as publishing does.
    Test {
        /// The module (.wasm).
        module: PathBuf,
        /// The cases: sample events and their expected.json.
        #[arg(long)]
        cases: PathBuf,
    },
    /// Check a module (ABI, imports, size, contract cases), then publish it as NAME@VERSION.
    Publish {
        #[command(flatten)]
        target: Target,
        /// The new version (never overwrites a published one).
        #[arg(long)]
        version: String,
        /// The module, built with weir-guest-sdk.
        module: PathBuf,
        /// A directory of sample events with an expected.json (see tests/data): every case must
        /// pass before anything is published.
        #[arg(long)]
        cases: Option<PathBuf>,
        /// What changed, recorded in the manifest.
        #[arg(long)]
        description: Option<String>,
        /// Make it the active version once published.
        #[arg(long)]
        activate: bool,
        /// The lake table it writes. Default: the table of the version it follows when the
        /// partition columns are the same, else a new table NAME_VERSION (NAME for a first
        /// version).
        #[arg(long)]
        table: Option<String>,
    },
    /// List the published versions; the active one is marked.
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Make a published version the active one.
    Activate {
        #[command(flatten)]
        target: Target,
        /// The version.
        #[arg(long)]
        version: String,
    },
    /// Make the previously active version active again.
    Rollback {
        #[command(flatten)]
        target: Target,
    },
    /// Print a version's manifest (the active one by default) and the active pointer, as JSON.
    Show {
        #[command(flatten)]
        target: Target,
        /// The version; the active one when omitted.
        #[arg(long)]
        version: Option<String>,
    },
}

pub(super) async fn transform(args: TransformArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TransformCommand::New {
            name,
            lang,
            dir,
            sdk,
        } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            author::new_project(&name, lang, &dir, &author::NewOptions { sdk })?;
            println!(
                "created {} ({lang:?}); next: cd {} && weir transform build",
                dir.display(),
                dir.display()
            );
        }
        TransformCommand::Build { dir } => {
            let started = Instant::now();
            let module = author::build(&dir)?;
            let loaded = load_module(&module)?;
            let columns = loaded
                .table()
                .map_or("none declared".to_owned(), |t| t.columns.join(", "));
            println!(
                "built {} ({:.1} MB, partition columns: {columns}) in {:.1} s",
                module.display(),
                std::fs::metadata(&module)?.len() as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
        }
        TransformCommand::Test { module, cases } => {
            if let Some(failing) = failing_cases(&load_module(&module)?, &cases)? {
                eprintln!("{failing}");
                return Ok(ExitCode::FAILURE);
            }
            println!("every contract case in {} passes", cases.display());
        }
        TransformCommand::Publish {
            target,
            version,
            module,
            cases,
            description,
            activate,
            table,
        } => {
            let bytes = std::fs::read(&module)
                .with_context(|| format!("cannot read {}", module.display()))?;
            let limits = TransformLimits::default();
            if let Some(cases) = cases {
                let name = target.name.clone();
                let loaded = crate::transform::WasmTransform::from_bytes(&name, &bytes, limits)
                    .with_context(|| format!("{} is not a usable transform", module.display()))?;
                if let Some(failing) = failing_cases(&loaded, &cases)? {
                    bail!("{failing}\nnothing published");
                }
            }
            let registry = Registry::open(&target.registry).await?;
            let published = registry
                .publish(
                    &target.name,
                    &version,
                    &bytes,
                    limits,
                    description,
                    table.as_deref(),
                )
                .await?;
            let manifest = &published.manifest;
            let table = manifest
                .table
                .as_ref()
                .expect("published versions have a table");
            println!(
                "published {}@{} (sha256 {}), writing table {} ({})",
                manifest.name,
                manifest.version,
                manifest.sha256,
                table.name,
                table.columns_text()
            );
            if let Some(change) = &published.change {
                println!("{change}");
            }
            if activate {
                if let Some(change) = registry.activation_change(&target.name, &version).await?
                    && published.change.is_none()
                {
                    println!("{change}");
                }
                registry.activate(&target.name, &version).await?;
                println!("activated {}@{}", target.name, version);
            }
        }
        TransformCommand::List { target } => {
            let registry = Registry::open(&target.registry).await?;
            let active = registry.active(&target.name).await?.map(|a| a.version);
            for manifest in registry.versions(&target.name).await? {
                let marker = if active.as_deref() == Some(&manifest.version) {
                    "  (active)"
                } else {
                    ""
                };
                println!(
                    "{}  {}  {}{marker}",
                    manifest.version,
                    &manifest.sha256[..12],
                    manifest.published_at
                );
            }
        }
        TransformCommand::Activate { target, version } => {
            let registry = Registry::open(&target.registry).await?;
            if let Some(change) = registry.activation_change(&target.name, &version).await? {
                println!("{change}");
            }
            let active = registry.activate(&target.name, &version).await?;
            println!("activated {}@{}", target.name, active.version);
        }
        TransformCommand::Rollback { target } => {
            let registry = Registry::open(&target.registry).await?;
            let before = match registry.active(&target.name).await? {
                Some(active) => Some(registry.manifest(&target.name, &active.version).await?),
                None => None,
            };
            let active = registry.rollback(&target.name).await?;
            println!("rolled back {} to {}", target.name, active.version);
            let after = registry.manifest(&target.name, &active.version).await?;
            if let Some(change) = crate::registry::table_change(before.as_ref(), &after) {
                println!("{change}");
            }
        }
        TransformCommand::Show { target, version } => {
            let registry = Registry::open(&target.registry).await?;
            let active = registry.active(&target.name).await?;
            let version = match version.or_else(|| active.as_ref().map(|a| a.version.clone())) {
                Some(version) => version,
                None => bail!("{} has no active version: pass --version", target.name),
            };
            let manifest = registry.manifest(&target.name, &version).await?;
            let shown = serde_json::json!({ "manifest": manifest, "active": active });
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A module file, checked as publishing checks it.
fn load_module(path: &Path) -> anyhow::Result<WasmTransform> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.file_stem().unwrap_or_default().to_string_lossy();
    WasmTransform::from_bytes(&name, &bytes, TransformLimits::default())
        .with_context(|| format!("{} is not a usable transform", path.display()))
}

/// The contract cases in `cases` that `transform` fails, as one report; None when all pass.
fn failing_cases(transform: &WasmTransform, cases: &Path) -> anyhow::Result<Option<String>> {
    let mismatches = crate::registry::contract::run_cases(transform, cases)?;
    Ok((!mismatches.is_empty()).then(|| {
        format!(
            "{} of the contract cases in {} fail:\n  {}",
            mismatches.len(),
            cases.display(),
            mismatches.join("\n  ")
        )
    }))
}
