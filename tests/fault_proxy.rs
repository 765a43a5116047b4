//! An HTTP proxy that breaks requests on purpose, for the end-to-end failure tests.
//!
//! It sits between the AWS SDK clients and the local AWS stand-in (moto): the clients use
//! `AWS_ENDPOINT_URL=<proxy endpoint>` with path-style S3 addressing, so every call is a plain
//! HTTP/1.1 request with an absolute path. The proxy reads each request whole, then decides:
//! - a Glue call (an `x-amz-target` of `AWSGlue.*`) while [`FaultProxy::throttle_glue`] has
//!   throttles left -> `400 ThrottlingException`, not forwarded;
//! - a Kinesis call (`POST /` with an `x-amz-target` header) -> always forwarded: the faults
//!   are about the lake's storage, and the test's own Kinesis traffic must not be broken;
//! - the request's bucket was made unavailable -> `503 SlowDown`, not forwarded;
//! - with probability `reset` -> the connection is dropped with no response;
//! - an S3 object write (`PUT /bucket/key...`), with probability `slow_down` -> `503 SlowDown`;
//! - an S3 object write, with probability `stored_then_error` -> forwarded (so it is stored),
//!   then answered `500 InternalError`, as S3 sometimes answers a write that did land;
//! - otherwise it is forwarded unchanged (method, path and query, headers including `Host` and
//!   the SigV4 `Authorization`, body) and the upstream's response is streamed back.
//!
//! The dice are a SplitMix64 generator seeded from the policy, so a run is reproducible as long
//! as requests arrive in the same order.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderName};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The body S3 sends with `503 SlowDown`.
const SLOW_DOWN_XML: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>",
    "<RequestId>weir-fault</RequestId></Error>"
);

/// The body S3 sends with `500 InternalError`.
const INTERNAL_ERROR_XML: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message>",
    "<RequestId>weir-fault</RequestId></Error>"
);

/// Names the operation of an AWS JSON-protocol call; only Kinesis calls carry it here.
const AMZ_TARGET: &str = "x-amz-target";

/// Headers that describe one hop's connection, not the request; the proxy's own connections
/// set their own. `expect` is here too: the proxy already read the body, so the upstream must
/// not be asked to wait for a `100 Continue`.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// What to break.
#[derive(Debug, Clone)]
pub struct FaultPolicy {
    /// The probability that an S3 object write (`PUT /bucket/key...`) gets `503 SlowDown`.
    pub slow_down: f64,
    /// The probability that an S3 request's connection is dropped without a response.
    pub reset: f64,
    /// The probability that an S3 object write is stored but answered `500 InternalError`.
    pub stored_then_error: f64,
    /// Seeds the dice, so a failing run can be replayed.
    pub seed: u64,
}

/// What the proxy has done so far; every request it read whole counts in exactly one field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Requests passed on to the upstream.
    pub forwarded: u64,
    /// Requests answered `503 SlowDown` by the proxy (by chance or an unavailable bucket).
    pub slowed_down: u64,
    /// Connections dropped instead of answering.
    pub reset: u64,
    /// Writes stored but answered `500 InternalError` (also counted in `forwarded`).
    pub stored_then_error: u64,
    /// Requests for the exactly-once ledger's documents (a `/_weir/ledger/` path), whatever
    /// their fate.
    pub ledger: u64,
    /// Glue calls answered `400 ThrottlingException`.
    pub glue_throttled: u64,
}

/// A fault-injecting proxy on 127.0.0.1 in front of one upstream; dropping it stops the proxy
/// and closes every connection to it.
pub struct FaultProxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    upstream: SocketAddr,
    policy: FaultPolicy,
    client: Client<HttpConnector, Full<Bytes>>,
    dice: Mutex<SplitMix64>,
    unavailable: Mutex<HashSet<String>>,
    forwarded: AtomicU64,
    slowed_down: AtomicU64,
    reset: AtomicU64,
    stored_then_error: AtomicU64,
    ledger: AtomicU64,
    glue_throttles: AtomicU64,
    glue_throttled: AtomicU64,
    log: Mutex<Vec<String>>,
}

