//! One `GET /v2/contacts` answer decoded in a single pass over its bytes: the pagination
//! block, every contact's key, and the columns of every valid contact.

use std::ops::Range;

use arrow_array::RecordBatch;

use crate::columns::{ColumnBuffer, Columns};
use crate::envelope::{self, EnvelopeError, Pagination};
use crate::json_text::{quote, text_at};
use crate::key::{Identity, hash_key, identify};
use crate::record::{self, RecordFacts, Scratch, ShownValue, WhyInvalid};
use crate::reject::Reject;
use crate::scan::Cursor;
use crate::schema::{col, page_schema};

/// Which read of the listing a page comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pass {
    /// The main pass over the listing, in ascending window order.
    #[default]
    Main,
    /// A verification read of a page boundary the main pass did not prove (a request with
    /// another page size whose window straddles it; see the fetcher).
    Verification,
}

/// A page of contacts, decoded: see [`decode_page`].
#[derive(Debug, Clone)]
pub struct ContactsPage {
    number: u64,
    pass: Pass,
    pagination: Pagination,
    rows: RecordBatch,
    found: Found,
}

/// What a body held, contact by contact, as [`decode_page`] read it.
#[derive(Debug, Clone, Default)]
struct Found {
    keys: Vec<Identity>,
    ranges: Vec<Range<usize>>,
    row_of: Vec<u32>,
    invalid: Vec<Reject>,
    rounded: Vec<u32>,
    unknown_fields: Vec<(u32, u32)>,
}

/// `row_of` for a contact that has no row (it is invalid).
pub const NO_ROW: u32 = u32::MAX;

impl ContactsPage {
    /// The page number that was requested.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Which read of the listing the page comes from.
    pub fn pass(&self) -> Pass {
        self.pass
    }

    /// The pagination block the API sent.
    pub fn pagination(&self) -> Pagination {
        self.pagination
    }

    /// Contacts in the body, valid or not.
    pub fn len(&self) -> usize {
        self.found.keys.len()
    }

    /// Whether the body held no contact.
    pub fn is_empty(&self) -> bool {
        self.found.keys.is_empty()
    }

    /// Where each contact lies in the body, in body order.
    pub fn ranges(&self) -> &[Range<usize>] {
        &self.found.ranges
    }

    /// Every contact's key, in body order (invalid contacts included).
    pub fn keys(&self) -> &[Identity] {
        &self.found.keys
    }

    /// The valid contacts as rows of [`page_schema`], in body order.
    pub fn rows(&self) -> &RecordBatch {
        &self.rows
    }

    /// For each contact in body order, its row in [`rows`](Self::rows), or [`NO_ROW`].
    pub fn row_of(&self) -> &[u32] {
        &self.found.row_of
    }

    /// The contacts that do not fit the schema, in body order ([`Reject::page`] is the number
    /// the page was decoded with).
    pub fn invalid(&self) -> &[Reject] {
        &self.found.invalid
    }

    /// Rows whose `revenue_total` was rounded half to even to 4 decimals.
    pub fn rounded_rows(&self) -> &[u32] {
        &self.found.rounded
    }

    /// `(row, count)` of rows with undocumented fields (kept in `_extra`).
    pub fn unknown_fields(&self) -> &[(u32, u32)] {
        &self.found.unknown_fields
    }
}

/// Decodes one response body of `GET /v2/contacts` in one pass.
///
/// Fails, for the fetcher to retry, when the body is not the documented envelope
/// (`{"contacts": [objects...], "pagination": {...}}`, keys in any order, other keys ignored).
/// Damage inside a contact (`NaN`, a raw control character, a wrong type, a repeated key,
/// invalid UTF-8) only makes that contact invalid (a [`Reject`]); the rest of the page is kept.
pub fn decode_page(number: u64, pass: Pass, body: &[u8]) -> Result<ContactsPage, EnvelopeError> {
    let mut reader = PageReader {
        number,
        body,
        utf8: std::str::from_utf8(body).is_ok(),
        cols: Columns::new(body.len() / 600 + 1),
        scratch: Scratch::default(),
        found: Found::default(),
    };
    let pagination = envelope::read(body, |start| reader.contact(start))?;
    let columns = reader
        .cols
        .finish()
        .map_err(|source| EnvelopeError::Arrow { source })?;
    let rows = RecordBatch::try_new(page_schema(), columns)
        .map_err(|source| EnvelopeError::Arrow { source })?;
    Ok(ContactsPage {
        number,
        pass,
        pagination,
        rows,
        found: reader.found,
    })
}

