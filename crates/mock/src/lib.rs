//! A faithful, fast, fault-injecting mock of the Trackly contacts API (`GET /v2/contacts`).
//!
//! [`MockServer`] serves a deterministic, realistic data set ([`Dataset`]) over HTTP/1.1 on a
//! local port, exactly as the API documentation describes it, and can inject the failures a
//! real deployment shows: latency, rate limiting, 500/502/503, truncated bodies, dropped
//! connections, slow bodies, and data that changes while a client pages through it
//! ([`Drift`]). Tests compare what a client exported with [`MockServer::ground_truth`].
//!
//! # Example
//!
//! ```
//! use trackly_mock::{DatasetConfig, Faults, MockConfig, MockServer};
//!
//! # fn main() -> std::io::Result<()> {
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let server = MockServer::start(MockConfig {
//!     dataset: DatasetConfig { contacts: 120, ..DatasetConfig::default() },
//!     faults: Faults { p_503: 0.1, fault_seed: 1, ..Faults::default() },
//!     ..MockConfig::default()
//! })
//! .await?;
//! // A client sends `GET {url}/v2/contacts?page=1&per_page=50` with `X-Api-Key: {key}`.
//! let (url, key) = (server.url(), server.api_key().to_owned());
//! assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/api"));
//! assert_eq!(key, "trk_test_key");
//! // What a complete export must contain, one JSON object per line, newest first.
//! let truth = server.ground_truth(None, None);
//! assert_eq!(truth.iter().filter(|&&b| b == b'\n').count(), 120);
//! server.shutdown().await;
//! # Ok(())
//! # })
//! # }
//! ```
//!
//! Without a server, [`Dataset`] renders the same bytes (for benches and unit tests):
//!
//! ```
//! use trackly_mock::{Dataset, DatasetConfig};
//!
//! let data = Dataset::generate(&DatasetConfig { contacts: 10, ..DatasetConfig::default() });
//! let body = data.page_body(None, Some(true), 1, 1000);
//! assert!(body.starts_with(b"{\"contacts\":["));
//! ```
//!
//! # Endpoints
//!
//! All under the base URL [`MockServer::url`] (`http://127.0.0.1:PORT/api`), `GET` only, all
//! requiring the header `X-Api-Key` to equal [`MockConfig::api_key`]:
//!
//! - `/v2/contacts`: the documented API. Body
//!   `{"contacts":[...],"pagination":{"page":P,"per_page":N,"total":T,"total_pages":ceil(T/N)}}`,
//!   `application/json`; every contact has all 18 documented fields in the documented order.
//! - `/v2/lists?status=..`: the sending lists, consistent with the contacts (the `id` and
//!   `phone_number` of each are the `list_id` and `list_number` its contacts carry,
//!   `contact_count` its active contacts now), plus a few deleted lists without contacts; some
//!   lists are paused or suspended. Body `{"lists":[...]}` in `id` order, deleted lists only
//!   with `status=deleted`; paged with a `pagination` block only with
//!   [`MockConfig::lists_per_page`]. [`MockServer::lists_ground_truth`] has every list.
//! - `/_mock/ground_truth?list_number=..&active=..`: NDJSON of every matching contact, the
//!   text the server serves, in served order (`application/x-ndjson`).
//! - `/_mock/stats`: [`MockStats`] as JSON.
//!
//! Errors are the documented JSON `{"error": <text>, "code": <code>}` (plus `"message"` with
//! the reason for `invalid_parameter`), except the injected 502, which is nginx's HTML page.
//! Routing comes first (unknown path: 404 `not_found`; other method: 405 `method_not_allowed`
//! with `Allow: GET`), then the key (401 `missing_api_key` "API key required" without a key,
//! `invalid_api_key` "Invalid API key" with a wrong one; with [`Faults::suspended`], 403
//! `{"error": "Account is suspended"}` without a code), then the rate limit (429 `rate_limited`), then
//! injected status faults, then parameter validation (400 `invalid_parameter`). A handler
//! panic answers 500 `internal_error`.
//!
//! # Ordering and paging
//!
//! Contacts are served newest first by `signup_date`; contacts sharing a timestamp (bulk
//! imports put hundreds in one second) are ordered by a hidden insertion id, newest first, so
//! paging is deterministic. Page `p` holds positions `(p-1)*per_page ..` of that order.
//!
//! # Out-of-range parameters
//!
//! Values are decoded as `application/x-www-form-urlencoded` (a raw `+` is a space, `%2B` is a
//! `+`); the first occurrence of a parameter wins and unknown parameters are ignored. Checks
//! run in the order `list_number`, `active`, `page`, `per_page` and the first failure is
//! reported.
//!
//! | input | answer |
//! |---|---|
//! | `per_page` omitted | 50 |
//! | `per_page` > 1000 | clamped: served and reported as `"per_page":1000` |
//! | `per_page` 0, negative, empty, not an integer, beyond `i64` | 400 `invalid_parameter`, `"parameter":"per_page"` |
//! | `page` omitted | 1 |
//! | `page` 0, negative, empty, not an integer, beyond `i64` | 400 `invalid_parameter`, `"parameter":"page"` |
//! | `page` > `total_pages` | 200, `"contacts":[]`, real pagination block (requested `page`, real `total`, `total_pages`) |
//! | `active` other than exactly `true`/`false` (`True`, `1`, empty) | 400 `invalid_parameter`, `"parameter":"active"` |
//! | `list_number` not matching `^\+?[1-9]\d{1,14}$` after trimming whitespace (letters, dashes, empty) | 400 `invalid_parameter`, `"parameter":"list_number"` |
//! | `list_number` valid but no such list, including `18005551234` without `+` and a raw `+18005551234` (decoded to ` 18005551234`) | 200, empty page, `total` 0, `total_pages` 0 |
//! | no contacts match | 200, `"contacts":[]`, `total` 0, `total_pages` 0 |
//!
//! [`Dataset::page_body`] skips validation: it clamps `per_page` into `1..=1000` and raises
//! `page` to 1.
//!
//! # Data set
//!
//! [`Dataset::generate`] is a pure function of [`DatasetConfig`]: same config, same bytes.
//! Sending lists are toll-free numbers (`+18005551234` first, the biggest list). About 80 % of
//! contacts are active. Phones come from the US, Canada, the UK, Germany, France, Brazil, India
//! and Australia, unique per list, some on several lists. Signups span 2022-06 to 2025-05 with
//! growth over time, bulk imports share one second, a few carry fractional seconds (`.5`,
//! `.123456`). `custom_fields` is `null`, `{}` or up to 10 keys (`source` in most) with
//! non-ASCII, quotes, newlines, backslashes, emoji, integers, floats, booleans, nulls, nested
//! objects and arrays. `revenue_total` is written as text in varied forms (`0`, `12`, `12.00`,
//! `47.5`, `47.50`, `0.01`, `1234567.89`), never through `f64`; with
//! [`DatasetConfig::money_forms`] a share of contacts also get float artifacts, exponent forms,
//! decimal strings, sub-cent ties and refunds, the rest of the data set unchanged.
//!
//! # Faults
//!
//! See [`Faults`]: all are drawn from an RNG seeded with [`Faults::fault_seed`], one fixed set
//! of draws per `/v2/contacts` request in arrival order, so a sequential client sees the same
//! faults on every run. `/_mock/*` requests are never faulted and never counted. `/v2/lists`
//! requests are counted but never faulted (beyond a refused key or a suspended account) and
//! draw nothing: adding them to a run leaves the faults its contacts requests see unchanged.
//!
//! # Backends that depart from the documentation
//!
//! Off by default, each leaving every byte of the default answers unchanged, the faults and
//! data set options of issue 21 make the mock behave like real backends behind the same
//! contract: contacts left out after the `LIMIT`, now and then ([`Faults::p_drop`]) or always
//! ([`Faults::suppressed_share`]); a page-size cap that is reported, echoed or silent, changes
//! mid-run or differs between pods ([`Faults::page_cap`]); page sizes refused with a 400
//! ([`Faults::accepted_per_page`], [`Faults::refuse_per_page_above`]); a search index that
//! counts and pages only its result window ([`Faults::search_window`]); Django's `get_page()`
//! answering the last page past the end ([`Faults::past_end`]); a `total` missing, null or a
//! string ([`Faults::total_form`]); signups with fractional seconds sorted by the second or
//! millisecond ([`DatasetConfig::fractional_seconds`], [`DatasetConfig::sort_precision`]); a tie
//! of thousands anywhere ([`DatasetConfig::big_tie`]); and a bulk import landing mid-run
//! ([`DriftKind::Import`]). [`MockServer::ground_truth`] is always every contact that exists,
//! the ones never served included.
//!
//! # Compression and bandwidth
//!
//! Off by default. With [`MockConfig::compression`] set, a `/v2/contacts` page or `/v2/lists`
//! answer goes out in the listed coding that the request's `Accept-Encoding` weighs highest (`gzip`, `zstd`, `br`;
//! ties to the mock's order), with `Content-Encoding` and `Vary: Accept-Encoding`; without an
//! acceptable one it goes out as it is. Error bodies and `/_mock/*` are never compressed. Each
//! distinct body is compressed once per coding and kept (up to 512 MiB, keyed by a hash of its
//! exact bytes), so a benchmark that reads the same pages twice measures the client, not the
//! mock's compressor; the first pass pays for compression. [`MockStats::bytes_served`] counts
//! the bytes sent, compressed or not. Body faults cut or drop the compressed bytes.
//!
//! With [`MockConfig::bandwidth`] set, every response body is paced through one link of that
//! many bytes per second shared by all connections (in frames of 16 KiB), like the customer's
//! line to the API; headers are not counted.
//!
//! # Memory and speed
//!
//! Each contact's JSON is rendered once, at start and after each drift, into one contiguous
//! buffer (about 500 bytes per contact: 1 000 000 contacts take about 500 MB and about two seconds
//! to generate in release mode, on all cores). An unfiltered page is one copy of a slice of that
//! buffer; filtered pages use a cached index per `(list_number, active)`. A drift rebuilds the
//! buffer (one copy) while holding the data set's write lock.

mod config;
mod dataset;
mod encode;
mod faults;
mod generate;
mod json;
mod link;
mod lists;
mod query;
mod server;
mod stats;

pub use config::{
    Beyond, BigTie, CapChange, CapReport, Damage, DatasetConfig, Drift, DriftKind, Faults, Live,
    MockConfig, PageCap, PastEndAnswer, SearchWindow, SortPrecision, TotalForm,
};
pub use dataset::Dataset;
pub use encode::{ContentCoding, UnknownCoding};
pub use query::{DEFAULT_PER_PAGE, MAX_LISTS_PER_PAGE, MAX_PER_PAGE};
pub use server::MockServer;
pub use stats::MockStats;
