//! Building the application once, at start-up: the transform, the stores and the handler.

use crate::config::Config;
use crate::handler::Handler;
use crate::pipeline::{Pipeline, PipelineConfig};
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
    Ok(Pipeline {
        lake: open("the lake", lake).await?,
        failed: open("the failed location", failed).await?,
        config,
    })
}

/// The Lambda's handler, built from its configuration.
pub async fn lambda_handler(config: &Config) -> Result<Handler, StartError> {
    let transform = load_transform(&config.transform, config.limits).await?;
    let pipeline = pipeline(&config.lake, &config.failed, config.pipeline).await?;
    Ok(Handler::new(pipeline, Arc::new(transform), true))
}
