//! Contacts as JSON text → Arrow [`RecordBatch`]es of [`contacts_schema`], push-style.
//!
//! [`decode_page`](crate::decode_page) is the one way bytes become columns: it reads a page's
//! body once with the crate's byte scanner, every value from the exact JSON text the API sent,
//! interpreted for its column and written straight into column buffers (a contact that turns
//! out invalid is taken back from them, so a rejected contact never leaves a half-written
//! row). [`ContactDecoder`] then cuts the rows the run keeps into batches and applies the
//! invalid-record policy.
//!
//! ```
//! use bytes::Bytes;
//! use chrono::{TimeZone, Utc};
//! use trackly_contacts::{ContactDecoder, DecoderOptions, InvalidPolicy, Page};
//!
//! let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
//! let mut decoder = ContactDecoder::new(
//!     DecoderOptions::new("run-1", started).with_on_invalid(InvalidPolicy::Quarantine),
//! )?;
//! let page = Page::parse(1, 1, Bytes::from_static(br#"{"contacts": [
//!     {"phone_number":"+14155559876","list_number":"+18005551234","revenue_total":47.50},
//!     {"phone_number":"+14155550000","list_number":"+18005551234","send_count":"12"}
//! ], "pagination": {"page": 1, "per_page": 2, "total": 2, "total_pages": 1}}"#))?;
//! decoder.decode_page(&page)?;
//! let batch = decoder.flush()?.expect("one row buffered");
//! assert_eq!(batch.num_rows(), 1);
//! let rejects = decoder.take_rejects();
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
//! [`ContactDecoder::unknown_fields`].
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
//!   [`ContactDecoder::rounded_values`]; trailing zeros (`47.500000`) are not rounding.
//! - A value with more than 14 integer digits after rounding (`99999999999999.99995` carries into
//!   a 15th) does not fit and is invalid, as are booleans, objects and arrays. A negative zero
//!   (`-0`, `-0.00001`) is stored as 0.
//!
//! # Batches
//!
//! A batch is cut as soon as `batch_size` rows are buffered; full batches wait in a queue
//! ([`ContactDecoder::next_batch`]). [`ContactDecoder::flush`] returns queued batches first and
//! then the partial one, so `while let Some(b) = decoder.flush()? {}` drains everything.
//!
//! # Invalid records
//!
//! Under [`InvalidPolicy::Fail`] the first invalid record stops `decode_page` with
//! [`DecodeError::InvalidRecord`] (page, 0-based index, field, value cut to ~200 characters,
//! reason); the records of that page before it stay buffered, the invalid one is not appended
//! at all. The index is the contact's position in the body as the API sent it (contacts
//! de-duplication dropped still count). Under [`InvalidPolicy::Quarantine`] it is kept as a
//! [`Reject`] and decoding goes on.
//!
//! # Memory usage
//!
//! The decoder holds at most one partial batch (`batch_size` rows in column buffers, about the
//! size of the decoded JSON) plus the full batches not yet taken with `next_batch`/`flush`, and
//! the rejects not yet taken with [`ContactDecoder::take_rejects`] (each keeps its record's raw
//! text: take them after every page).

use std::collections::VecDeque;
use std::fmt;

use crate::page::Page;
use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use arrow_select::coalesce::BatchCoalescer;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{DecodeError, Result};
pub use crate::reject::Reject;
use crate::schema::{contacts_schema, lineage_columns, page_schema};

/// Rows per batch unless told otherwise (the arrow-json default).
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// What to do with a contact that does not match the schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidPolicy {
    /// Stop with [`DecodeError::InvalidRecord`].
    #[default]
    Fail,
    /// Keep it as a [`Reject`] and go on.
    Quarantine,
}

/// How a [`ContactDecoder`] builds batches.
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

/// Decodes contact objects into batches of [`contacts_schema`]; see the [module docs](self).
pub struct ContactDecoder {
    schema: SchemaRef,
    batch_size: usize,
    extracted_at: i64,
    run_id: String,
    on_invalid: InvalidPolicy,
    /// Cuts the rows of pages into `batch_size`-row batches.
    coalescer: BatchCoalescer,
    ready: VecDeque<RecordBatch>,
    rejects: Vec<Reject>,
    rows: u64,
    rejected: u64,
    unknown_fields: u64,
    rounded_values: u64,
}

impl fmt::Debug for ContactDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactDecoder")
            .field("batch_size", &self.batch_size)
            .field("run_id", &self.run_id)
            .field("on_invalid", &self.on_invalid)
            .field("buffered", &self.buffered_rows())
            .field("ready", &self.ready.len())
            .field("rows", &self.rows)
            .field("rejects", &self.rejected)
            .field("unknown_fields", &self.unknown_fields)
            .field("rounded_values", &self.rounded_values)
            .finish()
    }
}

