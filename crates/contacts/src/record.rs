//! One contact object, read in one pass straight into [`Columns`].
//!
//! Values are appended as they are met, in whatever order the fields come; a contact that
//! turns out invalid is taken back by the caller ([`Columns::rollback`]). What is wrong with it
//! is a [`WhyInvalid`], turned into the field, value and reason that errors and rejects show.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;

use crate::columns::{ColumnBuffer, Columns, MapCol, Utf8Col};
use crate::decimal::{Decimal18_4, DecimalError, parse_decimal_18_4};
use crate::fields::{ColumnType, FIELDS, position};
use crate::json_text::{push_compact, push_json_string, quote, unescape};
use crate::scan::{Cursor, Fault, Str, Strings};
use crate::schema::col;
use crate::timestamp::{naive_seconds_micros, parse_timestamp_micros, signup_micros};

/// What one valid contact told besides its columns.
#[derive(Debug, Default)]
pub(crate) struct RecordFacts {
    /// Bit `i` set when documented field `i` was present.
    pub(crate) seen: u32,
    /// `signup_date` as the paging run reads it ([`signup_micros`]).
    pub(crate) signup: Option<i64>,
    /// Undocumented top-level fields (kept in `_extra`).
    pub(crate) unknown_fields: u32,
    /// Whether `revenue_total` was rounded.
    pub(crate) rounded: bool,
}

/// A top-level key: where a fault is attributed.
#[derive(Debug, Clone)]
enum Key {
    Known(usize),
    Unknown(Str),
}

/// Why a contact is invalid, with positions in the text being scanned.
#[derive(Debug)]
pub(crate) enum WhyInvalid {
    /// A value that does not fit its column (or a repeated key). Its text is shown only when
    /// the whole object is valid JSON (`shown_anyway` aside), as serde_json's lookup did.
    Field {
        field: Cow<'static, str>,
        reason: Cow<'static, str>,
        /// Where the offending value starts (after the colon), or where its key ends when the
        /// colon is still to be read.
        value_at: usize,
        colon_read: bool,
        shown_anyway: bool,
    },
    /// Text that is not JSON inside the value of `field` (`None`: before the first key).
    Syntax {
        field: Option<Cow<'static, str>>,
        start: usize,
        reason: Cow<'static, str>,
    },
    /// Not a readable object at all.
    Malformed(Cow<'static, str>),
    /// A required field missing (`null: false`) or null.
    Required { field: usize, null: bool },
}

/// Scratch space reused from contact to contact.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    stack: Vec<u8>,
    text: Vec<u8>,
    /// Unescaped names of the undocumented keys of this contact, back to back.
    unknown_names: Vec<u8>,
    unknown_ends: Vec<usize>,
    cf_hashes: Vec<u64>,
    cf_keys: HashSet<Vec<u8>>,
}

impl Scratch {
    /// Scratch space for nesting while skipping a value.
    pub(crate) fn stack(&mut self) -> &mut Vec<u8> {
        &mut self.stack
    }
}

/// The quoted names of the documented fields, for the expected-next-field fast path.
static QUOTED: std::sync::LazyLock<Vec<Vec<u8>>> = std::sync::LazyLock::new(|| {
    FIELDS
        .iter()
        .map(|f| format!("\"{}\"", f.name).into_bytes())
        .collect()
});

