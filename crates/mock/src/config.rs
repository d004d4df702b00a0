//! Configuration of the mock server: the data set, the API key and the faults to inject.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::encode::ContentCoding;

/// Everything [`MockServer::start`](crate::MockServer::start) needs.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Shape of the generated data set.
    pub dataset: DatasetConfig,
    /// The only value of `X-Api-Key` the server accepts.
    pub api_key: String,
    /// Faults injected into `/v2/contacts` answers.
    pub faults: Faults,
    /// Where to listen; port 0 picks a free port (see [`MockServer::addr`](crate::MockServer::addr)).
    pub addr: SocketAddr,
    /// `None` (the default): `/v2/lists` answers `{"lists":[...]}` with every matching list
    /// and no pagination, as documented. `Some(n)`: it pages like the other list endpoints,
    /// at most `n` lists per page (and never more than `per_page`, default 50, max 100),
    /// with a `pagination` block.
    pub lists_per_page: Option<u32>,
    /// Lists that change while they are read: every `/v2/lists` request flips the first list
    /// (the biggest, active) between active and deleted before it is answered, so that the
    /// default answer and the `status=deleted` one of a read each see it in the other state
    /// and neither holds it; on a paged listing, the lists behind it shift by one place
    /// between pages. `GET /v2/lists/{id}` answers the state the last flip left. Off by
    /// default.
    pub lists_churn: bool,
    /// Content codings `/v2/contacts` pages and `/v2/lists` answers may be sent in, in the
    /// server's order of preference: a request whose `Accept-Encoding` accepts one gets the body compressed
    /// (`Content-Encoding`, `Vary: Accept-Encoding`), in the coding it weighs highest. Each
    /// distinct body is compressed once and kept (see the crate docs, Compression). Body faults
    /// then apply to the compressed bytes: a truncated body is a cut compressed stream. Empty
    /// (the default): never compressed.
    pub compression: Vec<ContentCoding>,
    /// Bytes per second of one link that every connection shares, like the customer's line
    /// to the API: response bodies are paced through it. `None` (the default): as fast as
    /// loopback goes.
    pub bandwidth: Option<u64>,
}

impl Default for MockConfig {
    /// Key `trk_test_key`, the default data set, no faults, `127.0.0.1:0`.
    fn default() -> Self {
        MockConfig {
            dataset: DatasetConfig::default(),
            api_key: "trk_test_key".to_owned(),
            faults: Faults::default(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            lists_per_page: None,
            lists_churn: false,
            compression: Vec::new(),
            bandwidth: None,
        }
    }
}

/// Shape of the deterministic data set: the same value always generates the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatasetConfig {
    /// Seed of every random choice in the data set.
    pub seed: u64,
    /// Number of contacts (one per phone number and list).
    pub contacts: usize,
    /// Number of sending lists, clamped into `1..=10_000`.
    pub lists: usize,
    /// Also write `revenue_total` the ways backends that keep money in binary floats or as
    /// strings send it: in a fixed share (about 40 %) of contacts, drawn from the seed, the value
    /// becomes a float sum or float artifact (`0.30000000000000004`, `47.5000000000001`), an
    /// exponent form (`4750e-2`, `4.75E+1`), a decimal string (`"47.50"`, `"1e2"`), sub-cent
    /// digits with exact ties on the 5th decimal (`47.50125`) or a negative refund (`-47.50`).
    /// Every such value is a valid JSON number or a string holding one, with at most 14 integer
    /// digits. Off by default; turning it on changes only those `revenue_total` values, every
    /// other byte of the data set stays the same.
    pub money_forms: bool,
    /// Signups in bursts with fractional seconds, as a backend that stores microseconds sees
    /// them: every single signup (not a bulk import) becomes a burst of 1 to 6 contacts in one
    /// second, each with a distinct 6-digit fraction (`2025-03-15T14:30:00.123456`), about half
    /// of them inside one millisecond of the burst. Off by default; on, it changes the whole data
    /// set (another plan), not only the fractions. Pair it with
    /// [`sort_precision`](DatasetConfig::sort_precision) for a listing ordered at a coarser
    /// precision than it shows.
    pub fractional_seconds: bool,
    /// The precision the listing is sorted at. [`SortPrecision::Exact`] (the default): by the
    /// full `signup_date`, as documented. Coarser: by the value truncated to the second or the
    /// millisecond, contacts equal at that precision in a fixed arbitrary order (a hash of the
    /// contact), which [`Faults::shuffle_ties`] reshuffles on every request. `signup_date` is
    /// still written in full, so the served order shows inversions inside one second (or
    /// millisecond).
    pub sort_precision: SortPrecision,
    /// One block of contacts sharing a single `signup_date` (one big import), at a given place
    /// in the served order; see [`BigTie`]. `None` (the default): only the ordinary imports of
    /// hundreds.
    pub big_tie: Option<BigTie>,
}

