//! What decoding is told and what it reports: [`DecoderOptions`] (run id, start, batch size,
//! [`InvalidPolicy`]), [`Reject`] and [`DecodeStats`]; and how [`decode_page`](crate::decode_page)
//! reads each value, below.
//!
//! [`decode_page`](crate::decode_page) is the one way bytes become columns: it reads a page's
//! body once with the crate's byte scanner, every value from the exact JSON text the API sent,
//! interpreted for its column and written straight into column buffers (a contact that turns
//! out invalid is taken back from them, so a rejected contact never leaves a half-written
//! row). [`ContactBatcher`](crate::ContactBatcher) then cuts the rows the run keeps into
//! batches and applies the invalid-record policy.
//!
//! ```
//! use bytes::Bytes;
//! use chrono::{TimeZone, Utc};
//! use trackly_contacts::{ContactBatcher, DecoderOptions, InvalidPolicy, Page, Pass};
//!
//! let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
//! let mut batcher = ContactBatcher::new(
//!     DecoderOptions::new("run-1", started).with_on_invalid(InvalidPolicy::Quarantine),
//! )?;
//! let page = Page::parse(1, Pass::Main, Bytes::from_static(br#"{"contacts": [
//!     {"phone_number":"+14155559876","list_number":"+18005551234","revenue_total":47.50},
//!     {"phone_number":"+14155550000","list_number":"+18005551234","send_count":"12"}
//! ], "pagination": {"page": 1, "per_page": 2, "total": 2, "total_pages": 1}}"#))?;
//! batcher.push_page(&page)?;
//! let batch = batcher.flush()?.expect("one row buffered");
//! assert_eq!(batch.num_rows(), 1);
//! let rejects = batcher.take_rejects();
//! assert_eq!(rejects[0].field, "send_count");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How values are read
//!
//! | column type | accepted JSON | rejected |
//! |---|---|---|
//! | Utf8 | string (unescaped), `null` | any other type |
//! | Int64 | integer text that fits i64, `null` | `1.0`, `1e3`, `"12"`, out of range |
//! | Boolean | `true`, `false`, `null` | `"true"`, `1` |
//! | Timestamp | ISO-8601 string; naive means UTC; `Z` or `±hh:mm` offsets; up to 6 fractional digits (more only if they are zeros); `null` | other text, sub-microsecond precision |
//! | Decimal(18,4) | a number, or a string holding exactly JSON number text (`"47.50"`), rounded half to even to 4 decimals (see below), `null` | other strings, other types, more than 14 integer digits after rounding |
//! | `custom_fields` | an object: strings as is, numbers as their exact JSON text, booleans as `true`/`false`, `null` as a null value, objects/arrays as compact JSON (whitespace removed, all else byte-exact); `null` or missing → null map | any other type |
//!
//! `phone_number` and `list_number` are required (missing or `null` rejects the record); every
//! other documented field may be missing (null). A key that appears twice in a contact or in its
//! `custom_fields` rejects the record. Undocumented top-level fields go, in order and compact,
//! into `_extra` (a JSON object, null when there are none) and are counted in
//! [`ContactBatcher::unknown_fields`](crate::ContactBatcher::unknown_fields).
//!
//! # Money
//!
//! `revenue_total` arrives as the API's backend happens to print it: `47.5`, `47.50`, `4.75e1`,
//! the artifacts of a binary-float sum (`47.5000000000001`, `0.30000000000000004`), or a decimal
//! serialised as a JSON string (`"47.50"`, `"-0.5"`, `"1e2"`). All of these are read from their
//! text, digit by digit, never through a float:
//!
//! - A string is accepted when its content is exactly JSON number text (RFC 8259: no surrounding
//!   spaces, no `+`, no leading zeros, no `.5` or `5.`, no escapes, not `NaN`); it is then read as
//!   that number. Anything else in a string (`"abc"`, `" 47.50"`, `"12,00"`) is invalid.
//! - A value with at most 4 decimals is stored exactly. Beyond the 4th decimal it is rounded
//!   **half to even** on its exact decimal value (`0.00005` → `0.0000`, `0.00015` → `0.0002`,
//!   `-0.00015` → `-0.0002`, `47.5000000000001` → `47.5000`), as Python's `decimal` and
//!   IEEE 754 do by default, so sums of rounded values stay unbiased. (A SQL
//!   `CAST(text AS DECIMAL(18,4))` in DuckDB, Spark or PostgreSQL rounds ties away from zero:
//!   `0.00025` → `0.0003` there, `0.0002` here; only exact ties on the 5th decimal can differ.)
//!   Each accepted row whose value was changed by rounding is counted in
//!   [`ContactBatcher::rounded_values`](crate::ContactBatcher::rounded_values); trailing zeros (`47.500000`) are not rounding.
//! - A value with more than 14 integer digits after rounding (`99999999999999.99995` carries into
//!   a 15th) does not fit and is invalid, as are booleans, objects and arrays. A negative zero
//!   (`-0`, `-0.00001`) is stored as 0.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::reject::Reject;

/// Rows per batch unless told otherwise (the arrow-json default).
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// What to do with a contact that does not match the schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidPolicy {
    /// Stop with [`DecodeError::InvalidRecord`](crate::DecodeError::InvalidRecord).
    #[default]
    Fail,
    /// Keep it as a [`Reject`] and go on.
    Quarantine,
}

/// How a run decodes: what [`ContactBatcher`](crate::ContactBatcher) stamps on its batches
/// and does with invalid records, and what [`ListDecoder`](crate::ListDecoder) stamps.
#[derive(Debug, Clone)]
pub struct DecoderOptions {
    /// Rows per emitted batch (default [`DEFAULT_BATCH_SIZE`]).
    pub batch_size: usize,
    /// Value of `_extracted_at` on every row: the start of the run.
    pub extracted_at: DateTime<Utc>,
    /// Value of `_run_id` on every row.
    pub run_id: String,
    /// What to do with invalid records (default [`InvalidPolicy::Fail`]).
    pub on_invalid: InvalidPolicy,
}

impl DecoderOptions {
    /// Options for run `run_id` started at `extracted_at`, with the default batch size and policy.
    pub fn new(run_id: impl Into<String>, extracted_at: DateTime<Utc>) -> Self {
        DecoderOptions {
            batch_size: DEFAULT_BATCH_SIZE,
            extracted_at,
            run_id: run_id.into(),
            on_invalid: InvalidPolicy::Fail,
        }
    }

    /// Sets the rows per batch.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets the policy for invalid records.
    pub fn with_on_invalid(mut self, on_invalid: InvalidPolicy) -> Self {
        self.on_invalid = on_invalid;
        self
    }
}

/// Counts of what decoding changed or set aside within accepted rows, for `_manifest.json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DecodeStats {
    /// `revenue_total` values rounded half to even to 4 decimals (see
    /// [`ContactBatcher::rounded_values`](crate::ContactBatcher::rounded_values)).
    pub rounded_values: u64,
    /// Undocumented top-level fields kept in `_extra` (each occurrence counts).
    pub unknown_fields: u64,
    /// Values outside a documented set (a list's `list_type` or `status`), kept as sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unknown_values: u64,
    /// Records replaced by a later one with the same key (a list in both `/v2/lists`
    /// answers: the later, deleted, one is kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replaced: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests;
