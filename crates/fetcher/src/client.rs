//! The HTTP client: configuration, validation, and one page request with retries.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, HeaderMap, HeaderValue, LOCATION, RETRY_AFTER,
};
use trackly_contacts::Pass;
use trackly_contacts::page::Page;

use crate::decode_pool::{DecodePool, MAX_DECODE_THREADS};
use url::Url;

use crate::admission::{Admission, Limits};
use crate::api_error::ApiError;
use crate::content_coding::{self, BodyDecoder, Coding};
use crate::error::{AttemptError, FetchError};
use crate::plan::Window;
use crate::query::Query;
use crate::retry::{
    RetryCause, RetryConfig, RetryReport, Secs, Unreported, Verdict, count, parse_retry_after,
};
use crate::stats::StatsHandle;

/// Where the production API lives.
pub const DEFAULT_BASE_URL: &str = "https://app.tracklysms.com/api";
/// The documented maximum of `per_page`.
pub const MAX_PER_PAGE: u32 = 1000;
/// Responses that are, or decode to, more than this are refused as invalid (a page of 1000
/// contacts is ~1 MiB; a compressed body is held to its decoded size, against bombs).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// An API key. Its `Debug` output is redacted and it has no `Display`, so it cannot end up in a
/// log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key as given; [`ClientBuilder::build`] checks it as [`ApiKey::parse`] does.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }

    /// A key as people paste it: whitespace and newlines around it are dropped; whitespace or
    /// control characters inside it are refused (the documented first cause of a 401). The
    /// error names the position and the kind of character, never the key.
    pub fn parse(text: &str) -> Result<ApiKey, InvalidApiKey> {
        let key = text.trim();
        if key.is_empty() {
            return Err(InvalidApiKey::Empty);
        }
        if let Some((index, c)) = key
            .chars()
            .enumerate()
            .find(|(_, c)| c.is_whitespace() || c.is_control())
        {
            return Err(InvalidApiKey::Inside {
                what: match c {
                    ' ' => "a space",
                    '\t' => "a tab",
                    '\n' | '\r' => "a line break",
                    c if c.is_whitespace() => "a whitespace character",
                    _ => "a control character",
                },
                position: index + 1,
                length: key.chars().count(),
            });
        }
        Ok(ApiKey(key.to_owned()))
    }

    /// The key itself, for the one place that must send it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

/// Why a text is not usable as an API key; never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidApiKey {
    /// Nothing but whitespace.
    #[error("the API key is empty")]
    Empty,
    /// Whitespace or a control character between the key's first and last character.
    #[error(
        "the API key has {what} inside it (character {position} of {length}); keys are one word (`trk_` and 32 letters and digits): check how it was copied"
    )]
    Inside {
        /// The kind of character, e.g. `a space`.
        what: &'static str,
        /// 1-based position of the character in the trimmed key.
        position: usize,
        /// Characters in the trimmed key.
        length: usize,
    },
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The builder's plain setters: `with_x(value)` sets the setting `x` to `value` as given.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident($field:ident: $ty:ty);)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, $field: $ty) -> Self {
            self.$field = $field;
            self
        }
    )*};
}

/// Builds a [`Client`]. Every setting has a default except the API key.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: Option<ApiKey>,
    request_timeout: Duration,
    concurrency: usize,
    per_page: u32,
    retry: RetryConfig,
    max_rps: Option<f64>,
    allow_http: bool,
    dedup_window: Option<u64>,
    http_compression: bool,
    decode_threads: usize,
}

/// Pages behind the main pass that de-duplication remembers by default (see
/// [`ClientBuilder::with_dedup_window`]).
pub const DEFAULT_DEDUP_WINDOW: u64 = 256;

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: None,
            request_timeout: Duration::from_secs(60),
            concurrency: 8,
            per_page: MAX_PER_PAGE,
            retry: RetryConfig::default(),
            max_rps: None,
            allow_http: false,
            dedup_window: Some(DEFAULT_DEDUP_WINDOW),
            http_compression: true,
            decode_threads: crate::decode_pool::default_decode_threads(),
        }
    }
}

