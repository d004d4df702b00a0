//! The decoder as it was before the single-pass scanner: serde_json with a hand-written
//! visitor, one contact at a time. Kept only as the oracle of the differential tests (it goes
//! with the serde-based `Page::parse` once the fetcher hands out decoded pages).
#![allow(dead_code, clippy::unwrap_used)]

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;

use std::ops::Range;

use crate::page::{Page, Pagination};
use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Int64Builder, MapBuilder, MapFieldNames, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::de::{IgnoredAny, SeqAccess};
use serde_json::value::RawValue;

use super::decimal::{DecimalError, parse_decimal_18_4};
use super::json_text::{push_compact, push_json_string, push_unescaped, quote_value};
use super::{DecoderOptions, InvalidPolicy, Reject, parse_timestamp_micros};
use crate::error::{DecodeError, Result};
use crate::schema::{
    MAP_ENTRIES, MAP_KEY, MAP_VALUE, REVENUE_PRECISION, REVENUE_SCALE, TIMESTAMP_TZ, col,
    contacts_schema, lineage_columns,
};

const DOCUMENTED_FIELDS: [&str; 18] = {
    let mut names = [""; 18];
    let mut i = 0;
    while i < 18 {
        names[i] = crate::fields::FIELDS[i].name;
        i += 1;
    }
    names
};

/// Decodes contact objects into batches of [`contacts_schema`]; see the [module docs](self).
pub(crate) struct ContactDecoder {
    schema: SchemaRef,
    batch_size: usize,
    extracted_at: i64,
    run_id: String,
    on_invalid: InvalidPolicy,
    builders: Builders,
    buffered: usize,
    ready: VecDeque<RecordBatch>,
    rejects: Vec<Reject>,
    rows: u64,
    rejected: u64,
    unknown_fields: u64,
    rounded_values: u64,
    scratch: Scratch,
}

