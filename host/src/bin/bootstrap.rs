//! The Lambda function: Kinesis batches in, lake and failed objects out, a partial-batch
//! response back. Configuration comes from the environment (see docs/lambda.md); a bad one fails
//! the init with a message naming the variable.

use lambda_runtime::{LambdaEvent, service_fn};
use std::process::ExitCode;
use weir::batch::handler::Handler;
use weir::config::Config;

/// mimalloc: a batch allocates and frees many small buffers, and glibc's allocator cost ~7%
/// of a Lambda invocation in the benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    weir::logging::init_lambda();
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
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "the runtime stopped");
            ExitCode::FAILURE
        }
    }
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
