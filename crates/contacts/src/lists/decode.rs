//! [`ListDecoder`]: list objects as JSON text → one batch of [`lists_schema`], one row per `id`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use super::ListsPage;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{COLUMNS, ID, Kind, lists_schema};
use crate::decode::{DecodeStats, DecoderOptions, InvalidPolicy};
use crate::error::{DecodeError, Result};
use crate::json_text::{push_compact, push_json_string, quote_value};
use crate::reject::ListReject;
use crate::schema::{TIMESTAMP_TZ, lineage_columns};
use crate::timestamp::parse_timestamp_micros;

/// One stored value of a documented field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cell {
    Null,
    Int(i64),
    Text(String),
    Micros(i64),
}

/// A valid list, before it becomes a row.
#[derive(Debug, Clone)]
struct Row {
    cells: [Cell; COLUMNS.len()],
    /// Undocumented fields as one compact JSON object.
    extra: Option<String>,
}

/// A list that does not fit, before the answer it came in, its position and its text are
/// attached: field, value and reason.
type ListFault = (String, String, String);

fn malformed(text: &str, reason: String) -> ListFault {
    ("(record)".to_owned(), quote_value(text), reason)
}

/// Decodes list objects into one batch of [`lists_schema`]; see the
/// [module docs](crate::lists).
pub struct ListDecoder {
    extracted_at: i64,
    run_id: String,
    on_invalid: InvalidPolicy,
    /// Valid lists by `id`: the last one read wins, rows come out in `id` order.
    by_id: BTreeMap<i64, Row>,
    rejects: Vec<ListReject>,
    rejected: u64,
    stats: DecodeStats,
    /// `(column, value)` pairs outside the documented values already warned about.
    warned: HashSet<(usize, String)>,
}

impl fmt::Debug for ListDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListDecoder")
            .field("run_id", &self.run_id)
            .field("on_invalid", &self.on_invalid)
            .field("lists", &self.by_id.len())
            .field("rejects", &self.rejected)
            .field("stats", &self.stats)
            .finish()
    }
}

impl ListDecoder {
    /// A decoder for the run `options` describe (run id, start, invalid-record policy; the
    /// batch size does not apply: [`finish`](Self::finish) returns one batch).
    pub fn new(options: DecoderOptions) -> Self {
        ListDecoder {
            extracted_at: options.extracted_at.timestamp_micros(),
            run_id: options.run_id,
            on_invalid: options.on_invalid,
            by_id: BTreeMap::new(),
            rejects: Vec::new(),
            rejected: 0,
            stats: DecodeStats::default(),
            warned: HashSet::new(),
        }
    }

    /// Decodes every list of one answer of `GET /v2/lists`.
    pub fn decode_page(&mut self, page: &ListsPage) -> Result<()> {
        self.decode_raw(page.source(), page.records())
    }

    /// Decodes list objects given as JSON text, numbered from 0 within the answer `request`
    /// (named in errors and rejects).
    pub fn decode_raw<'a>(
        &mut self,
        request: &str,
        lists: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<()> {
        for (index, raw) in lists.into_iter().enumerate() {
            match self.decode_one(raw) {
                Ok(row) => {
                    let Cell::Int(id) = row.cells[ID] else {
                        // `decode_one` only accepts a list with an integer id.
                        continue;
                    };
                    if self.by_id.insert(id, row).is_some() {
                        self.stats.replaced += 1;
                    }
                }
                Err((field, value, reason)) => {
                    self.rejected += 1;
                    let reject = ListReject {
                        request: request.to_owned(),
                        index,
                        field,
                        value,
                        reason,
                        raw: String::from_utf8_lossy(raw).into_owned(),
                    };
                    match self.on_invalid {
                        InvalidPolicy::Fail => {
                            return Err(DecodeError::InvalidList(Box::new(reject)));
                        }
                        InvalidPolicy::Quarantine => self.rejects.push(reject),
                    }
                }
            }
        }
        Ok(())
    }

    /// Distinct lists read so far.
    pub fn lists(&self) -> usize {
        self.by_id.len()
    }

    /// Invalid lists met so far, under either policy.
    pub fn rejects(&self) -> u64 {
        self.rejected
    }

    /// Takes the rejects kept so far (under [`InvalidPolicy::Quarantine`]).
    pub fn take_rejects(&mut self) -> Vec<ListReject> {
        std::mem::take(&mut self.rejects)
    }

