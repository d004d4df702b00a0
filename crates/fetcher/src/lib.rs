//! # trackly-fetcher
//!
//! An async client for the Trackly SMS API's `GET /v2/contacts`: concurrent, ordered, retrying
//! page requests that deliver every contact exactly once, even when the listing changes under
//! the run. What a page holds ([`Page`], [`Pagination`], [`Contact`], [`ListsPage`]) and what
//! identifies a contact are the API's JSON contract, defined in `trackly-contacts` and
//! re-exported here; this crate adds the HTTP.
//!
//! ```no_run
//! use futures::StreamExt;
//! use trackly_fetcher::{ApiKey, Client, Query};
//!
//! # async fn example() -> Result<(), trackly_fetcher::FetchError> {
//! let client = Client::builder()
//!     .with_api_key(ApiKey::new("trk_your_api_key_here"))
//!     .with_concurrency(16)
//!     .build()?;
//! let mut pages = client.contacts(Query::all().with_active(true));
//! while let Some(page) = pages.next().await {
//!     let page = page?;
//!     for contact in page.contacts().expect("documented JSON") {
//!         println!("{} on {}", contact.phone_number, contact.list_number);
//!     }
//! }
//! println!("{:?}", pages.snapshot());
//! # Ok(()) }
//! ```
//!
//! ## Guarantees
//!
//! - **Order.** Page 1 is fetched first; then up to `concurrency` requests are in flight and
//!   the main pass's windows are handed on in ascending position order. Repair reads (below)
//!   follow a little later, with [`Page::pass`]
//!   [`Verification`](trackly_contacts::Pass::Verification).
//! - **Exactly once, or an error.** Every contact present for the whole run is delivered
//!   exactly once, or the stream ends with an error for which [`FetchError::is_incomplete`] is
//!   true; it never ends short without one. The API pages by offset over a listing sorted by
//!   `signup_date`, newest first; between two requests the listing may change, ties may come back
//!   in another order, a replica may lag, `total` may jitter or be missing, the API may serve
//!   fewer contacts than asked or refuse page sizes. The fetcher
//!   1. drops every contact whose `(phone_number, list_number)` it delivered before (within
//!      the de-duplication window; see [`ClientBuilder::with_dedup_window`]);
//!   2. **proves every key covered** (the rules are in the module docs of `coverage` and
//!      `proof`, and in the README's Guarantees): keys are `signup_date` truncated to the second
//!      (ties within a second, for APIs that sort coarser than they show); a read covers the keys
//!      strictly between its last and first contact, from offset 0 everything above, and
//!      everything below only when its own response shows the end (`offset + contacts ==
//!      total`, or two short windows ending at one position); a read shorter than asked before
//!      its end, or a failed read, proves nothing. Main-pass windows overlap by a few dozen
//!      positions (varying `per_page`), so most boundaries prove themselves; what is left is
//!      **repaired** by batches of windows around it, and a key shared by more contacts than a
//!      window reaches across is **counted** in reads of one listing. A range that cannot be
//!      proven within its budget of reads ends the stream with
//!      [`FetchError::Unverified`] once the rest is proven; an order no precision explains with
//!      [`FetchError::OutOfOrder`];
//!   3. learns the page size the API serves (a cap reported, silent or echoed; sizes refused
//!      with `400`) and goes on with it; a window past the end answered empty, `404` or with
//!      another page's number (Django's `get_page()`) ends the main pass;
//!   4. **reconciles the count**: when every read reported the same `total`, the contacts
//!      delivered must equal it ([`FetchError::Unreconciled`] otherwise); the result, and what
//!      was learned about the API ([`FetchStats::learned`]), are in [`FetchStats`].
//!
//!   The exact limits are in the README's Guarantees.
//! - **Retries.** 429, 5xx, connection errors, timeouts and bodies that are not the documented
//!   JSON are retried with exponential backoff and full jitter, honouring `Retry-After`, within
//!   [`RetryConfig::max_attempts`] and [`RetryConfig::retry_timeout`] per page. 401 and other
//!   4xx fail at once. On 429 and 503 the concurrency is halved and a request rate set below
//!   what the API just accepted; both grow back gradually (AIMD), never above what was set.
//! - **Compression.** Bodies are asked for compressed (brotli, zstd or gzip; see
//!   [`ClientBuilder::with_http_compression`]) and decoded as they stream in; a corrupt or cut
//!   compressed body is retried like any invalid body, and no body may decode to more than
//!   256 MiB. [`FetchStats::wire_bytes`] counts what crossed the network,
//!   [`FetchStats::body_bytes`] what it decoded to.
//! - **Decoding on every core.** Each `200` body is decoded once, in a single pass
//!   ([`trackly_contacts::decode_page`]: envelope, keys, Arrow columns), on a fixed pool of
//!   decode threads ([`ClientBuilder::with_decode_threads`], one per core by default), after the
//!   request's admission permit is released, so the next request goes out meanwhile. A body
//!   that is not the documented envelope is retried; a contact that does not fit the schema
//!   stays in the page as invalid, for the caller's policy. De-duplication only sets the
//!   page's mask of kept contacts ([`Page::kept_by_contact`]); nothing is decoded or copied
//!   again. Decoding time is [`FetchStats::decode_time`], apart from [`FetchStats::api_time`].
//! - **Secrets.** The API key is sent only as the `X-Api-Key` header, only to the configured
//!   origin (a redirect elsewhere is refused), and never appears in `Debug` output or errors.
//!   Plain `http://` is refused for hosts other than loopback unless explicitly allowed.
//!
//! ## Memory usage
//!
//! At most `concurrency + 2` pages (and as many repair reads) are held at once, each its
//! body (about 1 MiB at `per_page` 1000) and, once decoded, its columns (about the same size),
//! at most `decode_threads` of them being decoded; plus the de-duplication set: the keys of the last
//! [`DEFAULT_DEDUP_WINDOW`] pages (about 6 MB at `per_page` 1000: a 4 MiB table of hashes and
//! the pages' lists), whatever the number of
//! contacts. A resumed run also remembers every contact its interrupted predecessor wrote.
mod admission;
mod api_error;
mod client;
mod content_coding;
mod coverage;
mod decode_pool;
mod error;
mod lists;
mod paginate;
mod parts;
mod plan;
mod proof;
mod query;
mod retry;
mod seen;
mod stats;
mod step;

pub use api_error::ApiError;
pub use client::{
    ApiKey, Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_DEDUP_WINDOW, InvalidApiKey,
    MAX_PER_PAGE,
};
pub use decode_pool::{MAX_DECODE_THREADS, default_decode_threads};
pub use error::{AttemptError, FetchError};
pub use lists::{LISTS_PER_PAGE, MAX_LIST_READS};
pub use paginate::{Contacts, ResumeFrom};
pub use query::{E164, InvalidE164, Query};
pub use retry::{BackoffConfig, GaveUp, RetryConfig};
pub use stats::{DriftEvent, FetchStats, Learned, Parts, Reconciliation, Retries, StatsHandle};
// What the fetcher's own API hands out, from the crate that owns the API's JSON contract.
pub use trackly_contacts::{
    Contact, Frontier, ListsPage, Page, Pagination, Pass, ResumePoint, naive_seconds_micros,
    signup_micros,
};
