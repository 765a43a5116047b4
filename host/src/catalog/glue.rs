//! The AWS Glue Data Catalog calls: make sure a table exists as the lake describes it, and
//! create partitions (an existing one is a success).

use crate::catalog::definition::{TableSpec, declared_fields, partition_values};
use aws_sdk_glue::Client;
use aws_sdk_glue::types::PartitionInput;

/// Glue takes at most this many partitions per `BatchCreatePartition`.
const PARTITIONS_PER_CALL: usize = 100;

/// Why a catalog call did not do its job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The catalog could not be reached, throttled, or failed: try again later.
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
    /// The catalog holds a table of that name that does not describe the lake table: nothing is
    /// registered into it until an operator fixes or drops it.
    #[error("catalog table {table} conflicts with the lake: {reason}")]
    Conflict {
        /// The catalog table.
        table: String,
        /// How it differs.
        reason: String,
    },
}

/// One Glue database.
#[derive(Debug, Clone)]
pub struct Glue {
    client: Client,
    database: String,
}

impl Glue {
    /// The database `database`, through the shared SDK configuration.
    pub async fn connect(database: &str) -> Self {
        Self {
            client: crate::aws::glue_client().await,
            database: database.to_owned(),
        }
    }

    /// The database's name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Makes sure the catalog has `spec`'s table: creates it when absent, adds Parquet
    /// metadata fields it lacks, and refuses one that describes another layout.
    pub async fn ensure_table(&self, spec: &TableSpec) -> Result<(), CatalogError> {
        let name = spec.glue_name();
        for _ in 0..2 {
            let found = self
                .client
                .get_table()
                .database_name(&self.database)
                .name(&name)
                .send()
                .await;
            let existing = match found {
                Ok(output) => output.table,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_entity_not_found_exception()) =>
                {
                    None
                }
                Err(e) => return Err(CatalogError::Unavailable(crate::aws::describe(&e))),
            };
            let Some(existing) = existing else {
                let created = self
                    .client
                    .create_table()
                    .database_name(&self.database)
                    .table_input(spec.table_input())
                    .send()
                    .await;
                match created {
                    Ok(_) => {
                        tracing::info!(database = %self.database, table = %name, "catalog table created");
                        return Ok(());
                    }
                    // Another process created it meanwhile: check what it made.
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_already_exists_exception()) =>
                    {
                        continue;
                    }
                    Err(e) => return Err(CatalogError::Unavailable(crate::aws::describe(&e))),
                }
            };
            if let Some(reason) = spec.conflict(&existing) {
                return Err(CatalogError::Conflict {
                    table: name,
                    reason,
                });
            }
            let missing = spec.new_fields(&existing);
            if missing.is_empty() {
                return Ok(());
            }
            // Parquet objects gained metadata fields: widen the struct (never narrow it).
            let mut wider = spec.clone();
            wider.metadata_fields.extend(declared_fields(&existing));
            self.client
                .update_table()
                .database_name(&self.database)
                .table_input(wider.table_input())
                .send()
                .await
                .map_err(|e| CatalogError::Unavailable(crate::aws::describe(&e)))?;
            tracing::info!(database = %self.database, table = %name, fields = ?missing, "catalog table widened");
            return Ok(());
        }
        Err(CatalogError::Unavailable(format!(
            "table {name} was created and dropped while being checked"
        )))
    }

    /// Points the registered partition at `path` (relative to the table) to `location`, keeping
    /// the rest of its definition. False when the partition is not registered.
    pub async fn relocate_partition(
        &self,
        spec: &TableSpec,
        path: &str,
        location: &str,
    ) -> Result<bool, CatalogError> {
        let name = spec.glue_name();
        let Some(values) = partition_values(&spec.table, path) else {
            return Ok(false);
        };
        let found = self
            .client
            .get_partition()
            .database_name(&self.database)
            .table_name(&name)
            .set_partition_values(Some(values.clone()))
            .send()
            .await;
        let partition = match found {
            Ok(output) => output.partition,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_entity_not_found_exception()) =>
            {
                None
            }
            Err(e) => return Err(CatalogError::Unavailable(crate::aws::describe(&e))),
        };
        let Some(partition) = partition else {
            return Ok(false);
        };
        let mut storage = partition
            .storage_descriptor
            .unwrap_or_else(|| aws_sdk_glue::types::StorageDescriptor::builder().build());
        storage.location = Some(location.to_owned());
        let input = PartitionInput::builder()
            .set_values(Some(values.clone()))
            .storage_descriptor(storage)
            .set_parameters(partition.parameters)
            .build();
        self.client
            .update_partition()
            .database_name(&self.database)
            .table_name(&name)
            .set_partition_value_list(Some(values))
            .partition_input(input)
            .send()
            .await
            .map_err(|e| CatalogError::Unavailable(crate::aws::describe(&e)))?;
        Ok(true)
    }

    /// Creates the partitions at `paths` (relative to the table); an existing partition counts
    /// as created. Returns the paths that could not be created, with the first error.
    pub async fn create_partitions(
        &self,
        spec: &TableSpec,
        paths: &[String],
    ) -> Result<usize, (Vec<String>, CatalogError)> {
        let name = spec.glue_name();
        let mut created = 0;
        let mut failed: Vec<String> = Vec::new();
        let mut first_error = None;
        let inputs: Vec<(&String, PartitionInput)> = paths
            .iter()
            .filter_map(|path| Some((path, spec.partition_input(path)?)))
            .collect();
        for chunk in inputs.chunks(PARTITIONS_PER_CALL) {
            let sent = self
                .client
                .batch_create_partition()
                .database_name(&self.database)
                .table_name(&name)
                .set_partition_input_list(Some(chunk.iter().map(|(_, p)| p.clone()).collect()))
                .send()
                .await;
            match sent {
                Ok(output) => {
                    let mut refused = 0;
                    for error in output.errors() {
                        let detail = error.error_detail();
                        let code = detail.and_then(|d| d.error_code()).unwrap_or_default();
                        if code == "AlreadyExistsException" {
                            continue;
                        }
                        refused += 1;
                        let values = error.partition_values();
                        if let Some((path, _)) = chunk.iter().find(|(_, p)| p.values() == values) {
                            failed.push((*path).clone());
                        }
                        first_error.get_or_insert_with(|| {
                            let message =
                                detail.and_then(|d| d.error_message()).unwrap_or_default();
                            CatalogError::Unavailable(format!("{code}: {message}"))
                        });
                    }
                    created += chunk.len() - refused;
                }
                Err(e) => {
                    failed.extend(chunk.iter().map(|(path, _)| (*path).clone()));
                    first_error
                        .get_or_insert_with(|| CatalogError::Unavailable(crate::aws::describe(&e)));
                }
            }
        }
        match first_error {
            None => Ok(created),
            Some(error) => Err((failed, error)),
        }
    }
}
