//! Compaction under a catalog: catalog readers (Athena, Spark through Glue) never see a
//! record twice, and path readers never miss one.
//!
//! A catalog reader reads the files of a partition's registered location; a path reader the
//! partition's folder. Moving a partition's location is the only atomic switch there is, so a
//! registered partition is compacted through a staging folder, `<lake>/_weir/compaction/<path>/`
//! (hidden from path readers):
//!
//! ```text
//! 1. per chunk: manifest (output, sources, staged) -> merged object written to the staging
//!    folder -> read back and checked; the partition's unmerged objects copied there too
//! 2. the catalog partition moved to the staging folder      catalog: merged, once
//! 3. per chunk: merged object copied into the partition,   path: merged and sources (the
//!    then its sources deleted                               window of plain compaction)
//! 4. the catalog partition moved back to its folder         catalog: merged, once
//! 5. the staging folder and the manifests deleted
//! ```
//!
//! An interrupted pass is finished by the next: if any merged object is in the partition, or
//! any source gone, it was in step 3 or 4, and goes on from there (the catalog still points at
//! a staging folder that holds every record); otherwise nothing changed in the partition, so
//! the catalog is pointed back and the staging folder dropped, and the partition is planned
//! afresh. A catalog that cannot be reached in step 2 leaves the partition as it was, for the
//! next pass.

use super::{CompactError, Manifest, Run, output_key};
use crate::catalog::Catalog;
use crate::lake::format::Format;
use crate::lake::table::Table;
use crate::storage::{Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};

/// The folder under the lake that stages merged objects while the catalog points at them.
pub const STAGING: &str = "_weir/compaction";

/// The catalog a compaction keeps right, with the lake's tables.
#[derive(Debug)]
pub struct CatalogTables<'a> {
    catalog: &'a Catalog,
    tables: BTreeMap<String, (Table, Format)>,
}

impl<'a> CatalogTables<'a> {
    /// `catalog`, with the tables `lake`'s descriptors describe.
    pub async fn load(catalog: &'a Catalog, lake: &Store) -> Result<Self, StoreError> {
        let (tables, _) = crate::catalog::sync::lake_tables(lake).await?;
        let tables = tables
            .into_iter()
            .map(|(table, format)| (table.name.clone(), (table, format)))
            .collect();
        Ok(Self { catalog, tables })
    }

    /// The table a partition folder (`<table>/<path>`) belongs to, and its path in it.
    fn table_of<'p>(&self, dir: &'p str) -> Option<(&Table, Format, &'p str)> {
        let (name, path) = dir.split_once('/')?;
        let (table, format) = self.tables.get(name)?;
        Some((table, *format, path))
    }
}

/// One registered partition being compacted.
struct Registered<'c> {
    catalog: &'c Catalog,
    table: &'c Table,
    format: Format,
    path: &'c str,
    staging: String,
}

impl Registered<'_> {
    async fn point_at_staging(&self) -> Result<bool, CompactError> {
        self.catalog
            .relocate(self.table, self.format, self.path, Some(&self.staging))
            .await
            .map_err(|e| CompactError::Catalog(e.to_string()))
    }

    async fn point_back(&self) -> Result<bool, CompactError> {
        self.catalog
            .relocate(self.table, self.format, self.path, None)
            .await
            .map_err(|e| CompactError::Catalog(e.to_string()))
    }
}