/// The precision a listing is sorted at ([`DatasetConfig::sort_precision`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SortPrecision {
    /// The full value, microseconds included (documented).
    #[default]
    Exact,
    /// Truncated to the millisecond, as a search index storing `date` (milliseconds) does.
    Millisecond,
    /// Truncated to the second, as a database column of whole seconds behind a view that shows
    /// the fraction does.
    Second,
}

/// A block of `len` contacts sharing one `signup_date`, starting at position `at` of the
/// served (newest-first) order of the freshly generated data set: `at: 0` is the top of page 1.
/// Every contact of the block takes the `signup_date` of the block's newest one and the signup
/// method `import`; everything else about them is as generated. `len` is cut to the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BigTie {
    /// Served position of the block's first (newest) contact.
    pub at: usize,
    /// Number of contacts in the block.
    pub len: usize,
}

impl Default for DatasetConfig {
    /// Seed 7, 10 000 contacts, 4 lists, no money forms, no bursts of fractions, sorted at full
    /// precision, no big tie.
    fn default() -> Self {
        DatasetConfig {
            seed: 7,
            contacts: 10_000,
            lists: 4,
            money_forms: false,
            fractional_seconds: false,
            sort_precision: SortPrecision::Exact,
            big_tie: None,
        }
    }
}