impl fmt::Debug for ContactDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactDecoder")
            .field("batch_size", &self.batch_size)
            .field("run_id", &self.run_id)
            .field("on_invalid", &self.on_invalid)
            .field("buffered", &self.buffered)
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
            builders: Builders::new(options.batch_size),
            buffered: 0,
            ready: VecDeque::new(),
            rejects: Vec::new(),
            rows: 0,
            rejected: 0,
            unknown_fields: 0,
            rounded_values: 0,
            scratch: Scratch::default(),
        })
    }

    /// The schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Decodes every contact of `page`.
    pub fn decode_page(&mut self, page: &Page) -> Result<()> {
        self.decode_raw(page.number(), page.raw_contacts())
    }

    /// Decodes contact objects given as JSON text, numbering them from 0 within `page`.
    pub fn decode_raw<'a>(
        &mut self,
        page: u64,
        contacts: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<()> {
        for (index, raw) in contacts.into_iter().enumerate() {
            match self.decode_one(raw) {
                Ok(()) => {
                    self.rows += 1;
                    self.buffered += 1;
                    if self.buffered >= self.batch_size {
                        let batch = self.finish_batch()?;
                        self.ready.push_back(batch);
                    }
                }
                Err(invalid) => {
                    self.rejected += 1;
                    match self.on_invalid {
                        InvalidPolicy::Fail => {
                            return Err(DecodeError::InvalidRecord {
                                page,
                                index,
                                field: invalid.field.into_owned(),
                                value: invalid.value,
                                reason: invalid.reason.into_owned(),
                            });
                        }
                        InvalidPolicy::Quarantine => self.rejects.push(Reject {
                            page,
                            index,
                            field: invalid.field.into_owned(),
                            value: invalid.value,
                            reason: invalid.reason.into_owned(),
                            raw: String::from_utf8_lossy(raw).into_owned(),
                        }),
                    }
                }
            }
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
        if self.buffered == 0 {
            return Ok(None);
        }
        self.finish_batch().map(Some)
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
    pub fn stats(&self) -> (u64, u64) {
        (self.rounded_values, self.unknown_fields)
    }

    /// Accepted rows whose `revenue_total` had a non-zero digit beyond the 4th decimal place and
    /// was rounded half to even to fit `DECIMAL(18,4)` (see [Money](self#money)). Rejected
    /// records are never counted.
    pub fn rounded_values(&self) -> u64 {
        self.rounded_values
    }

    /// Rows buffered and not yet cut into a batch.
    pub fn buffered_rows(&self) -> usize {
        self.buffered
    }

    fn decode_one(&mut self, raw: &[u8]) -> Result<(), Invalid> {
        self.scratch.clear();
        // Validating UTF-8 once per record lets serde_json skip it for every value it borrows.
        let text = std::str::from_utf8(raw).map_err(|e| {
            Invalid::malformed(
                &String::from_utf8_lossy(raw),
                format!("is not valid UTF-8: {e}"),
            )
        })?;
        let mut row = Row::default();
        let mut invalid = None;
        let mut at = None;
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = de
            .deserialize_map(ContactVisitor {
                row: &mut row,
                scratch: &mut self.scratch,
                invalid: &mut invalid,
                at: &mut at,
            })
            .and_then(|()| de.end());
        if let Err(e) = parsed {
            return Err(match (invalid, at) {
                (Some(mut invalid), _) => {
                    if invalid.value.is_empty() {
                        // The fast path does not keep value text; find it only now.
                        invalid.value = locate_value(text, &invalid.field, invalid.occurrence);
                    }
                    invalid
                }
                // A token strict JSON rejects (`NaN`, `Infinity`, a raw control character in
                // a string) inside the value of `field`: name the field and show the text.
                (None, Some(field)) if e.is_syntax() => Invalid {
                    field,
                    value: text_at(text, e.column()),
                    reason: format!("is not valid JSON ({e})").into(),
                    occurrence: 0,
                },
                (None, _) => {
                    Invalid::malformed(text, format!("is not a valid contact object: {e}"))
                }
            });
        }
        for field in [col::PHONE_NUMBER, col::LIST_NUMBER] {
            if row.strs[STR_SLOT[field]].is_none() {
                let present = row.seen & (1 << field) != 0;
                return Err(Invalid {
                    field: Cow::Borrowed(DOCUMENTED_FIELDS[field]),
                    value: if present { "null" } else { "(missing)" }.to_owned(),
                    reason: "is required".into(),
                    occurrence: 0,
                });
            }
        }
        self.unknown_fields += self.scratch.extra_keys.len() as u64;
        self.rounded_values += u64::from(row.revenue_rounded);
        self.builders.append(&row, &mut self.scratch);
        Ok(())
    }

    fn finish_batch(&mut self) -> Result<RecordBatch> {
        let rows = std::mem::take(&mut self.buffered);
        // Finishing a builder drops its capacity; swapping in preallocated ones avoids
        // regrowing (and copying) every buffer batch after batch.
        let mut b = std::mem::replace(&mut self.builders, Builders::new(self.batch_size));
        let arrow = |context| move |source| DecodeError::Arrow { context, source };
        let revenue = b
            .revenue
            .finish()
            .with_precision_and_scale(REVENUE_PRECISION, REVENUE_SCALE)
            .map_err(arrow("setting the revenue_total precision"))?;
        let [extracted_at, run_id] = lineage_columns(self.extracted_at, &self.run_id, rows);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(b.strs[0].finish()),
            Arc::new(b.strs[1].finish()),
            Arc::new(b.ints[0].finish()),
            Arc::new(b.bools[0].finish()),
            Arc::new(b.timestamps[0].finish()),
            Arc::new(b.strs[2].finish()),
            Arc::new(b.custom_fields.finish()),
            Arc::new(b.strs[3].finish()),
            Arc::new(b.strs[4].finish()),
            Arc::new(b.strs[5].finish()),
            Arc::new(b.bools[1].finish()),
            Arc::new(b.ints[1].finish()),
            Arc::new(b.ints[2].finish()),
            Arc::new(revenue),
            Arc::new(b.ints[3].finish()),
            Arc::new(b.timestamps[1].finish()),
            Arc::new(b.timestamps[2].finish()),
            Arc::new(b.bools[2].finish()),
            Arc::new(b.extra.finish()),
            extracted_at,
            run_id,
        ];
        RecordBatch::try_new(self.schema.clone(), columns).map_err(arrow("assembling a batch"))
    }
}

