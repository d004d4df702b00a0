//! The HTTP server: routing, authentication, fault injection and accounting.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{FutureExt, StreamExt, stream};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::{DriftKind, Faults, MockConfig, PastEndAnswer, SearchWindow};
use crate::dataset::{Dataset, Refused, View};
use crate::encode::Encoder;
use crate::faults::{Bend, BodyFault, Draw, FaultState, StatusFault};
use crate::json::push_json_str;
use crate::link::Link;
use crate::query::{ParamError, parse_contacts_query, parse_filter_query, parse_lists_query};
use crate::stats::MockStats;

const CONTACTS_PATH: &str = "/api/v2/contacts";
const LISTS_PATH: &str = "/api/v2/lists";
const GROUND_TRUTH_PATH: &str = "/api/_mock/ground_truth";
const STATS_PATH: &str = "/api/_mock/stats";

const JSON: &str = "application/json";
const NDJSON: &str = "application/x-ndjson";
const HTML: &str = "text/html";

/// The nginx error page a gateway sends when the upstream fails.
const BAD_GATEWAY_HTML: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// Error ending an injected body fault; hyper then drops the connection.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("connection reset injected by the mock server")]
    InjectedReset,
}

type ResBody = UnsyncBoxBody<Bytes, BodyError>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters and fault state stay meaningful after a panic elsewhere: keep going.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a body leaves the server.
enum Payload {
    /// All of it, with a matching `Content-Length`.
    Full(Bytes),
    /// `Content-Length` of the whole body, but only `sent` bytes before the connection drops.
    Reset { body: Bytes, sent: usize },
    /// All of it, in small chunks spread over `over`.
    Slow { body: Bytes, over: Duration },
}

/// An answer, before it becomes a hyper response; carries what the counters need.
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    headers: Vec<(HeaderName, HeaderValue)>,
    payload: Payload,
    /// Contacts in the page, for a `200` contacts page.
    contacts: Option<usize>,
    truncated: bool,
}

impl Reply {
    fn new(status: StatusCode, content_type: &'static str, body: Bytes) -> Reply {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            payload: Payload::Full(body),
            contacts: None,
            truncated: false,
        }
    }

    fn error(status: StatusCode, code: &str, error: &str) -> Reply {
        Reply::new(status, JSON, error_body(Some(code), error, None))
    }

    fn invalid(err: &ParamError) -> Reply {
        Reply::new(
            StatusCode::BAD_REQUEST,
            JSON,
            error_body(
                Some("invalid_parameter"),
                &format!("Invalid value for '{}'", err.parameter),
                Some(err.reason),
            ),
        )
    }

    /// A page past the end, refused: Django REST Framework's 404, or a Trackly-style error.
    fn past_end(status: u16) -> Reply {
        match StatusCode::from_u16(status) {
            Ok(StatusCode::NOT_FOUND) | Err(_) => Reply::new(
                StatusCode::NOT_FOUND,
                JSON,
                Bytes::from_static(br#"{"detail":"Invalid page."}"#),
            ),
            Ok(status) => Reply::error(status, "invalid_page", "That page contains no results."),
        }
    }

    /// `400` of a search index asked for a window beyond its result window.
    fn window_too_large(window: Option<SearchWindow>) -> Reply {
        let max = window.map_or(0, |w| w.max_window);
        Reply::error(
            StatusCode::BAD_REQUEST,
            "result_window_too_large",
            &format!(
                "Result window is too large, from + size must be less than or equal to: [{max}]"
            ),
        )
    }

    /// `401` for a request whose `X-Api-Key` is not the server's key.
    fn unauthorized() -> Reply {
        Reply::error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "Invalid API key",
        )
    }

    /// `401` for a request without `X-Api-Key`.
    fn missing_key() -> Reply {
        Reply::error(
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
            "API key required",
        )
    }

    /// `403` of a suspended account: documented without a `code`.
    fn suspended() -> Reply {
        Reply::new(
            StatusCode::FORBIDDEN,
            JSON,
            error_body(None, "Account is suspended", None),
        )
    }

    fn internal() -> Reply {
        Reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An unexpected server error occurred.",
        )
    }

    fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Reply {
        self.headers.push((name, value));
        self
    }

    fn bytes_sent(&self) -> usize {
        match &self.payload {
            Payload::Full(body) | Payload::Slow { body, .. } => body.len(),
            Payload::Reset { sent, .. } => *sent,
        }
    }

    /// The hyper response; with a `link`, every body is paced through it.
    fn into_response(self, link: Option<Arc<Link>>) -> Response<ResBody> {
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        let body = match (self.payload, link) {
            (Payload::Full(body), None) => Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync(),
            (Payload::Full(body), Some(link)) => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
                StreamBody::new(link.pace(body).map(|part| Ok(Frame::data(part)))).boxed_unsync()
            }
            (Payload::Reset { body, sent }, link) => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
                let part = body.slice(..sent.min(body.len()));
                let part = match link {
                    None => stream::once(async move { part }).boxed(),
                    Some(link) => link.pace(part).boxed(),
                };
                let frames = part
                    .map(|part| Ok(Frame::data(part)))
                    .chain(stream::once(async {
                        // Let hyper flush the part before the connection goes.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        Err(BodyError::InjectedReset)
                    }));
                StreamBody::new(frames).boxed_unsync()
            }
            (Payload::Slow { body, over }, link) => {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
                let chunk = body.len().div_ceil(16).max(1);
                let chunks = body.len().div_ceil(chunk).max(1);
                let step = Duration::from_nanos(
                    u64::try_from(over.as_nanos().div_ceil(chunks as u128)).unwrap_or(u64::MAX),
                );
                let frames = stream::unfold(0usize, move |offset| {
                    let (body, link) = (body.clone(), link.clone());
                    async move {
                        if offset >= body.len() {
                            return None;
                        }
                        tokio::time::sleep(step).await;
                        let end = (offset + chunk).min(body.len());
                        if let Some(link) = link {
                            link.carry(end - offset).await;
                        }
                        Some((Ok(Frame::data(body.slice(offset..end))), end))
                    }
                });
                StreamBody::new(frames).boxed_unsync()
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = headers;
        response
    }
}

