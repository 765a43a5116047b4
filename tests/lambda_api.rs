//! A minimal AWS Lambda Runtime API (2018-06-01) emulator for the end-to-end tests.
//!
//! The real Weir Lambda binary runs as a child process with `AWS_LAMBDA_RUNTIME_API` pointing
//! here and long-polls for events exactly as it would inside Lambda, so the tests exercise the
//! same `lambda_runtime` client code that production does. Data flow:
//! [`RuntimeApi::invoke`] queues an event -> the function's `GET .../invocation/next` takes it ->
//! the function posts `.../invocation/{id}/response` (or `/error`) -> `invoke` returns that.
//!
//! Like a single Lambda execution environment, the emulator hands out one invocation at a time,
//! in the order `invoke` was called. Unlike Lambda it cannot freeze or kill the function when an
//! invocation times out: a late answer is simply refused with `400 InvalidRequestID`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

/// The ARN every invocation claims to be for.
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:weir";

/// A Lambda Runtime API served on 127.0.0.1 for one function process.
///
/// It owns the server task: dropping it stops the server and closes every connection, which
/// makes a polling `lambda_runtime` exit with a transport error.
pub struct RuntimeApi {
    address: SocketAddr,
    shared: Arc<Shared>,
    /// Held for the whole of an `invoke`, so invocations reach the function one at a time and
    /// in call order (tokio's mutex is fair).
    turn: tokio::sync::Mutex<()>,
    server: JoinHandle<()>,
}

/// Why an invocation produced no result.
#[derive(Debug)]
pub enum Invocation {
    /// The function posted to `/invocation/{id}/error`; this is the body it posted
    /// (`{"errorType": ..., "errorMessage": ...}` from `lambda_runtime`).
    FunctionError(Value),
    /// The function posted to `/init/error` (now or before this invocation); this is its message.
    InitError(String),
    /// The function did not answer within the timeout.
    TimedOut,
}

impl fmt::Display for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invocation::FunctionError(body) => write!(f, "the function returned an error: {body}"),
            Invocation::InitError(message) => write!(f, "the function failed to start: {message}"),
            Invocation::TimedOut => f.write_str("the function did not answer in time"),
        }
    }
}

impl std::error::Error for Invocation {}

/// What the server's connections and `invoke` share.
struct Shared {
    state: Mutex<State>,
    /// Wakes `/next` long-polls when an invocation is queued.
    queued: Notify,
    /// The init error, once the function reports one; `invoke` waits on it to fail fast.
    init_error: watch::Sender<Option<String>>,
    /// Makes request ids unique within this emulator.
    next_id: AtomicU64,
    /// Makes request ids differ between emulators in one test run.
    id_salt: u64,
}

#[derive(Default)]
struct State {
    /// Invocations not yet handed to the function.
    queue: VecDeque<Queued>,
    /// Invocations handed out and not yet answered, by request id.
    in_flight: HashMap<String, oneshot::Sender<Answer>>,
}

struct Queued {
    id: String,
    event: Bytes,
    deadline_ms: u128,
    reply: oneshot::Sender<Answer>,
}

/// What the function posted for one invocation.
enum Answer {
    Response(Value),
    Error(Value),
}

