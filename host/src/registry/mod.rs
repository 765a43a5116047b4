//! The transform registry: immutable, verified versions of each transform, and an "active"
//! pointer per name, in a local directory or under `s3://bucket/prefix`. Same layout on both:
//!
//! ```text
//! <registry>/<name>/<version>/transform.wasm   the module
//! <registry>/<name>/<version>/manifest.json    sha256, ABI version, limits, time, description
//! <registry>/<name>/active.json                the active version, and the ones before it
//! ```
//!
//! Versions are written once (create-if-absent); the pointer is replaced only if it is still
//! what the writer read, so two publishers never silently overwrite each other. A module is
//! verified against its manifest's sha256 every time it is fetched.
//!
//! Around the store: [`active`] follows a name's active version in a running host, [`contract`]
//! checks a version against sample cases before it is published, [`diff`] shadow-runs two
//! versions over the same records, [`replay`] runs failed records through a new one, and [`repartition`] moves a table's records
//! into a new version's table.

pub mod active;
pub mod contract;
pub mod diff;
pub mod repartition;
pub mod replay;

mod error;
mod layout;

pub use error::RegistryError;
pub use layout::{Active, Manifest};

use layout::{active_key, artifact_path, check_name, manifest_key, module_key};

use crate::lake::table::{Table, TableError, table_name_from};
use crate::storage::VersionedStore;
use crate::transform::hex;
use crate::transform::{
    ABI_VERSION, LoadError, TransformLimits, WasmTransform, artifact_key, precompile,
    publish_targets,
};
use sha2::{Digest, Sha256};

/// A registry at a URI.
#[derive(Debug, Clone)]
pub struct Registry {
    files: VersionedStore,
}

impl Registry {
    /// Opens a local directory or `s3://bucket[/prefix]`.
    pub async fn open(uri: &str) -> Result<Self, RegistryError> {
        Ok(Self {
            files: VersionedStore::open(uri).await?,
        })
    }