/// Reads the object at the cursor (on its `{`) into the row under construction of `cols`. On
/// success every column has a value for that row; on failure the caller rolls it back.
pub(crate) fn object(
    c: &mut Cursor<'_>,
    cols: &mut Columns,
    s: &mut Scratch,
) -> Result<RecordFacts, WhyInvalid> {
    let mut found = RecordFacts::default();
    s.unknown_names.clear();
    s.unknown_ends.clear();
    let mut extra_open = false;
    let mut at: Option<Key> = None;
    let mut expected = 0usize;
    let quoted = &*QUOTED;
    c.i += 1;
    c.ws();
    if !c.eat(b'}') {
        loop {
            if c.peek() != Some(b'"') {
                return Err(syntax(c, &at, c.unexpected(), s));
            }
            let key = match quoted.get(expected) {
                Some(q) if c.eat_slice(q) => Key::Known(expected),
                _ => read_key(c, &at, s)?,
            };
            at = Some(key.clone());
            match key {
                Key::Known(field) => {
                    expected = field + 1;
                    let bit = 1u32 << field;
                    if found.seen & bit != 0 {
                        return Err(field_problem(field, "appears more than once", c.i, false));
                    }
                    found.seen |= bit;
                    colon(c, &at, s)?;
                    value(c, field, cols, s, &mut found).map_err(|p| p.at(c, &at, s))?;
                }
                Key::Unknown(ref name) => {
                    colon(c, &at, s)?;
                    unknown(c, name, cols, s, &mut extra_open, &mut found)
                        .map_err(|p| p.at(c, &at, s))?;
                }
            }
            c.ws();
            if c.eat(b',') {
                c.ws();
                continue;
            }
            if c.eat(b'}') {
                break;
            }
            return Err(syntax(c, &at, c.unexpected(), s));
        }
    }
    for (i, column) in cols.fields.iter_mut().enumerate() {
        if found.seen & (1 << i) == 0 {
            column.push_null();
        }
    }
    if extra_open {
        cols.extra.data.push(b'}');
        cols.extra.end_value();
    } else {
        cols.extra.push_null();
    }
    Ok(found)
}

/// After a whole object was read: the required fields.
pub(crate) fn required(found: &RecordFacts, cols: &Columns) -> Result<(), WhyInvalid> {
    for (field, spec) in FIELDS.iter().enumerate() {
        if !spec.required {
            continue;
        }
        let present = found.seen & (1 << field) != 0;
        let null = match &cols.fields[field] {
            ColumnBuffer::Utf8(c) => present && c.last_is_null(),
            _ => false,
        };
        if !present || null {
            return Err(WhyInvalid::Required {
                field,
                null: present,
            });
        }
    }
    Ok(())
}

