//! A fault-injecting HTTP proxy between the core and the reference server:
//! drops, delays, 500/503 with `Retry-After`, a connection reset after the
//! server has applied the request (the answer is lost), and duplicated
//! requests. Faults come from a script (exact, for focused tests) or from a
//! seeded random plan (for randomized tests, reproducible by seed).

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Forward untouched.
    Pass,
    /// Close the connection without forwarding: the server never sees it.
    Drop,
    /// Forward after a pause.
    Delay(Duration),
    /// Answer with this status (and `Retry-After` seconds) without forwarding.
    Status { status: u16, retry_after: Option<u64> },
    /// Forward, let the server apply it, then break the connection before
    /// the client reads the answer.
    ResetAfterForward,
    /// Forward the request twice; answer with the second response.
    Duplicate,
    /// Answer with this status and JSON body without forwarding (a server
    /// that talks nonsense).
    Respond { status: u16, body: &'static str },
}

/// Which faults the proxy applies, request by request.
#[derive(Debug, Clone)]
pub enum FaultPlan {
    /// Each request whose path starts with `path_prefix` takes the next
    /// scripted fault; once the script is used up, requests pass.
    Script { path_prefix: String, faults: VecDeque<Fault> },
    /// Each request takes a fault with probability `rate`, picked evenly
    /// among the kinds above, from a generator seeded with `seed`.
    Random { seed: u64, rate: f64 },
}

/// What the proxy did, for test assertions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultCounts {
    pub requests: u64,
    pub forwarded: u64,
    pub dropped: u64,
    pub delayed: u64,
    pub statuses: u64,
    pub resets: u64,
    pub duplicated: u64,
    /// Bodies of requests forwarded and of answers returned, in bytes.
    pub request_bytes: u64,
    pub response_bytes: u64,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    plan: Mutex<PlanState>,
    counts: Mutex<FaultCounts>,
}

struct PlanState {
    plan: FaultPlan,
    rng: u64,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream`
    /// (`http://127.0.0.1:PORT`), passing everything until told otherwise.
    pub fn start(upstream: &str) -> std::io::Result<FaultProxy> {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| std::io::Error::other(e.to_string()))?,
            plan: Mutex::new(PlanState { plan: FaultPlan::Script { path_prefix: String::new(), faults: VecDeque::new() }, rng: 1 }),
            counts: Mutex::new(FaultCounts::default()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new().name("fault-proxy".into()).spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("proxy runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("proxy listener");
                let app = axum::Router::new().fallback(forward).with_state(serving);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        })?;
        Ok(FaultProxy { addr, shared, shutdown: Some(shutdown), thread: Some(thread) })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        let rng = match &plan {
            FaultPlan::Random { seed, .. } => seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            FaultPlan::Script { .. } => 1,
        };
        *self.shared.plan.lock().unwrap() = PlanState { plan, rng };
    }

    /// Applies `faults` in order to the next requests under `path_prefix`.
    pub fn script(&self, path_prefix: &str, faults: impl IntoIterator<Item = Fault>) {
        self.set_plan(FaultPlan::Script { path_prefix: path_prefix.to_owned(), faults: faults.into_iter().collect() });
    }

    pub fn pass_everything(&self) {
        self.script("", []);
    }

    pub fn counts(&self) -> FaultCounts {
        self.shared.counts.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn next_fault(state: &mut PlanState, path: &str) -> Fault {
    match &mut state.plan {
        FaultPlan::Script { path_prefix, faults } => {
            if path.starts_with(path_prefix.as_str()) { faults.pop_front().unwrap_or(Fault::Pass) } else { Fault::Pass }
        }
        FaultPlan::Random { rate, .. } => {
            let rate = *rate;
            let roll = next_random(&mut state.rng);
            if roll >= rate {
                return Fault::Pass;
            }
            match (next_random(&mut state.rng) * 6.0) as u32 {
                0 => Fault::Drop,
                1 => Fault::Delay(Duration::from_millis(5 + (next_random(&mut state.rng) * 25.0) as u64)),
                2 => Fault::Status { status: 500, retry_after: None },
                3 => Fault::Status { status: 503, retry_after: Some(0) },
                4 => Fault::ResetAfterForward,
                _ => Fault::Duplicate,
            }
        }
    }
}

/// xorshift64*: reproducible from the seed, which is all a fault plan needs.
fn next_random(state: &mut u64) -> f64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(body) => body,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let fault = next_fault(&mut shared.plan.lock().unwrap(), parts.uri.path());
    {
        let mut counts = shared.counts.lock().unwrap();
        counts.requests += 1;
        counts.request_bytes += body.len() as u64;
    }
    let count = |update: fn(&mut FaultCounts)| update(&mut shared.counts.lock().unwrap());
    match fault {
        Fault::Pass => {}
        Fault::Drop => {
            count(|c| c.dropped += 1);
            return broken_response();
        }
        Fault::Delay(pause) => {
            count(|c| c.delayed += 1);
            tokio::time::sleep(pause).await;
        }
        Fault::Status { status, retry_after } => {
            count(|c| c.statuses += 1);
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(header::CONTENT_TYPE, "application/problem+json")],
                format!(r#"{{"type":"about:blank","title":"injected fault","status":{status}}}"#),
            )
                .into_response();
            if let Some(seconds) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            return response;
        }
        Fault::Respond { status, body } => {
            count(|c| c.statuses += 1);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            return (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        }
        Fault::ResetAfterForward => {
            count(|c| c.resets += 1);
            let _ = send_upstream(&shared, &parts.method, &path_and_query, &parts.headers, body).await;
            count(|c| c.forwarded += 1);
            return broken_response();
        }
        Fault::Duplicate => {
            count(|c| c.duplicated += 1);
            let _ = send_upstream(&shared, &parts.method, &path_and_query, &parts.headers, body.clone()).await;
            count(|c| c.forwarded += 1);
        }
    }
    count(|c| c.forwarded += 1);
    match send_upstream(&shared, &parts.method, &path_and_query, &parts.headers, body).await {
        Ok(response) => response,
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

async fn send_upstream(
    shared: &Shared,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, reqwest::Error> {
    let mut request = shared.client.request(method.clone(), format!("{}{path_and_query}", shared.upstream)).body(body);
    for (name, value) in headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            request = request.header(name, value);
        }
    }
    let upstream = request.send().await?;
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let bytes = upstream.bytes().await?;
    shared.counts.lock().unwrap().response_bytes += bytes.len() as u64;
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING && name != header::CONNECTION {
            response = response.header(name, value);
        }
    }
    Ok(response.body(Body::from(bytes)).unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response()))
}

/// A response whose body fails at once: the server closes the connection
/// mid-answer, so the client never gets a usable reply.
fn broken_response() -> Response {
    let failing = futures_util::stream::once(async { Err::<Bytes, std::io::Error>(std::io::Error::other("injected reset")) });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "1024")
        .body(Body::from_stream(failing))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}