    /// Validates the module (it must load as a transform within `limits` and declare its
    /// partition columns) and publishes it as `name@version`. Refuses to overwrite a published
    /// version.
    ///
    /// Its table is `table` when given, else the table of the version it follows (the active
    /// one, else the newest) when the columns are the same, else that of the newest version
    /// with the same columns, else a new one: `name` for a first version, `name_version`
    /// after. A table never changes columns: naming one whose columns differ is refused.
    pub async fn publish(
        &self,
        name: &str,
        version: &str,
        module: &[u8],
        limits: TransformLimits,
        description: Option<String>,
        table: Option<&str>,
    ) -> Result<Published, RegistryError> {
        check_name("name", name)?;
        check_name("version", version)?;
        let invalid = |source| RegistryError::Invalid {
            name: name.to_owned(),
            version: version.to_owned(),
            source,
        };
        let transform = WasmTransform::from_bytes(name, module, limits).map_err(invalid)?;
        let columns = match transform.table() {
            Some(table) => table.columns.clone(),
            None => return Err(invalid(LoadError::Columns(TableError::NoColumns))),
        };
        // Read once: the predecessor and the table choice both look at every version.
        let mut versions = self.versions(name).await?;
        versions.sort_by(|a, b| a.published_at.cmp(&b.published_at));
        let predecessor = self.predecessor(name, &versions).await?;
        let table = choose_table(
            name,
            version,
            columns,
            table,
            predecessor.as_ref(),
            &versions,
        )?;
        // Compiled ahead of time for every target hosts run on: they skip the compile.
        let artifacts = publish_targets()
            .iter()
            .map(|target| precompile(module, target))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| RegistryError::Invalid {
                name: name.to_owned(),
                version: version.to_owned(),
                source,
            })?;
        let manifest = Manifest {
            name: name.to_owned(),
            version: version.to_owned(),
            sha256: transform.id().sha256.clone(),
            abi_version: ABI_VERSION,
            size: module.len(),
            fuel_per_record: limits.fuel_per_record,
            memory_bytes: limits.memory_bytes,
            published_at: crate::source::record::now().to_string(),
            description,
            artifacts: artifacts
                .iter()
                .map(|a| (a.key.clone(), hex(&Sha256::digest(&a.bytes))))
                .collect(),
            table: Some(table),
        };
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        // The manifest goes last: a version without one is not published.
        self.files
            .create(&module_key(name, version), module)
            .await?;
        for artifact in &artifacts {
            let path = artifact_path(name, version, &artifact.key);
            self.files.create(&path, &artifact.bytes).await?;
        }
        self.files
            .create(&manifest_key(name, version), &json)
            .await?;
        let change = table_change(predecessor.as_ref(), &manifest);
        Ok(Published { manifest, change })
    }

    /// The version a new one follows: the active one, else the newest of `versions` (oldest
    /// first).
    async fn predecessor(
        &self,
        name: &str,
        versions: &[Manifest],
    ) -> Result<Option<Manifest>, RegistryError> {
        match self.active(name).await? {
            Some(active) => Ok(versions
                .iter()
                .find(|m| m.version == active.version)
                .cloned()),
            None => Ok(versions.last().cloned()),
        }
    }

    /// What making `version` active changes about where new records land, if anything.
    pub async fn activation_change(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<String>, RegistryError> {
        let target = self.manifest(name, version).await?;
        let current = match self.active(name).await? {
            Some(active) => Some(self.manifest(name, &active.version).await?),
            None => None,
        };
        Ok(table_change(current.as_ref(), &target))
    }

    /// Every published version of `name`, oldest name first.
    pub async fn versions(&self, name: &str) -> Result<Vec<Manifest>, RegistryError> {
        check_name("name", name)?;
        let mut manifests = Vec::new();
        for version in self.files.list(name).await? {
            if let Ok(manifest) = self.manifest(name, &version).await {
                manifests.push(manifest);
            }
        }
        Ok(manifests)
    }

    /// The manifest of `name@version`.
    pub async fn manifest(&self, name: &str, version: &str) -> Result<Manifest, RegistryError> {
        check_name("name", name)?;
        check_name("version", version)?;
        let key = manifest_key(name, version);
        let file = self
            .files
            .get(&key)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("{name}@{version}")))?;
        parse(&key, &file.bytes)
    }

    /// The active pointer of `name`, if a version was ever activated.
    pub async fn active(&self, name: &str) -> Result<Option<Active>, RegistryError> {
        check_name("name", name)?;
        let key = active_key(name);
        match self.files.get(&key).await? {
            Some(file) => parse(&key, &file.bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Makes `version` the active one; the previous one goes into the history.
    pub async fn activate(&self, name: &str, version: &str) -> Result<Active, RegistryError> {
        let manifest = self.manifest(name, version).await?;
        self.update_active(name, |current| {
            let mut history = current.map(|c| c.history.clone()).unwrap_or_default();
            if let Some(current) = current.filter(|c| c.version != manifest.version) {
                history.push(current.version.clone());
            }
            Ok(Active {
                version: manifest.version.clone(),
                sha256: manifest.sha256.clone(),
                history,
            })
        })
        .await
    }

    /// Makes the previously active version active again.
    pub async fn rollback(&self, name: &str) -> Result<Active, RegistryError> {
        let current = self
            .active(name)
            .await?
            .ok_or_else(|| RegistryError::NoHistory(name.to_owned()))?;
        let previous = current
            .history
            .last()
            .ok_or_else(|| RegistryError::NoHistory(name.to_owned()))?;
        let target = self.manifest(name, previous).await?;
        self.update_active(name, |now| {
            // Someone else moved the pointer since we looked: do not undo their change.
            if now != Some(&current) {
                return Err(RegistryError::Conflict(active_key(name)));
            }
            let mut history = current.history.clone();
            history.pop();
            Ok(Active {
                version: target.version.clone(),
                sha256: target.sha256.clone(),
                history,
            })
        })
        .await
    }

    async fn update_active(
        &self,
        name: &str,
        next: impl FnOnce(Option<&Active>) -> Result<Active, RegistryError>,
    ) -> Result<Active, RegistryError> {
        let key = active_key(name);
        let current = self.files.get(&key).await?;
        let (parsed, tag) = match &current {
            Some(file) => (
                Some(parse::<Active>(&key, &file.bytes)?),
                Some(file.tag.as_str()),
            ),
            None => (None, None),
        };
        let active = next(parsed.as_ref())?;
        let json = serde_json::to_vec_pretty(&active).expect("a pointer serialises");
        self.files.replace(&key, &json, tag).await?;
        Ok(active)
    }

    /// Loads `name@version` (the active version when None), verified: from the artifact
    /// precompiled for this engine when there is one (no compile on the cold-start path), else
    /// from the module, compiled off the async workers.
    pub async fn load(
        &self,
        name: &str,
        version: Option<&str>,
        limits: TransformLimits,
    ) -> Result<WasmTransform, RegistryError> {
        let (manifest, module) = self.fetch(name, version).await?;
        let key = artifact_key();
        let mut artifact = None;
        if let Some(expected) = manifest.artifacts.get(&key) {
            let path = artifact_path(&manifest.name, &manifest.version, &key);
            if let Some(file) = self.files.get(&path).await? {
                let actual = hex(&Sha256::digest(&file.bytes));
                if actual != *expected {
                    return Err(RegistryError::Corrupted {
                        key: path,
                        expected: expected.clone(),
                        actual,
                    });
                }
                artifact = Some(file.bytes);
            }
        }
        let (name, version, sha256) = (
            manifest.name.clone(),
            manifest.version.clone(),
            manifest.sha256.clone(),
        );
        let loaded = tokio::task::spawn_blocking(move || match artifact {
            Some(artifact) => WasmTransform::from_precompiled(&name, &sha256, &artifact, limits),
            None => WasmTransform::from_bytes(&name, &module, limits),
        })
        .await
        .expect("loading a transform does not panic");
        let invalid = |source| RegistryError::Invalid {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            source,
        };
        Ok(loaded
            .map_err(invalid)?
            .with_version(version)
            .with_table(manifest.table.clone()))
    }

    /// The module of `name@version` (the active version when `version` is None), verified
    /// against its manifest (and the pointer's sha256).
    pub async fn fetch(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(Manifest, Vec<u8>), RegistryError> {
        let (version, pinned_sha) = match version {
            Some(version) => (version.to_owned(), None),
            None => {
                let active = self.active(name).await?.ok_or_else(|| {
                    RegistryError::NotFound(format!("{name} (no active version)"))
                })?;
                (active.version, Some(active.sha256))
            }
        };
        let manifest = self.manifest(name, &version).await?;
        let key = module_key(name, &version);
        let module = self
            .files
            .get(&key)
            .await?
            .ok_or_else(|| RegistryError::NotFound(key.clone()))?;
        let actual = hex(&Sha256::digest(&module.bytes));
        for expected in [Some(&manifest.sha256), pinned_sha.as_ref()]
            .into_iter()
            .flatten()
        {
            if actual != *expected {
                return Err(RegistryError::Corrupted {
                    key,
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        Ok((manifest, module.bytes))
    }
}

/// The table a new version writes (see [`Registry::publish`]); `versions` are every published
/// version of `name`, oldest first.
fn choose_table(
    name: &str,
    version: &str,
    columns: Vec<String>,
    requested: Option<&str>,
    predecessor: Option<&Manifest>,
    versions: &[Manifest],
) -> Result<Table, RegistryError> {
    let inherited = predecessor
        .into_iter()
        .chain(versions.iter().rev())
        .filter_map(|m| m.table.as_ref())
        .find(|t| t.columns == columns);
    let table_name = match (requested, inherited, predecessor) {
        (Some(requested), _, _) => requested.to_owned(),
        (None, Some(inherited), _) => inherited.name.clone(),
        (None, None, None) => table_name_from(name),
        (None, None, Some(_)) => table_name_from(&format!("{name}_{version}")),
    };
    let table = Table::new(&table_name, columns).map_err(|source| RegistryError::Table {
        name: name.to_owned(),
        version: version.to_owned(),
        source,
    })?;
    // Any version of this transform that writes the table must agree on its columns.
    for other in versions {
        if let Some(theirs) = other.table.as_ref().filter(|t| t.name == table.name)
            && theirs.columns != table.columns
        {
            return Err(RegistryError::TableLayout {
                table: table.name,
                theirs: theirs.columns.join(", "),
                ours: table.columns.join(", "),
                by: format!("{}@{}", other.name, other.version),
            });
        }
    }
    Ok(table)
}

/// A published version, and what it changes about the lake's tables.
#[derive(Debug, Clone)]
pub struct Published {
    /// Its manifest.
    pub manifest: Manifest,
    /// Set when it writes another table than the version it follows: say so before it is used.
    pub change: Option<String>,
}

/// Says how `to` changes where records land compared to `from`, if it does.
pub fn table_change(from: Option<&Manifest>, to: &Manifest) -> Option<String> {
    let describe = |m: &Manifest| match &m.table {
        Some(t) => format!("table {} ({})", t.name, t.columns.join(", ")),
        None => "the lake root (no declared columns)".to_owned(),
    };
    let from = from?;
    if from.table == to.table {
        return None;
    }
    Some(format!(
        "NEW TABLE: {}@{} writes {}; {}@{} writes {}. New records land in the new table; \
         readers of the old one see no new records (see `weir repartition`).",
        to.name,
        to.version,
        describe(to),
        from.name,
        from.version,
        describe(from)
    ))
}

fn parse<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Malformed {
        key: key.to_owned(),
        message: e.to_string(),
    })
}