/// The service's error: makes hyper drop the connection without writing a response.
#[derive(Debug)]
struct DropConnection(&'static str);

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DropConnection {}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

impl FaultProxy {
    /// Starts the proxy on 127.0.0.1 on a free port, forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr, policy: FaultPolicy) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fault proxy to 127.0.0.1")?;
        let address = listener
            .local_addr()
            .context("reading the fault proxy's port")?;
        let shared = Arc::new(Shared {
            upstream,
            dice: Mutex::new(SplitMix64(policy.seed)),
            policy,
            client: Client::builder(TokioExecutor::new()).build_http(),
            unavailable: Mutex::new(HashSet::new()),
            forwarded: AtomicU64::new(0),
            slowed_down: AtomicU64::new(0),
            reset: AtomicU64::new(0),
            stored_then_error: AtomicU64::new(0),
            ledger: AtomicU64::new(0),
            glue_throttles: AtomicU64::new(0),
            glue_throttled: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let server = tokio::spawn(crate::http_server::serve(listener, {
            let shared = shared.clone();
            move |request| handle(shared.clone(), request)
        }));
        Ok(FaultProxy {
            address,
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Makes every request to `bucket` (its first path segment) get `503 SlowDown` while
    /// `unavailable` is true, whatever the policy says.
    pub fn set_unavailable(&self, bucket: &str, unavailable: bool) {
        let mut buckets = lock(&self.shared.unavailable);
        if unavailable {
            buckets.insert(bucket.to_owned());
        } else {
            buckets.remove(bucket);
        }
    }

    /// Every S3 request read so far, in order of arrival: `METHOD /bucket/key`.
    pub fn log(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }

    /// Counters: requests forwarded, slow-downs answered, connections reset.
    pub fn stats(&self) -> FaultStats {
        FaultStats {
            forwarded: self.shared.forwarded.load(Ordering::Relaxed),
            slowed_down: self.shared.slowed_down.load(Ordering::Relaxed),
            reset: self.shared.reset.load(Ordering::Relaxed),
            stored_then_error: self.shared.stored_then_error.load(Ordering::Relaxed),
            ledger: self.shared.ledger.load(Ordering::Relaxed),
            glue_throttled: self.shared.glue_throttled.load(Ordering::Relaxed),
        }
    }

    /// Answers the next `calls` Glue calls `400 ThrottlingException`, as Glue does past its
    /// request rate.
    pub fn throttle_glue(&self, calls: u64) {
        self.shared.glue_throttles.store(calls, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection too.
        self.server.abort();
    }
}

/// What the proxy does with one request.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Forward,
    SlowDown,
    Reset,
    StoreThenError,
}

impl Shared {
    /// Rolls the dice for one request. Both dice are rolled for every S3 request, so one
    /// request's kind does not shift the faults that later requests get, and Kinesis calls
    /// roll none, so how often the test polls Kinesis does not shift them either.
    fn fate(&self, method: &Method, path: &str, headers: &HeaderMap) -> Fate {
        if headers.contains_key(AMZ_TARGET) {
            return Fate::Forward;
        }
        let (reset_roll, slow_roll, error_roll) = {
            let mut dice = lock(&self.dice);
            (dice.next_f64(), dice.next_f64(), dice.next_f64())
        };
        let bucket = path.split('/').find(|segment| !segment.is_empty());
        if bucket.is_some_and(|bucket| lock(&self.unavailable).contains(bucket)) {
            Fate::SlowDown
        } else if reset_roll < self.policy.reset {
            Fate::Reset
        } else if is_object_write(method, path) && slow_roll < self.policy.slow_down {
            Fate::SlowDown
        } else if is_object_write(method, path) && error_roll < self.policy.stored_then_error {
            Fate::StoreThenError
        } else {
            Fate::Forward
        }
    }
}

/// A `PUT` to a path of two or more non-empty segments: `/bucket/key...` (put, upload part,
/// copy), as opposed to bucket-level calls such as `PUT /bucket`.
fn is_object_write(method: &Method, path: &str) -> bool {
    method == Method::PUT
        && path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .count()
            >= 2
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, DropConnection> {
    let (mut parts, body) = request.into_parts();
    // Read the whole request first, as a real server would before failing mid-exchange.
    let body = body
        .collect()
        .await
        .map_err(|_| DropConnection("the client's request body broke off"))?
        .to_bytes();

    if parts.uri.path().contains("/_weir/ledger/") {
        shared.ledger.fetch_add(1, Ordering::Relaxed);
    }
    let is_glue = parts
        .headers
        .get(AMZ_TARGET)
        .is_some_and(|t| t.as_bytes().starts_with(b"AWSGlue."));
    let throttle = is_glue
        && shared
            .glue_throttles
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
    if throttle {
        shared.glue_throttled.fetch_add(1, Ordering::Relaxed);
        let mut response = local(
            StatusCode::BAD_REQUEST,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_owned(),
        );
        response
            .headers_mut()
            .insert("x-amzn-errortype", "ThrottlingException".parse().unwrap());
        response
            .headers_mut()
            .insert(CONTENT_TYPE, "application/x-amz-json-1.1".parse().unwrap());
        return Ok(response);
    }
    if !parts.headers.contains_key(AMZ_TARGET) {
        lock(&shared.log).push(format!("{} {}", parts.method, parts.uri.path()));
    }
    let fate = shared.fate(&parts.method, parts.uri.path(), &parts.headers);
    match fate {
        Fate::Reset => {
            shared.reset.fetch_add(1, Ordering::Relaxed);
            return Err(DropConnection("fault injected: connection reset"));
        }
        Fate::SlowDown => {
            shared.slowed_down.fetch_add(1, Ordering::Relaxed);
            return Ok(slow_down());
        }
        Fate::Forward | Fate::StoreThenError => {}
    }

    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = match format!("http://{}{path_and_query}", shared.upstream).parse::<Uri>() {
        Ok(uri) => uri,
        Err(error) => return Ok(local(StatusCode::BAD_REQUEST, format!("bad path: {error}"))),
    };
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);

    shared.forwarded.fetch_add(1, Ordering::Relaxed);
    match shared
        .client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
    {
        Ok(response) if fate == Fate::StoreThenError && response.status().is_success() => {
            shared.stored_then_error.fetch_add(1, Ordering::Relaxed);
            Ok(local(
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL_ERROR_XML.to_owned(),
            ))
        }
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, body.boxed()))
        }
        Err(error) => Ok(local(
            StatusCode::BAD_GATEWAY,
            format!(
                "the fault proxy could not reach {}: {error}",
                shared.upstream
            ),
        )),
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(HeaderName::from_static(name));
    }
}

fn slow_down() -> Response<ProxyBody> {
    let mut response = local(StatusCode::SERVICE_UNAVAILABLE, SLOW_DOWN_XML.to_owned());
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    response
}

/// A response made by the proxy itself.
fn local(status: StatusCode, body: String) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves a plain value behind, still usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// SplitMix64: tiny, seedable and good enough for fault dice.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^ (x >> 31)
    }

    /// Uniform in [0, 1): the top 53 bits as a fraction.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use std::convert::Infallible;
    use std::time::Duration;

    /// An upstream that answers `METHOD PATH?QUERY` plus what it received, and counts requests.
    struct Upstream {
        address: SocketAddr,
        requests: Arc<AtomicU64>,
        _server: JoinHandle<()>,
    }

    impl Upstream {
        async fn start() -> Upstream {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let requests = Arc::new(AtomicU64::new(0));
            let counter = requests.clone();
            let server = tokio::spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let counter = counter.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| echo(counter.clone(), request));
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            Upstream {
                address,
                requests,
                _server: server,
            }
        }

        fn requests(&self) -> u64 {
            self.requests.load(Ordering::Relaxed)
        }
    }

    async fn echo(
        counter: Arc<AtomicU64>,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        counter.fetch_add(1, Ordering::Relaxed);
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .map_or("-", |value| value.to_str().unwrap())
                .to_owned()
        };
        let head = format!(
            "{} {} host={} auth={} target={}",
            request.method(),
            request.uri(),
            header("host"),
            header("authorization"),
            header("x-amz-target"),
        );
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let text = format!("{head} body={}", String::from_utf8_lossy(&body));
        let mut response = Response::new(Full::new(Bytes::from(text)));
        response
            .headers_mut()
            .insert("x-upstream", "echo".parse().unwrap());
        Ok(response)
    }

    struct Reply {
        status: StatusCode,
        content_type: Option<String>,
        upstream_header: bool,
        body: String,
    }

    fn client() -> Client<HttpConnector, Full<Bytes>> {
        Client::builder(TokioExecutor::new()).build_http()
    }

    fn request(method: Method, proxy: &FaultProxy, path: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("{}{path}", proxy.endpoint()))
    }

    async fn send(
        client: &Client<HttpConnector, Full<Bytes>>,
        request: Request<Full<Bytes>>,
    ) -> Result<Reply, hyper_util::client::legacy::Error> {
        // Bounded, so a test whose proxy misbehaves fails instead of hanging.
        let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
            .await
            .expect("the proxy answers or hangs up within 10s")?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Ok(Reply {
            status: parts.status,
            content_type: parts
                .headers
                .get(CONTENT_TYPE)
                .map(|value| value.to_str().unwrap().to_owned()),
            upstream_header: parts.headers.contains_key("x-upstream"),
            body: String::from_utf8(body.to_vec()).unwrap(),
        })
    }

    async fn call(proxy: &FaultProxy, method: Method, path: &str) -> Reply {
        let request = request(method, proxy, path)
            .body(Full::new(Bytes::from_static(b"data")))
            .unwrap();
        send(&client(), request).await.unwrap()
    }

    fn policy(slow_down: f64, reset: f64) -> FaultPolicy {
        FaultPolicy {
            slow_down,
            reset,
            stored_then_error: 0.0,
            seed: 7,
        }
    }

    #[tokio::test]
    async fn slows_down_object_writes_without_forwarding_them() {
        let upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.address, policy(1.0, 0.0))
            .await
            .unwrap();

        let reply = call(&proxy, Method::PUT, "/lake/year=2024/part-0.ndjson.gz").await;

        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.content_type.as_deref(), Some("application/xml"));
        assert_eq!(reply.body, SLOW_DOWN_XML);
        assert!(reply.body.contains("<Code>SlowDown</Code>"));
        assert_eq!(upstream.requests(), 0);
        let stats = FaultStats {
            forwarded: 0,
            slowed_down: 1,
            reset: 0,
            ..FaultStats::default()
        };
        assert_eq!(proxy.stats(), stats);
    }

    #[tokio::test]
    async fn stores_a_write_then_answers_500_and_counts_ledger_requests() {
        let upstream = Upstream::start().await;
        let policy = FaultPolicy {
            stored_then_error: 1.0,
            ..policy(0.0, 0.0)
        };
        let proxy = FaultProxy::start(upstream.address, policy).await.unwrap();

        let reply = call(&proxy, Method::PUT, "/lake/_weir/ledger/shardId-0.json").await;

        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(reply.body.contains("<Code>InternalError</Code>"));
        assert_eq!(upstream.requests(), 1, "the write reached the upstream");
        let stats = proxy.stats();
        assert_eq!(
            (stats.forwarded, stats.stored_then_error, stats.ledger),
            (1, 1, 1)
        );
        let read = call(&proxy, Method::GET, "/lake/_weir/ledger/shardId-0.json").await;
        assert_eq!(read.status, StatusCode::OK, "reads are never answered 500");
    }

    #[tokio::test]
    async fn passes_kinesis_calls_and_bucket_level_puts_through_when_slowing_down() {
        let upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.address, policy(1.0, 0.0))
            .await
            .unwrap();

        let kinesis = request(Method::POST, &proxy, "/")
            .header("x-amz-target", "Kinesis_20131202.PutRecords")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let kinesis = send(&client(), kinesis).await.unwrap();
        let bucket = call(&proxy, Method::PUT, "/lake").await;
        let read = call(&proxy, Method::GET, "/lake/key").await;

        assert_eq!(kinesis.status, StatusCode::OK);
        assert!(kinesis.body.starts_with("POST / "), "{}", kinesis.body);
        assert!(kinesis.body.contains("target=Kinesis_20131202.PutRecords"));
        assert_eq!(bucket.status, StatusCode::OK);
        assert!(bucket.body.starts_with("PUT /lake "), "{}", bucket.body);
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(upstream.requests(), 3);
        assert_eq!(proxy.stats().forwarded, 3);
    }

    #[tokio::test]
    async fn never_breaks_kinesis_calls() {
        let upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.address, policy(1.0, 1.0))
            .await
            .unwrap();

        let kinesis = request(Method::POST, &proxy, "/")
            .header("x-amz-target", "Kinesis_20131202.GetRecords")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let reply = send(&client(), kinesis).await.unwrap();

        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.contains("target=Kinesis_20131202.GetRecords"));
        let stats = FaultStats {
            forwarded: 1,
            slowed_down: 0,
            reset: 0,
            ..FaultStats::default()
        };
        assert_eq!(proxy.stats(), stats);
    }

    #[tokio::test]
    async fn forwards_method_path_query_headers_and_body_unchanged() {
        let upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.address, policy(0.0, 0.0))
            .await
            .unwrap();

        let put = request(
            Method::PUT,
            &proxy,
            "/lake/a%3Db/k.gz?partNumber=2&uploadId=u1",
        )
        .header("host", "127.0.0.1:4566")
        .header("authorization", "AWS4-HMAC-SHA256 Credential=test")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
        let reply = send(&client(), put).await.unwrap();

        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.upstream_header, "the upstream's headers come back");
        assert_eq!(
            reply.body,
            "PUT /lake/a%3Db/k.gz?partNumber=2&uploadId=u1 host=127.0.0.1:4566 \
             auth=AWS4-HMAC-SHA256 Credential=test target=- body=payload"
        );
    }

    #[tokio::test]
    async fn reset_drops_the_connection_without_a_response() {
        let upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.address, policy(0.0, 1.0))
            .await
            .unwrap();

        let get = request(Method::GET, &proxy, "/lake/key")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let result = send(&client(), get).await;

        let error = result.err().expect("a reset request gets no response");
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert!(
            source
                .as_deref()
                .is_some_and(|s| s.contains("connection closed before message completed")),
            "{error:?}"
        );
        assert_eq!(upstream.requests(), 0);
        assert_eq!(proxy.stats().reset, 1);
    }

    #[tokio::test]
    async fn unavailable_bucket_gets_slow_down_on_every_request_until_restored() {
        let upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.address, policy(0.0, 0.0))
            .await
            .unwrap();

        proxy.set_unavailable("lake", true);
        let blocked = call(&proxy, Method::GET, "/lake/x").await;
        let other = call(&proxy, Method::GET, "/other/x").await;
        proxy.set_unavailable("lake", false);
        let restored = call(&proxy, Method::GET, "/lake/x").await;

        assert_eq!(blocked.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(blocked.body, SLOW_DOWN_XML);
        assert_eq!(other.status, StatusCode::OK);
        assert_eq!(restored.status, StatusCode::OK);
        assert_eq!(upstream.requests(), 2);
        let stats = FaultStats {
            forwarded: 2,
            slowed_down: 1,
            reset: 0,
            ..FaultStats::default()
        };
        assert_eq!(proxy.stats(), stats);
    }

    #[tokio::test]
    async fn slows_down_about_the_policy_share_of_object_writes() {
        let upstream = Upstream::start().await;
        let proxy = FaultProxy::start(upstream.address, policy(0.3, 0.0))
            .await
            .unwrap();
        let client = client();

        let mut slowed = 0;
        for n in 0..1_000 {
            let put = request(Method::PUT, &proxy, &format!("/lake/object-{n}"))
                .body(Full::new(Bytes::from_static(b"x")))
                .unwrap();
            let reply = send(&client, put).await.unwrap();
            if reply.status == StatusCode::SERVICE_UNAVAILABLE {
                slowed += 1;
            }
        }

        assert!(
            (200..=400).contains(&slowed),
            "{slowed} of 1000 slowed down"
        );
        let stats = proxy.stats();
        assert_eq!(stats.slowed_down, slowed);
        assert_eq!(stats.forwarded + stats.slowed_down + stats.reset, 1_000);
        assert_eq!(upstream.requests(), stats.forwarded);
    }

    #[tokio::test]
    async fn the_same_seed_breaks_the_same_requests() {
        let upstream = Upstream::start().await;
        let mut runs = Vec::new();
        for _ in 0..2 {
            let proxy = FaultProxy::start(upstream.address, policy(0.5, 0.0))
                .await
                .unwrap();
            let mut statuses = Vec::new();
            for n in 0..50 {
                statuses.push(
                    call(&proxy, Method::PUT, &format!("/lake/{n}"))
                        .await
                        .status,
                );
            }
            runs.push(statuses);
        }

        assert_eq!(runs[0], runs[1]);
        assert!(runs[0].contains(&StatusCode::OK));
        assert!(runs[0].contains(&StatusCode::SERVICE_UNAVAILABLE));
    }

    #[tokio::test]
    async fn answers_bad_gateway_when_the_upstream_is_down() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = closed.local_addr().unwrap();
        drop(closed);
        let proxy = FaultProxy::start(address, policy(0.0, 0.0)).await.unwrap();

        let reply = call(&proxy, Method::GET, "/lake/x").await;

        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        assert!(reply.body.contains(&address.to_string()), "{}", reply.body);
    }

    #[test]
    fn object_writes_are_puts_below_a_bucket() {
        assert!(is_object_write(&Method::PUT, "/lake/key"));
        assert!(is_object_write(&Method::PUT, "/lake/a/b/c.gz"));
        assert!(!is_object_write(&Method::PUT, "/lake"));
        assert!(!is_object_write(&Method::PUT, "/lake/"));
        assert!(!is_object_write(&Method::GET, "/lake/key"));
        assert!(!is_object_write(&Method::POST, "/"));
    }

    #[test]
    fn dice_stay_in_the_unit_interval() {
        let mut dice = SplitMix64(0);
        for _ in 0..10_000 {
            let roll = dice.next_f64();
            assert!((0.0..1.0).contains(&roll));
        }
    }
}
