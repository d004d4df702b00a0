//! [`ContactBatcher`]: the rows of decoded pages ([`Page`]s) → Arrow [`RecordBatch`]es of
//! [`contacts_schema`], push-style. Nothing here reads JSON: [`decode_page`](crate::decode_page)
//! did, once, when the page was built. The batcher takes the contacts the run keeps, cuts their
//! rows into `batch_size`-row batches (arrow-select's `BatchCoalescer`), adds the lineage
//! columns and applies the invalid-record policy.
//!
//! # Batches
//!
//! A batch is cut as soon as `batch_size` rows are buffered; full batches wait in a queue
//! ([`ContactBatcher::next_batch`]). [`ContactBatcher::flush`] returns queued batches first and
//! then the partial one, so `while let Some(b) = batcher.flush()? {}` drains everything.
//!
//! # Invalid records
//!
//! Under [`InvalidPolicy::Fail`] the first invalid record stops [`push_page`](ContactBatcher::push_page) with
//! [`DecodeError::InvalidRecord`] (its [`Reject`]: page, 0-based index, field, value cut to
//! ~200 characters, reason); the records of that page before it stay buffered, the invalid one is not appended
//! at all. The index is the contact's position in the body as the API sent it (contacts
//! de-duplication dropped still count). Under [`InvalidPolicy::Quarantine`] it is kept as a
//! [`Reject`] and the batcher goes on.
//!
//! # Memory usage
//!
//! The batcher holds at most one partial batch (`batch_size` rows, about the size of the
//! decoded JSON) plus the full batches not yet taken with `next_batch`/`flush`, and
//! the rejects not yet taken with [`ContactBatcher::take_rejects`] (each keeps its record's raw
//! text: take them after every page).

use std::collections::VecDeque;
use std::fmt;

use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use arrow_select::coalesce::BatchCoalescer;

use crate::decode::{DecodeStats, DecoderOptions, InvalidPolicy};
use crate::error::{DecodeError, Result};
use crate::page::Page;
use crate::reject::Reject;
use crate::schema::{contacts_schema, lineage_columns, page_schema};

/// Cuts the rows of decoded pages into batches of [`contacts_schema`] (how batches are cut,
/// the lineage columns and the invalid-record policy: the docs of `batcher.rs`).
pub struct ContactBatcher {
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

impl fmt::Debug for ContactBatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactBatcher")
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

impl ContactBatcher {
    /// Creates a batcher; fails if `batch_size` is 0.
    pub fn new(options: DecoderOptions) -> Result<Self> {
        if options.batch_size == 0 {
            return Err(DecodeError::InvalidOption {
                option: "batch_size",
                reason: "must be at least 1".into(),
            });
        }
        Ok(ContactBatcher {
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

    /// Takes the contacts of `page` that the run keeps ([`Page::kept_by_contact`]), already
    /// decoded when the page was built: their rows are cut into batches (nothing is tokenized
    /// again) and its invalid contacts go to the policy, in body order. Under
    /// [`InvalidPolicy::Fail`] the rows before the first kept invalid contact are kept and the
    /// error names its position in the body as sent.
    pub fn push_page(&mut self, page: &Page) -> Result<()> {
        let decoded = page.decoded();
        let kept_by_contact = page.kept_by_contact();
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
                mask.push(kept_by_contact[contact] && contact < before);
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
            self.push_rows(decoded.rows().clone(), mask)?;
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
    fn push_rows(&mut self, rows: RecordBatch, mask: Vec<bool>) -> Result<()> {
        if mask.iter().all(|k| *k) {
            self.coalescer.push_batch(rows)
        } else {
            self.coalescer
                .push_batch_with_filter(rows, &BooleanArray::from(mask))
        }
        .map_err(|source| DecodeError::Arrow {
            context: "cutting batches",
            source,
        })?;
        self.take_completed()
    }

    fn take_completed(&mut self) -> Result<()> {
        while let Some(batch) = self.coalescer.next_completed_batch() {
            let batch = self.with_lineage(batch)?;
            self.ready.push_back(batch);
        }
        Ok(())
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
    /// was rounded half to even to fit `DECIMAL(18,4)` (see [Money](crate::decode#money)). Rejected
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