/// The documented error body: `{"error": <text>[, "code": <code>][, "message": <more>]}`.
fn error_body(code: Option<&str>, error: &str, message: Option<&str>) -> Bytes {
    let mut out = Vec::with_capacity(96 + error.len());
    out.extend_from_slice(b"{\"error\":");
    push_json_str(&mut out, error);
    if let Some(code) = code {
        out.extend_from_slice(b",\"code\":");
        push_json_str(&mut out, code);
    }
    if let Some(message) = message {
        out.extend_from_slice(b",\"message\":");
        push_json_str(&mut out, message);
    }
    out.push(b'}');
    Bytes::from(out)
}

/// The `400 invalid_parameter` for a `per_page` the faults refuse ([`Faults::accepted_per_page`],
/// [`Faults::refuse_per_page_above`]); `asked` is `None` when the parameter was omitted.
fn refused_page_size(faults: &Faults, asked: Option<u64>) -> Option<Reply> {
    let asked = asked?;
    let reason =
        if !faults.accepted_per_page.is_empty() && !faults.accepted_per_page.contains(&asked) {
            "must be one of the accepted page sizes"
        } else if faults.refuse_per_page_above.is_some_and(|max| asked > max) {
            "exceeds the maximum page size"
        } else {
            return None;
        };
    Some(Reply::invalid(&ParamError {
        parameter: "per_page",
        reason,
    }))
}

/// State shared by the server task, its connections and the [`MockServer`] handle.
struct Shared {
    api_key: String,
    dataset: RwLock<Arc<Dataset>>,
    /// Earlier states of the data set with the time each was replaced, for a lagging replica.
    history: Mutex<VecDeque<(Instant, Arc<Dataset>)>>,
    faults: Mutex<FaultState>,
    stats: Mutex<MockStats>,
    /// [`MockConfig::lists_per_page`].
    lists_per_page: Option<u32>,
    /// [`MockConfig::lists_churn`].
    lists_churn: bool,
    /// `/v2/lists` listing requests answered, which drive [`MockConfig::lists_churn`].
    lists_requests: AtomicU64,
    contacts_requests: AtomicU64,
    /// Compresses `200` answers ([`MockConfig::compression`]).
    encoder: Encoder,
    /// The shared link bodies are paced through ([`MockConfig::bandwidth`]).
    link: Option<Arc<Link>>,
}

