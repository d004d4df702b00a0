//! The one error type of the fetcher. Every variant names where it happened; none carries the
//! API key (it travels in a header, never in a URL, and is redacted from every `Debug`).

use std::time::Duration;

use crate::api_error::ApiError;
use crate::retry::{GaveUp, Secs, count};

/// Why one attempt at a request failed in a way a retry may fix: the last one is kept in
/// [`FetchError::RetriesExhausted`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttemptError {
    /// The API answered `429` or a `5xx` status.
    #[error("{message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// What the API said, when it said it in the documented way.
        api: Option<Box<ApiError>>,
        /// The status and what the API said (or the start of the body), for people.
        message: Box<str>,
    },
    /// The request or the body did not get through: connection refused or reset, a timeout,
    /// TLS.
    #[error("{message}")]
    Transport {
        /// True when a timeout ended it.
        timeout: bool,
        /// reqwest's message and those of its causes, for people.
        message: Box<str>,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The answer arrived but cannot be used: cut, corrupt, in an unknown coding, or not the
    /// documented JSON.
    #[error("{message}")]
    InvalidBody {
        /// What is wrong with it.
        message: Box<str>,
    },
}

/// What went wrong while talking to the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The client configuration is unusable (reported before any request).
    #[error("invalid configuration: {field}: {reason}")]
    InvalidConfig {
        /// The setting at fault, e.g. `base_url`.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// The API answered 401: the key is missing, wrong or revoked.
    #[error(
        "the API rejected the API key (HTTP 401{}) at {url}: {}",
        said(api.as_deref()),
        unauthorized_hint(api.as_deref())
    )]
    Unauthorized {
        /// The request URL (the key is never part of it).
        url: String,
        /// What the API said (`missing_api_key`, `invalid_api_key`, ...), when it said it in
        /// the documented way.
        api: Option<Box<ApiError>>,
    },
    /// The API answered 403: the key is valid but may not do this (e.g. `Account is
    /// suspended`).
    #[error("the API refused access (HTTP 403{}) at {url}", said(api.as_deref()))]
    Forbidden {
        /// The request URL.
        url: String,
        /// What the API said, when it said it in the documented way.
        api: Option<Box<ApiError>>,
    },
    /// The API answered with a status that retrying cannot fix (400, 404, ...).
    #[error("page {page}: the API answered HTTP {status} at {url}: {}", match api {
        Some(api) => api.to_string(),
        None => body.clone(),
    })]
    Rejected {
        /// The page requested.
        page: u64,
        /// The HTTP status.
        status: u16,
        /// The request URL.
        url: String,
        /// What the API said, when it said it in the documented way.
        api: Option<Box<ApiError>>,
        /// The start of the response body.
        body: String,
    },
    /// The API redirected to another origin; the key is not sent there.
    #[error(
        "page {page}: {url} redirected to {location}, another origin; the API key is not sent there.{}",
        match base_url {
            Some(base) => format!(" If the API now lives there, use {base} as the base URL (--base-url {base})"),
            None => String::new(),
        }
    )]
    CrossOriginRedirect {
        /// The page requested.
        page: u64,
        /// The request URL.
        url: String,
        /// Where the API wanted to send us.
        location: String,
        /// The base URL that would send requests straight there, when `location` is an API URL
        /// (`{base}/v2/...`).
        base_url: Option<String>,
    },
    /// A page kept failing until the retry policy gave up; `gave_up` says which limit ended it.
    #[error(
        "page {page}: gave up after {} in {}: {gave_up}; last error: {last} ({url})",
        count(u64::from(*attempts), "attempt", "attempts"),
        Secs(*elapsed)
    )]
    RetriesExhausted {
        /// The page requested.
        page: u64,
        /// The request URL.
        url: String,
        /// Attempts made, the first included.
        attempts: u32,
        /// Time spent on this page, waits included.
        elapsed: Duration,
        /// Which limit of the retry policy was reached.
        gave_up: GaveUp,
        /// The last failure, with its cause.
        #[source]
        last: AttemptError,
    },
    /// The API kept serving full pages of contacts it had served before, with no change of
    /// `total`: it is not paging (e.g. it ignores the `page` parameter).
    #[error(
        "page {page}: the API served {} in a row holding only contacts it had already served, with no change of total; it does not seem to honour the page parameter",
        count(u64::from(*repeats), "full page", "full pages")
    )]
    RepeatingPages {
        /// The last page read.
        page: u64,
        /// Such pages in a row.
        repeats: u32,
    },
    /// A range of `signup_date`s could not be proven delivered within the budget of repair
    /// reads: the export would be short, so it fails instead.
    #[error(
        "around page {page}: could not prove that every contact was delivered ({}): {reason}",
        count(u64::from(*attempts), "repair attempt", "repair attempts")
    )]
    Unverified {
        /// Where: the position in pages of the configured size.
        page: u64,
        /// Verification reads made.
        attempts: u32,
        /// Why the boundary stayed unproven.
        reason: String,
    },
    /// A page's contacts are not in the documented newest-first `signup_date` order, which the
    /// proof that nothing was skipped rests on.
    #[error(
        "page {page}, record {record}: signup_date {} sorts above {}, the contact before it, by more than a second; the API does not serve the documented newest-first order, so no skipped contact could be detected",
        micros_text(*signup_date),
        micros_text(*before)
    )]
    OutOfOrder {
        /// The page requested.
        page: u64,
        /// 0-based index of the contact in the page.
        record: usize,
        /// Its `signup_date`, microseconds since the epoch.
        signup_date: i64,
        /// The `signup_date` of the contact before it.
        before: i64,
    },
    /// The API reported the same total all through the run, and a different number of
    /// contacts was delivered.
    #[error(
        "the API reported {expected} contacts on every page but {delivered} were delivered ({}): its total did not change during the run, so nothing explains the difference",
        describe_difference(*expected, *delivered)
    )]
    Unreconciled {
        /// `pagination.total`, the same on every page.
        expected: u64,
        /// Contacts delivered (those of an interrupted run that was resumed included).
        delivered: u64,
    },
    /// The API's total changed during the run, and the contacts delivered differ from the last
    /// total by more than all the changes of total seen between answers can explain.
    #[error(
        "the API's total moved by {moved} in all during the run (between answers, in the order they came) and ended at {last_total}, but {delivered} contacts were delivered ({}): more than those changes can explain",
        describe_difference(*last_total, *delivered)
    )]
    UnreconciledDrift {
        /// `pagination.total` of the last answer.
        last_total: u64,
        /// The sum of the changes of total between consecutive answers.
        moved: u64,
        /// Contacts delivered (those of an interrupted run that was resumed included).
        delivered: u64,
    },
    /// The API's active and inactive contacts add up to more than the whole listing it served,
    /// twice with the whole's total standing still: it counts and pages no further than that
    /// total (a search index's result window), so contacts past it were never served.
    #[error(
        "the API counts {active} active and {inactive} inactive contacts, {} more than the {total} it counts in all, twice while that total stood still: it counts and pages no further than {total} contacts (a search index's result window?), so at least {} contacts were never served",
        (active + inactive).saturating_sub(*total),
        (active + inactive).saturating_sub(*total)
    )]
    PartsExceedTotal {
        /// `pagination.total` of the whole listing.
        total: u64,
        /// `pagination.total` of its active contacts.
        active: u64,
        /// `pagination.total` of its inactive contacts.
        inactive: u64,
    },
    /// The lists changed while they were read, every time they were read: a complete lists
    /// table could not be read.
    #[error(
        "the lists changed while they were read, {reads} times in a row ({reason}); a complete lists table could not be read"
    )]
    UnstableLists {
        /// Complete reads made.
        reads: u32,
        /// What changed in the last one.
        reason: String,
    },
    /// A bug: something that cannot fail did.
    #[error("internal error: {reason}")]
    Internal {
        /// What failed.
        reason: String,
    },
}

