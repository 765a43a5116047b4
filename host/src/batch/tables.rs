//! The table guard: before a process first writes to a table, it reads the table's descriptor
//! (creating it, create-if-absent, when the table is new) and checks that the table holds the
//! transform's columns and the pipeline's format. Once admitted, a table costs no request for
//! the rest of the process's life; a refused one is read again on the next batch, so fixing
//! the configuration needs no restart.

use crate::lake::format::Format;
use crate::lake::table::{CreatedBy, DESCRIPTOR_FORMAT, Descriptor, Table};
use crate::storage::{VersionedError, VersionedStore};
use crate::transform::TransformId;
use std::collections::HashSet;
use std::sync::Mutex;

/// Table descriptors of one lake, and the tables this process has admitted.
#[derive(Debug)]
pub struct Tables {
    descriptors: VersionedStore,
    admitted: Mutex<HashSet<(Table, Format)>>,
}

/// What the guard decided for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// The table holds this layout: write.
    Admitted,
    /// The table holds another layout, or its descriptor is damaged: nothing may be written
    /// into it, and the batch's accepted records go to the failed location with this reason.
    Refused(String),
}

impl Tables {
    /// The descriptors at `location` (`<lake>/_weir/tables`).
    pub async fn open(location: &str) -> Result<Self, VersionedError> {
        Ok(Self::new(VersionedStore::open(location).await?))
    }

    /// The descriptors in `descriptors`.
    pub fn new(descriptors: VersionedStore) -> Self {
        Self {
            descriptors,
            admitted: Mutex::default(),
        }
    }

    /// Whether `transform` may write `table` in `format`. Err only when the descriptor could not
    /// be read or written (the batch is retried, like any storage error).
    pub async fn admit(
        &self,
        table: &Table,
        format: Format,
        transform: &TransformId,
    ) -> Result<Admission, VersionedError> {
        let key = (table.clone(), format);
        if self.admitted().contains(&key) {
            return Ok(Admission::Admitted);
        }
        let name = format!("{}.json", table.name);
        let stored = match self.descriptors.get(&name).await? {
            Some(stored) => stored.bytes,
            None => {
                let descriptor = Descriptor {
                    format: DESCRIPTOR_FORMAT.to_owned(),
                    table: table.name.clone(),
                    columns: table.columns.clone(),
                    object_format: format.name().to_owned(),
                    created_by: CreatedBy {
                        transform: transform.name.clone(),
                        version: transform.version.clone(),
                        sha256: transform.sha256.clone(),
                    },
                    created_at: crate::source::record::now().to_string(),
                };
                let bytes = serde_json::to_vec_pretty(&descriptor).expect("a descriptor encodes");
                match self.descriptors.create(&name, &bytes).await {
                    Ok(_) => {
                        tracing::info!(table = %table.name, columns = %table.columns_text(), format = format.name(), "created a table");
                        bytes
                    }
                    // Another process created it first: check what it wrote.
                    Err(VersionedError::Exists(_)) => match self.descriptors.get(&name).await? {
                        Some(stored) => stored.bytes,
                        None => return Err(VersionedError::Conflict(name)),
                    },
                    Err(error) => return Err(error),
                }
            }
        };
        let refusal = match Descriptor::parse(&stored) {
            Ok(descriptor) => descriptor.conflict(table, format),
            Err(why) => Some(format!(
                "the descriptor of table {} is unusable: {why}",
                table.name
            )),
        };
        Ok(match refusal {
            None => {
                self.admitted().insert(key);
                Admission::Admitted
            }
            Some(why) => {
                tracing::error!(table = %table.name, reason = %why, "refusing to write into a table of another layout; its records go to the failed location");
                Admission::Refused(why)
            }
        })
    }

    fn admitted(&self) -> std::sync::MutexGuard<'_, HashSet<(Table, Format)>> {
        self.admitted.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The descriptors' default location: beside the ledger, in a folder Spark and Hive skip.
pub fn default_location(lake: &str) -> String {
    format!(
        "{}/{}",
        lake.trim_end_matches('/'),
        crate::lake::table::DESCRIPTORS
    )
}