impl Shared {
    fn dataset(&self) -> Arc<Dataset> {
        Arc::clone(&self.dataset.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        req.headers()
            .get("x-api-key")
            .is_some_and(|key| key.as_bytes() == self.api_key.as_bytes())
    }

    /// The documented refusal of a request, if it gets one: no key, a wrong key, or (with the
    /// right key) a suspended account.
    fn refusal(&self, req: &Request<Incoming>) -> Option<Reply> {
        if !req.headers().contains_key("x-api-key") {
            return Some(Reply::missing_key());
        }
        if !self.authorized(req) {
            return Some(Reply::unauthorized());
        }
        lock(&self.faults).faults().suspended.then(Reply::suspended)
    }

    fn install_faults(&self, faults: Faults) {
        let mut state = lock(&self.faults);
        let requests = self.contacts_requests.load(Ordering::SeqCst);
        *state = FaultState::new(faults, requests);
        self.apply_drift(&mut state, requests);
    }

    /// Applies the drift due after `requests` contacts requests. Runs under the fault lock so
    /// concurrent requests apply changes one at a time, in schedule order.
    fn apply_drift(&self, state: &mut FaultState, requests: u64) {
        for kind in state.due_drift(requests) {
            self.change(state, |dataset| match kind {
                DriftKind::Insert(n) => dataset.with_inserted(n),
                DriftKind::Delete(n) => dataset.with_deleted(n),
                DriftKind::Import(n) => dataset.with_imported(n),
            });
            lock(&self.stats).drift_events += 1;
        }
    }

    /// Applies the sign-ups and deletions of a live listing due by now.
    fn apply_live(&self, state: &mut FaultState) {
        let due = state.due_live(Instant::now());
        if due.signups == 0 && due.deletes.is_empty() {
            return;
        }
        self.change(state, |dataset| {
            let grown = dataset.with_inserted(due.signups);
            let len = grown.len();
            let positions: Vec<usize> = due
                .deletes
                .iter()
                .map(|f| ((f * len as f64) as usize).min(len.saturating_sub(1)))
                .collect();
            grown.with_deleted_at(&positions)
        });
    }

    /// Replaces the data set, keeping the old state for a lagging replica.
    fn change(&self, state: &FaultState, next: impl FnOnce(&Dataset) -> Dataset) {
        let mut dataset = self.dataset.write().unwrap_or_else(PoisonError::into_inner);
        let old = Arc::clone(&dataset);
        *dataset = Arc::new(next(&old));
        drop(dataset);
        if let Some(lag) = state.faults().replica_lag {
            let now = Instant::now();
            let mut history = lock(&self.history);
            history.push_back((now, old));
            // Keep what a replica `lag` behind can still be asked for.
            while history.len() > 1 && history[1].0 + lag < now {
                history.pop_front();
            }
        }
    }

    /// The data set as a replica `lag` behind sees it.
    fn lagging(&self, lag: Duration) -> Arc<Dataset> {
        let now = Instant::now();
        let history = lock(&self.history);
        // The state that was current `lag` ago: the oldest one replaced after that moment.
        match history.iter().find(|(replaced, _)| *replaced + lag > now) {
            Some((_, dataset)) => Arc::clone(dataset),
            None => self.dataset(),
        }
    }

    fn record(&self, reply: &Reply) {
        let mut stats = lock(&self.stats);
        stats.requests += 1;
        *stats.by_status.entry(reply.status.as_u16()).or_insert(0) += 1;
        stats.bytes_served += reply.bytes_sent() as u64;
        match (&reply.payload, reply.contacts) {
            (Payload::Reset { .. }, _) => stats.resets += 1,
            (_, Some(_)) if reply.truncated => stats.truncated += 1,
            (payload, Some(contacts)) => {
                stats.pages_served += 1;
                stats.contacts_served += contacts as u64;
                if matches!(payload, Payload::Slow { .. }) {
                    stats.slow += 1;
                }
            }
            _ => {}
        }
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            stats.rate_limited += 1;
        }
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<ResBody> {
        let counted = !req.uri().path().starts_with("/api/_mock/");
        let reply = match AssertUnwindSafe(Arc::clone(&self).route(req))
            .catch_unwind()
            .await
        {
            Ok(reply) => reply,
            Err(_) => {
                tracing::error!("mock server handler panicked; answering 500");
                Reply::internal()
            }
        };
        if counted {
            self.record(&reply);
        }
        reply.into_response(self.link.clone())
    }

    async fn route(self: Arc<Self>, req: Request<Incoming>) -> Reply {
        let path = req.uri().path();
        let not_found = || {
            let text = "The requested resource does not exist.";
            Reply::error(StatusCode::NOT_FOUND, "not_found", text)
        };
        let list_id = path
            .strip_prefix(LISTS_PATH)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|id| id.parse::<u64>().ok());
        if list_id.is_none()
            && ![CONTACTS_PATH, LISTS_PATH, GROUND_TRUTH_PATH, STATS_PATH].contains(&path)
        {
            return not_found();
        }
        if req.method() != Method::GET {
            return Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Only GET is allowed on this resource.",
            )
            .with_header(header::ALLOW, HeaderValue::from_static("GET"));
        }
        if let Some(id) = list_id {
            return self.list(&req, id).unwrap_or_else(not_found);
        }
        match path {
            CONTACTS_PATH => self.contacts(req).await,
            LISTS_PATH => self.lists(&req),
            // The mock's own endpoints take the right key, whatever the faults. This guard
            // protects every arm below it only: an endpoint of the API goes above it.
            _ if !self.authorized(&req) => Reply::unauthorized(),
            GROUND_TRUTH_PATH => self.ground_truth(&req),
            _ => self.stats_reply(),
        }
    }

    async fn contacts(&self, req: Request<Incoming>) -> Reply {
        let n = self.contacts_requests.fetch_add(1, Ordering::SeqCst) + 1;
        let (draw, bend) = {
            let mut state = lock(&self.faults);
            self.apply_live(&mut state);
            (state.draw(), state.bend())
        };
        if !draw.latency.is_zero() {
            tokio::time::sleep(draw.latency).await;
        }
        let reply = self.contacts_reply(&req, n, &draw, &bend);
        let mut state = lock(&self.faults);
        self.apply_drift(&mut state, n);
        reply
    }

    /// The answer to the `n`-th contacts request (total count).
    fn contacts_reply(&self, req: &Request<Incoming>, n: u64, draw: &Draw, bend: &Bend) -> Reply {
        if let Some(refusal) = self.refusal(req) {
            return refusal;
        }
        if let Err(retry_after) = lock(&self.faults).take_token(Instant::now()) {
            return Reply::error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Rate limit exceeded",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        if let Some(fault) = draw.status {
            return status_fault(fault);
        }
        let query = match parse_contacts_query(req.uri().query()) {
            Ok(query) => query,
            Err(err) => return Reply::invalid(&err),
        };
        let (dataset, faults, cap) = {
            let state = lock(&self.faults);
            let f = state.faults();
            let dataset = match f.replica_lag {
                Some(lag) if bend.lagged => self.lagging(lag),
                _ => self.dataset(),
            };
            (dataset, f.clone(), state.page_cap(n))
        };
        if let Some(refusal) = refused_page_size(&faults, query.asked_per_page) {
            return refusal;
        }
        let view = View {
            shuffle: bend.shuffle,
            total_offset: bend.total_offset,
            refuse_past_end: faults.past_end_status.is_some(),
            damaged: &faults.damaged,
            cap,
            cap_report: faults.page_cap.map(|c| c.report).unwrap_or_default(),
            drop: (faults.p_drop > 0.0).then(|| (bend.drop_seed, faults.p_drop.min(1.0))),
            suppress: (faults.suppressed_share > 0.0).then_some(&faults),
            search_window: faults.search_window,
            past_end_last_page: faults.past_end == PastEndAnswer::LastPage,
            total_form: faults.total_form,
        };
        let page = match dataset.page_as(
            query.filter.list_number.as_deref(),
            query.filter.active,
            query.page,
            query.per_page,
            &view,
        ) {
            Ok(page) => page,
            Err(Refused::PastEnd) => {
                return Reply::past_end(faults.past_end_status.unwrap_or(404));
            }
            Err(Refused::WindowTooLarge) => return Reply::window_too_large(faults.search_window),
        };
        // Compressed before the body faults, which then cut or drop the compressed bytes.
        let (mut reply, body) = self.ok_json(req, page.body);
        reply.contacts = Some(page.contacts);
        if let Some(fault) = draw.body {
            bend_body(&mut reply, body, fault, draw.cut);
        }
        reply
    }

    /// `GET /v2/lists`: never faulted and drawing nothing from the fault RNG, so the contacts
    /// requests of a run see the same faults with or without it (see [`crate::lists`]).
    fn lists(&self, req: &Request<Incoming>) -> Reply {
        if let Some(refusal) = self.refusal(req) {
            return refusal;
        }
        let query = match parse_lists_query(req.uri().query()) {
            Ok(query) => query,
            Err(err) => return Reply::invalid(&err),
        };
        let served = self.lists_requests.fetch_add(1, Ordering::SeqCst) + 1;
        let flipped = self.lists_churn && served % 2 == 1;
        let (body, _) =
            crate::lists::lists_body(&self.dataset(), &query, self.lists_per_page, flipped);
        lock(&self.stats).lists_served += 1;
        self.ok_json(req, body).0
    }

    /// `GET /v2/lists/{id}`: one list, in the state the last listing request left it
    /// ([`MockConfig::lists_churn`]); `None` for an id no list has (a `404`).
    fn list(&self, req: &Request<Incoming>, id: u64) -> Option<Reply> {
        if let Some(refusal) = self.refusal(req) {
            return Some(refusal);
        }
        let flipped = self.lists_churn && self.lists_requests.load(Ordering::SeqCst) % 2 == 1;
        lock(&self.stats).lists_served += 1;
        let body = crate::lists::list_body(&self.dataset(), id, flipped)?;
        Some(self.ok_json(req, body).0)
    }

    /// A `200` JSON answer, compressed as the request accepts and [`MockConfig::compression`]
    /// offers; also returns the body as sent.
    fn ok_json(&self, req: &Request<Incoming>, json: Bytes) -> (Reply, Bytes) {
        let (body, coding) = self.encoder.encode(req.headers(), json);
        let mut reply = Reply::new(StatusCode::OK, JSON, body.clone());
        if let Some(coding) = coding {
            reply = reply.with_header(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(coding.token()),
            );
        }
        if self.encoder.offers_any() {
            reply = reply.with_header(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        (reply, body)
    }

    fn ground_truth(&self, req: &Request<Incoming>) -> Reply {
        match parse_filter_query(req.uri().query()) {
            Ok(filter) => Reply::new(
                StatusCode::OK,
                NDJSON,
                Bytes::from(
                    self.dataset()
                        .ndjson(filter.list_number.as_deref(), filter.active),
                ),
            ),
            Err(err) => Reply::invalid(&err),
        }
    }

    fn stats_reply(&self) -> Reply {
        let stats = lock(&self.stats).clone();
        match serde_json::to_vec(&stats) {
            Ok(body) => Reply::new(StatusCode::OK, JSON, Bytes::from(body)),
            Err(err) => {
                tracing::error!(%err, "cannot serialize mock stats");
                Reply::internal()
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%err, "cannot set TCP_NODELAY");
    }
    let service = service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(shared.handle(req).await) }
    });
    if let Err(err) = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%err, "mock connection ended with an error");
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // A send or a dropped `MockServer` both stop the server.
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                Err(err) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(%err, "mock server accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// A running mock of the Trackly API on a local port. See the [crate docs](crate).
///
/// Dropping it stops the server too (asynchronously); [`shutdown`](MockServer::shutdown) waits.
pub struct MockServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl fmt::Debug for MockServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockServer")
            .field("addr", &self.addr)
            .field("contacts", &self.contact_count())
            .finish_non_exhaustive()
    }
}

