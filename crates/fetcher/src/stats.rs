//! Run statistics: what the fetcher asked, what it got, what it retried and what drift it saw.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::retry::RetryCause;

/// Retries by cause.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Retries {
    /// HTTP 429.
    pub rate_limited: u64,
    /// HTTP 500, 502, 503, 504.
    pub server_error: u64,
    /// Request or body timeouts.
    pub timeout: u64,
    /// Connection refused, reset, or a body cut off mid-transfer.
    pub connection: u64,
    /// Bodies that were not the documented JSON (truncated, HTML from a proxy, wrong shape).
    pub invalid_body: u64,
}

impl Retries {
    /// All retries.
    pub fn total(&self) -> u64 {
        self.rate_limited + self.server_error + self.timeout + self.connection + self.invalid_body
    }

    pub(crate) fn count(&mut self, cause: RetryCause) {
        match cause {
            RetryCause::RateLimited => self.rate_limited += 1,
            RetryCause::ServerError => self.server_error += 1,
            RetryCause::Timeout => self.timeout += 1,
            RetryCause::Connection => self.connection += 1,
            RetryCause::InvalidBody => self.invalid_body += 1,
        }
    }
}

/// A place where the listing was seen to move during the run: two main-pass windows in a row
/// that reported different totals, or a range whose repair reads delivered contacts the windows
/// had skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftEvent {
    /// Where, in pages of the configured size.
    pub page: u64,
    /// `pagination.total` reported before (by the window above; for a repair, the lowest of
    /// the run).
    pub total_before: u64,
    /// `pagination.total` reported after (by this window; for a repair, the highest of the run).
    pub total_after: u64,
    /// Repair batches the range took (0 for a change of total alone).
    pub pages_reread: u64,
    /// Contacts that only the repair reads delivered (the windows had skipped them).
    pub contacts_recovered: u64,
}

/// What was delivered against what the API said it holds, at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// `pagination.total` of the last page read.
    pub reported_total: u64,
    /// Smallest `pagination.total` any read reported.
    pub min_total: u64,
    /// Largest `pagination.total` any read reported.
    pub max_total: u64,
    /// Contacts delivered, those of a resumed run included.
    pub delivered: u64,
    /// Of those, contacts an interrupted run had written before this one resumed it.
    pub resumed: u64,
    /// Pages read whose boundaries are all proven: nothing present throughout was skipped.
    pub boundaries_proven: u64,
    /// The total never changed, so `delivered` had to equal it (and did).
    pub steady: bool,
    /// The sum of the changes of `total` between consecutive answers, in the order they came:
    /// when the total changed, `delivered` had to lie within this of `reported_total` (and did).
    pub totals_moved: u64,
    /// Every answer reported a usable `total`, so the count could be checked at all; when
    /// false, the proof alone stands behind the export and the count was not reconciled.
    pub counted: bool,
    /// The totals of the listing's active and inactive contacts against the whole's (taken
    /// after a counted run of a listing not filtered by status): `None` when not taken.
    pub parts: Option<Parts>,
}

/// The count of a listing's two parts, its active and its inactive contacts: each is counted
/// by the API on its own, so a total capped by a search window shows up as parts that add up
/// to more than the whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Parts {
    /// `pagination.total` of the active contacts.
    pub active: u64,
    /// `pagination.total` of the inactive contacts.
    pub inactive: u64,
    /// Rounds taken again between two reads of the whole (0 when the first count held).
    pub rounds: u32,
    /// The parts added up to no more than the whole.
    pub held: bool,
    /// Why the count says nothing, when it does not: the API ignores the `active` filter,
    /// reports no total for a part, or the listing kept moving while it was counted.
    pub skipped: Option<String>,
}

/// What the run learned about how the API pages (the summary and `_manifest.json` say it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Learned {
    /// The largest page size the API served whole (below `page_size_asked` when it caps it).
    pub page_size: u64,
    /// The page size the run was configured to ask for.
    pub page_size_asked: u64,
    /// Page sizes the API refused with `400`.
    pub refused_page_sizes: Vec<u64>,
    /// The finest precision of `signup_date` at which every answer was in newest-first order
    /// (`microsecond`, `millisecond` or `second`); the proof always treats contacts within one
    /// second as ties.
    pub sort_precision: String,
    /// Every answer reported a usable `pagination.total`.
    pub total_reported: bool,
}