/// A fault inside a value, before it is attributed to its key.
enum Inner {
    Fault(Fault),
    Field(usize, Cow<'static, str>, usize),
    Unknown(Cow<'static, str>, Range<usize>),
    Malformed(Cow<'static, str>),
}

impl From<Fault> for Inner {
    fn from(f: Fault) -> Self {
        Inner::Fault(f)
    }
}

impl Inner {
    fn at(self, c: &Cursor<'_>, at: &Option<Key>, s: &mut Scratch) -> WhyInvalid {
        match self {
            Inner::Fault(f) => syntax(c, at, f, s),
            Inner::Field(field, reason, value_at) => field_problem(field, reason, value_at, true),
            Inner::Unknown(reason, range) => WhyInvalid::Field {
                field: key_name(c, at, s).unwrap_or_default(),
                reason,
                value_at: range.start,
                colon_read: true,
                shown_anyway: true,
            },
            Inner::Malformed(reason) => WhyInvalid::Malformed(reason),
        }
    }
}

fn field_problem(
    field: usize,
    reason: impl Into<Cow<'static, str>>,
    value_at: usize,
    colon_read: bool,
) -> WhyInvalid {
    WhyInvalid::Field {
        field: Cow::Borrowed(FIELDS[field].name),
        reason: reason.into(),
        value_at,
        colon_read,
        shown_anyway: false,
    }
}

fn syntax(c: &Cursor<'_>, at: &Option<Key>, fault: Fault, s: &mut Scratch) -> WhyInvalid {
    match (fault, key_name(c, at, s)) {
        (Fault::Syntax(start), Some(field)) => WhyInvalid::Syntax {
            field: Some(field),
            start,
            reason: Cow::Owned(format!(
                "is not valid JSON (unexpected {} at byte {start})",
                byte_name(c.b.get(start).copied())
            )),
        },
        (Fault::Syntax(start), None) => WhyInvalid::Malformed(Cow::Owned(format!(
            "is not a valid contact object: unexpected {} at byte {start}",
            byte_name(c.b.get(start).copied())
        ))),
        (Fault::Eof, _) => WhyInvalid::Malformed(Cow::Borrowed(
            "is not a valid contact object: the text ends inside it",
        )),
    }
}

fn byte_name(b: Option<u8>) -> String {
    match b {
        Some(b) if b.is_ascii_graphic() => format!("`{}`", b as char),
        Some(b) => format!("byte 0x{b:02x}"),
        None => "end of text".to_owned(),
    }
}

fn key_name(c: &Cursor<'_>, at: &Option<Key>, s: &mut Scratch) -> Option<Cow<'static, str>> {
    Some(match at.as_ref()? {
        Key::Known(field) => Cow::Borrowed(FIELDS[*field].name),
        Key::Unknown(name) => {
            let text = key_text(c.b, name, &mut s.text);
            Cow::Owned(String::from_utf8_lossy(text).into_owned())
        }
    })
}

/// The unescaped text of a key (borrowed when it has no escapes).
fn key_text<'t>(b: &'t [u8], key: &Str, out: &'t mut Vec<u8>) -> &'t [u8] {
    if key.escaped {
        out.clear();
        // Keys are read as decoded strings, so their escapes are characters.
        unescape(&b[key.inner.clone()], out);
        out
    } else {
        &b[key.inner.clone()]
    }
}

fn read_key(c: &mut Cursor<'_>, at: &Option<Key>, s: &mut Scratch) -> Result<Key, WhyInvalid> {
    let key = match c.string(Strings::Decoded) {
        Ok(key) => key,
        Err(f) => return Err(syntax(c, at, f, s)),
    };
    let name = key_text(c.b, &key, &mut s.text);
    Ok(match position(name) {
        Some(field) => Key::Known(field),
        None => Key::Unknown(key),
    })
}

#[inline]
fn colon(c: &mut Cursor<'_>, at: &Option<Key>, s: &mut Scratch) -> Result<(), WhyInvalid> {
    // Compact JSON, the API's form: `:` then the value.
    if c.peek() == Some(b':') && !matches!(c.b.get(c.i + 1), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        c.i += 1;
        return Ok(());
    }
    c.ws();
    if !c.eat(b':') {
        return Err(syntax(c, at, c.unexpected(), s));
    }
    c.ws();
    Ok(())
}

/// The value of documented field `field`, appended to its column.
// Long on purpose: one match of (column type, first byte) per value on the decoder's hot
// path, inlined into the field loop; each arm is a few lines.
#[inline]
fn value(
    c: &mut Cursor<'_>,
    field: usize,
    cols: &mut Columns,
    s: &mut Scratch,
    found: &mut RecordFacts,
) -> Result<(), Inner> {
    let start = c.i;
    let wrong = |reason: &'static str| Inner::Field(field, Cow::Borrowed(reason), start);
    match (&mut cols.fields[field], c.peek()) {
        (column, Some(b'n')) if FIELDS[field].ty != ColumnType::Decimal18_4 => {
            c.literal(b"null")?;
            column.push_null();
        }
        (ColumnBuffer::Utf8(col), Some(b'"')) => {
            let text = c.string(Strings::Decoded)?;
            push_str(c.b, &text, col);
        }
        (ColumnBuffer::Utf8(_), _) => {
            other_scalar(c, s)?;
            return Err(wrong("is not a string"));
        }
        (ColumnBuffer::Int64(col), Some(b'-' | b'0'..=b'9')) => {
            let number = c.number()?;
            match int64(&c.b[number.clone()]) {
                Some(v) => col.push(v),
                None => {
                    finite(c.b, number)?;
                    return Err(wrong("is not an integer that fits i64"));
                }
            }
        }
        (ColumnBuffer::Int64(_), _) => {
            other_scalar(c, s)?;
            return Err(wrong("is not an integer that fits i64"));
        }
        (ColumnBuffer::Boolean(col), Some(b't')) => {
            c.literal(b"true")?;
            col.push(true);
        }
        (ColumnBuffer::Boolean(col), Some(b'f')) => {
            c.literal(b"false")?;
            col.push(false);
        }
        (ColumnBuffer::Boolean(_), _) => {
            other_scalar(c, s)?;
            return Err(wrong("is not a boolean"));
        }
        (ColumnBuffer::Timestamp(col), Some(b'"')) => {
            let text = c.string(Strings::Decoded)?;
            let (micros, signup) = timestamp(c.b, &text, &mut s.text, field == col::SIGNUP_DATE)
                .map_err(|reason| Inner::Field(field, reason, start))?;
            col.push(micros);
            if field == col::SIGNUP_DATE {
                found.signup = signup;
            }
        }
        (ColumnBuffer::Timestamp(_), _) => {
            other_scalar(c, s)?;
            return Err(wrong("is not a timestamp string"));
        }
        (ColumnBuffer::Decimal(col), _) => {
            let raw = c.skip(&mut s.stack)?;
            match decimal(&c.b[raw]).map_err(|reason| Inner::Field(field, reason, start))? {
                Some(value) => {
                    col.push(value.unscaled);
                    found.rounded = value.rounded;
                }
                None => col.push_null(),
            }
        }
        (ColumnBuffer::Map(map), Some(b'{')) => custom_fields(c, map, s).map_err(|e| match e {
            Inner::Field(field, reason, _) => Inner::Field(field, reason, start),
            e => e,
        })?,
        (ColumnBuffer::Map(_), Some(b'[')) => return Err(wrong("is not an object")),
        (ColumnBuffer::Map(_), _) => {
            other_scalar(c, s)?;
            return Err(wrong("is not an object"));
        }
    }
    Ok(())
}

#[inline]
fn push_str(b: &[u8], text: &Str, col: &mut Utf8Col) {
    let inner = &b[text.inner.clone()];
    if text.escaped {
        // Decoded strings have only valid escapes, so this cannot fail.
        unescape(inner, &mut col.data);
        col.end_value();
    } else {
        col.push(inner);
    }
}

/// A value of the wrong type for a scalar column, read as serde_json read it before it could
/// say so: strings decoded, numbers that would be infinite as f64 refused, containers skipped.
fn other_scalar(c: &mut Cursor<'_>, s: &mut Scratch) -> Result<(), Fault> {
    match c.peek() {
        Some(b'"') => c.string(Strings::Decoded).map(drop),
        Some(b'-' | b'0'..=b'9') => {
            let number = c.number()?;
            finite(c.b, number)
        }
        Some(b't') => c.literal(b"true"),
        Some(b'f') => c.literal(b"false"),
        Some(b'n') => c.literal(b"null"),
        Some(b'[' | b'{') => c.skip(&mut s.stack).map(drop),
        _ => Err(c.unexpected()),
    }
}

/// serde_json refuses a number whose f64 value would be infinite.
fn finite(b: &[u8], number: Range<usize>) -> Result<(), Fault> {
    let text = std::str::from_utf8(&b[number.clone()]).unwrap_or("0");
    let integer = !text.bytes().any(|c| matches!(c, b'.' | b'e' | b'E'));
    match text.parse::<f64>() {
        Ok(v) if v.is_infinite() && !integer => Err(Fault::Syntax(number.end - 1)),
        _ => Ok(()),
    }
}

/// Integer text (no fraction, no exponent) that fits i64; `-0` is not one (serde_json reads it
/// as a float).
#[inline]
fn int64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 || (negative && digits == b"0") {
        return None;
    }
    let mut v: i128 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i128::from(d - b'0');
    }
    i64::try_from(if negative { -v } else { v }).ok()
}

/// A timestamp column's value, and `signup_micros`'s reading of the same text (the paging
/// run's order key) when `also_signup`.
fn timestamp(
    b: &[u8],
    text: &Str,
    scratch: &mut Vec<u8>,
    also_signup: bool,
) -> Result<(i64, Option<i64>), Cow<'static, str>> {
    let bytes = key_text(b, text, scratch);
    if let Some(micros) = naive_seconds_micros(bytes) {
        return Ok((micros, Some(micros)));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Cow::Borrowed("is not valid UTF-8"))?;
    let micros = parse_timestamp_micros(text)?;
    Ok((micros, also_signup.then(|| signup_micros(text)).flatten()))
}

/// `revenue_total` as the decoder's "Money" section says; `None` for `null`.
fn decimal(raw: &[u8]) -> Result<Option<Decimal18_4>, Cow<'static, str>> {
    if raw == b"null" {
        return Ok(None);
    }
    let (number, quoted) = match raw {
        [b'"', inner @ .., b'"'] => (inner, true),
        _ => (raw, false),
    };
    let text = std::str::from_utf8(number).unwrap_or("");
    parse_decimal_18_4(text).map(Some).map_err(|e| {
        Cow::Borrowed(match e {
            DecimalError::Syntax if quoted => "is a string that is not a JSON number",
            _ => e.reason(),
        })
    })
}

