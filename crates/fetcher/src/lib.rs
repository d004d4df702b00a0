//! # trackly-fetcher
//!
//! An async client for the Trackly SMS API's `GET /v2/contacts`: concurrent, ordered, retrying
//! page requests that deliver every contact exactly once, even when the listing changes under
//! the run.
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
//! - **Order.** Page 1 is fetched first to learn `total_pages`; then up to `concurrency`
//!   requests are in flight and pages are handed on in ascending page order. Re-reads after
//!   drift (below) follow the page that revealed the drift.
//! - **Exactly once.** Every contact that exists for the whole run is delivered exactly once.
//!   The API pages by offset over a newest-first order, so a contact added during the run pushes
//!   rows down a page (they would be seen twice) and a contact removed pulls rows up (one would be
//!   skipped at a page boundary). The fetcher
//!   1. drops every contact whose `(phone_number, list_number)` it delivered before (within
//!      the de-duplication window: a contact moved by drift comes back within a few pages;
//!      see [`ClientBuilder::with_dedup_window`]);
//!   2. compares `pagination.total` of each page with the page before it: when they differ, the
//!      listing changed between the two reads, and the pages around that boundary (as many as
//!      the change could have moved rows across, plus one each side) are read again until they
//!      agree on one total; what they hold that was not delivered yet is delivered
//!      ([`Page::pass`] > 1) and the event is recorded in [`FetchStats::drift_events`];
//!   3. keeps reading past the announced last page while the listing has grown or the last
//!      page came back full, so neither growth nor a low `total_pages` cuts the export short.
//!
//!   What this rests on: a change between two reads shows up in `total`. Equal numbers of
//!   inserts and deletes between the same two reads cancel out in `total` and are not detected.
//! - **Retries.** 429, 5xx, connection errors, timeouts and bodies that are not the documented
//!   JSON are retried with exponential backoff and full jitter, honouring `Retry-After`, within
//!   [`RetryConfig::max_attempts`] and [`RetryConfig::retry_timeout`] per page. 401 and other
//!   4xx fail at once. On 429 and 503 the concurrency is halved and a request rate set below
//!   what the API just accepted; both grow back gradually (AIMD), never above what was set.
//! - **Secrets.** The API key is sent only as the `X-Api-Key` header, only to the configured
//!   origin (a redirect elsewhere is refused), and never appears in `Debug` output or errors.
//!   Plain `http://` is refused for hosts other than loopback unless explicitly allowed.
//!
//! ## Memory usage
//!
//! At most `concurrency + 2` page bodies are held at once (about 1 MiB each at `per_page`
//! 1000), plus the de-duplication set: the keys of the last
//! [`DEFAULT_DEDUP_WINDOW`] pages (about 8 MB at `per_page` 1000), whatever the number of
//! contacts. A resumed run also remembers every contact its interrupted predecessor wrote.
mod client;
mod coverage;
mod error;
mod identity;
mod limit;
mod page;
mod paginate;
mod query;
mod retry;
mod stats;
mod verify;

pub use client::{
    ApiKey, Client, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_DEDUP_WINDOW, MAX_PER_PAGE,
};
pub use error::FetchError;
pub use identity::{naive_seconds_micros, signup_micros};
pub use page::{Contact, Page, Pagination};
pub use paginate::{Contacts, ResumeFrom};
pub use query::{E164, InvalidE164, Query};
pub use retry::{BackoffConfig, RetryConfig};
pub use stats::{DriftEvent, FetchStats, Reconciliation, Retries, StatsHandle};