impl MockServer {
    /// Binds `config.addr`, generates the data set (on a blocking thread) and spawns the
    /// server on the current tokio runtime.
    ///
    /// # Errors
    /// When the address cannot be bound, or generating the data set panicked.
    pub async fn start(config: MockConfig) -> io::Result<MockServer> {
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let dataset_config = config.dataset;
        let dataset = tokio::task::spawn_blocking(move || Dataset::generate(&dataset_config))
            .await
            .map_err(io::Error::other)?;
        let shared = Arc::new(Shared {
            api_key: config.api_key,
            dataset: RwLock::new(Arc::new(dataset)),
            history: Mutex::new(VecDeque::new()),
            faults: Mutex::new(FaultState::new(Faults::default(), 0)),
            stats: Mutex::new(MockStats::default()),
            contacts_requests: AtomicU64::new(0),
            lists_per_page: config.lists_per_page,
            lists_churn: config.lists_churn,
            lists_requests: AtomicU64::new(0),
            encoder: Encoder::new(config.compression),
            link: config.bandwidth.map(|rate| Arc::new(Link::new(rate))),
        });
        shared.install_faults(config.faults);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
        Ok(MockServer {
            shared,
            addr,
            stop,
            task,
        })
    }

    /// Base URL, `http://127.0.0.1:PORT/api`; clients call `{url}/v2/contacts`.
    ///
    /// An unspecified bind address (`0.0.0.0`, `::`) is reported as the loopback address.
    pub fn url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}/api", SocketAddr::new(ip, self.addr.port()))
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API key the server accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> MockStats {
        lock(&self.shared.stats).clone()
    }

    /// Every contact matching the filter, one JSON object per line, exactly the text the server
    /// serves, in served order, for the current state (drift applied so far).
    ///
    /// `list_number` is matched exactly (no decoding, no trimming); an unknown one gives nothing.
    pub fn ground_truth(&self, list_number: Option<&str>, active: Option<bool>) -> Vec<u8> {
        self.shared.dataset().ndjson(list_number, active)
    }

    /// Every sending list, deleted ones included, one JSON object per line in `id` order,
    /// exactly the text `/v2/lists` serves, for the current state: `contact_count` counts the
    /// active contacts now (drift applied so far).
    pub fn lists_ground_truth(&self) -> Vec<u8> {
        self.shared.dataset().lists_ndjson()
    }

    /// Number of contacts now (drift applied so far).
    pub fn contact_count(&self) -> usize {
        self.shared.dataset().len()
    }

    /// Replaces the faults. The fault RNG restarts from the new `fault_seed`, the rate limiter
    /// starts full, and drift counts requests from this call on (`after_request: 0` applies
    /// at once). Drift already applied stays applied.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.install_faults(faults);
    }

    /// Stops accepting, closes open connections and waits for the server task to end.
    pub async fn shutdown(self) {
        // The receiver is gone only if the task already ended; nothing to stop then.
        let _ = self.stop.send(());
        if let Err(err) = self.task.await {
            tracing::warn!(%err, "mock server task ended abnormally");
        }
    }
}