impl ClientBuilder {
    /// A builder with the defaults.
    pub fn new() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A builder with `TRACKLY_API_KEY` and `TRACKLY_BASE_URL` applied when set. This is the only
    /// place in the crate that reads the environment.
    pub fn from_env() -> ClientBuilder {
        let mut builder = ClientBuilder::default();
        if let Ok(key) = std::env::var("TRACKLY_API_KEY") {
            builder = builder.with_api_key(ApiKey::new(key));
        }
        if let Ok(url) = std::env::var("TRACKLY_BASE_URL") {
            builder = builder.with_base_url(url);
        }
        builder
    }

    /// The API base, e.g. `https://app.tracklysms.com/api`; requests go to `{base}/v2/contacts`.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The key sent as `X-Api-Key`.
    pub fn with_api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    setters! {
        /// Time limit of one request, body included (default 60 s; more than zero).
        with_request_timeout(request_timeout: Duration);
        /// Most requests in flight at once (default 8); the adaptive limit never goes above it.
        with_concurrency(concurrency: usize);
        /// Contacts per page, 1 to 1000 (default 1000).
        with_per_page(per_page: u32);
        /// The retry policy.
        with_retry(retry: RetryConfig);
        /// A client-side ceiling on requests per second.
        with_max_rps(max_rps: Option<f64>);
        /// Allow plain `http://` to hosts other than loopback (the API key then travels unencrypted).
        with_allow_http(allow_http: bool);
        /// How many pages behind the main pass de-duplication remembers (default 256, widened
        /// automatically when a drift moves rows further). A contact can only be served twice when
        /// the listing moved it, which moves it a few pages at most, so memory stays flat whatever
        /// the number of contacts. `None` remembers every contact of the run (24–40 bytes each):
        /// exact even for an API that serves a contact twice far apart.
        with_dedup_window(dedup_window: Option<u64>);
        /// Ask the API for compressed bodies (default on): `Accept-Encoding: br, zstd;q=0.9,
        /// gzip;q=0.8`; off sends `Accept-Encoding: identity`. Whatever the server sends in one of
        /// those codings (or `deflate`) is decoded as it streams in, either way; the bytes on the
        /// wire and the decoded bytes are counted apart ([`FetchStats::wire_bytes`],
        /// [`FetchStats::body_bytes`]).
        ///
        /// [`FetchStats::wire_bytes`]: crate::FetchStats::wire_bytes
        /// [`FetchStats::body_bytes`]: crate::FetchStats::body_bytes
        with_http_compression(http_compression: bool);
        /// Threads that decode response bodies (default: one per core, from
        /// `std::thread::available_parallelism`). Decoding runs there, off the async runtime, after
        /// a request's admission permit is released; 1 to [`crate::MAX_DECODE_THREADS`].
        with_decode_threads(decode_threads: usize);
    }

    /// Validates the settings and builds the client. Makes no request.
    pub fn build(self) -> Result<Client, FetchError> {
        let key = self.checked_key()?;
        self.check_ranges()?;
        let base = parse_base_url(&self.base_url, self.allow_http)?;
        let http = self.http_client(&base)?;
        let api_root = base.as_str().trim_end_matches('/');
        let decode =
            DecodePool::new(self.decode_threads).map_err(|e| invalid("decode_threads", e))?;
        Ok(Client {
            inner: Arc::new(Inner {
                decode,
                http,
                contacts_url: format!("{api_root}/v2/contacts"),
                lists_url: format!("{api_root}/v2/lists"),
                key,
                per_page: self.per_page,
                concurrency: self.concurrency,
                retry: self.retry,
                max_rps: self.max_rps,
                dedup_window: self.dedup_window,
                retry_report: Mutex::default(),
            }),
        })
    }

    /// The key as the `X-Api-Key` header (marked sensitive), or why there is none.
    fn checked_key(&self) -> Result<HeaderValue, FetchError> {
        let key = self
            .api_key
            .as_ref()
            .ok_or_else(|| {
                invalid(
                    "api_key",
                    "no API key (`with_api_key`, or TRACKLY_API_KEY with `from_env`)".into(),
                )
            })
            .and_then(|key| {
                ApiKey::parse(key.expose_secret()).map_err(|e| invalid("api_key", e.to_string()))
            })?;
        let mut header = HeaderValue::from_str(key.expose_secret()).map_err(|_| {
            invalid(
                "api_key",
                "the API key contains characters not allowed in an HTTP header".into(),
            )
        })?;
        header.set_sensitive(true);
        Ok(header)
    }

