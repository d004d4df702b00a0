//! One `GET /v2/contacts` answer decoded in a single pass over its bytes: the pagination
//! block, every contact's key, and the columns of every valid contact.

use std::ops::Range;

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;

use crate::columns::{Column, Columns};
use crate::key::{Identity, hash_key, identify};
use crate::page::Pagination;
use crate::record::{self, Found, Problem, Scratch, locate, quote, text_at};
use crate::scan::Cursor;
use crate::schema::{col, page_schema};

/// Why a body is not a page of contacts: the fetcher retries it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not `{"contacts": [objects...], "pagination": {...}}` (truncated, HTML, a wrong shape).
    #[error("not a page of contacts: {reason} (at byte {at})")]
    Shape {
        /// What is wrong.
        reason: &'static str,
        /// Where the body stops making sense.
        at: usize,
    },
    /// The `pagination` block does not read as documented.
    #[error("the pagination block is not as documented: {source}")]
    Pagination {
        /// serde_json's reading of the block.
        #[source]
        source: serde_json::Error,
    },
    /// Building the page's Arrow columns failed (a bug rather than bad input).
    #[error("arrow error while building a page: {source}")]
    Arrow {
        /// The underlying error.
        #[source]
        source: ArrowError,
    },
}

/// A contact that does not fit the schema: which one, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Its 0-based position in the body, as sent.
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

/// A page of contacts, decoded: see [`decode_page`].
#[derive(Debug, Clone)]
pub struct ContactsPage {
    number: u64,
    pass: u32,
    pagination: Pagination,
    keys: Vec<Identity>,
    ranges: Vec<Range<usize>>,
    rows: RecordBatch,
    row_of: Vec<u32>,
    invalid: Vec<Invalid>,
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

    /// 1 for the main pass; 2 and up for a verification read (see the fetcher).
    pub fn pass(&self) -> u32 {
        self.pass
    }

    /// The pagination block the API sent.
    pub fn pagination(&self) -> Pagination {
        self.pagination
    }

    /// Contacts in the body, valid or not.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the body held no contact.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Where each contact lies in the body, in body order.
    pub fn ranges(&self) -> &[Range<usize>] {
        &self.ranges
    }

    /// A page with no contact.
    pub(crate) fn empty(number: u64, pagination: Pagination) -> ContactsPage {
        ContactsPage {
            number,
            pass: 1,
            pagination,
            keys: Vec::new(),
            ranges: Vec::new(),
            rows: RecordBatch::new_empty(page_schema()),
            row_of: Vec::new(),
            invalid: Vec::new(),
            rounded: Vec::new(),
            unknown_fields: Vec::new(),
        }
    }

    /// Every contact's key, in body order (invalid contacts included).
    pub fn keys(&self) -> &[Identity] {
        &self.keys
    }

    /// The valid contacts as rows of [`page_schema`], in body order.
    pub fn rows(&self) -> &RecordBatch {
        &self.rows
    }

    /// For each contact in body order, its row in [`rows`](Self::rows), or [`NO_ROW`].
    pub fn row_of(&self) -> &[u32] {
        &self.row_of
    }

    /// The contacts that do not fit the schema, in body order.
    pub fn invalid(&self) -> &[Invalid] {
        &self.invalid
    }

    /// Rows whose `revenue_total` was rounded half to even to 4 decimals.
    pub fn rounded_rows(&self) -> &[u32] {
        &self.rounded
    }

    /// `(row, count)` of rows with undocumented fields (kept in `_extra`).
    pub fn unknown_fields(&self) -> &[(u32, u32)] {
        &self.unknown_fields
    }
}