/// Why a record is invalid, before the page and index are attached.
struct Invalid {
    field: Cow<'static, str>,
    /// The offending value's text, quoted; empty until [`locate_value`] fills it in.
    value: String,
    reason: Cow<'static, str>,
    /// Which occurrence of `field` is at fault (1 for a duplicate).
    occurrence: usize,
}

impl Invalid {
    /// An invalid value of documented field `field`, whose text is looked up later.
    fn field(field: usize, reason: impl Into<Cow<'static, str>>) -> Self {
        Invalid {
            field: Cow::Borrowed(DOCUMENTED_FIELDS[field]),
            value: String::new(),
            reason: reason.into(),
            occurrence: 0,
        }
    }

    /// A record that is not a readable JSON object.
    fn malformed(text: &str, reason: String) -> Self {
        Invalid {
            field: Cow::Borrowed("(record)"),
            value: quote_value(text),
            reason: reason.into(),
            occurrence: 0,
        }
    }
}

/// A short, printable excerpt of `record` from 1-based byte column `column` on (control
/// characters escaped), for a token the JSON parser stopped at.
fn text_at(record: &str, column: usize) -> String {
    let mut start = column.saturating_sub(1).min(record.len());
    while !record.is_char_boundary(start) {
        start -= 1;
    }
    // `-Infinity`: the parser stops after the sign.
    if record[..start].ends_with('-') {
        start -= 1;
    }
    let rest = &record[start..];
    let end = rest
        .char_indices()
        .find(|&(i, c)| i > 0 && matches!(c, ',' | '}' | ']'))
        .map_or(rest.len(), |(i, _)| i);
    let excerpt: String = rest[..end].chars().take(40).collect();
    excerpt.escape_debug().to_string()
}

/// The quoted JSON text of the `occurrence`-th value of top-level `key` in `record`.
///
/// Only called for invalid records, so the fast path never has to keep value text around.
fn locate_value(record: &str, key: &str, occurrence: usize) -> String {
    struct Locate<'k> {
        key: &'k str,
        occurrence: usize,
    }
    impl<'de> Visitor<'de> for Locate<'_> {
        type Value = Option<&'de RawValue>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
            // serde_json wants the whole object consumed, so keep reading after a match.
            let mut found = None;
            while let Some(CowStr(k)) = map.next_key::<CowStr<'de>>()? {
                let value: &'de RawValue = map.next_value()?;
                if found.is_none() && k == self.key {
                    if self.occurrence == 0 {
                        found = Some(value);
                    } else {
                        self.occurrence -= 1;
                    }
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_str(record);
    match de.deserialize_map(Locate { key, occurrence }) {
        Ok(Some(raw)) => quote_value(raw.get()),
        _ => "(unavailable)".to_owned(),
    }
}

/// What kind of column a documented field fills, and its slot among columns of that kind.
#[derive(Clone, Copy)]
enum Kind {
    Str(usize),
    Int(usize),
    Bool(usize),
    Timestamp(usize),
    Decimal,
    Map,
}

const KINDS: [Kind; 18] = [
    Kind::Str(0),       // phone_number
    Kind::Str(1),       // list_number
    Kind::Int(0),       // list_id
    Kind::Bool(0),      // active
    Kind::Timestamp(0), // signup_date
    Kind::Str(2),       // signup_method
    Kind::Map,          // custom_fields
    Kind::Str(3),       // carrier
    Kind::Str(4),       // line_type
    Kind::Str(5),       // timezone
    Kind::Bool(1),      // is_valid
    Kind::Int(1),       // send_count
    Kind::Int(2),       // click_count
    Kind::Decimal,      // revenue_total
    Kind::Int(3),       // conversion_count
    Kind::Timestamp(1), // last_sent_at
    Kind::Timestamp(2), // last_clicked_at
    Kind::Bool(2),      // in_workflow
];

/// The string slot of the two required fields.
const STR_SLOT: [usize; 2] = [0, 1];