    /// Every numeric setting in its range: the one place that says what is allowed (the
    /// CLI names the setting's flag in front of the reason).
    fn check_ranges(&self) -> Result<(), FetchError> {
        let out_of = |field, value: &dyn fmt::Display, range: &str| {
            Err(invalid(field, format!("{value} is out of range {range}")))
        };
        if !(1..=MAX_PER_PAGE).contains(&self.per_page) {
            return out_of("per_page", &self.per_page, &format!("1..={MAX_PER_PAGE}"));
        }
        if !(1..=256).contains(&self.concurrency) {
            return out_of("concurrency", &self.concurrency, "1..=256");
        }
        if !(1..=MAX_DECODE_THREADS).contains(&self.decode_threads) {
            let range = format!("1..={MAX_DECODE_THREADS}");
            return out_of("decode_threads", &self.decode_threads, &range);
        }
        if let Some(rps) = self.max_rps
            && !(rps.is_finite() && rps > 0.0)
        {
            return Err(invalid("max_rps", format!("{rps} is not a positive rate")));
        }
        if self.retry.max_attempts == 0 {
            return Err(invalid("max_attempts", "must be at least 1".into()));
        }
        let no_time = "must be more than zero seconds".to_owned();
        if self.retry.retry_timeout.is_zero() {
            return Err(invalid("retry_timeout", no_time));
        }
        if self.request_timeout.is_zero() {
            return Err(invalid("request_timeout", no_time));
        }
        Ok(())
    }

