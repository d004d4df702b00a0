//! A record that does not fit its table, as kept: one type per table. The same value is a
//! page's invalid contact, a line of the quarantine file (`_rejects-{run_id}.ndjson`) and,
//! under [`InvalidPolicy::Fail`](crate::InvalidPolicy::Fail), the content of the error.

use serde::Serialize;

/// A contact that does not fit the contacts table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reject {
    /// The page it came in.
    pub page: u64,
    /// Its 0-based position in that page's body, as sent (contacts de-duplication dropped
    /// still count).
    pub index: usize,
    /// The offending field (`(record)` when the object itself is malformed).
    pub field: String,
    /// The offending value's JSON text, cut to about 200 characters.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
    /// The whole contact as the API sent it (invalid UTF-8 replaced).
    pub raw: String,
}

/// A list of `GET /v2/lists` that does not fit the lists table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListReject {
    /// The answer it came in, e.g. `GET /v2/lists?status=deleted, page 1`.
    pub request: String,
    /// Its 0-based position in that answer.
    pub index: usize,
    /// The offending field (`(record)` when the object itself is malformed).
    pub field: String,
    /// The offending value's JSON text, cut to about 200 characters.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
    /// The whole list as the API sent it (invalid UTF-8 replaced).
    pub raw: String,
}