impl ContactDecoder {
    /// Creates a decoder; fails if `batch_size` is 0.
    pub fn new(options: DecoderOptions) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(DecodeError::InvalidOption {
                option: "batch_size",
                reason: "must be at least 1".into(),
            });
        }
        Ok(ContactDecoder {
            schema: contacts_schema(),
            batch_size: options.batch_size,
            extracted_at: options.extracted_at.timestamp_micros(),
            run_id: options.run_id,
            on_invalid: options.on_invalid,
            coalescer: BatchCoalescer::new(page_schema(), options.batch_size),
            ready: VecDeque::new(),
            rejects: Vec::new(),
            rows: 0,
            rejected: 0,
            unknown_fields: 0,
            rounded_values: 0,
        })
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Takes the contacts of `page` that the run keeps ([`Page::keep`]), already decoded when
    /// the page was built: their rows are cut into batches (nothing is tokenized again) and
    /// its invalid contacts go to the policy, in body order. Under [`InvalidPolicy::Fail`] the
    /// rows before the first kept invalid contact are kept and the error names its position
    /// in the body as sent.
    pub fn decode_page(&mut self, page: &Page) -> Result<()> {
        let decoded = page.decoded();
        let keep = page.keep();
        let mut stop = None;
        for invalid in page.kept_invalid() {
            self.rejected += 1;
            match self.on_invalid {
                InvalidPolicy::Fail => {
                    stop = Some(invalid);
                    break;
                }
                InvalidPolicy::Quarantine => self.rejects.push(Reject {
                    page: page.number(),
                    ..invalid.clone()
                }),
            }
        }
        let before = stop.map_or(usize::MAX, |invalid| invalid.index);
        let mut mask = Vec::with_capacity(decoded.rows().num_rows());
        for (contact, &row) in decoded.row_of().iter().enumerate() {
            if row != crate::NO_ROW {
                mask.push(keep[contact] && contact < before);
            }
        }
        let kept = mask.iter().filter(|k| **k).count();
        self.rows += kept as u64;
        self.rounded_values += decoded
            .rounded_rows()
            .iter()
            .filter(|&&row| mask[row as usize])
            .count() as u64;
        self.unknown_fields += decoded
            .unknown_fields()
            .iter()
            .filter(|(row, _)| mask[*row as usize])
            .map(|(_, n)| u64::from(*n))
            .sum::<u64>();
        if kept > 0 {
            // A verification read usually repeats every contact: nothing to cut or copy then.
            self.push_rows(decoded.rows().clone(), Some(mask))?;
        }
        match stop {
            Some(invalid) => Err(DecodeError::InvalidRecord(Box::new(Reject {
                page: page.number(),
                ..invalid.clone()
            }))),
            None => Ok(()),
        }
    }

    /// Hands rows of [`page_schema`] to the coalescer (those whose flag is set) and queues the
    /// batches it completes, lineage columns added.
    fn push_rows(&mut self, rows: RecordBatch, mask: Option<Vec<bool>>) -> Result<()> {
        let arrow = |context| move |source| DecodeError::Arrow { context, source };
        match mask {
            Some(mask) if mask.iter().all(|k| *k) => self.coalescer.push_batch(rows),
            Some(mask) => self
                .coalescer
                .push_batch_with_filter(rows, &BooleanArray::from(mask)),
            None => self.coalescer.push_batch(rows),
        }
        .map_err(arrow("cutting batches"))?;
        self.take_completed()
    }

    fn take_completed(&mut self) -> Result<()> {
        while let Some(batch) = self.coalescer.next_completed_batch() {
            let batch = self.with_lineage(batch)?;
            self.ready.push_back(batch);
        }
        Ok(())
    }

    /// Whether a full batch is waiting.
    pub fn has_batch(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Takes the next full batch (`batch_size` rows), if one is waiting.
    pub fn next_batch(&mut self) -> Option<RecordBatch> {
        self.ready.pop_front()
    }

    /// Takes the next full batch if one is waiting, else the rows buffered so far as a (shorter)
    /// batch; `None` when nothing is buffered.
    pub fn flush(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(batch) = self.ready.pop_front() {
            return Ok(Some(batch));
        }
        self.coalescer
            .finish_buffered_batch()
            .map_err(|source| DecodeError::Arrow {
                context: "cutting the last batch",
                source,
            })?;
        self.take_completed()?;
        Ok(self.ready.pop_front())
    }

    /// Takes the rejects kept so far (under [`InvalidPolicy::Quarantine`]).
    pub fn take_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }

    /// Rows decoded successfully so far (emitted or buffered).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Invalid records met so far, under either policy.
    pub fn rejects(&self) -> u64 {
        self.rejected
    }

    /// Undocumented top-level fields met in accepted rows (each occurrence counts).
    pub fn unknown_fields(&self) -> u64 {
        self.unknown_fields
    }

    /// What decoding found so far, as `_manifest.json` records it.
    pub fn stats(&self) -> DecodeStats {
        DecodeStats {
            rounded_values: self.rounded_values,
            unknown_fields: self.unknown_fields,
            ..DecodeStats::default()
        }
    }

    /// Accepted rows whose `revenue_total` had a non-zero digit beyond the 4th decimal place and
    /// was rounded half to even to fit `DECIMAL(18,4)` (see [Money](self#money)). Rejected
    /// records are never counted.
    pub fn rounded_values(&self) -> u64 {
        self.rounded_values
    }

    /// Rows buffered and not yet cut into a batch.
    pub fn buffered_rows(&self) -> usize {
        self.coalescer.get_buffered_rows()
    }

    fn with_lineage(&self, rows: RecordBatch) -> Result<RecordBatch> {
        let n = rows.num_rows();
        let mut columns = rows.columns().to_vec();
        columns.extend(lineage_columns(self.extracted_at, &self.run_id, n));
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|source| DecodeError::Arrow {
            context: "assembling a batch",
            source,
        })
    }
}

/// Counts of what decoding changed or set aside within accepted rows, for `_manifest.json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DecodeStats {
    /// `revenue_total` values rounded half to even to 4 decimals (see
    /// [`ContactDecoder::rounded_values`]).
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