    /// The HTTP client: compression asked or not, the timeouts, and redirects followed only
    /// on `base`'s origin (the key goes nowhere else).
    fn http_client(&self, base: &Url) -> Result<reqwest::Client, FetchError> {
        let origin = base.origin();
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 || attempt.url().origin() != origin {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let accept = if self.http_compression {
            content_coding::ACCEPT_COMPRESSED
        } else {
            content_coding::ACCEPT_IDENTITY
        };
        let headers = HeaderMap::from_iter([(ACCEPT_ENCODING, HeaderValue::from_static(accept))]);
        reqwest::Client::builder()
            .default_headers(headers)
            // The body must reach us as it was sent, to count it before decoding it (in
            // `content_coding`); these keep reqwest from decoding should a dependency enable
            // its codecs.
            .no_gzip()
            .no_brotli()
            .no_zstd()
            .no_deflate()
            .user_agent(concat!("trackly-export/", env!("CARGO_PKG_VERSION")))
            .timeout(self.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(redirect)
            .build()
            .map_err(|e| invalid("http_client", e.to_string()))
    }
}

/// A setting the builder refuses.
fn invalid(field: &'static str, reason: String) -> FetchError {
    FetchError::InvalidConfig { field, reason }
}

fn parse_base_url(text: &str, allow_http: bool) -> Result<Url, FetchError> {
    let invalid = |reason| invalid("base_url", reason);
    let url = Url::parse(text).map_err(|e| invalid(format!("{text:?} is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(invalid(format!(
            "{text:?} must not carry credentials or a query string"
        )));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_http || is_loopback(&url) => Ok(url),
        "http" => Err(invalid(format!(
            "{text:?} is plain HTTP to a non-loopback host; use https:// (or allow plain HTTP explicitly)"
        ))),
        other => Err(invalid(format!(
            "{text:?} has scheme {other:?}; expected https://"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// A client of `GET /v2/contacts`. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

/// What every read of one run shares (the client, the query, the admission, the counters);
/// cheap to clone into a task of its own.
#[derive(Clone)]
pub(crate) struct Reader {
    pub(crate) client: Client,
    pub(crate) query: Query,
    pub(crate) admission: Arc<Admission>,
    pub(crate) stats: StatsHandle,
}

impl Reader {
    /// Reads `window` of the run's query.
    pub(crate) async fn fetch(&self, window: Window) -> Result<Page, FetchError> {
        let Window { page, per_page } = window;
        self.client
            .fetch_page(&self.query, page, per_page, &self.admission, &self.stats)
            .await
    }
}

pub(crate) struct Inner {
    http: reqwest::Client,
    /// Where response bodies are decoded.
    decode: DecodePool,
    contacts_url: String,
    lists_url: String,
    key: HeaderValue,
    pub(crate) per_page: u32,
    pub(crate) concurrency: usize,
    retry: RetryConfig,
    pub(crate) max_rps: Option<f64>,
    pub(crate) dedup_window: Option<u64>,
    /// Which retries get a line at the default log level; shared by the client's clones.
    retry_report: Mutex<RetryReport>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("contacts_url", &self.inner.contacts_url)
            .field("api_key", &"<redacted>")
            .field("per_page", &self.inner.per_page)
            .field("concurrency", &self.inner.concurrency)
            .field("retry", &self.inner.retry)
            .field("max_rps", &self.inner.max_rps)
            .field("decode_threads", &self.inner.decode.threads())
            .finish()
    }
}

/// The outcome of one failed attempt.
enum Failure {
    Fatal(FetchError),
    Retry {
        cause: RetryCause,
        error: AttemptError,
        retry_after: Option<Duration>,
    },
}

impl Failure {
    /// A retryable failure of an answer that cannot be used.
    fn invalid_body(message: String, retry_after: Option<Duration>) -> Failure {
        Failure::Retry {
            cause: RetryCause::InvalidBody,
            error: AttemptError::InvalidBody {
                message: message.into(),
            },
            retry_after,
        }
    }
}

/// One retry about to wait, as the log lines tell it.
struct RetryLine<'a> {
    page: u64,
    next_attempt: u32,
    max_attempts: u32,
    cause: RetryCause,
    message: &'a str,
    wait: Duration,
    retry_after: Option<Duration>,
    limits: Limits,
}

impl RetryLine<'_> {
    fn info(&self, unreported: &Unreported) {
        let mut text = format!(
            "page {}: {}; retry {} of {} in {}",
            self.page,
            self.message,
            self.next_attempt,
            self.max_attempts,
            Secs(self.wait)
        );
        if let Some(after) = self.retry_after {
            text.push_str(&format!(" (Retry-After: {})", Secs(after)));
        }
        if self.cause == RetryCause::RateLimited || self.retry_after.is_some() {
            let l = &self.limits;
            text.push_str(&format!(
                "; now at most {} of {} requests in flight",
                l.concurrency, l.max_concurrency
            ));
            if let Some(rate) = l.rate {
                text.push_str(&format!(", {rate:.1} requests/s"));
            }
        }
        if unreported.retries > 0 {
            text.push_str(&format!(
                "; {} of {} since the last such line (at debug level)",
                count(unreported.retries, "other retry", "other retries"),
                count(unreported.pages, "page", "pages"),
            ));
        }
        tracing::info!(
            page = self.page,
            attempt = self.next_attempt,
            cause = %self.cause,
            wait_s = (self.wait.as_secs_f64() * 10.0).round() / 10.0,
            "{text}"
        );
    }

    fn debug(&self) {
        // The request rate allowed now, e.g. `16.0/s`, or `unpaced`.
        let pace = self
            .limits
            .rate
            .map_or_else(|| "unpaced".to_owned(), |r| format!("{r:.1}/s"));
        tracing::debug!(
            page = self.page,
            attempt = self.next_attempt,
            max_attempts = self.max_attempts,
            cause = %self.cause,
            wait_ms = self.wait.as_millis() as u64,
            concurrency = self.limits.concurrency,
            pace = %pace,
            error = %self.message,
            "retrying page"
        );
    }
}

impl Client {
    /// A builder with the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client configured from `TRACKLY_API_KEY` and `TRACKLY_BASE_URL`.
    pub fn from_env() -> Result<Client, FetchError> {
        ClientBuilder::from_env().build()
    }

    /// Contacts per page this client requests.
    pub fn per_page(&self) -> u32 {
        self.inner.per_page
    }

    /// Requests page 1 only: checks the key and the query and tells how many contacts and
    /// pages an export would fetch.
    pub async fn first_page(&self, query: &Query) -> Result<Page, FetchError> {
        let admission = Admission::new(1, self.inner.max_rps);
        let per_page = u64::from(self.inner.per_page);
        self.fetch_page(query, 1, per_page, &admission, &StatsHandle::default())
            .await
    }

    /// The URL of one page (contains no secret).
    fn url(&self, query: &Query, page: u64, per_page: u64) -> String {
        let per_page = u32::try_from(per_page).unwrap_or(MAX_PER_PAGE);
        format!(
            "{}?{}",
            self.inner.contacts_url,
            query.to_query_string(page, per_page)
        )
    }

    /// The URL of list `id` (contains no secret).
    pub(crate) fn list_url(&self, id: i64) -> String {
        format!("{}/{id}", self.inner.lists_url)
    }

    /// The URL of one page of lists (`status` filters; contains no secret). The page size is
    /// the caller's (`lists::LISTS_PER_PAGE`): this module does not depend on the lists'.
    pub(crate) fn lists_url(&self, status: Option<&str>, page: u64, per_page: u32) -> String {
        let filter = status.map(|s| format!("status={s}&")).unwrap_or_default();
        format!(
            "{}?{filter}page={page}&per_page={per_page}",
            self.inner.lists_url
        )
    }

    /// Fetches one page of `per_page` contacts, retrying as the policy says.
    pub(crate) async fn fetch_page(
        &self,
        query: &Query,
        page: u64,
        per_page: u64,
        admission: &Arc<Admission>,
        stats: &StatsHandle,
    ) -> Result<Page, FetchError> {
        let url = self.url(query, page, per_page);
        self.get(url, page, admission, stats, move |body| {
            // An answer for another page than asked is the run's to judge (Django answers the
            // last page for a page past the end), not a reason to retry; but page 1 is never past
            // the end, so another number there is a broken answer, retried.
            let parsed = Page::parse(page, Pass::Main, body)
                .map_err(|e| format!("the body is not the documented JSON: {e}"))?;
            match parsed.pagination().page {
                Some(other) if page == 1 && other != 1 => Err(format!(
                    "asked for page 1 but the response says page {other}"
                )),
                _ => Ok(parsed),
            }
        })
        .await
    }

    /// One GET with the retry policy: `parse` turns a `200` body into `T`, or says why the
    /// body is not what was asked for (retried as an invalid body). `parse` runs on the decode
    /// threads, after the request's admission permit is released.
    pub(crate) async fn get<T: Send + 'static>(
        &self,
        url: String,
        page: u64,
        admission: &Arc<Admission>,
        stats: &StatsHandle,
        parse: impl Fn(Bytes) -> Result<T, String> + Clone + Send + 'static,
    ) -> Result<T, FetchError> {
        let started = Instant::now();
        let retry = &self.inner.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let permit = admission.acquire().await;
            let sent = Instant::now();
            let outcome = self.attempt(&url, page, stats).await;
            drop(permit);
            stats.update(|s| {
                s.requests += 1;
                s.api_time += sent.elapsed();
            });
            let outcome = match outcome {
                Ok((body, retry_after)) => {
                    self.decode(page, body, retry_after, &parse, stats).await
                }
                Err(failure) => Err(failure),
            };
            let (cause, last, retry_after) = match outcome {
                Ok(parsed) => {
                    admission.on_success();
                    return Ok(parsed);
                }
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Retry {
                    cause,
                    error,
                    retry_after,
                }) => (cause, error, retry_after),
            };
            stats.update(|s| s.retries.count(cause));
            if cause == RetryCause::RateLimited || retry_after.is_some() {
                admission.on_throttle();
            }
            let elapsed = started.elapsed();
            let wait = match retry.after_failure(attempt, elapsed, retry_after) {
                Verdict::Wait(wait) => wait,
                Verdict::GiveUp(gave_up) => {
                    return Err(FetchError::RetriesExhausted {
                        page,
                        url,
                        attempts: attempt,
                        elapsed,
                        gave_up,
                        last,
                    });
                }
            };
            self.report_retry(&RetryLine {
                page,
                next_attempt: attempt + 1,
                max_attempts: retry.max_attempts,
                cause,
                message: &last.to_string(),
                wait,
                retry_after,
                limits: admission.limits(),
            });
            tokio::time::sleep(wait).await;
        }
    }