impl FetchError {
    /// True when the error is about credentials, so callers can map it to a distinct exit code.
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            FetchError::Unauthorized { .. } | FetchError::Forbidden { .. }
        )
    }

    /// What the API said about the failure, when it answered with its documented error body
    /// (for a page whose retries ran out: what it said to the last attempt).
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            FetchError::Unauthorized { api, .. }
            | FetchError::Forbidden { api, .. }
            | FetchError::Rejected { api, .. }
            | FetchError::RetriesExhausted {
                last: AttemptError::Status { api, .. },
                ..
            } => api.as_deref(),
            _ => None,
        }
    }

    /// True when the run stopped because it could not prove its export complete: the data
    /// read so far is fine, but publishing it would be a short (or doubled) export.
    pub fn is_incomplete(&self) -> bool {
        matches!(
            self,
            FetchError::Unverified { .. }
                | FetchError::OutOfOrder { .. }
                | FetchError::Unreconciled { .. }
                | FetchError::UnreconciledDrift { .. }
                | FetchError::PartsExceedTotal { .. }
                | FetchError::UnstableLists { .. }
        )
    }

    /// True when the configuration, not the API, is at fault.
    pub fn is_config(&self) -> bool {
        matches!(self, FetchError::InvalidConfig { .. })
    }
}

/// ` invalid_api_key: Invalid API key`, placed after the status.
fn said(api: Option<&ApiError>) -> String {
    api.map(|api| format!(" {api}")).unwrap_or_default()
}

/// What a 401 usually means, by the documented codes.
fn unauthorized_hint(api: Option<&ApiError>) -> &'static str {
    match api.and_then(|api| api.code.as_deref()) {
        Some("missing_api_key") => "the request reached the API without a key",
        Some("invalid_api_key") => {
            "the key is wrong, revoked or rotated, or was copied with stray characters"
        }
        _ => "the key is missing, wrong, revoked or rotated",
    }
}

fn describe_difference(expected: u64, delivered: u64) -> String {
    if delivered < expected {
        format!("{} unaccounted for", expected - delivered)
    } else {
        format!("{} more than reported", delivered - expected)
    }
}

/// A `signup_date` in microseconds, as the API writes it.
fn micros_text(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map_or_else(|| micros.to_string(), |t| t.naive_utc().to_string())
}
