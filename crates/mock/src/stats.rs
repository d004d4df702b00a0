//! Counters of what the server has answered.

use std::collections::BTreeMap;

/// A snapshot of the server's counters.
///
/// Every request except those to `/_mock/*` counts (including 404 and 405 answers).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MockStats {
    /// Requests answered.
    pub requests: u64,
    /// Requests answered, by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// `200` contacts pages sent in full (slow ones included; truncated and reset ones not).
    pub pages_served: u64,
    /// `200` answers of `/v2/lists`.
    pub lists_served: u64,
    /// Contacts in the pages counted by `pages_served`.
    pub contacts_served: u64,
    /// Response body bytes sent, error bodies included (for truncated and reset answers, the
    /// bytes actually sent).
    pub bytes_served: u64,
    /// `200` answers whose body was cut (fault `p_truncate`).
    pub truncated: u64,
    /// `200` answers whose connection was dropped mid-body (fault `p_reset`).
    pub resets: u64,
    /// `200` answers whose body was streamed slowly (fault `p_slow`).
    pub slow: u64,
    /// `429` answers (fault `rate_limit_rps`).
    pub rate_limited: u64,
    /// Drift changes applied to the data set.
    pub drift_events: u64,
}