/// Faults injected into `/v2/contacts` requests (never into the `/_mock/*` endpoints).
///
/// Every request draws the same number of values from one RNG seeded with
/// [`fault_seed`](Faults::fault_seed), in arrival order, so a sequential client sees the same
/// faults on every run. Probabilities are clamped into `[0, 1]` (NaN counts as 0).
///
/// The three status faults are exclusive and decided by one uniform draw `u`: 500 when
/// `u < p_500`, else 502 when `u < p_500 + p_502`, else 503 when `u < p_500 + p_502 + p_503`.
/// The three body faults (`p_truncate`, `p_reset`, `p_slow`) are decided the same way by a second
/// draw and only touch `200` pages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Delay added before every request is answered.
    pub latency: Duration,
    /// Extra delay per request, uniform in `[0, latency_jitter]`.
    pub latency_jitter: Duration,
    /// Token bucket of capacity `rps`, refilled at `rps` tokens per second, one token per
    /// authenticated request. Over it: `429` with `Retry-After` (whole seconds, at least 1) and
    /// error code `rate_limited`. `Some(0)` rejects every request.
    pub rate_limit_rps: Option<u32>,
    /// Probability of a `500` with error code `internal_error`.
    pub p_500: f64,
    /// Probability of a `502` whose body is an nginx-style HTML page (`text/html`).
    pub p_502: f64,
    /// Probability of a `503` with error code `service_unavailable` and `Retry-After: 1`.
    pub p_503: f64,
    /// Probability that a `200` body is cut at a random point and sent with a `Content-Length`
    /// matching the cut body (valid HTTP, invalid JSON), like a broken proxy.
    pub p_truncate: f64,
    /// Probability that a `200` announces the full `Content-Length` but the connection is dropped
    /// after part of the body.
    pub p_reset: f64,
    /// Probability that a `200` body is streamed in small chunks spread over
    /// [`slow_body`](Faults::slow_body).
    pub p_slow: f64,
    /// How long a slow body takes to arrive (at least).
    pub slow_body: Duration,
    /// Changes to the data set made while a client pages through it.
    pub drift: Vec<Drift>,
    /// Seed of the fault RNG.
    pub fault_seed: u64,
    /// Contacts sharing a `signup_date` come back in a new order on every request, as from an
    /// `ORDER BY signup_date DESC LIMIT/OFFSET` without a tie-break in PostgreSQL or MySQL.
    pub shuffle_ties: bool,
    /// Each answer reports `total` (and `total_pages` from it) off by a random amount in
    /// `-total_jitter..=total_jitter`, like a cached or estimated count.
    pub total_jitter: u64,
    /// Half the requests, drawn at random, are served by a read replica that lags this far
    /// behind: it sees the data set as it was then (drift and live changes included).
    pub replica_lag: Option<Duration>,
    /// Steady change while clients page: sign-ups land on top, deletions hit random
    /// positions, both at a rate per second from the moment these faults were installed.
    pub live: Option<Live>,
    /// The answer for a page past the end of the listing (page above 1, no contact left):
    /// `Some(404)` answers `{"detail": "Invalid page."}` as Django REST Framework does, any other
    /// status a Trackly error body with code `invalid_page`. `None`: an empty page (documented).
    pub past_end_status: Option<u16>,
    /// Contacts whose JSON carries damage that strict JSON rejects, by position in the served
    /// (newest-first, unfiltered) order at the time of the request.
    pub damaged: Vec<(usize, Damage)>,
    /// Every request with the right key is refused with `403 {"error": "Account is
    /// suspended"}` (documented without a `code`).
    pub suspended: bool,
    /// Post-filtering after the `LIMIT`, transient: each contact of a page's window is left out
    /// of this answer with this probability, drawn anew on every request (a contact that failed
    /// to serialise this time, a permission check that timed out). The page comes back short,
    /// `total` and the offsets are unchanged; read again, the contact is most likely there.
    pub p_drop: f64,
    /// Post-filtering after the `LIMIT`, persistent: this share of contacts, chosen by a hash of
    /// each contact's JSON text (see [`Faults::suppresses`]), is never served by any request,
    /// though `total` counts them and they take their place in the offsets (pages that hold one
    /// come back short). The ground truth still has them: an export can only be short or loud.
    pub suppressed_share: f64,
    /// A cap on the page size below the documented 1000; `None`: only the documented clamp.
    pub page_cap: Option<PageCap>,
    /// The only `per_page` values the API accepts (e.g. `[10, 25, 50, 100]`); any other
    /// asked value is refused with `400 invalid_parameter` naming `per_page` (an omitted
    /// `per_page`, the default 50, is always accepted). Empty (the default): any value.
    pub accepted_per_page: Vec<u64>,
    /// `per_page` above this value is refused with `400 invalid_parameter` naming `per_page`
    /// instead of being clamped (e.g. `Some(500)`). `None`: values above 1000 are clamped, as
    /// documented.
    pub refuse_per_page_above: Option<u64>,
    /// A search-index backend whose result window is limited; see [`SearchWindow`].
    pub search_window: Option<SearchWindow>,
    /// The answer for a page past the end of the listing, when
    /// [`past_end_status`](Faults::past_end_status) does not refuse it.
    pub past_end: PastEndAnswer,
    /// How `pagination.total` (and `total_pages`) is written.
    pub total_form: TotalForm,
}

impl Faults {
    /// Whether [`suppressed_share`](Faults::suppressed_share) withholds the contact whose JSON
    /// text (as served and as in the ground truth) is `contact`: a hash of the text, the same
    /// for every request and every state of the data set.
    pub fn suppresses(&self, contact: &[u8]) -> bool {
        let share = probability(self.suppressed_share);
        if share == 0.0 {
            return false;
        }
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(contact, 0x50bb_e55e);
        (h as f64) < share * (u64::MAX as f64)
    }
}

/// `p` clamped into `[0, 1]`, NaN as 0.
pub(crate) fn probability(p: f64) -> f64 {
    if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) }
}

