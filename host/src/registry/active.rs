//! The transform a host runs: a fixed module, or the active version of a registry name,
//! re-read on a TTL and switched between batches.
//!
//! A version that fails to fetch, verify or load is never used: the last good version keeps
//! running, the failure is logged and counted (the `TransformLoadFailures` metric), and that
//! version is not retried until the pointer moves again. A switch costs at most one compile, paid
//! by the batch that finds the pointer moved.

use crate::registry::Registry;
use crate::transform::{TransformLimits, WasmTransform};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The transform to run now.
#[derive(Debug)]
pub struct ActiveTransform {
    state: Mutex<State>,
    follow: Option<Follow>,
    load_failures: AtomicU64,
}

#[derive(Debug)]
struct State {
    current: Arc<WasmTransform>,
    checked: Instant,
    /// The sha256 of a version that failed to load, so it is not fetched again and again.
    refused: Option<String>,
}

#[derive(Debug)]
struct Follow {
    registry: Registry,
    name: String,
    refresh: Duration,
    limits: TransformLimits,
}

impl ActiveTransform {
    /// Always this module.
    pub fn fixed(transform: WasmTransform) -> Self {
        Self::new(transform, None)
    }

    /// `initial` now, then whatever `registry` says is active for `name`, checked every `refresh`.
    pub fn following(
        initial: WasmTransform,
        registry: Registry,
        name: &str,
        refresh: Duration,
        limits: TransformLimits,
    ) -> Self {
        Self::new(
            initial,
            Some(Follow {
                registry,
                name: name.to_owned(),
                refresh,
                limits,
            }),
        )
    }

    fn new(transform: WasmTransform, follow: Option<Follow>) -> Self {
        let state = State {
            current: Arc::new(transform),
            checked: Instant::now(),
            refused: None,
        };
        Self {
            state: Mutex::new(state),
            follow,
            load_failures: AtomicU64::new(0),
        }
    }

    /// The transform for the next batch, after a registry check if one is due.
    pub async fn current(&self) -> Arc<WasmTransform> {
        let mut state = self.state.lock().await;
        if let Some(follow) = &self.follow
            && state.checked.elapsed() >= follow.refresh
        {
            state.checked = Instant::now();
            self.refresh(follow, &mut state).await;
        }
        Arc::clone(&state.current)
    }

    /// Versions refused since the last call (for the per-batch metric).
    pub fn take_load_failures(&self) -> u64 {
        self.load_failures.swap(0, Ordering::Relaxed)
    }

    async fn refresh(&self, follow: &Follow, state: &mut State) {
        let active = match follow.registry.active(&follow.name).await {
            Ok(Some(active)) => active,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(name = %follow.name, error = %error, "cannot read the active version; keeping the current one");
                return;
            }
        };
        if active.sha256 == state.current.id().sha256
            || state.refused.as_deref() == Some(active.sha256.as_str())
        {
            return;
        }
        match load(follow, &active.version, &active.sha256).await {
            Ok(transform) => {
                tracing::info!(name = %follow.name, version = %active.version, sha256 = %active.sha256, "switched transform version");
                state.current = Arc::new(transform);
                state.refused = None;
            }
            Err(error) => {
                self.load_failures.fetch_add(1, Ordering::Relaxed);
                let running = state
                    .current
                    .id()
                    .version
                    .as_deref()
                    .unwrap_or("?")
                    .to_owned();
                tracing::error!(name = %follow.name, version = %active.version, running = %running, error = format!("{error:#}"), "refusing the active version; the last good one keeps running");
                state.refused = Some(active.sha256);
            }
        }
    }
}

/// Fetches `version` (verified against its manifest) and checks it is what the pointer named.
async fn load(follow: &Follow, version: &str, sha256: &str) -> anyhow::Result<WasmTransform> {
    let transform = follow
        .registry
        .load(&follow.name, Some(version), follow.limits)
        .await?;
    anyhow::ensure!(
        transform.id().sha256 == sha256,
        "{}@{version} has sha256 {}, the active pointer says {sha256}",
        follow.name,
        transform.id().sha256
    );
    Ok(transform)
}