/// FNV-1a: a cheap filter before comparing `custom_fields` keys for duplicates.
#[inline]
fn key_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `custom_fields`: an object whose values become text; the cursor is on its `{`.
fn custom_fields(c: &mut Cursor<'_>, map: &mut MapCol, s: &mut Scratch) -> Result<(), Inner> {
    const LINEAR_CHECK_UP_TO: usize = 64;
    let first = map.row_start();
    s.cf_hashes.clear();
    s.cf_keys.clear();
    c.i += 1;
    c.ws();
    if c.eat(b'}') {
        map.end_row(true);
        return Ok(());
    }
    loop {
        if c.peek() != Some(b'"') {
            return Err(c.unexpected().into());
        }
        let key = c.string(Strings::Decoded)?;
        push_str(c.b, &key, &mut map.keys);
        let name = map.keys.last();
        let hash = key_hash(name);
        let entries = s.cf_hashes.len();
        let repeated = if entries < LINEAR_CHECK_UP_TO {
            s.cf_hashes
                .iter()
                .enumerate()
                .any(|(i, &h)| h == hash && map.keys.value(first + i) == name)
        } else {
            if s.cf_keys.is_empty() {
                s.cf_keys
                    .extend((0..entries).map(|i| map.keys.value(first + i).to_vec()));
            }
            !s.cf_keys.insert(name.to_vec())
        };
        if repeated {
            let name = String::from_utf8_lossy(name);
            return Err(Inner::Field(
                col::CUSTOM_FIELDS,
                Cow::Owned(format!("has the key {name:?} more than once")),
                0,
            ));
        }
        s.cf_hashes.push(hash);
        c.ws();
        if !c.eat(b':') {
            return Err(c.unexpected().into());
        }
        c.ws();
        entry_value(c, map, s)?;
        c.ws();
        if c.eat(b',') {
            c.ws();
            continue;
        }
        if c.eat(b'}') {
            map.end_row(true);
            return Ok(());
        }
        return Err(c.unexpected().into());
    }
}