    /// Logs a retry: at info when [`RetryReport`] says it is news (the first of a wave, one
    /// every few seconds while a wave lasts, a long wait), at debug otherwise. The message
    /// and the URL never hold the key (it travels in a header).
    fn report_retry(&self, line: &RetryLine<'_>) {
        let news = self
            .inner
            .retry_report
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retry(Instant::now(), line.page, line.wait);
        match news {
            Some(unreported) => line.info(&unreported),
            None => line.debug(),
        }
    }

    /// Runs `parse` over a `200` body on the decode threads; its time counts as `decode_time`.
    async fn decode<T: Send + 'static>(
        &self,
        page: u64,
        body: Bytes,
        retry_after: Option<Duration>,
        parse: &(impl Fn(Bytes) -> Result<T, String> + Clone + Send + 'static),
        stats: &StatsHandle,
    ) -> Result<T, Failure> {
        let started = Instant::now();
        let parse = parse.clone();
        let decoded = self.inner.decode.run(move || parse(body)).await;
        stats.update(|s| s.decode_time += started.elapsed());
        match decoded {
            Ok(Ok(parsed)) => Ok(parsed),
            Ok(Err(why)) => Err(Failure::invalid_body(why, retry_after)),
            Err(bug) => Err(Failure::Fatal(FetchError::Internal {
                reason: format!("decoding page {page}: {bug}"),
            })),
        }
    }

