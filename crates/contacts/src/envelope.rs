//! The envelope of a `GET /v2/contacts` answer, `{"contacts": [objects...], "pagination":
//! {...}}`: its pagination block, where each contact starts, and why a body is not a page.

use std::borrow::Cow;

use arrow_schema::ArrowError;
use serde::{Deserialize, Serialize};

use crate::json_text::unescape;
use crate::scan::Cursor;

/// The `pagination` block of a response, as the API reported it.
///
/// Every field is optional: APIs leave some out (a silent page-size cap has no `per_page`), send
/// `null`, or send a count as a string. A number, or a string holding a whole number, is read;
/// anything else (missing, `null`, `"many"`, `-1`, `2.5`) is `None`, and the fetcher proves
/// the run without it (see the fetcher's Guarantees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pagination {
    /// The page this response is for (1-based).
    #[serde(default, deserialize_with = "lenient_count")]
    pub page: Option<u64>,
    /// Contacts per page, as the server says it applied it.
    #[serde(default, deserialize_with = "lenient_count")]
    pub per_page: Option<u64>,
    /// Contacts matching the query when the page was served.
    #[serde(default, deserialize_with = "lenient_count")]
    pub total: Option<u64>,
    /// `ceil(total / per_page)` when the page was served.
    #[serde(default, deserialize_with = "lenient_count")]
    pub total_pages: Option<u64>,
}

/// A count as APIs send it: a whole number, or a string holding one; anything else is `None`.
fn lenient_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    Ok(match value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

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

/// Reads the envelope `{"contacts": [objects...], "pagination": {...}}` of `body`, as
/// leniently as before this scanner: keys in any order, unknown keys skipped by their structure
/// alone, whitespace between tokens. `contact` reads each contact, starting at its `{`, and
/// returns where it ends.
pub(crate) fn read(
    body: &[u8],
    mut contact: impl FnMut(usize) -> Result<usize, EnvelopeError>,
) -> Result<Pagination, EnvelopeError> {
    let mut c = Cursor::new(body, 0);
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
        match envelope_key(&body[key]).as_deref() {
            Some(b"contacts") if !contacts => {
                read_contacts(&mut c, &mut contact)?;
                contacts = true;
            }
            Some(b"pagination") if pagination.is_none() => {
                let at = c.i;
                let value = c
                    .skip_structure()
                    .ok_or(shape("unterminated or mismatched value", at))?;
                pagination = Some(
                    serde_json::from_slice::<Pagination>(&body[value])
                        .map_err(|source| EnvelopeError::Pagination { source })?,
                );
            }
            Some(b"contacts" | b"pagination") => {
                return Err(shape("a repeated key", key_at));
            }
            _ => {
                let at = c.i;
                c.skip_structure()
                    .ok_or(shape("unterminated or mismatched value", at))?;
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
    if c.i != body.len() {
        return Err(shape("text after the page", c.i));
    }
    if !contacts {
        return Err(shape("no `contacts`", c.i));
    }
    pagination.ok_or(shape("no `pagination`", c.i))
}

/// The `contacts` array; the cursor is on its `[`.
fn read_contacts(
    c: &mut Cursor<'_>,
    contact: &mut impl FnMut(usize) -> Result<usize, EnvelopeError>,
) -> Result<(), EnvelopeError> {
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
        c.i = contact(c.i)?;
        c.ascii_ws();
        if !c.eat(b',') {
            if !c.eat(b']') {
                return Err(shape("expected `,` or `]`", c.i));
            }
            return Ok(());
        }
    }
}

fn shape(reason: &'static str, at: usize) -> EnvelopeError {
    EnvelopeError::Shape { reason, at }
}

/// The text of an envelope key (between its quotes), unescaped when it has escapes; `None`
/// when it cannot be.
fn envelope_key(quoted: &[u8]) -> Option<Cow<'_, [u8]>> {
    let inner = quoted.get(1..quoted.len().checked_sub(1)?)?;
    if !inner.contains(&b'\\') {
        return Some(Cow::Borrowed(inner));
    }
    let mut out = Vec::new();
    unescape(inner, &mut out).then_some(Cow::Owned(out))
}
