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

/// One observed change of the listing during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftEvent {
    /// The later page of the boundary where the change was seen.
    pub page: u64,
    /// `pagination.total` reported by the page before.
    pub total_before: u64,
    /// `pagination.total` reported by this page.
    pub total_after: u64,
    /// Pages re-read to recover from it.
    pub pages_reread: u64,
    /// Contacts that only the re-read delivered (would otherwise have been skipped).
    pub contacts_recovered: u64,
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
    /// HTTP requests sent.
    pub requests: u64,
    /// Responses by HTTP status.
    pub responses_by_status: BTreeMap<u16, u64>,
    /// Retries by cause.
    pub retries: Retries,
    /// Response body bytes received (failed attempts included).
    pub bytes: u64,
    /// Sum over requests of the time from sending to the end of the body.
    #[serde(with = "duration_secs")]
    pub api_time: Duration,
    /// Changes of the listing seen during the run, and how each was recovered.
    pub drift_events: Vec<DriftEvent>,
    /// Pages fetched again to recover from drift.
    pub pages_reread: u64,
    /// Contacts dropped because an earlier page had delivered them already.
    pub duplicates_dropped: u64,
    /// Pages fetched past the end the first page announced (the listing grew).
    pub extra_pages: u64,
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