impl RuntimeApi {
    /// Starts the emulator on 127.0.0.1 on a free port.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the Lambda Runtime API emulator to 127.0.0.1")?;
        let address = listener
            .local_addr()
            .context("reading the Lambda Runtime API emulator's port")?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            queued: Notify::new(),
            init_error: watch::Sender::new(None),
            next_id: AtomicU64::new(1),
            id_salt: splitmix(epoch(SystemTime::now()) as u64 ^ u64::from(address.port())),
        });
        let server = tokio::spawn(crate::http_server::serve(listener, {
            let shared = shared.clone();
            move |request| route(shared.clone(), request)
        }));
        Ok(RuntimeApi {
            address,
            shared,
            turn: tokio::sync::Mutex::new(()),
            server,
        })
    }

    /// `127.0.0.1:PORT`, the value for AWS_LAMBDA_RUNTIME_API.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// The environment a function process needs to run against this emulator.
    ///
    /// `lambda_runtime` 1.x panics at start-up unless `AWS_LAMBDA_FUNCTION_NAME`,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` and `AWS_LAMBDA_FUNCTION_VERSION` are set beside
    /// `AWS_LAMBDA_RUNTIME_API`, so a test passes all of these to the child it spawns.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", "weir".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/weir".to_owned()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "weir-e2e".to_owned()),
        ]
    }

    /// Queues one invocation and waits (up to `timeout`) for the function's answer.
    ///
    /// The timeout starts once this invocation's turn comes (after earlier invocations ended)
    /// and is also the deadline the function sees in `Lambda-Runtime-Deadline-Ms`.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Value, Invocation> {
        let _turn = self.turn.lock().await;
        let mut init_error = self.shared.init_error.subscribe();
        if let Some(message) = init_error.borrow_and_update().clone() {
            return Err(Invocation::InitError(message));
        }

        let id = self.shared.request_id();
        let (reply, answer) = oneshot::channel();
        self.shared.lock().queue.push_back(Queued {
            id: id.clone(),
            event: Bytes::from(event.to_string()),
            deadline_ms: epoch(SystemTime::now() + timeout),
            reply,
        });
        self.shared.queued.notify_one();
        // Whatever ends this call (answer, timeout, init error, the caller dropping it), the
        // invocation must not be delivered or answered afterwards.
        let _withdraw = Withdraw {
            shared: &self.shared,
            id: &id,
        };

        tokio::select! {
            answer = answer => match answer {
                Ok(Answer::Response(result)) => Ok(result),
                Ok(Answer::Error(error)) => Err(Invocation::FunctionError(error)),
                // The sender sits in `queue` or `in_flight` until it is used or withdrawn,
                // and only `_withdraw` (still alive here) withdraws it.
                Err(_) => unreachable!("invocation {id} lost its reply channel"),
            },
            reported = init_error.wait_for(Option::is_some) => {
                let message = reported
                    .ok()
                    .and_then(|message| message.clone())
                    .unwrap_or_else(|| "init error channel closed".to_owned());
                Err(Invocation::InitError(message))
            }
            () = tokio::time::sleep(timeout) => Err(Invocation::TimedOut),
        }
    }

    /// The init error the function reported, if any.
    pub fn init_error(&self) -> Option<String> {
        self.shared.init_error.borrow().clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection too.
        self.server.abort();
    }
}

/// Removes an invocation from the queue and the in-flight table when `invoke` ends.
struct Withdraw<'a> {
    shared: &'a Shared,
    id: &'a str,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.queue.retain(|queued| queued.id != self.id);
        state.in_flight.remove(self.id);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only plain collections behind, still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh id shaped like Lambda's (a UUID).
    fn request_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let hi = splitmix(self.id_salt ^ n);
        let lo = splitmix(hi ^ n);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xfff,
            lo >> 52,
            lo & 0xffff_ffff_ffff
        )
    }

    /// Hands the oldest queued invocation to a `/next` poll, or None if nothing is queued.
    fn take_next(&self) -> Option<(String, Bytes, u128)> {
        let mut state = self.lock();
        let queued = state.queue.pop_front()?;
        state.in_flight.insert(queued.id.clone(), queued.reply);
        Some((queued.id, queued.event, queued.deadline_ms))
    }

    /// Delivers the function's answer; false if the id is not an invocation in flight.
    fn answer(&self, id: &str, answer: Answer) -> bool {
        match self.lock().in_flight.remove(id) {
            // `invoke` may have just given up; the answer is then dropped, as Lambda would.
            Some(reply) => {
                let _ = reply.send(answer);
                true
            }
            None => false,
        }
    }
}

async fn route(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return Ok(not_found(&method, &path));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let response = match (&method, segments.as_slice()) {
        (&Method::GET, ["invocation", "next"]) => next(&shared).await,
        (&Method::POST, ["invocation", id, kind @ ("response" | "error")]) => {
            let body = read_json(request).await;
            let answer = if *kind == "response" {
                Answer::Response(body)
            } else {
                Answer::Error(body)
            };
            if shared.answer(id, answer) {
                accepted()
            } else {
                json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"errorType": "InvalidRequestID", "errorMessage": format!("Invalid request ID: {id}")}),
                )
            }
        }
        (&Method::POST, ["init", "error"]) => {
            let body = read_json(request).await;
            shared.init_error.send_replace(Some(init_message(&body)));
            accepted()
        }
        _ => not_found(&method, &path),
    };
    Ok(response)
}