/// Byte equality for short keys, inlined rather than a `memcmp` call per key.
#[inline(always)]
fn same_short(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn field_index(key: &str) -> Option<usize> {
    Some(match key {
        "phone_number" => 0,
        "list_number" => 1,
        "list_id" => 2,
        "active" => 3,
        "signup_date" => 4,
        "signup_method" => 5,
        "custom_fields" => 6,
        "carrier" => 7,
        "line_type" => 8,
        "timezone" => 9,
        "is_valid" => 10,
        "send_count" => 11,
        "click_count" => 12,
        "revenue_total" => 13,
        "conversion_count" => 14,
        "last_sent_at" => 15,
        "last_clicked_at" => 16,
        "in_workflow" => 17,
        _ => return None,
    })
}

/// One record's documented values, staged until the record is known to be valid.
#[derive(Default)]
struct Row<'de> {
    strs: [Option<Cow<'de, str>>; 6],
    ints: [Option<i64>; 4],
    bools: [Option<bool>; 3],
    timestamps: [Option<i64>; 3],
    revenue: Option<i128>,
    /// Whether `revenue` was rounded from the text sent.
    revenue_rounded: bool,
    /// Whether `custom_fields` is a map (entries in [`Scratch`]) rather than null.
    custom_fields: bool,
    /// Bit i set when documented field i was present.
    seen: u32,
}

/// Buffers reused from record to record.
#[derive(Default)]
struct Scratch {
    /// Keys and values of `custom_fields`, back to back.
    cf_text: String,
    /// (key start, key end, value start, value end or `usize::MAX` for a null value).
    cf_entries: Vec<(usize, usize, usize, usize)>,
    /// [`key_hash`] of each entry's key.
    cf_hashes: Vec<u64>,
    /// Keys of a large `custom_fields` object, for the duplicate check.
    cf_keys: HashSet<String>,
    /// `_extra` under construction (`{"k":v,...` without the closing brace).
    extra: String,
    /// Undocumented keys met in this record.
    extra_keys: Vec<String>,
}

const NULL_VALUE: usize = usize::MAX;

impl Scratch {
    fn clear(&mut self) {
        self.cf_text.clear();
        self.cf_entries.clear();
        self.cf_hashes.clear();
        self.extra.clear();
        self.extra_keys.clear();
    }
}

/// The Arrow builders of one batch, one per decoded column.
struct Builders {
    strs: [StringBuilder; 6],
    ints: [Int64Builder; 4],
    bools: [BooleanBuilder; 3],
    timestamps: [TimestampMicrosecondBuilder; 3],
    revenue: Decimal128Builder,
    custom_fields: MapBuilder<StringBuilder, StringBuilder>,
    extra: StringBuilder,
}

impl Builders {
    fn new(rows: usize) -> Self {
        let strings = |bytes_per_row| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        let names = MapFieldNames {
            entry: MAP_ENTRIES.into(),
            key: MAP_KEY.into(),
            value: MAP_VALUE.into(),
        };
        Builders {
            strs: [
                strings(12),
                strings(12),
                strings(8),
                strings(8),
                strings(10),
                strings(20),
            ],
            ints: std::array::from_fn(|_| Int64Builder::with_capacity(rows)),
            bools: std::array::from_fn(|_| BooleanBuilder::with_capacity(rows)),
            timestamps: std::array::from_fn(|_| {
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone(TIMESTAMP_TZ)
            }),
            revenue: Decimal128Builder::with_capacity(rows),
            custom_fields: MapBuilder::with_capacity(
                Some(names),
                StringBuilder::with_capacity(rows * 4, rows * 40),
                StringBuilder::with_capacity(rows * 4, rows * 60),
                rows,
            ),
            extra: StringBuilder::new(),
        }
    }

    /// Appends one validated row. Infallible, so a row is never half-appended.
    fn append(&mut self, row: &Row<'_>, scratch: &mut Scratch) {
        for (builder, value) in self.strs.iter_mut().zip(&row.strs) {
            builder.append_option(value.as_deref());
        }
        for (builder, value) in self.ints.iter_mut().zip(&row.ints) {
            builder.append_option(*value);
        }
        for (builder, value) in self.bools.iter_mut().zip(&row.bools) {
            builder.append_option(*value);
        }
        for (builder, value) in self.timestamps.iter_mut().zip(&row.timestamps) {
            builder.append_option(*value);
        }
        self.revenue.append_option(row.revenue);

        let (keys, values) = self.custom_fields.entries();
        if row.custom_fields {
            let text = scratch.cf_text.as_str();
            for &(ks, ke, vs, ve) in &scratch.cf_entries {
                keys.append_value(&text[ks..ke]);
                if ve == NULL_VALUE {
                    values.append_null();
                } else {
                    values.append_value(&text[vs..ve]);
                }
            }
        }
        // Keys and values were appended in pairs just above, so `append` cannot fail.
        let _ = self.custom_fields.append(row.custom_fields);

        if scratch.extra.is_empty() {
            self.extra.append_null();
        } else {
            scratch.extra.push('}');
            self.extra.append_value(&scratch.extra);
        }
    }
}

/// A top-level key: one of the documented fields, or anything else.
enum Key<'de> {
    Known(usize),
    Unknown(Cow<'de, str>),
}

/// Reads a top-level key, trying first the documented field expected next: the API sends
/// fields in documented order, so this is usually one comparison.
struct KeySeed {
    expected: usize,
}

impl KeySeed {
    #[inline]
    fn classify(&self, v: &str) -> Option<usize> {
        match DOCUMENTED_FIELDS.get(self.expected) {
            Some(name) if same_short(name.as_bytes(), v.as_bytes()) => Some(self.expected),
            _ => field_index(v),
        }
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    #[inline]
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(match self.classify(v) {
            Some(i) => Key::Known(i),
            None => Key::Unknown(Cow::Borrowed(v)),
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(match self.classify(v) {
            Some(i) => Key::Known(i),
            None => Key::Unknown(Cow::Owned(v.to_owned())),
        })
    }
}

/// A key of `custom_fields`, borrowed when it has no escapes.
struct CowStr<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Walks one contact object, staging each value into `row` and `scratch`.
///
/// An invalid value is put in `invalid` and parsing stops with a placeholder serde error.
struct ContactVisitor<'s, 'de> {
    row: &'s mut Row<'de>,
    scratch: &'s mut Scratch,
    invalid: &'s mut Option<Invalid>,
    /// The key whose value is being read: where a token strict JSON rejects sits.
    at: &'s mut Option<Cow<'static, str>>,
}

impl<'de> Visitor<'de> for ContactVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a contact object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let row = self.row;
        let mut expected = 0;
        while let Some(key) = map.next_key_seed(KeySeed { expected })? {
            let staged = match key {
                Key::Known(field) => {
                    *self.at = Some(Cow::Borrowed(DOCUMENTED_FIELDS[field]));
                    expected = field + 1;
                    let bit = 1u32 << field;
                    if row.seen & bit != 0 {
                        let mut invalid = Invalid::field(field, "appears more than once");
                        invalid.occurrence = 1;
                        Err(invalid)
                    } else {
                        row.seen |= bit;
                        match KINDS[field] {
                            Kind::Decimal => {
                                let raw: &'de RawValue = map.next_value()?;
                                stage_revenue(raw, row)
                            }
                            Kind::Map => {
                                let mut problem = None;
                                let seed = CustomFieldsSeed {
                                    scratch: self.scratch,
                                    problem: &mut problem,
                                };
                                match map.next_value_seed(seed) {
                                    Ok(present) => {
                                        row.custom_fields = present;
                                        Ok(())
                                    }
                                    Err(e) => match problem {
                                        Some(reason) => Err(Invalid::field(field, reason)),
                                        None => return Err(e),
                                    },
                                }
                            }
                            kind => {
                                let value = map.next_value_seed(ScalarSeed)?;
                                stage_scalar(field, kind, value, row)
                            }
                        }
                    }
                }
                Key::Unknown(name) => {
                    *self.at = Some(Cow::Owned(name.to_string()));
                    let raw: &'de RawValue = map.next_value()?;
                    stage_unknown(name, raw, self.scratch)
                }
            };
            if let Err(invalid) = staged {
                *self.invalid = Some(invalid);
                return Err(de::Error::custom("invalid record"));
            }
        }
        Ok(())
    }
}

/// A scalar JSON value as serde_json reports it, strings borrowed when they have no escapes.
enum Scalar<'de> {
    Null,
    Str(Cow<'de, str>),
    Int(i64),
    /// An integer beyond i64, or a number with a fraction or exponent.
    OtherNumber,
    Bool(bool),
    /// An object or array (already skipped).
    Compound,
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(i64::try_from(v).map_or(Scalar::OtherNumber, Scalar::Int))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::OtherNumber)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Scalar::Compound)
    }
}