    /// One request: a `200` answer's body (and its `Retry-After`, if any), or why not.
    async fn attempt(
        &self,
        url: &str,
        page: u64,
        stats: &StatsHandle,
    ) -> Result<(Bytes, Option<Duration>), Failure> {
        let response = self
            .inner
            .http
            .get(url)
            .header("X-Api-Key", self.inner.key.clone())
            .send()
            .await
            .map_err(transport_failure)?;
        let status = response.status();
        stats.update(|s| *s.responses_by_status.entry(status.as_u16()).or_default() += 1);
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        if status.is_redirection() {
            return Err(Failure::Fatal(unfollowed_redirect(&response, url, page)));
        }
        let body = read_body(response, stats).await;
        if status != StatusCode::OK {
            // An error answer: what the API said counts, however the body arrived.
            let answer = ErrorAnswer {
                status,
                body: body.ok(),
                retry_after,
            };
            return Err(answer.failure(url, page, stats));
        }
        match body {
            Ok(body) => Ok((body, retry_after)),
            Err(Failure::Retry { cause, error, .. }) => Err(Failure::Retry {
                cause,
                error,
                retry_after,
            }),
            Err(fatal) => Err(fatal),
        }
    }
}

/// A redirect that reached the client: same-origin ones were followed (up to 5), so this is a
/// loop, one without a usable `Location`, or one to another origin (never followed: the key
/// would go there).
fn unfollowed_redirect(response: &reqwest::Response, url: &str, page: u64) -> FetchError {
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no Location header")
        .to_owned();
    let same_origin = response
        .url()
        .join(&location)
        .is_ok_and(|to| Url::parse(url).is_ok_and(|from| from.origin() == to.origin()));
    if same_origin || location == "no Location header" {
        return FetchError::Rejected {
            page,
            status: response.status().as_u16(),
            url: url.to_owned(),
            api: None,
            body: format!(
                "a redirect that cannot be followed (loop or too many redirects; Location: {location})"
            ),
        };
    }
    let target = response.url().join(&location).ok();
    FetchError::CrossOriginRedirect {
        page,
        url: url.to_owned(),
        base_url: target.as_ref().and_then(api_base_of),
        location: target.map_or(location, String::from),
    }
}

/// An answer other than `200` or a redirect.
struct ErrorAnswer {
    status: StatusCode,
    /// Its body, if it could be read.
    body: Option<Bytes>,
    retry_after: Option<Duration>,
}

