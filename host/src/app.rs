//! Building the application once, at start-up: the transform, the stores and the handler.

use crate::batch::handler::Handler;
use crate::batch::ledger::Ledger;
use crate::batch::pipeline::{Pipeline, PipelineConfig};
use crate::batch::tables::Tables;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::registry::active::ActiveTransform;
use crate::storage::{Store, StoreError};
use crate::transform::{LoadError, TransformLimits, WasmTransform};
use std::sync::Arc;

/// Why the application cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The transform module could not be fetched.
    #[error("cannot fetch transform {location}")]
    FetchTransform {
        /// Where it was looked for.
        location: String,
        /// Why it could not be read.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The transform module is not usable.
    #[error("cannot load transform {location}")]
    LoadTransform {
        /// Where it came from.
        location: String,
        /// What is wrong with it.
        #[source]
        source: LoadError,
    },
    /// The registry could not give a verified, loadable version.
    #[error("cannot load transform {spec} from registry {registry}")]
    Registry {
        /// The registry.
        registry: String,
        /// `NAME` or `NAME@VERSION`.
        spec: String,
        /// Why.
        #[source]
        source: crate::registry::RegistryError,
    },
    /// A lake or failed location could not be opened.
    #[error("cannot open {what} {location}")]
    Store {
        /// `the lake` or `the failed location`.
        what: &'static str,
        /// The location.
        location: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The exactly-once ledger's location could not be opened.
    #[error("cannot open the ledger {location}")]
    Ledger {
        /// The location.
        location: String,
        /// Why.
        #[source]
        source: crate::storage::VersionedError,
    },
    /// The catalog is not one Weir can write.
    #[error(transparent)]
    Catalog(crate::catalog::CatalogUriError),
    /// The table descriptors' location could not be opened.
    #[error("cannot open the table descriptors {location}")]
    Tables {
        /// The location.
        location: String,
        /// Why.
        #[source]
        source: crate::storage::VersionedError,
    },
}

/// Fetches and loads a transform from a file path or `s3://bucket/key`; its name is the file
/// stem of the path or key.
pub async fn load_transform(
    location: &str,
    limits: TransformLimits,
) -> Result<WasmTransform, StartError> {
    let fetch_error =
        |source: Box<dyn std::error::Error + Send + Sync>| StartError::FetchTransform {
            location: location.to_owned(),
            source,
        };
    let bytes = match location.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, key) = rest
                .split_once('/')
                .ok_or_else(|| fetch_error("expected s3://bucket/key".into()))?;
            let object = crate::aws::s3_client()
                .await
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| fetch_error(crate::aws::describe(&e).into()))?;
            let body = object
                .body
                .collect()
                .await
                .map_err(|e| fetch_error(Box::new(e)))?;
            body.into_bytes().to_vec()
        }
        None => tokio::fs::read(location)
            .await
            .map_err(|e| fetch_error(Box::new(e)))?,
    };
    let name = std::path::Path::new(location).file_stem().map_or_else(
        || "transform".to_owned(),
        |stem| stem.to_string_lossy().into_owned(),
    );
    // Compiling is CPU work: keep it off the async workers.
    tokio::task::spawn_blocking(move || WasmTransform::from_bytes(&name, &bytes, limits))
        .await
        .expect("loading a transform does not panic")
        .map_err(|source| StartError::LoadTransform {
            location: location.to_owned(),
            source,
        })
}

/// Loads `spec` (`NAME` for its active version, or `NAME@VERSION`) from a registry, verified
/// against its manifest and the active pointer.
pub async fn load_from_registry(
    registry: &str,
    spec: &str,
    limits: TransformLimits,
) -> Result<WasmTransform, StartError> {
    let error = |source| StartError::Registry {
        registry: registry.to_owned(),
        spec: spec.to_owned(),
        source,
    };
    let (name, version) = match spec.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (spec, None),
    };
    let registry_handle = crate::registry::Registry::open(registry)
        .await
        .map_err(error)?;
    registry_handle
        .load(name, version, limits)
        .await
        .map_err(error)
}

/// Loads the transform a configuration names: from its registry when it has one, else from a
/// path or `s3://bucket/key`.
pub async fn transform(
    registry: Option<&str>,
    transform: &str,
    limits: TransformLimits,
) -> Result<WasmTransform, StartError> {
    match registry {
        Some(registry) => load_from_registry(registry, transform, limits).await,
        None => load_transform(transform, limits).await,
    }
}

/// Opens the lake and failed locations.
pub async fn pipeline(
    lake: &str,
    failed: &str,
    config: PipelineConfig,
) -> Result<Pipeline, StartError> {
    let open = async |what, location: &str| {
        Store::open(location)
            .await
            .map(Arc::new)
            .map_err(|source| StartError::Store {
                what,
                location: location.to_owned(),
                source,
            })
    };
    let tables = if lake == "discard:" {
        None
    } else {
        let location = crate::batch::tables::default_location(lake);
        let tables = Tables::open(&location)
            .await
            .map_err(|source| StartError::Tables { location, source })?;
        Some(Arc::new(tables))
    };
    Ok(Pipeline {
        lake: open("the lake", lake).await?,
        failed: open("the failed location", failed).await?,
        config,
        ledger: None,
        catalog: None,
        tables,
    })
}

/// Opens the exactly-once ledger at `location`.
pub async fn ledger(location: &str, parallelization: u32) -> Result<Ledger, StartError> {
    Ledger::open(location, parallelization)
        .await
        .map_err(|source| StartError::Ledger {
            location: location.to_owned(),
            source,
        })
}

/// Opens the catalog `uri` (`glue://DATABASE`) for the lake at `lake`.
pub async fn catalog(uri: &str, lake: &str) -> Result<Catalog, StartError> {
    Catalog::open(uri, lake).await.map_err(StartError::Catalog)
}

/// The Lambda's handler, built from its configuration.
pub async fn lambda_handler(config: &Config) -> Result<Handler, StartError> {
    let transform = active_transform(
        config.registry.as_deref(),
        &config.transform,
        config.limits,
        config.refresh,
    )
    .await?;
    let mut pipeline = pipeline(&config.lake, &config.failed, config.pipeline).await?;
    if let Some(location) = &config.ledger {
        // The mapping redelivers what it was not told is stored, so an answer may go out
        // before the commit: it rides on the shard's next open (one ledger PUT per batch).
        let ledger = ledger(location, config.parallelization).await?;
        pipeline.ledger = Some(Arc::new(ledger.deferring_commits()));
    }
    if let Some(uri) = &config.catalog {
        pipeline.catalog = Some(catalog(uri, &config.lake).await?);
    }
    Ok(Handler::new(pipeline, Arc::new(transform), true))
}

/// The transform a host runs: with a registry and a bare `NAME`, its active version, followed
/// every `refresh`; a pinned `NAME@VERSION` (immutable) or a module path stays as loaded.
pub async fn active_transform(
    registry: Option<&str>,
    spec: &str,
    limits: TransformLimits,
    refresh: std::time::Duration,
) -> Result<ActiveTransform, StartError> {
    let initial = transform(registry, spec, limits).await?;
    let Some(registry) = registry.filter(|_| !spec.contains('@')) else {
        return Ok(ActiveTransform::fixed(initial));
    };
    let handle = crate::registry::Registry::open(registry)
        .await
        .map_err(|source| StartError::Registry {
            registry: registry.to_owned(),
            spec: spec.to_owned(),
            source,
        })?;
    Ok(ActiveTransform::following(
        initial, handle, spec, refresh, limits,
    ))
}