struct PageReader<'a> {
    number: u64,
    body: &'a [u8],
    utf8: bool,
    cols: Columns,
    scratch: Scratch,
    found: Found,
}

impl PageReader<'_> {
    /// One contact starting at `start` (its `{`); returns where it ends.
    fn contact(&mut self, start: usize) -> Result<usize, EnvelopeError> {
        let index = self.found.keys.len();
        if !self.utf8 {
            let end = self.structural_end(start)?;
            if let Err(e) = std::str::from_utf8(&self.body[start..end]) {
                let raw = &self.body[start..end];
                self.reject(
                    index,
                    start..end,
                    "(record)".into(),
                    quote(raw),
                    format!("is not valid UTF-8: {e}"),
                );
                return Ok(end);
            }
        }
        let mut c = Cursor::new(self.body, start);
        let outcome = record::object(&mut c, &mut self.cols, &mut self.scratch)
            .and_then(|found| record::required(&found, &self.cols).map(|()| found));
        match outcome {
            Ok(found) => {
                self.accept(&found);
                self.found.ranges.push(start..c.i);
                Ok(c.i)
            }
            Err(problem) => {
                self.cols.rollback();
                let (field, value, reason, end) = self.describe(start, problem)?;
                self.reject(index, start..end, field, value, reason);
                Ok(end)
            }
        }
    }

    fn structural_end(&self, start: usize) -> Result<usize, EnvelopeError> {
        let mut c = Cursor::new(self.body, start);
        c.skip_structure()
            .map(|r| r.end)
            .ok_or(EnvelopeError::Shape {
                reason: "unterminated or mismatched contact",
                at: start,
            })
    }

    fn accept(&mut self, found: &RecordFacts) {
        let row = self.cols.rows() as u32;
        let key = match (
            &self.cols.fields[col::PHONE_NUMBER],
            &self.cols.fields[col::LIST_NUMBER],
        ) {
            (ColumnBuffer::Utf8(phone), ColumnBuffer::Utf8(list)) => {
                hash_key(phone.last(), list.last())
            }
            _ => 0,
        };
        self.cols.commit();
        self.found.keys.push(Identity {
            hash: key,
            signup: found.signup,
        });
        self.found.row_of.push(row);
        if found.rounded {
            self.found.rounded.push(row);
        }
        if found.unknown_fields > 0 {
            self.found.unknown_fields.push((row, found.unknown_fields));
        }
    }

    fn reject(
        &mut self,
        index: usize,
        range: Range<usize>,
        field: String,
        value: String,
        reason: String,
    ) {
        let raw = &self.body[range.clone()];
        self.found.ranges.push(range);
        // A damaged contact is identified as the paging run always did: by its key when the
        // key reads, else by its text (so the same damaged contact served twice counts once).
        self.found.keys.push(identify(raw));
        self.found.row_of.push(NO_ROW);
        self.found.invalid.push(Reject {
            page: self.number,
            index,
            field,
            value,
            reason,
            raw: String::from_utf8_lossy(raw).into_owned(),
        });
    }

    /// Field, value and reason of a problem, and where the contact ends.
    fn describe(
        &mut self,
        start: usize,
        problem: WhyInvalid,
    ) -> Result<(String, String, String, usize), EnvelopeError> {
        let described = record::describe(self.body, problem, &mut self.scratch);
        let end = match described.end {
            Some(end) => end,
            None => self.structural_end(start)?,
        };
        let value = match described.value {
            ShownValue::Text(value) => value,
            ShownValue::At(at) => text_at(&self.body[start..end], at - start),
            ShownValue::Whole => quote(&self.body[start..end]),
        };
        Ok((described.field, value, described.reason, end))
    }
}