/// A page-size cap ([`Faults::page_cap`]): a page holds at most `min(per_page, cap)` contacts
/// and page `p` starts at `(p - 1) * min(per_page, cap)`, as servers that apply the cap before
/// computing the offset do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCap {
    /// Most contacts a page holds.
    pub cap: u64,
    /// How the pagination block shows it.
    pub report: CapReport,
    /// A deploy rolling out a new cap: from the request after `after_request` (counted from the
    /// installation of these faults, like [`Drift`]) the cap is `cap`.
    pub change: Option<CapChange>,
    /// Pods that disagree: every even-numbered request (counted from installation) is served
    /// by a pod with this cap instead (after a [`change`](PageCap::change) too).
    pub other_pod: Option<u64>,
}

/// A change of a [`PageCap`] during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapChange {
    /// Requests answered with the old cap.
    pub after_request: u64,
    /// The new cap.
    pub cap: u64,
}

/// How a capped page size shows in `pagination`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CapReport {
    /// `per_page` is the size served, `total_pages` computed from it.
    #[default]
    Reported,
    /// `per_page` echoes the size asked for while fewer come, `total_pages` computed from the
    /// asked size.
    Echoed,
    /// The pagination block has no `per_page`; `total_pages` is computed from the size served.
    Silent,
}

/// A search-index backend ([`Faults::search_window`]) that counts and pages only the first
/// `max_window` hits: `total` (and `total_pages`) report at most `max_window`, and a window
/// reaching beyond it is clamped or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchWindow {
    /// Largest `offset + per_page` served in full (Elasticsearch's `max_result_window`:
    /// 10 000).
    pub max_window: u64,
    /// What a page reaching beyond it gets.
    pub beyond: Beyond,
}

/// The answer to a window beyond a [`SearchWindow`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Beyond {
    /// `200` with only the contacts before `max_window` (short or empty), `total` capped.
    #[default]
    Clamp,
    /// `400` with code `result_window_too_large` when `offset + per_page > max_window`.
    Refuse,
}

/// What a page past the end of the listing answers ([`Faults::past_end`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PastEndAnswer {
    /// An empty page with the requested `page` number (documented).
    #[default]
    Empty,
    /// The last page again, with `pagination.page` the last page's number, as Django's
    /// `Paginator.get_page()` answers (page 1, empty, when there is no contact).
    LastPage,
}

/// How `pagination.total` is written ([`Faults::total_form`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TotalForm {
    /// A number, `total_pages` beside it (documented).
    #[default]
    Number,
    /// Neither `total` nor `total_pages`, as from an API that does not count.
    Missing,
    /// `"total":null,"total_pages":null`.
    Null,
    /// `total` as a decimal string (`"total":"5000"`), `total_pages` a number.
    String,
}

/// Steady change of a live listing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Live {
    /// New contacts per second, on top of the newest-first order.
    pub signups_per_sec: f64,
    /// Contacts deleted per second, at random positions.
    pub deletes_per_sec: f64,
}

/// Damage inside one contact's JSON that leaves the page's envelope readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// `"revenue_total":NaN`, as Python's `json` writes a float NaN by default.
    NaN,
    /// `"revenue_total":Infinity`.
    Infinity,
    /// A raw control character (U+0001) inside the `signup_method` string.
    ControlChar,
}

/// One change to the data set, applied once, right after the `after_request`-th `/v2/contacts`
/// request (1-based, counting every such request whatever its status, from the moment these
/// faults were installed) has been answered. `after_request == 0` applies it at installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drift {
    /// Number of `/v2/contacts` requests after which the change happens.
    pub after_request: u64,
    /// What changes.
    pub kind: DriftKind,
}

/// What a [`Drift`] does to the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftKind {
    /// Insert N brand-new contacts, signed up after every existing one, so they land at the top
    /// of the newest-first order (page 1).
    Insert(usize),
    /// Delete N contacts spread evenly over the current order (indexes `i * len / N`); N at or
    /// above the current count deletes everything.
    Delete(usize),
    /// Import N brand-new contacts in one second, after every existing one: a tie of N on
    /// top of the newest-first order.
    Import(usize),
}