/// The answer of a drawn status fault: a JSON 500, nginx's HTML 502, or a 503 asking to retry.
fn status_fault(fault: StatusFault) -> Reply {
    match fault {
        StatusFault::Internal => Reply::internal(),
        StatusFault::BadGateway => Reply::new(
            StatusCode::BAD_GATEWAY,
            HTML,
            Bytes::from_static(BAD_GATEWAY_HTML.as_bytes()),
        )
        .with_header(header::SERVER, HeaderValue::from_static("nginx")),
        StatusFault::Unavailable => Reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "The service is temporarily unavailable. Please retry shortly.",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(1u32)),
    }
}

/// Applies a drawn body fault to `reply`, whose (possibly compressed) body is `body`; `cut`
/// places a cut or a reset.
fn bend_body(reply: &mut Reply, body: Bytes, fault: BodyFault, cut: u64) {
    let len = body.len() as u64;
    match fault {
        BodyFault::Truncate => {
            // A cut strictly inside the single top-level object (or compressed stream):
            // never valid JSON, never a complete stream.
            let cut = 1 + cut % len.saturating_sub(1).max(1);
            reply.payload = Payload::Full(body.slice(..cut as usize));
            reply.truncated = true;
        }
        BodyFault::Reset => {
            reply.payload = Payload::Reset {
                sent: (cut % len.max(1)) as usize,
                body,
            };
        }
        BodyFault::Slow(over) => {
            reply.payload = Payload::Slow { body, over };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(reply: Reply) -> Bytes {
        match reply.payload {
            Payload::Full(body) => body,
            _ => panic!("error bodies are sent whole"),
        }
    }

    #[test]
    fn error_bodies_are_the_documented_json() {
        assert_eq!(
            &body(Reply::unauthorized())[..],
            br#"{"error":"Invalid API key","code":"invalid_api_key"}"#
        );
        assert_eq!(
            &body(Reply::missing_key())[..],
            br#"{"error":"API key required","code":"missing_api_key"}"#
        );
        assert_eq!(
            &body(Reply::suspended())[..],
            br#"{"error":"Account is suspended"}"#
        );
        assert_eq!(
            &body(Reply::internal())[..],
            br#"{"error":"An unexpected server error occurred.","code":"internal_error"}"#
        );
        let reply = Reply::invalid(&ParamError {
            parameter: "page",
            reason: "must be a positive integer",
        });
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            &body(reply)[..],
            br#"{"error":"Invalid value for 'page'","code":"invalid_parameter","message":"must be a positive integer"}"#
        );
    }
}