#[inline]
fn stage_scalar<'de>(
    field: usize,
    kind: Kind,
    value: Scalar<'de>,
    row: &mut Row<'de>,
) -> Result<(), Invalid> {
    match (kind, value) {
        (_, Scalar::Null) => {}
        (Kind::Str(slot), Scalar::Str(s)) => row.strs[slot] = Some(s),
        (Kind::Str(_), _) => return Err(Invalid::field(field, "is not a string")),
        (Kind::Int(slot), Scalar::Int(v)) => row.ints[slot] = Some(v),
        (Kind::Int(_), _) => {
            return Err(Invalid::field(field, "is not an integer that fits i64"));
        }
        (Kind::Bool(slot), Scalar::Bool(v)) => row.bools[slot] = Some(v),
        (Kind::Bool(_), _) => return Err(Invalid::field(field, "is not a boolean")),
        (Kind::Timestamp(slot), Scalar::Str(s)) => {
            row.timestamps[slot] =
                Some(parse_timestamp_micros(&s).map_err(|reason| Invalid::field(field, reason))?);
        }
        (Kind::Timestamp(_), _) => {
            return Err(Invalid::field(field, "is not a timestamp string"));
        }
        (Kind::Decimal | Kind::Map, _) => {
            return Err(Invalid::field(field, "is not read as a scalar (bug)"));
        }
    }
    Ok(())
}