/// Long-polls until an invocation is queued, then hands it out with Lambda's headers.
async fn next(shared: &Shared) -> Response<Full<Bytes>> {
    let (id, event, deadline_ms) = loop {
        if let Some(next) = shared.take_next() {
            break next;
        }
        // `notify_one` keeps a permit when nobody waits, so a queueing that lands between the
        // check above and this await is not missed.
        shared.queued.notified().await;
    };
    let now = epoch(SystemTime::now());
    let trace_id = format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
        now / 1000,
        (u128::from(splitmix(now as u64)) << 32) | u128::from(splitmix(!now as u64) as u32),
        splitmix(now as u64 ^ 0x5eed),
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .header("Lambda-Runtime-Aws-Request-Id", id)
        .header("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string())
        .header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
        .header("Lambda-Runtime-Trace-Id", trace_id)
        .body(Full::new(event))
        .expect("hex ids, digits and fixed text are valid header values")
}

/// The body as JSON; a body that is not JSON comes back as a JSON string of its text, so a
/// test sees what the function sent rather than a parse error.
async fn read_json(request: Request<Incoming>) -> Value {
    match request.into_body().collect().await {
        Ok(body) => {
            let bytes = body.to_bytes();
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        }
        Err(error) => Value::String(format!("reading the request body failed: {error}")),
    }
}

/// `errorType: errorMessage` from `lambda_runtime`'s diagnostic, or the raw body otherwise.
fn init_message(body: &Value) -> String {
    match (body["errorType"].as_str(), body["errorMessage"].as_str()) {
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        (None, Some(message)) => message.to_owned(),
        _ => body.to_string(),
    }
}

fn accepted() -> Response<Full<Bytes>> {
    json_response(StatusCode::ACCEPTED, &json!({"status": "OK"}))
}

fn not_found(method: &Method, path: &str) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"errorType": "NotFound", "errorMessage": format!("no route for {method} {path}")}),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a status and a fixed content type make a valid response")
}

/// Milliseconds since the Unix epoch (0 for times before it, which a test clock never is).
fn epoch(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis())
}