/// Decodes one response body of `GET /v2/contacts` in one pass.
///
/// Fails, for the fetcher to retry, when the body is not the documented envelope
/// (`{"contacts": [objects...], "pagination": {...}}`, keys in any order, other keys ignored).
/// Damage inside a contact (`NaN`, a raw control character, a wrong type, a repeated key,
/// invalid UTF-8) only makes that contact [`Invalid`]; the rest of the page is kept.
pub fn decode_page(number: u64, pass: u32, body: &[u8]) -> Result<ContactsPage, EnvelopeError> {
    let mut reader = PageReader {
        body,
        utf8: std::str::from_utf8(body).is_ok(),
        cols: Columns::new(body.len() / 600 + 1),
        scratch: Scratch::default(),
        keys: Vec::new(),
        ranges: Vec::new(),
        row_of: Vec::new(),
        invalid: Vec::new(),
        rounded: Vec::new(),
        unknown_fields: Vec::new(),
    };
    let pagination = reader.envelope()?;
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
        keys: reader.keys,
        ranges: reader.ranges,
        rows,
        row_of: reader.row_of,
        invalid: reader.invalid,
        rounded: reader.rounded,
        unknown_fields: reader.unknown_fields,
    })
}

struct PageReader<'a> {
    body: &'a [u8],
    utf8: bool,
    cols: Columns,
    scratch: Scratch,
    keys: Vec<Identity>,
    ranges: Vec<Range<usize>>,
    row_of: Vec<u32>,
    invalid: Vec<Invalid>,
    rounded: Vec<u32>,
    unknown_fields: Vec<(u32, u32)>,
}

fn shape(reason: &'static str, at: usize) -> EnvelopeError {
    EnvelopeError::Shape { reason, at }
}