/// Stages `revenue_total` as the module docs' "Money" section says.
fn stage_revenue(raw: &RawValue, row: &mut Row<'_>) -> Result<(), Invalid> {
    let text = raw.get();
    if text == "null" {
        return Ok(());
    }
    // A decimal serialised as a JSON string is read as the number it spells, but only when it
    // spells one exactly: the raw text keeps escapes, which no number needs, so they fail too.
    let (number, quoted) = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => (inner, true),
        None => (text, false),
    };
    let value = parse_decimal_18_4(number).map_err(|e| {
        let reason = match e {
            DecimalError::Syntax if quoted => "is a string that is not a JSON number",
            _ => e.reason(),
        };
        Invalid::field(col::REVENUE_TOTAL, reason)
    })?;
    row.revenue = Some(value.unscaled);
    row.revenue_rounded = value.rounded;
    Ok(())
}

/// Reads `custom_fields` straight from the record: `null` → `false`, an object → its entries
/// staged in [`Scratch`] and `true`; anything else sets `problem` and fails.
struct CustomFieldsSeed<'s> {
    scratch: &'s mut Scratch,
    problem: &'s mut Option<Cow<'static, str>>,
}

impl CustomFieldsSeed<'_> {
    fn not_an_object<T, E: de::Error>(self) -> Result<T, E> {
        *self.problem = Some(Cow::Borrowed("is not an object"));
        Err(E::custom("invalid custom_fields"))
    }
}

