//! The AWS SDK configuration every client shares, loaded once per process.
//!
//! Region, credentials and endpoints come from the standard chain: `AWS_REGION`, the default
//! credential providers, and `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` /
//! `AWS_ENDPOINT_URL_KINESIS` for a custom endpoint (a local stand-in, a VPC endpoint). With a
//! custom S3 endpoint, buckets are addressed by path, which stand-ins and IP endpoints need.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

/// Attempts per request, first try included, before an S3 or Kinesis call counts as failed,
/// unless `AWS_MAX_ATTEMPTS` says otherwise. Throttling and 5xx are retried with exponential
/// backoff and jitter in between.
pub const MAX_ATTEMPTS: u32 = 8;

/// The shared SDK configuration.
pub async fn sdk_config() -> &'static SdkConfig {
    static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();
    CONFIG
        .get_or_init(|| async {
            let loader = aws_config::defaults(BehaviorVersion::latest());
            // The standard variable (read by the default chain) wins over our default.
            let loader = match std::env::var_os("AWS_MAX_ATTEMPTS") {
                Some(_) => loader,
                None => {
                    loader.retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
                }
            };
            loader.load().await
        })
        .await
}

/// An S3 client; path-style addressing when a custom endpoint is configured.
pub async fn s3_client() -> aws_sdk_s3::Client {
    let config = sdk_config().await;
    let custom_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()));
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

/// A Glue Data Catalog client. Catalog calls are off the hot path and retried by the
/// registrar, so they give up sooner than S3's: 3 attempts of at most 10 s each.
pub async fn glue_client() -> aws_sdk_glue::Client {
    let glue = aws_sdk_glue::config::Builder::from(sdk_config().await)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(std::time::Duration::from_secs(10))
                .build(),
        )
        .build();
    aws_sdk_glue::Client::from_conf(glue)
}

/// A Kinesis client.
pub async fn kinesis_client() -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(sdk_config().await)
}

/// A one-line description of an SDK error: the service's code and message, or the chain of
/// causes for a transport failure (timeouts, refused or dropped connections). The SDK's own
/// `Display` says only "service error" or "dispatch failure".
pub fn describe<E, R>(error: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::ProvideErrorMetadata as _;
    if let Some(code) = error.code() {
        return match error.message() {
            Some(message) => format!("{code}: {message}"),
            None => code.to_owned(),
        };
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