impl PageReader<'_> {
    /// The envelope, read as leniently as before this scanner: keys in any order, unknown
    /// keys skipped by their structure alone, whitespace between tokens.
    fn envelope(&mut self) -> Result<Pagination, EnvelopeError> {
        let mut c = Cursor::new(self.body, 0);
        c.ws();
        if !c.eat(b'{') {
            return Err(shape("not a JSON object", c.i));
        }
        let (mut contacts, mut pagination) = (false, None);
        loop {
            c.ascii_ws();
            if c.eat(b'}') {
                break;
            }
            let key_at = c.i;
            if c.peek() != Some(b'"') {
                return Err(shape("expected a key", c.i));
            }
            let key = c
                .skip_structure()
                .ok_or(shape("unterminated key", key_at))?;
            c.ascii_ws();
            if !c.eat(b':') {
                return Err(shape("expected `:`", c.i));
            }
            c.ascii_ws();
            match envelope_key(&self.body[key]).as_deref() {
                Some(b"contacts") if !contacts => {
                    self.contacts(&mut c)?;
                    contacts = true;
                }
                Some(b"pagination") if pagination.is_none() => {
                    let at = c.i;
                    let value = c.skip_structure().ok_or(shape("unterminated value", at))?;
                    pagination = Some(
                        serde_json::from_slice::<Pagination>(&self.body[value])
                            .map_err(|source| EnvelopeError::Pagination { source })?,
                    );
                }
                Some(b"contacts" | b"pagination") => {
                    return Err(shape("a repeated key", key_at));
                }
                _ => {
                    let at = c.i;
                    c.skip_structure().ok_or(shape("unterminated value", at))?;
                }
            }
            c.ascii_ws();
            if !c.eat(b',') {
                if !c.eat(b'}') {
                    return Err(shape("expected `,` or `}`", c.i));
                }
                break;
            }
        }
        c.ascii_ws();
        if c.i != self.body.len() {
            return Err(shape("text after the page", c.i));
        }
        if !contacts {
            return Err(shape("no `contacts`", c.i));
        }
        pagination.ok_or(shape("no `pagination`", c.i))
    }

    /// The `contacts` array; the cursor is on its `[`.
    fn contacts(&mut self, c: &mut Cursor<'_>) -> Result<(), EnvelopeError> {
        if !c.eat(b'[') {
            return Err(shape("`contacts` is not an array", c.i));
        }
        c.ascii_ws();
        if c.eat(b']') {
            return Ok(());
        }
        loop {
            c.ascii_ws();
            if c.peek() != Some(b'{') {
                return Err(shape("a contact that is not an object", c.i));
            }
            c.i = self.contact(c.i)?;
            c.ascii_ws();
            if !c.eat(b',') {
                if !c.eat(b']') {
                    return Err(shape("expected `,` or `]`", c.i));
                }
                return Ok(());
            }
        }
    }

    /// One contact starting at `start` (its `{`); returns where it ends.
    fn contact(&mut self, start: usize) -> Result<usize, EnvelopeError> {
        let index = self.keys.len();
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
                self.ranges.push(start..c.i);
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
            .ok_or(shape("unterminated contact", start))
    }

    fn accept(&mut self, found: &Found) {
        let row = self.cols.rows() as u32;
        let key = match (
            &self.cols.fields[col::PHONE_NUMBER],
            &self.cols.fields[col::LIST_NUMBER],
        ) {
            (Column::Utf8(phone), Column::Utf8(list)) => hash_key(phone.last(), list.last()),
            _ => 0,
        };
        self.cols.commit();
        self.keys.push(Identity {
            hash: key,
            signup: found.signup,
        });
        self.row_of.push(row);
        if found.rounded {
            self.rounded.push(row);
        }
        if found.unknown_fields > 0 {
            self.unknown_fields.push((row, found.unknown_fields));
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
        self.ranges.push(range);
        // A damaged contact is identified as the paging run always did: by its key when the
        // key reads, else by its text (so the same damaged contact served twice counts once).
        self.keys.push(identify(raw));
        self.row_of.push(NO_ROW);
        self.invalid.push(Invalid {
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
        problem: Problem,
    ) -> Result<(String, String, String, usize), EnvelopeError> {
        let described = describe(self.body, start, problem, &mut self.scratch);
        let end = match described.end {
            Some(end) => end,
            None => self.structural_end(start)?,
        };
        let value = match described.value {
            Shown::Text(value) => value,
            Shown::At(at) => text_at(&self.body[start..end], at - start),
            Shown::Whole => quote(&self.body[start..end]),
        };
        Ok((described.field, value, described.reason, end))
    }
}

/// The text of an envelope key (between its quotes), unescaped when it has escapes; `None`
/// when it cannot be.
fn envelope_key(quoted: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    let inner = quoted.get(1..quoted.len().checked_sub(1)?)?;
    if !inner.contains(&b'\\') {
        return Some(std::borrow::Cow::Borrowed(inner));
    }
    let mut out = Vec::new();
    crate::scan::unescape(inner, &mut out).then_some(std::borrow::Cow::Owned(out))
}

/// What a [`Problem`] shows, before the contact's end is known.
pub(crate) struct Described {
    pub(crate) field: String,
    pub(crate) value: Shown,
    pub(crate) reason: String,
    pub(crate) end: Option<usize>,
}

/// How a problem's value is shown.
pub(crate) enum Shown {
    Text(String),
    /// An excerpt from this offset of the text.
    At(usize),
    /// The whole contact.
    Whole,
}

/// Turns a problem met in `text` (the contact starting at `start`) into what errors show.
pub(crate) fn describe(text: &[u8], start: usize, problem: Problem, s: &mut Scratch) -> Described {
    let _ = start;
    match problem {
        Problem::Field {
            field,
            reason,
            value_at,
            colon_read,
            shown_anyway,
        } => {
            let (value, end) = locate(text, value_at, colon_read, shown_anyway, s.stack());
            Described {
                field: field.into_owned(),
                value: Shown::Text(value),
                reason: reason.into_owned(),
                end,
            }
        }
        Problem::Syntax {
            field,
            start,
            reason,
        } => Described {
            field: field.map_or_else(|| "(record)".to_owned(), |f| f.into_owned()),
            value: Shown::At(start),
            reason: reason.into_owned(),
            end: None,
        },
        Problem::Malformed(reason) => Described {
            field: "(record)".to_owned(),
            value: Shown::Whole,
            reason: reason.into_owned(),
            end: None,
        },
        Problem::Required { field, null } => Described {
            field: crate::fields::FIELDS[field].name.to_owned(),
            value: Shown::Text(if null { "null" } else { "(missing)" }.to_owned()),
            reason: "is required".to_owned(),
            end: None,
        },
    }
}