/// One `custom_fields` value as text: strings unescaped, `null` null, anything else its
/// compact JSON text.
#[inline]
fn entry_value(c: &mut Cursor<'_>, map: &mut MapCol, s: &mut Scratch) -> Result<(), Inner> {
    let values = &mut map.values;
    match c.peek() {
        Some(b'n') => {
            c.literal(b"null")?;
            values.push_null();
        }
        Some(b'"') => {
            let text = c.string(Strings::Skipped)?;
            let inner = &c.b[text.inner.clone()];
            if text.escaped {
                let mark = values.data.len();
                if !unescape(inner, &mut values.data) {
                    values.data.truncate(mark);
                    return Err(Inner::Malformed(Cow::Borrowed(
                        "is not a valid contact object: a custom_fields value is not a valid \
                         string (lone surrogate)",
                    )));
                }
                values.end_value();
            } else {
                values.push(inner);
            }
        }
        Some(b'[' | b'{') => {
            let raw = c.skip(&mut s.stack)?;
            push_compact(&c.b[raw], &mut values.data);
            values.end_value();
        }
        _ => {
            let raw = c.skip(&mut s.stack)?;
            values.push(&c.b[raw]);
        }
    }
    Ok(())
}

/// An undocumented top-level field: into `_extra`, refused when repeated.
fn unknown(
    c: &mut Cursor<'_>,
    name: &Str,
    cols: &mut Columns,
    s: &mut Scratch,
    extra_open: &mut bool,
    found: &mut RecordFacts,
) -> Result<(), Inner> {
    let raw = c.skip(&mut s.stack)?;
    let text = key_text(c.b, name, &mut s.text);
    let mut from = 0;
    for &end in &s.unknown_ends {
        if s.unknown_names[from..end] == *text {
            return Err(Inner::Unknown(Cow::Borrowed("appears more than once"), raw));
        }
        from = end;
    }
    s.unknown_names.extend_from_slice(text);
    s.unknown_ends.push(s.unknown_names.len());
    let extra = &mut cols.extra.data;
    extra.push(if *extra_open { b',' } else { b'{' });
    *extra_open = true;
    push_json_string(text, extra);
    extra.push(b':');
    push_compact(&c.b[raw], extra);
    found.unknown_fields += 1;
    Ok(())
}