impl<'de> DeserializeSeed<'de> for CustomFieldsSeed<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CustomFieldsSeed<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_none<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        self.not_an_object()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        self.not_an_object()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        self.not_an_object()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        self.not_an_object()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        self.not_an_object()
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<bool, A::Error> {
        self.not_an_object()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        const LINEAR_CHECK_UP_TO: usize = 64;
        let scratch = self.scratch;
        scratch.cf_keys.clear();
        while let Some(CowStr(key)) = map.next_key::<CowStr<'de>>()? {
            let hash = key_hash(&key);
            let text = &scratch.cf_text;
            let entries = &scratch.cf_entries;
            let seen = if entries.len() < LINEAR_CHECK_UP_TO {
                scratch
                    .cf_hashes
                    .iter()
                    .zip(entries)
                    .any(|(&h, &(ks, ke, _, _))| h == hash && text[ks..ke] == *key)
            } else {
                if scratch.cf_keys.is_empty() {
                    let keys = entries
                        .iter()
                        .map(|&(ks, ke, _, _)| text[ks..ke].to_owned());
                    scratch.cf_keys.extend(keys);
                }
                !scratch.cf_keys.insert(key.clone().into_owned())
            };
            if seen {
                *self.problem = Some(Cow::Owned(format!("has the key {key:?} more than once")));
                return Err(de::Error::custom("duplicate key"));
            }

            let raw: &'de RawValue = map.next_value()?;
            let out = &mut scratch.cf_text;
            let ks = out.len();
            out.push_str(&key);
            let ke = out.len();
            let value = raw.get();
            let ve = match value.as_bytes().first() {
                Some(b'n') => NULL_VALUE,
                Some(b'"') => {
                    // serde_json has validated the literal, so unescaping cannot fail.
                    if !push_unescaped(&value[1..value.len() - 1], out) {
                        return Err(de::Error::custom("unreadable string"));
                    }
                    out.len()
                }
                Some(b'{' | b'[') => {
                    push_compact(value, out);
                    out.len()
                }
                // Numbers keep their exact text; booleans are `true`/`false` already.
                _ => {
                    out.push_str(value);
                    out.len()
                }
            };
            scratch.cf_entries.push((ks, ke, ke, ve));
            scratch.cf_hashes.push(hash);
        }
        Ok(true)
    }
}

/// FNV-1a: a cheap filter before comparing `custom_fields` keys for duplicates.
#[inline]
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Adds an undocumented field to `_extra`, refusing a second occurrence of the same key.
fn stage_unknown(name: Cow<'_, str>, raw: &RawValue, scratch: &mut Scratch) -> Result<(), Invalid> {
    if scratch.extra_keys.iter().any(|k| *k == name) {
        return Err(Invalid {
            value: quote_value(raw.get()),
            field: Cow::Owned(name.into_owned()),
            reason: "appears more than once".into(),
            occurrence: 1,
        });
    }
    let extra = &mut scratch.extra;
    extra.push(if extra.is_empty() { '{' } else { ',' });
    push_json_string(&name, extra);
    extra.push(':');
    push_compact(raw.get(), extra);
    scratch.extra_keys.push(name.into_owned());
    Ok(())
}

// The envelope reader before the scanner: strict serde_json, then a structural fallback.

pub(crate) struct Envelope {
    pub(crate) pagination: Pagination,
    pub(crate) contacts: Vec<Range<usize>>,
}

/// Parses `{"contacts": [...], "pagination": {...}}`, recording the byte range of each contact.
///
/// A body that strict JSON rejects is scanned once more for its structure alone: when only the
/// inside of some contacts is at fault (`NaN`, `Infinity`, a raw control character in a
/// string), the envelope is still readable, and those contacts are the decoder's to reject one
/// by one, as invalid records. Anything else (a truncated body, HTML, a wrong shape) stays an
/// error: the strict parser's.
pub(crate) fn parse_envelope(body: &[u8]) -> Result<Envelope, serde_json::Error> {
    let base = body.as_ptr() as usize;
    let mut de = serde_json::Deserializer::from_slice(body);
    let strict = EnvelopeSeed { base }
        .deserialize(&mut de)
        .and_then(|envelope| de.end().map(|()| envelope));
    match strict {
        Ok(envelope) => Ok(envelope),
        Err(e) if e.is_syntax() => lenient::envelope(body).ok_or(e),
        Err(e) => Err(e),
    }
}

struct EnvelopeSeed {
    base: usize,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed {
    type Value = Envelope;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Envelope, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed {
    type Value = Envelope;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object with `contacts` and `pagination`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut contacts = None;
        let mut pagination = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "contacts" => {
                    if contacts.is_some() {
                        return Err(de::Error::duplicate_field("contacts"));
                    }
                    contacts = Some(map.next_value_seed(ContactsSeed { base: self.base })?);
                }
                "pagination" => {
                    if pagination.is_some() {
                        return Err(de::Error::duplicate_field("pagination"));
                    }
                    pagination = Some(map.next_value::<Pagination>()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            contacts: contacts.ok_or_else(|| de::Error::missing_field("contacts"))?,
            pagination: pagination.ok_or_else(|| de::Error::missing_field("pagination"))?,
        })
    }
}

struct ContactsSeed {
    base: usize,
}

impl<'de> DeserializeSeed<'de> for ContactsSeed {
    type Value = Vec<Range<usize>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ContactsSeed {
    type Value = Vec<Range<usize>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of contact objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ranges = Vec::with_capacity(seq.size_hint().unwrap_or(1000));
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            let text = raw.get();
            if !text.starts_with('{') {
                return Err(de::Error::invalid_type(
                    de::Unexpected::Other("a non-object contact"),
                    &"a contact object",
                ));
            }
            // `raw` borrows from the body, so its offset in the body is a pointer difference.
            let start = text.as_ptr() as usize - self.base;
            ranges.push(start..start + text.len());
        }
        Ok(ranges)
    }
}