impl Run<'_> {
    /// Compacts a partition of a catalog table through its staging folder (see the module
    /// docs). Returns false when the partition belongs to no catalog table (plain compaction
    /// applies).
    pub(super) async fn compact_registered(
        &mut self,
        partition: &super::Partition,
        staged: Vec<(String, Manifest)>,
    ) -> Result<bool, CompactError> {
        let Some(tables) = self.catalog else {
            return Ok(false);
        };
        let Some((table, format, path)) = tables.table_of(&partition.path) else {
            return Ok(false);
        };
        let registered = Registered {
            catalog: tables.catalog,
            table,
            format,
            path,
            staging: format!("{STAGING}/{}", partition.path),
        };
        let present: BTreeSet<String> = partition.objects.iter().map(|(k, _)| k.clone()).collect();
        if !staged.is_empty() {
            let copying = staged.iter().any(|(_, m)| {
                present.contains(&m.output) || m.sources.iter().any(|s| !present.contains(s))
            });
            if copying {
                // Steps 3-5 were under way: the catalog points at the staging folder.
                self.report.resumed += staged.len();
                self.publish(&registered, &staged, &present).await?;
                return Ok(true);
            }
            // Steps 1-2: the partition is as it was. Undo, then plan afresh.
            registered.point_back().await?;
            self.drop_staging(&registered.staging, &staged).await?;
        }
        if self.past_deadline() {
            self.report.unfinished = true;
            return Ok(true);
        }
        let objects: Vec<(String, u64)> = partition
            .objects
            .iter()
            .filter(|(key, _)| present.contains(key))
            .cloned()
            .collect();
        let mut manifests = Vec::new();
        for chunk_format in Format::ALL {
            for sources in super::chunks(&objects, chunk_format, self.options.target_size) {
                let output = output_key(&partition.path, &sources, chunk_format);
                let name = output.rsplit_once('/').map_or(output.as_str(), |(_, n)| n);
                let manifest = Manifest {
                    staged: Some(format!("{}/{name}", registered.staging)),
                    output,
                    sources,
                };
                let key = self
                    .start_merge(&partition.path, &manifest, chunk_format)
                    .await?;
                manifests.push((key, manifest));
            }
        }
        if manifests.is_empty() {
            return Ok(true);
        }
        // The staging folder must hold the whole partition: copy what is not merged.
        let merged: BTreeSet<&String> = manifests.iter().flat_map(|(_, m)| &m.sources).collect();
        for (key, _) in objects.iter().filter(|(key, _)| !merged.contains(key)) {
            let name = key.rsplit_once('/').map_or(key.as_str(), |(_, n)| n);
            let copy = format!("{}/{name}", registered.staging);
            self.lake.copy(key, &copy).await?;
        }
        match registered.point_at_staging().await {
            Ok(_) => {}
            Err(error) => {
                // Nothing has changed for any reader: leave the partition for the next pass.
                tracing::warn!(partition = %partition.path, error = %error, "catalog unavailable; partition left for the next pass");
                self.report.catalog_skipped += 1;
                self.drop_staging(&registered.staging, &manifests).await?;
                return Ok(true);
            }
        }
        self.publish(&registered, &manifests, &present).await?;
        Ok(true)
    }

    /// Steps 3-5: merged objects into the partition, sources deleted, the catalog pointed
    /// back, staging and manifests removed.
    async fn publish(
        &mut self,
        registered: &Registered<'_>,
        manifests: &[(String, Manifest)],
        present: &BTreeSet<String>,
    ) -> Result<(), CompactError> {
        for (key, manifest) in manifests {
            if !present.contains(&manifest.output) {
                let staged = manifest
                    .staged
                    .as_ref()
                    .ok_or_else(|| CompactError::Manifest {
                        manifest: key.clone(),
                        reason: "a catalog compaction's manifest names no staged object".into(),
                    })?;
                self.lake.copy(staged, &manifest.output).await?;
            }
            let remaining: Vec<String> = manifest
                .sources
                .iter()
                .filter(|s| present.contains(*s))
                .cloned()
                .collect();
            self.delete_sources(&remaining).await?;
        }
        registered.point_back().await?;
        self.drop_staging(&registered.staging, manifests).await
    }

    /// Deletes everything in the staging folder, then the manifests.
    async fn drop_staging(
        &self,
        staging: &str,
        manifests: &[(String, Manifest)],
    ) -> Result<(), CompactError> {
        for key in self.lake.list(&format!("{staging}/")).await? {
            self.lake.delete(&key).await?;
        }
        for (key, _) in manifests {
            self.lake.delete(key).await?;
        }
        Ok(())
    }
}