impl ErrorAnswer {
    /// What the answer means for the request: a key refused, a retry, or the end of it.
    /// Counts it by status and what the API said.
    fn failure(self, url: &str, page: u64, stats: &StatsHandle) -> Failure {
        let status = self.status.as_u16();
        let body = self.body.as_deref();
        let api = body.and_then(ApiError::parse).map(Box::new);
        let counted = match &api {
            Some(api) => format!("{status} {}", api.key()),
            None => status.to_string(),
        };
        stats.update(|s| *s.api_errors.entry(counted).or_default() += 1);
        let said = match &api {
            Some(api) => format!("HTTP {status} {api}"),
            None => format!("HTTP {status}: {}", excerpt(body)),
        };
        let retryable = |cause, api| Failure::Retry {
            cause,
            error: AttemptError::Status {
                status,
                api,
                message: said.into(),
            },
            retry_after: self.retry_after,
        };
        let url = url.to_owned();
        match self.status {
            StatusCode::UNAUTHORIZED => Failure::Fatal(FetchError::Unauthorized { url, api }),
            StatusCode::FORBIDDEN => Failure::Fatal(FetchError::Forbidden { url, api }),
            StatusCode::TOO_MANY_REQUESTS => retryable(RetryCause::RateLimited, api),
            s if s.is_server_error() => retryable(RetryCause::ServerError, api),
            _ => Failure::Fatal(FetchError::Rejected {
                page,
                status,
                url,
                body: excerpt(body),
                api,
            }),
        }
    }
}

/// The base URL that reaches the same endpoint as `target`: everything before `/v2/`.
fn api_base_of(target: &Url) -> Option<String> {
    let path = target.path();
    let cut = path.find("/v2/")?;
    let mut base = target.clone();
    base.set_query(None);
    base.set_fragment(None);
    base.set_path(&path[..cut]);
    Some(base.as_str().trim_end_matches('/').to_owned())
}

/// Reads the whole body, decoding its `Content-Encoding` chunk by chunk as it arrives, and
/// counts once the bytes received and what they decoded to (a failed read's too).
async fn read_body(response: reqwest::Response, stats: &StatsHandle) -> Result<Bytes, Failure> {
    let mut count = BodyCount::default();
    let body = collect_body(response, &mut count).await;
    stats.update(|s| {
        s.wire_bytes += count.wire;
        s.body_bytes += count.decoded;
        *s.responses_by_encoding
            .entry(count.coding.to_owned())
            .or_default() += 1;
    });
    body
}

/// What one body cost on the wire and what it decoded to.
struct BodyCount {
    wire: u64,
    decoded: u64,
    coding: &'static str,
}

impl Default for BodyCount {
    fn default() -> Self {
        BodyCount {
            wire: 0,
            decoded: 0,
            coding: Coding::Identity.name(),
        }
    }
}

async fn collect_body(
    mut response: reqwest::Response,
    count: &mut BodyCount,
) -> Result<Bytes, Failure> {
    // A body this client cannot read is an invalid body, like the HTML of a proxy: retried.
    let invalid = |message: String| Failure::invalid_body(message, None);
    let header = response.headers().get(CONTENT_ENCODING);
    let coding = Coding::from_header(header.map(HeaderValue::as_bytes)).map_err(|unsupported| {
        count.coding = "unsupported";
        invalid(unsupported.to_string())
    })?;
    count.coding = coding.name();
    let hint = response
        .content_length()
        .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut decoder =
        BodyDecoder::new(coding, hint, MAX_BODY_BYTES).map_err(|e| invalid(e.to_string()))?;
    let result = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                count.wire += chunk.len() as u64;
                if let Err(e) = decoder.push(&chunk) {
                    break Err(invalid(e.to_string()));
                }
            }
            Ok(None) => {
                let decoded = decoder.decoded_len();
                let body = decoder.finish();
                count.decoded = body.as_ref().map_or(decoded, Bytes::len) as u64;
                return body.map(without_bom).map_err(|e| invalid(e.to_string()));
            }
            Err(e) => break Err(transport_failure(e)),
        }
    };
    count.decoded = decoder.decoded_len() as u64;
    result
}

fn transport_failure(error: reqwest::Error) -> Failure {
    let cause = if error.is_timeout() {
        RetryCause::Timeout
    } else {
        RetryCause::Connection
    };
    // reqwest's Display names the URL, never headers, so the key cannot appear here.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    if let Some(origin) = plain_http_answer(&error, &message) {
        // A TLS handshake answered in plain HTTP: no retry can fix a wrong scheme.
        return Failure::Fatal(invalid(
            "base_url",
            format!(
                "{origin} answers plain HTTP, not https; use http:// for a server on loopback \
                 (or --allow-http), or the server's https port"
            ),
        ));
    }
    Failure::Retry {
        cause,
        error: AttemptError::Transport {
            timeout: error.is_timeout(),
            message: message.into(),
            source: error,
        },
        retry_after: None,
    }
}