/// SplitMix64's finaliser: spreads a counter into well-mixed bits for ids.
fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::HeaderMap;
    use hyper::client::conn::http1::SendRequest;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpStream;

    const LONG: Duration = Duration::from_secs(10);

    /// A stand-in for the function process: one keep-alive HTTP/1.1 connection to the emulator.
    struct FakeFunction {
        sender: SendRequest<Full<Bytes>>,
    }

    struct Reply {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    }

    impl Reply {
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap()
        }

        fn header(&self, name: &str) -> &str {
            self.headers[name].to_str().unwrap()
        }
    }

    impl FakeFunction {
        async fn connect(api: &RuntimeApi) -> FakeFunction {
            let stream = TcpStream::connect(api.address()).await.unwrap();
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(connection);
            FakeFunction { sender }
        }

        async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> Reply {
            let body = body.map_or_else(Bytes::new, |body| Bytes::from(body.to_string()));
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header("host", "runtime")
                .body(Full::new(body))
                .unwrap();
            self.sender.ready().await.unwrap();
            // Bounded, so a test whose emulator misbehaves fails instead of hanging.
            let response = tokio::time::timeout(LONG, self.sender.send_request(request))
                .await
                .expect("the emulator answers within LONG")
                .unwrap();
            let (parts, body) = response.into_parts();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body: body.collect().await.unwrap().to_bytes(),
            }
        }

        async fn next(&mut self) -> Reply {
            self.call(Method::GET, "/2018-06-01/runtime/invocation/next", None)
                .await
        }

        async fn post(&mut self, path: &str, body: Value) -> Reply {
            self.call(Method::POST, path, Some(body)).await
        }
    }

    #[tokio::test]
    async fn hands_out_the_event_with_lambda_headers_and_returns_the_response() {
        let api = RuntimeApi::start().await.unwrap();
        let mut function = FakeFunction::connect(&api).await;
        let before = epoch(SystemTime::now());

        let (result, ()) = tokio::join!(api.invoke(json!({"Records": [1, 2]}), LONG), async {
            let event = function.next().await;
            assert_eq!(event.status, StatusCode::OK);
            assert_eq!(event.json(), json!({"Records": [1, 2]}));
            assert_eq!(event.header("content-type"), "application/json");
            assert_eq!(
                event.header("lambda-runtime-invoked-function-arn"),
                "arn:aws:lambda:us-east-1:000000000000:function:weir"
            );
            let deadline: u128 = event.header("lambda-runtime-deadline-ms").parse().unwrap();
            let after = epoch(SystemTime::now());
            assert!(deadline >= before + LONG.as_millis() && deadline <= after + LONG.as_millis());
            let trace = event.header("lambda-runtime-trace-id");
            assert!(
                trace.starts_with("Root=1-") && trace.contains(";Parent="),
                "{trace}"
            );
            assert!(trace.ends_with(";Sampled=0"), "{trace}");

            let id = event.header("lambda-runtime-aws-request-id");
            assert_eq!(id.len(), 36, "{id}");
            let path = format!("/2018-06-01/runtime/invocation/{id}/response");
            let posted = function.post(&path, json!({"batchItemFailures": []})).await;
            assert_eq!(posted.status, StatusCode::ACCEPTED);
        });

        assert_eq!(result.unwrap(), json!({"batchItemFailures": []}));
    }

    #[tokio::test]
    async fn serves_invocations_in_call_order_over_one_keep_alive_connection() {
        let api = RuntimeApi::start().await.unwrap();
        let mut function = FakeFunction::connect(&api).await;

        let (first, second, ids) = tokio::join!(
            api.invoke(json!("first"), LONG),
            api.invoke(json!("second"), LONG),
            async {
                let mut ids = Vec::new();
                for _ in 0..2 {
                    let event = function.next().await;
                    let id = event.header("lambda-runtime-aws-request-id").to_owned();
                    let path = format!("/2018-06-01/runtime/invocation/{id}/response");
                    function.post(&path, json!({"echo": event.json()})).await;
                    ids.push(id);
                }
                ids
            }
        );

        assert_eq!(first.unwrap(), json!({"echo": "first"}));
        assert_eq!(second.unwrap(), json!({"echo": "second"}));
        assert_ne!(ids[0], ids[1]);
    }

    #[tokio::test]
    async fn hands_out_one_invocation_at_a_time() {
        let api = RuntimeApi::start().await.unwrap();
        let mut function = FakeFunction::connect(&api).await;
        let mut second_poller = FakeFunction::connect(&api).await;

        let (first, second, ()) = tokio::join!(
            api.invoke(json!(1), LONG),
            api.invoke(json!(2), LONG),
            async {
                let event = function.next().await;
                assert_eq!(event.json(), json!(1));
                // While the first is unanswered the second must not be handed out.
                let early = tokio::time::timeout(Duration::from_millis(200), second_poller.next());
                assert!(
                    early.await.is_err(),
                    "a second invocation was handed out early"
                );
                let id = event.header("lambda-runtime-aws-request-id").to_owned();
                let path = format!("/2018-06-01/runtime/invocation/{id}/response");
                function.post(&path, json!("one")).await;

                let event = function.next().await;
                assert_eq!(event.json(), json!(2));
                let id = event.header("lambda-runtime-aws-request-id").to_owned();
                let path = format!("/2018-06-01/runtime/invocation/{id}/response");
                function.post(&path, json!("two")).await;
            }
        );

        assert_eq!(first.unwrap(), json!("one"));
        assert_eq!(second.unwrap(), json!("two"));
    }

    #[tokio::test]
    async fn error_post_becomes_a_function_error() {
        let api = RuntimeApi::start().await.unwrap();
        let mut function = FakeFunction::connect(&api).await;
        let diagnostic = json!({"errorType": "weir::Error", "errorMessage": "bucket lake is gone"});

        let (result, ()) = tokio::join!(api.invoke(json!({}), LONG), async {
            let event = function.next().await;
            let id = event.header("lambda-runtime-aws-request-id");
            let path = format!("/2018-06-01/runtime/invocation/{id}/error");
            let posted = function.post(&path, diagnostic.clone()).await;
            assert_eq!(posted.status, StatusCode::ACCEPTED);
        });

        match result {
            Err(Invocation::FunctionError(body)) => assert_eq!(body, diagnostic),
            other => panic!("expected a function error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn init_error_makes_invoke_fail_fast() {
        let api = RuntimeApi::start().await.unwrap();
        let mut function = FakeFunction::connect(&api).await;
        let posted = function
            .post(
                "/2018-06-01/runtime/init/error",
                json!({"errorType": "Config", "errorMessage": "WEIR_LAKE_BUCKET is not set"}),
            )
            .await;
        assert_eq!(posted.status, StatusCode::ACCEPTED);

        let started = std::time::Instant::now();
        let result = api.invoke(json!({}), LONG).await;

        assert!(started.elapsed() < Duration::from_secs(1));
        match result {
            Err(Invocation::InitError(message)) => {
                assert_eq!(message, "Config: WEIR_LAKE_BUCKET is not set");
            }
            other => panic!("expected an init error, got {other:?}"),
        }
        assert_eq!(
            api.init_error().as_deref(),
            Some("Config: WEIR_LAKE_BUCKET is not set")
        );
    }

    #[tokio::test]
    async fn init_error_ends_an_invocation_already_waiting() {
        let api = RuntimeApi::start().await.unwrap();
        let mut function = FakeFunction::connect(&api).await;

        let (result, ()) = tokio::join!(api.invoke(json!({}), LONG), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let body = json!({"errorMessage": "no transform"});
            function.post("/2018-06-01/runtime/init/error", body).await;
        });

        assert!(matches!(result, Err(Invocation::InitError(m)) if m == "no transform"));
    }

    #[tokio::test]
    async fn times_out_when_no_function_answers() {
        let api = RuntimeApi::start().await.unwrap();
        let started = std::time::Instant::now();

        let result = api.invoke(json!({}), Duration::from_millis(200)).await;

        assert!(matches!(result, Err(Invocation::TimedOut)), "{result:?}");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(2));
        assert!(api.init_error().is_none());
    }

    #[tokio::test]
    async fn a_timed_out_invocation_is_never_delivered_or_answered() {
        let api = RuntimeApi::start().await.unwrap();
        let mut function = FakeFunction::connect(&api).await;

        let stale = api.invoke(json!("stale"), Duration::from_millis(50)).await;
        assert!(matches!(stale, Err(Invocation::TimedOut)));

        let (result, ()) = tokio::join!(api.invoke(json!("fresh"), LONG), async {
            let event = function.next().await;
            assert_eq!(event.json(), json!("fresh"));
            let id = event.header("lambda-runtime-aws-request-id").to_owned();
            let path = format!("/2018-06-01/runtime/invocation/{id}/response");
            function.post(&path, json!("ok")).await;
            // Answering twice is answering an invocation that is no longer in flight.
            let again = function.post(&path, json!("again")).await;
            assert_eq!(again.status, StatusCode::BAD_REQUEST);
            assert_eq!(again.json()["errorType"], "InvalidRequestID");
        });

        assert_eq!(result.unwrap(), json!("ok"));
    }

    #[tokio::test]
    async fn a_poll_from_a_vanished_function_takes_no_invocation() {
        let api = RuntimeApi::start().await.unwrap();
        let vanished = TcpStream::connect(api.address()).await.unwrap();
        vanished.writable().await.unwrap();
        let poll = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nhost: runtime\r\n\r\n";
        assert_eq!(vanished.try_write(poll).unwrap(), poll.len());
        // Let the emulator start the long poll, then hang up as a killed process would.
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(vanished);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut function = FakeFunction::connect(&api).await;

        let (result, ()) = tokio::join!(api.invoke(json!("for the live one"), LONG), async {
            let event = function.next().await;
            let id = event.header("lambda-runtime-aws-request-id").to_owned();
            let path = format!("/2018-06-01/runtime/invocation/{id}/response");
            function.post(&path, event.json()).await;
        });

        assert_eq!(result.unwrap(), json!("for the live one"));
    }

    #[tokio::test]
    async fn answers_not_found_outside_the_runtime_api() {
        let api = RuntimeApi::start().await.unwrap();
        let mut function = FakeFunction::connect(&api).await;

        for (method, path) in [
            (Method::GET, "/"),
            (Method::GET, "/2018-06-01/runtime/invocation/abc/response"),
            (Method::POST, "/2018-06-01/runtime/invocation/next"),
            (Method::GET, "/2018-06-01/runtime/restore/next"),
        ] {
            let reply = function.call(method.clone(), path, None).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
        }
    }

    #[test]
    fn invocation_errors_say_what_happened() {
        let error = Invocation::InitError("Config: no bucket".to_owned());
        assert_eq!(
            error.to_string(),
            "the function failed to start: Config: no bucket"
        );
        let error = Invocation::FunctionError(json!({"errorType": "E"}));
        assert_eq!(
            error.to_string(),
            r#"the function returned an error: {"errorType":"E"}"#
        );
    }
}