/// Everything counted during one run. A live copy is available through [`StatsHandle`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FetchStats {
    /// Total contacts the first page reported.
    pub expected_contacts: u64,
    /// Pages the first page reported.
    pub expected_pages: u64,
    /// Pages delivered downstream (re-reads included).
    pub pages: u64,
    /// Contacts delivered downstream (after de-duplication).
    pub contacts: u64,
    /// Answers of `GET /v2/lists` read (one per page of each of its two listings, in each
    /// complete read of them), and of `GET /v2/lists/{id}`.
    pub list_pages: u64,
    /// Complete reads of the lists that were read again because they did not agree with the
    /// read before (a list created, deleted or restored while they were read).
    pub list_rereads: u64,
    /// Lists read one by one, `GET /v2/lists/{id}` (the export asks for those its contacts
    /// refer to and the listings left out).
    pub lists_by_id: u64,
    /// List ids the API answered `404` for by id (a contact's `list_id` with no list).
    pub lists_unknown: u64,
    /// HTTP requests sent: every page delivered, list answer read and retry is one.
    pub requests: u64,
    /// Responses by HTTP status.
    pub responses_by_status: BTreeMap<u16, u64>,
    /// Retries by cause.
    pub retries: Retries,
    /// Error answers by status and what the API said, e.g. `"500 internal_error": 3` or
    /// `"403 Account is suspended": 1` (its `code`, else its text); an answer that is not the
    /// documented error body counts under its status alone (`"502": 2`).
    pub api_errors: BTreeMap<String, u64>,
    /// Response body bytes as they crossed the network (failed attempts included): compressed
    /// when the server compressed them, never counting headers.
    pub wire_bytes: u64,
    /// What those bytes decoded to: the JSON the responses held (equal to `wire_bytes` when
    /// nothing was compressed). `body_bytes / wire_bytes` is the compression ratio.
    pub body_bytes: u64,
    /// Responses by `Content-Encoding` (`identity` when uncompressed; `unsupported` for a
    /// coding the client cannot decode).
    pub responses_by_encoding: BTreeMap<String, u64>,
    /// Sum over requests of the time from sending to the end of the body.
    #[serde(with = "duration_secs")]
    pub api_time: Duration,
    /// Sum over `200` answers of the time from the end of the body to the end of its decoding
    /// (on the decode threads, waiting for one included); not part of `api_time`.
    #[serde(with = "duration_secs", default)]
    pub decode_time: Duration,
    /// Places where the listing moved during the run, and what their repair reads recovered.
    pub drift_events: Vec<DriftEvent>,
    /// Repair reads: requests for key ranges the main pass's windows alone did not prove (the
    /// name is kept for the manifest's readers).
    pub verification_reads: u64,
    /// Smallest `pagination.total` reported so far.
    pub min_total: u64,
    /// Largest `pagination.total` reported so far.
    pub max_total: u64,
    /// The final count check (set when the run completes).
    pub reconciliation: Option<Reconciliation>,
    /// Contacts of main-pass pages dropped because an earlier page had delivered them already
    /// (the listing moved them, or the API served them twice).
    pub duplicates_dropped: u64,
    /// Contacts that repair reads saw again (already delivered, so dropped): what the proof cost
    /// in contacts transferred, besides the overlap of the main-pass windows.
    pub verification_repeats: u64,
    /// Pages fetched past the end the first page announced (the listing grew, or a probe
    /// past a full last page).
    pub extra_pages: u64,
    /// Answers whose contacts were not delivered: the two that count the listing's active and
    /// inactive parts (and their recounts), and without a total the reads of one contact that
    /// look for its end. Every request delivered a page, was retried, or is one of these.
    pub undelivered_reads: u64,
    /// Answers that reported no usable `pagination.total` (missing, `null`, not a number).
    pub reads_without_total: u64,
    /// What the run learned about the API's paging (set when the run completes).
    pub learned: Learned,
}

impl FetchStats {
    /// Decoded bytes per byte on the wire (1.0 when nothing was compressed); `None` before
    /// any body arrived.
    pub fn compression_ratio(&self) -> Option<f64> {
        (self.wire_bytes > 0).then(|| self.body_bytes as f64 / self.wire_bytes as f64)
    }
}

mod duration_secs {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// A live view of a run's statistics, cheap to clone and to read from another task (e.g. a
/// progress bar).
#[derive(Debug, Clone, Default)]
pub struct StatsHandle(Arc<Mutex<FetchStats>>);

impl StatsHandle {
    /// A copy of the statistics as they are now.
    pub fn snapshot(&self) -> FetchStats {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut FetchStats) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
