//! The Lambda function: Kinesis batches in, lake and failed objects out, a partial-batch
//! response back. Configuration comes from the environment (see docs/lambda.md); a bad one fails
//! the init with a message naming the variable.

use lambda_runtime::{LambdaEvent, service_fn};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};
use weir::batch::handler::Handler;
use weir::config::{CompactConfig, Config, Mode};
use weir::lake::compact::CompactOptions;
use weir::lake::compact::scheduled::{ScheduledReport, run_scheduled};
use weir::storage::Store;

/// mimalloc: a batch allocates and frees many small buffers, and glibc's allocator cost ~7%
/// of a Lambda invocation in the benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    weir::logging::init_lambda();
    match Mode::from_env() {
        Ok(Mode::Ingest) => ingest().await,
        Ok(Mode::Compact) => compaction().await,
        Err(error) => {
            tracing::error!(error = %error, "init failed");
            ExitCode::FAILURE
        }
    }
}

/// Kinesis batches in, lake objects out.
async fn ingest() -> ExitCode {
    let handler = match start().await {
        Ok(handler) => handler,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "init failed");
            return ExitCode::FAILURE;
        }
    };
    let handler = &handler;
    let served = lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| async move {
        handler
            .handle_event(event.payload)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await;
    stopped(served)
}

/// Scheduled compaction: any event (the schedule's) starts one pass over the closed
/// partitions, which stops a minute before the invocation's deadline.
async fn compaction() -> ExitCode {
    let job = match CompactionJob::start().await {
        Ok(job) => job,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "init failed");
            return ExitCode::FAILURE;
        }
    };
    let job = &job;
    let served = lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            job.run(&event.context)
                .await
                .map_err(lambda_runtime::Error::from)
        },
    ))
    .await;
    stopped(served)
}

fn stopped(served: Result<(), lambda_runtime::Error>) -> ExitCode {
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "the runtime stopped");
            ExitCode::FAILURE
        }
    }
}

/// The compaction mode's lake, catalog and options, built once per cold start.
struct CompactionJob {
    config: CompactConfig,
    lake: Store,
    catalog: Option<weir::catalog::Catalog>,
}

impl CompactionJob {
    async fn start() -> anyhow::Result<Self> {
        let config = CompactConfig::from_env()?;
        let lake = Store::open(&config.lake).await?;
        let catalog = match &config.catalog {
            Some(uri) => Some(weir::app::catalog(uri, &config.lake).await?),
            None => None,
        };
        tracing::info!(lake = %config.lake, catalog = ?config.catalog, "ready to compact");
        Ok(Self {
            config,
            lake,
            catalog,
        })
    }

    async fn run(&self, context: &lambda_runtime::Context) -> anyhow::Result<ScheduledReport> {
        // Leave a minute for the merge in flight, the catalog and the response.
        let left = Duration::from_millis(context.deadline.saturating_sub(now_millis()));
        let options = CompactOptions {
            older_than: self.config.older_than,
            target_size: self.config.target_size,
            gzip_level: self.config.gzip_level,
            stop_after_deletes: None,
            deadline: Some(Instant::now() + left.saturating_sub(Duration::from_secs(60))),
        };
        let report = run_scheduled(
            &self.lake,
            self.catalog.as_ref(),
            &options,
            SystemTime::now(),
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "compaction of {} stopped: {e}; the next pass finishes it",
                self.config.lake
            )
        })?;
        println!(
            "{}",
            weir::lake::compact::scheduled::emf(&report, &self.config.lake, now_millis() as i64)
        );
        tracing::info!(?report, "compaction pass done");
        Ok(report)
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads the configuration and builds the handler, once per cold start.
async fn start() -> anyhow::Result<Handler> {
    let config = Config::from_env()?;
    let handler = weir::app::lambda_handler(&config).await?;
    let transform = handler.transform().current().await;
    let id = transform.id();
    tracing::info!(transform = %id.name, sha256 = %id.sha256, lake = %config.lake, failed = %config.failed, "ready");
    Ok(handler)
}
