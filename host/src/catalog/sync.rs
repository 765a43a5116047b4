//! Registering a whole lake: every table with a descriptor, and every partition folder that
//! holds a data object. Compaction runs it after each pass, and `weir catalog sync` on demand,
//! so a registration lost with its process (a Lambda shut down while the catalog was down)
//! is made on the next run.

use crate::catalog::Catalog;
use crate::catalog::definition::partition_values;
use crate::catalog::glue::CatalogError;
use crate::lake::format::Format;
use crate::lake::table::{DESCRIPTORS, Descriptor, Table};
use crate::storage::{Store, StoreError};
use std::collections::{BTreeMap, BTreeSet};

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Tables checked (created when absent).
    pub tables: usize,
    /// Partitions registered or found registered.
    pub partitions: usize,
    /// Tables skipped, with why (an unreadable descriptor, a conflicting catalog table).
    pub skipped: Vec<String>,
}

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The lake could not be listed or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The catalog could not be reached.
    #[error(transparent)]
    Catalog(CatalogError),
}

/// Registers every table of `lake` and its partitions in `catalog`.
pub async fn sync(catalog: &Catalog, lake: &Store) -> Result<SyncReport, SyncError> {
    let (tables, skipped) = lake_tables(lake).await?;
    let mut report = SyncReport {
        skipped,
        ..SyncReport::default()
    };
    for (table, format) in tables {
        let prefix = format!("{}/", table.name);
        let mut paths: BTreeMap<String, String> = BTreeMap::new();
        for key in lake.list(&prefix).await? {
            let Some((dir, _)) = key.rsplit_once('/') else {
                continue;
            };
            let Some(path) = dir.strip_prefix(&prefix) else {
                continue;
            };
            if Format::of_key(&key).is_some() && partition_values(&table, path).is_some() {
                paths.entry(path.to_owned()).or_insert(key);
            }
        }
        let fields = match format {
            Format::Parquet => match paths.values().next() {
                Some(key) => parquet_fields(lake, key).await?,
                None => BTreeSet::new(),
            },
            Format::Json | Format::JsonZstd => BTreeSet::new(),
        };
        let paths: Vec<String> = paths.into_keys().collect();
        match catalog.sync(&table, format, &paths, fields).await {
            Ok(registered) => {
                report.tables += 1;
                report.partitions += registered;
            }
            Err(CatalogError::Conflict { table, reason }) => {
                report
                    .skipped
                    .push(format!("catalog table {table}: {reason}"));
            }
            Err(error) => return Err(SyncError::Catalog(error)),
        }
    }
    Ok(report)
}

/// The tables `lake`'s descriptors describe, and the descriptors that could not be read, with
/// why.
pub async fn lake_tables(lake: &Store) -> Result<(Vec<(Table, Format)>, Vec<String>), StoreError> {
    let (mut tables, mut skipped) = (Vec::new(), Vec::new());
    for key in lake.list(&format!("{DESCRIPTORS}/")).await? {
        if !key.ends_with(".json") {
            continue;
        }
        let described = Descriptor::parse(&lake.get(&key).await?).and_then(|d| {
            let format = Format::parse(&d.object_format)
                .ok_or_else(|| format!("unknown object format {:?}", d.object_format))?;
            let table = Table::new(&d.table, d.columns).map_err(|e| e.to_string())?;
            Ok((table, format))
        });
        match described {
            Ok(table) => tables.push(table),
            Err(reason) => skipped.push(format!("{key}: {reason}")),
        }
    }
    Ok((tables, skipped))
}

/// The metadata fields of one Parquet object (a table created by a sync declares them).
async fn parquet_fields(lake: &Store, key: &str) -> Result<BTreeSet<String>, StoreError> {
    let body = lake.get(key).await?;
    let rows = crate::lake::parquet_file::read(body.into()).unwrap_or_default();
    Ok(rows
        .into_iter()
        .filter_map(|row| row.metadata)
        .flatten()
        .map(|(name, _)| name)
        .collect())
}