/// The body without a leading UTF-8 byte-order mark, which some proxies and Windows servers put
/// before JSON (RFC 8259 lets a parser ignore it); the bytes after it are the same slice.
fn without_bom(body: Bytes) -> Bytes {
    if body.starts_with(b"\xEF\xBB\xBF") {
        body.slice(3..)
    } else {
        body
    }
}

/// `https://host:port` of a request whose TLS handshake got a plain-HTTP answer (rustls:
/// "received corrupt message of type InvalidContentType").
fn plain_http_answer(error: &reqwest::Error, message: &str) -> Option<String> {
    let url = error.url()?;
    if url.scheme() != "https" || !message.contains("InvalidContentType") {
        return None;
    }
    Some(format!(
        "https://{}{}",
        url.host_str()?,
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    ))
}

fn excerpt(body: Option<&[u8]>) -> String {
    let Some(body) = body else {
        return "(no body)".into();
    };
    let text = String::from_utf8_lossy(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return "(empty body)".into();
    }
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_before_the_body_is_dropped() {
        let body = Bytes::from_static(b"\xEF\xBB\xBF{\"contacts\":[]}");
        assert_eq!(&without_bom(body)[..], b"{\"contacts\":[]}");
        let plain = Bytes::from_static(b"{}");
        assert_eq!(&without_bom(plain)[..], b"{}");
    }

    fn builder() -> ClientBuilder {
        Client::builder().with_api_key(ApiKey::new("trk_secret_123"))
    }

    #[test]
    fn https_is_required_except_for_loopback() {
        assert!(
            builder()
                .with_base_url("http://127.0.0.1:8080/api")
                .build()
                .is_ok()
        );
        assert!(
            builder()
                .with_base_url("http://localhost:1/api")
                .build()
                .is_ok()
        );
        assert!(
            builder()
                .with_base_url("http://[::1]:1/api")
                .build()
                .is_ok()
        );
        assert!(
            builder()
                .with_base_url("https://example.com/api")
                .build()
                .is_ok()
        );
        let err = builder()
            .with_base_url("http://example.com/api")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("plain HTTP"), "{err}");
        assert!(
            builder()
                .with_base_url("http://example.com/api")
                .with_allow_http(true)
                .build()
                .is_ok()
        );
        assert!(
            builder()
                .with_base_url("ftp://example.com")
                .build()
                .is_err()
        );
        assert!(builder().with_base_url("not a url").build().is_err());
    }

    #[test]
    fn settings_are_validated_before_any_request() {
        assert!(Client::builder().build().unwrap_err().is_config());
        assert!(builder().with_per_page(0).build().is_err());
        assert!(builder().with_per_page(1001).build().is_err());
        assert!(builder().with_concurrency(0).build().is_err());
        assert!(builder().with_max_rps(Some(0.0)).build().is_err());
        assert!(builder().with_decode_threads(0).build().is_err());
        assert!(builder().with_decode_threads(257).build().is_err());
        let zero = builder().with_request_timeout(Duration::ZERO).build();
        assert!(zero.is_err_and(|e| e.to_string().contains("request_timeout")));
        assert!(
            Client::builder()
                .with_api_key(ApiKey::new("bad\nkey"))
                .build()
                .is_err()
        );
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let b = builder();
        assert!(!format!("{b:?}").contains("trk_secret_123"));
        let client = b.build().unwrap();
        assert!(!format!("{client:?}").contains("trk_secret_123"));
    }

    #[test]
    fn page_urls_percent_encode_the_list_number() {
        let client = builder()
            .with_base_url("http://127.0.0.1:9/api/")
            .build()
            .unwrap();
        let query = Query::all().with_list_number("+18005551234".parse().unwrap());
        assert_eq!(
            client.url(&query, 3, 1000),
            "http://127.0.0.1:9/api/v2/contacts?list_number=%2B18005551234&page=3&per_page=1000"
        );
    }
}