/// The shown value of a [`WhyInvalid::Field`]: the value's text when the whole object (from
/// `object_start`) is valid JSON, as serde_json's lookup found it, else `(unavailable)`; and
/// where the object ends, when it is valid.
pub(crate) fn locate(
    text: &[u8],
    value_at: usize,
    colon_read: bool,
    shown_anyway: bool,
    stack: &mut Vec<u8>,
) -> (String, Option<usize>) {
    let mut c = Cursor::new(text, value_at);
    if !colon_read {
        c.ws();
        if !c.eat(b':') {
            return ("(unavailable)".to_owned(), None);
        }
        c.ws();
    }
    let Ok(value) = c.skip(stack) else {
        return ("(unavailable)".to_owned(), None);
    };
    let shown = quote(&text[value]);
    let end = rest_of_object(&mut c, stack);
    match end {
        Some(end) => (shown, Some(end)),
        None if shown_anyway => (shown, None),
        None => ("(unavailable)".to_owned(), None),
    }
}

/// After a value inside an object: the remaining keys and values, checked; the end offset.
fn rest_of_object(c: &mut Cursor<'_>, stack: &mut Vec<u8>) -> Option<usize> {
    loop {
        c.ws();
        if c.eat(b'}') {
            return Some(c.i);
        }
        if !c.eat(b',') {
            return None;
        }
        c.ws();
        if c.peek() != Some(b'"') {
            return None;
        }
        c.string(Strings::Decoded).ok()?;
        c.ws();
        if !c.eat(b':') {
            return None;
        }
        c.ws();
        c.skip(stack).ok()?;
    }
}

/// What a [`WhyInvalid`] shows, before the contact's end is known.
pub(crate) struct InvalidDescription {
    pub(crate) field: String,
    pub(crate) value: ShownValue,
    pub(crate) reason: String,
    pub(crate) end: Option<usize>,
}

/// How a problem's value is shown.
pub(crate) enum ShownValue {
    Text(String),
    /// An excerpt from this offset of the text.
    At(usize),
    /// The whole contact.
    Whole,
}

/// Turns a problem met in `text` (the contact starting at `start`) into what errors show.
pub(crate) fn describe(text: &[u8], problem: WhyInvalid, s: &mut Scratch) -> InvalidDescription {
    match problem {
        WhyInvalid::Field {
            field,
            reason,
            value_at,
            colon_read,
            shown_anyway,
        } => {
            let (value, end) = locate(text, value_at, colon_read, shown_anyway, s.stack());
            InvalidDescription {
                field: field.into_owned(),
                value: ShownValue::Text(value),
                reason: reason.into_owned(),
                end,
            }
        }
        WhyInvalid::Syntax {
            field,
            start,
            reason,
        } => InvalidDescription {
            field: field.map_or_else(|| "(record)".to_owned(), |f| f.into_owned()),
            value: ShownValue::At(start),
            reason: reason.into_owned(),
            end: None,
        },
        WhyInvalid::Malformed(reason) => InvalidDescription {
            field: "(record)".to_owned(),
            value: ShownValue::Whole,
            reason: reason.into_owned(),
            end: None,
        },
        WhyInvalid::Required { field, null } => InvalidDescription {
            field: crate::fields::FIELDS[field].name.to_owned(),
            value: ShownValue::Text(if null { "null" } else { "(missing)" }.to_owned()),
            reason: "is required".to_owned(),
            end: None,
        },
    }
}