    /// What decoding kept as sent or replaced so far (undocumented fields and values, lists
    /// met twice), as the lists table's `_manifest.json` records it.
    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// Every list read so far as one batch (possibly empty), in `id` order; the decoder is
    /// empty afterwards (its counters stay).
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let rows: Vec<Row> = std::mem::take(&mut self.by_id).into_values().collect();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(COLUMNS.len() + 3);
        for (c, column) in COLUMNS.iter().enumerate() {
            let cells = rows.iter().map(|row| &row.cells[c]);
            let array: ArrayRef = match column.kind {
                Kind::Int => Arc::new(Int64Array::from_iter(cells.map(|cell| match cell {
                    Cell::Int(v) => Some(*v),
                    _ => None,
                }))),
                Kind::Text | Kind::OneOf(_) => {
                    Arc::new(StringArray::from_iter(cells.map(|cell| match cell {
                        Cell::Text(s) => Some(s.as_str()),
                        _ => None,
                    })))
                }
                Kind::Timestamp => Arc::new(
                    TimestampMicrosecondArray::from_iter(cells.map(|cell| match cell {
                        Cell::Micros(v) => Some(*v),
                        _ => None,
                    }))
                    .with_timezone(TIMESTAMP_TZ),
                ),
            };
            columns.push(array);
        }
        columns.push(Arc::new(StringArray::from_iter(
            rows.iter().map(|row| row.extra.as_deref()),
        )));
        columns.extend(lineage_columns(self.extracted_at, &self.run_id, rows.len()));
        RecordBatch::try_new(lists_schema(), columns).map_err(|source| DecodeError::Arrow {
            context: "assembling the lists batch",
            source,
        })
    }

    fn decode_one(&mut self, raw: &[u8]) -> Result<Row, ListFault> {
        let text = std::str::from_utf8(raw).map_err(|e| {
            malformed(
                &String::from_utf8_lossy(raw),
                format!("is not valid UTF-8: {e}"),
            )
        })?;
        let mut de = serde_json::Deserializer::from_str(text);
        let entries = de
            .deserialize_map(EntriesVisitor)
            .and_then(|entries| de.end().map(|()| entries))
            .map_err(|e| malformed(text, format!("is not a valid list object: {e}")))?;

        let mut row = Row {
            cells: std::array::from_fn(|_| Cell::Null),
            extra: None,
        };
        let mut seen = [false; COLUMNS.len()];
        let mut extra_keys: Vec<&str> = Vec::new();
        let mut extra = Vec::new();
        for (key, value) in &entries {
            let invalid = |reason: &str| (key.clone(), quote_value(value.get()), reason.to_owned());
            match COLUMNS.iter().position(|c| c.name == key) {
                Some(c) => {
                    if std::mem::replace(&mut seen[c], true) {
                        return Err(invalid("appears more than once"));
                    }
                    row.cells[c] = self.read(c, value).map_err(|reason| invalid(&reason))?;
                }
                None => {
                    if extra_keys.contains(&key.as_str()) {
                        return Err(invalid("appears more than once"));
                    }
                    extra_keys.push(key);
                    extra.push(if extra.is_empty() { b'{' } else { b',' });
                    push_json_string(key.as_bytes(), &mut extra);
                    extra.push(b':');
                    push_compact(value.get().as_bytes(), &mut extra);
                }
            }
        }
        for (c, column) in COLUMNS.iter().enumerate() {
            if column.required && row.cells[c] == Cell::Null {
                return Err((
                    column.name.to_owned(),
                    if seen[c] { "null" } else { "(missing)" }.to_owned(),
                    "is required".to_owned(),
                ));
            }
        }
        if !extra.is_empty() {
            extra.push(b'}');
            // Built from UTF-8 text and ASCII punctuation: the fallback never runs.
            row.extra = Some(
                String::from_utf8(extra)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            );
            self.stats.unknown_fields += extra_keys.len() as u64;
        }
        Ok(row)
    }

    /// The cell of column `c` from its JSON text, or why it does not fit.
    fn read(&mut self, c: usize, value: &RawValue) -> Result<Cell, String> {
        let text = value.get();
        if text == "null" {
            return Ok(Cell::Null);
        }
        let string =
            || serde_json::from_str::<String>(text).map_err(|_| "is not a string".to_owned());
        match COLUMNS[c].kind {
            Kind::Int => serde_json::from_str::<serde_json::Number>(text)
                .ok()
                .and_then(|n| n.as_i64())
                .map(Cell::Int)
                .ok_or_else(|| "is not an integer that fits i64".to_owned()),
            Kind::Text => string().map(Cell::Text),
            Kind::OneOf(known) => {
                let value = string()?;
                if !known.contains(&value.as_str()) {
                    self.stats.unknown_values += 1;
                    if self.warned.insert((c, value.clone())) {
                        tracing::warn!(
                            field = COLUMNS[c].name,
                            value = %value,
                            documented = ?known,
                            "a list has an undocumented value; it is kept as sent"
                        );
                    }
                }
                Ok(Cell::Text(value))
            }
            Kind::Timestamp => {
                let value = serde_json::from_str::<String>(text)
                    .map_err(|_| "is not a timestamp string")?;
                parse_timestamp_micros(&value)
                    .map(Cell::Micros)
                    .map_err(|reason| reason.into_owned())
            }
        }
    }
}

/// The top-level keys and raw values of one object, in order, duplicates kept (so they can be
/// refused rather than silently collapsed).
struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Vec<(String, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(COLUMNS.len());
        while let Some(key) = map.next_key::<String>()? {
            let value: &'de RawValue = map.next_value()?;
            entries.push((key, value));
        }
        Ok(entries)
    }
}