/// A structural scan of the envelope that does not judge the inside of contacts.
mod lenient {
    use std::ops::Range;

    use super::{Envelope, Pagination};

    pub(super) fn envelope(body: &[u8]) -> Option<Envelope> {
        let mut s = Scanner { b: body, i: 0 };
        s.expect(b'{')?;
        let (mut contacts, mut pagination) = (None, None);
        loop {
            s.ws();
            if s.eat(b'}') {
                break;
            }
            let key = s.string()?;
            s.ws();
            s.expect(b':')?;
            s.ws();
            match &body[key] {
                b"\"contacts\"" if contacts.is_none() => contacts = Some(s.contacts()?),
                b"\"pagination\"" if pagination.is_none() => {
                    let value = s.value()?;
                    pagination = Some(serde_json::from_slice::<Pagination>(&body[value]).ok()?);
                }
                b"\"contacts\"" | b"\"pagination\"" => return None,
                _ => {
                    s.value()?;
                }
            }
            s.ws();
            if !s.eat(b',') {
                s.expect(b'}')?;
                break;
            }
        }
        s.ws();
        (s.i == body.len()).then_some(())?;
        Some(Envelope {
            contacts: contacts?,
            pagination: pagination?,
        })
    }

    struct Scanner<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl Scanner<'_> {
        fn ws(&mut self) {
            while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> bool {
            let hit = self.b.get(self.i) == Some(&c);
            self.i += usize::from(hit);
            hit
        }

        fn expect(&mut self, c: u8) -> Option<()> {
            self.eat(c).then_some(())
        }

        /// A string, quotes included; raw control characters are let through.
        fn string(&mut self) -> Option<Range<usize>> {
            let start = self.i;
            self.expect(b'"')?;
            loop {
                match *self.b.get(self.i)? {
                    b'"' => {
                        self.i += 1;
                        return Some(start..self.i);
                    }
                    b'\\' => self.i += 2,
                    _ => self.i += 1,
                }
            }
        }

        /// Any value: strings, nested objects and arrays, and bare tokens (numbers, literals,
        /// and the non-standard ones such as `NaN`) up to the next delimiter.
        fn value(&mut self) -> Option<Range<usize>> {
            let start = self.i;
            match *self.b.get(self.i)? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    let mut depth = 0usize;
                    loop {
                        match *self.b.get(self.i)? {
                            b'"' => {
                                self.string()?;
                                continue;
                            }
                            b'{' | b'[' => depth += 1,
                            b'}' | b']' => {
                                depth -= 1;
                                if depth == 0 {
                                    self.i += 1;
                                    break;
                                }
                            }
                            _ => {}
                        }
                        self.i += 1;
                    }
                }
                _ => {
                    while self
                        .b
                        .get(self.i)
                        .is_some_and(|c| !b",}]".contains(c) && !c.is_ascii_whitespace())
                    {
                        self.i += 1;
                    }
                    (self.i > start).then_some(())?;
                }
            }
            Some(start..self.i)
        }

        fn contacts(&mut self) -> Option<Vec<Range<usize>>> {
            self.expect(b'[')?;
            let mut ranges = Vec::new();
            self.ws();
            if self.eat(b']') {
                return Some(ranges);
            }
            loop {
                self.ws();
                if self.b.get(self.i) != Some(&b'{') {
                    return None;
                }
                ranges.push(self.value()?);
                self.ws();
                if !self.eat(b',') {
                    self.expect(b']')?;
                    return Some(ranges);
                }
            }
        }
    }
}
