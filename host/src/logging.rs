//! Log set-up for the binaries: tracing to stderr for the CLI, and for the Lambda plain or
//! JSON lines (`AWS_LAMBDA_LOG_FORMAT=JSON`) at `AWS_LAMBDA_LOG_LEVEL` (default INFO).

use tracing_subscriber::EnvFilter;

/// The CLI: human-readable lines on stderr, filtered by `WEIR_LOG` (default `warn`).
pub fn init_cli() {
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// The Lambda: one line per event, JSON when the function's log format is JSON.
pub fn init_lambda() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").unwrap_or_else(|_| "INFO".into());
    let filter = EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| EnvFilter::new(level.to_lowercase()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time();
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().with_current_span(true).init();
    } else {
        builder.with_ansi(false).init();
    }
}
