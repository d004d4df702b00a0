//! Column buffers for decoded contacts, one per entry of [`FIELDS`] plus `_extra`.
//!
//! Values are written straight into these buffers while a contact is scanned; a contact that
//! turns out invalid is taken back with [`Columns::rollback`], so no value is staged twice.
//! [`Columns::finish`] turns the buffers into Arrow arrays without copying them.

use std::sync::Arc;

use arrow_array::types::{Decimal128Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, BooleanArray, MapArray, PrimitiveArray, StringArray, StructArray};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, FieldRef};

use crate::fields::{ColumnType, FIELDS};
use crate::fields::{REVENUE_PRECISION, REVENUE_SCALE, TIMESTAMP_TZ, custom_fields_type};

/// Strings back to back, with offsets and validity.
#[derive(Debug, Default)]
pub(crate) struct Utf8Col {
    pub(crate) data: Vec<u8>,
    offsets: Vec<i32>,
    valid: Vec<bool>,
}

impl Utf8Col {
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Utf8Col {
            data: Vec::with_capacity(bytes),
            offsets,
            valid: Vec::with_capacity(rows),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.valid.len()
    }

    /// Ends the value whose bytes were appended to `data` since the last one.
    #[inline]
    pub(crate) fn end_value(&mut self) {
        // Checked as a whole in `finish`: wrapped offsets never reach Arrow.
        self.offsets.push(self.data.len() as i32);
        self.valid.push(true);
    }

    #[inline]
    pub(crate) fn push(&mut self, value: &[u8]) {
        self.data.extend_from_slice(value);
        self.end_value();
    }

    #[inline]
    pub(crate) fn push_null(&mut self) {
        self.offsets.push(self.data.len() as i32);
        self.valid.push(false);
    }

    /// The last value (for the contact key).
    pub(crate) fn last(&self) -> &[u8] {
        match self.offsets.as_slice() {
            [.., a, b] => &self.data[*a as usize..*b as usize],
            _ => &[],
        }
    }

    /// Value `i`'s bytes.
    pub(crate) fn value(&self, i: usize) -> &[u8] {
        &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// Whether the last value is null.
    pub(crate) fn last_is_null(&self) -> bool {
        self.valid.last() == Some(&false)
    }

    fn truncate(&mut self, rows: usize) {
        self.valid.truncate(rows);
        self.offsets.truncate(rows + 1);
        self.data
            .truncate(self.offsets.last().copied().unwrap_or(0) as usize);
    }

    fn finish(&mut self, rows: usize) -> Result<StringArray, ArrowError> {
        let taken = std::mem::replace(self, Utf8Col::with_capacity(rows, self.data.len()));
        if i32::try_from(taken.data.len()).is_err() {
            return Err(ArrowError::InvalidArgumentError(
                "more than 2 GiB of text in one column of one batch".into(),
            ));
        }
        StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(taken.offsets)),
            Buffer::from_vec(taken.data),
            nulls(taken.valid),
        )
    }
}

/// Fixed-width values with validity.
#[derive(Debug, Default)]
pub(crate) struct PrimCol<T> {
    values: Vec<T>,
    valid: Vec<bool>,
}

impl<T: Copy + Default> PrimCol<T> {
    fn with_capacity(rows: usize) -> Self {
        PrimCol {
            values: Vec::with_capacity(rows),
            valid: Vec::with_capacity(rows),
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, value: T) {
        self.values.push(value);
        self.valid.push(true);
    }

    #[inline]
    pub(crate) fn push_null(&mut self) {
        self.values.push(T::default());
        self.valid.push(false);
    }

    fn truncate(&mut self, rows: usize) {
        self.values.truncate(rows);
        self.valid.truncate(rows);
    }

    fn take(&mut self, rows: usize) -> (Vec<T>, Option<NullBuffer>) {
        let taken = std::mem::replace(self, PrimCol::with_capacity(rows));
        (taken.values, nulls(taken.valid))
    }
}

/// `custom_fields`: a `Map<Utf8, Utf8>` as entry keys, entry values and per-row offsets.
#[derive(Debug, Default)]
pub(crate) struct MapCol {
    pub(crate) keys: Utf8Col,
    pub(crate) values: Utf8Col,
    offsets: Vec<i32>,
    valid: Vec<bool>,
}

impl MapCol {
    fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        MapCol {
            keys: Utf8Col::with_capacity(rows * 4, rows * 40),
            values: Utf8Col::with_capacity(rows * 4, rows * 60),
            offsets,
            valid: Vec::with_capacity(rows),
        }
    }

    /// Ends the row whose entries were appended since the last one (`true`: a map, `false`:
    /// null, with no entries).
    #[inline]
    pub(crate) fn end_row(&mut self, present: bool) {
        self.offsets.push(self.keys.len() as i32);
        self.valid.push(present);
    }

    /// Where this row's entries start.
    pub(crate) fn row_start(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0) as usize
    }

    fn truncate(&mut self, rows: usize) {
        self.valid.truncate(rows);
        self.offsets.truncate(rows + 1);
        let entries = self.row_start();
        self.keys.truncate(entries);
        self.values.truncate(entries);
    }

    fn finish(&mut self, rows: usize) -> Result<MapArray, ArrowError> {
        let entries = self.keys.len();
        let keys = self.keys.finish(entries)?;
        let values = self.values.finish(entries)?;
        let taken = std::mem::replace(self, MapCol::with_capacity(rows));
        let DataType::Map(entry_field, _) = custom_fields_type() else {
            return Err(ArrowError::SchemaError("custom_fields is not a map".into()));
        };
        let entry_field: FieldRef = entry_field;
        let DataType::Struct(kv) = entry_field.data_type().clone() else {
            return Err(ArrowError::SchemaError(
                "map entries are not a struct".into(),
            ));
        };
        let entries = StructArray::try_new(kv, vec![Arc::new(keys), Arc::new(values)], None)?;
        MapArray::try_new(
            entry_field,
            OffsetBuffer::new(ScalarBuffer::from(taken.offsets)),
            entries,
            nulls(taken.valid),
            false,
        )
    }
}

fn nulls(valid: Vec<bool>) -> Option<NullBuffer> {
    if valid.iter().all(|&v| v) {
        None
    } else {
        Some(NullBuffer::from(valid))
    }
}

/// The buffer of one documented field, by its [`ColumnType`].
#[derive(Debug)]
pub(crate) enum ColumnBuffer {
    Utf8(Utf8Col),
    Int64(PrimCol<i64>),
    Boolean(PrimCol<bool>),
    Timestamp(PrimCol<i64>),
    Decimal(PrimCol<i128>),
    Map(MapCol),
}

impl ColumnBuffer {
    fn new(ty: ColumnType, rows: usize) -> Self {
        match ty {
            ColumnType::Utf8 => ColumnBuffer::Utf8(Utf8Col::with_capacity(rows, rows * 16)),
            ColumnType::Int64 => ColumnBuffer::Int64(PrimCol::with_capacity(rows)),
            ColumnType::Boolean => ColumnBuffer::Boolean(PrimCol::with_capacity(rows)),
            ColumnType::Timestamp => ColumnBuffer::Timestamp(PrimCol::with_capacity(rows)),
            ColumnType::Decimal18_4 => ColumnBuffer::Decimal(PrimCol::with_capacity(rows)),
            ColumnType::StringMap => ColumnBuffer::Map(MapCol::with_capacity(rows)),
        }
    }

    #[inline]
    pub(crate) fn push_null(&mut self) {
        match self {
            ColumnBuffer::Utf8(c) => c.push_null(),
            ColumnBuffer::Int64(c) | ColumnBuffer::Timestamp(c) => c.push_null(),
            ColumnBuffer::Boolean(c) => c.push_null(),
            ColumnBuffer::Decimal(c) => c.push_null(),
            ColumnBuffer::Map(c) => c.end_row(false),
        }
    }

    fn truncate(&mut self, rows: usize) {
        match self {
            ColumnBuffer::Utf8(c) => c.truncate(rows),
            ColumnBuffer::Int64(c) | ColumnBuffer::Timestamp(c) => c.truncate(rows),
            ColumnBuffer::Boolean(c) => c.truncate(rows),
            ColumnBuffer::Decimal(c) => c.truncate(rows),
            ColumnBuffer::Map(c) => c.truncate(rows),
        }
    }

    fn finish(&mut self, rows: usize) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            ColumnBuffer::Utf8(c) => Arc::new(c.finish(rows)?),
            ColumnBuffer::Int64(c) => {
                let (values, nulls) = c.take(rows);
                Arc::new(PrimitiveArray::<Int64Type>::try_new(values.into(), nulls)?)
            }
            ColumnBuffer::Timestamp(c) => {
                let (values, nulls) = c.take(rows);
                Arc::new(
                    PrimitiveArray::<TimestampMicrosecondType>::try_new(values.into(), nulls)?
                        .with_timezone(TIMESTAMP_TZ),
                )
            }
            ColumnBuffer::Decimal(c) => {
                let (values, nulls) = c.take(rows);
                Arc::new(
                    PrimitiveArray::<Decimal128Type>::try_new(values.into(), nulls)?
                        .with_precision_and_scale(REVENUE_PRECISION, REVENUE_SCALE)?,
                )
            }
            ColumnBuffer::Boolean(c) => {
                let (values, nulls) = c.take(rows);
                Arc::new(BooleanArray::new(BooleanBuffer::from(values), nulls))
            }
            ColumnBuffer::Map(c) => Arc::new(c.finish(rows)?),
        })
    }
}

/// The buffers of every decoded column: [`FIELDS`] in order, then `_extra`.
#[derive(Debug)]
pub(crate) struct Columns {
    pub(crate) fields: Vec<ColumnBuffer>,
    pub(crate) extra: Utf8Col,
    rows: usize,
    capacity: usize,
}

impl Columns {
    /// Buffers sized for about `rows` rows.
    pub(crate) fn new(rows: usize) -> Self {
        Columns {
            fields: FIELDS
                .iter()
                .map(|f| ColumnBuffer::new(f.ty, rows))
                .collect(),
            extra: Utf8Col::with_capacity(rows, 0),
            rows: 0,
            capacity: rows,
        }
    }

    /// Complete rows.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Marks the row under construction complete; every column has a value for it.
    #[inline]
    pub(crate) fn commit(&mut self) {
        self.rows += 1;
    }

    /// Takes back whatever was written for the row under construction.
    pub(crate) fn rollback(&mut self) {
        let rows = self.rows;
        for column in &mut self.fields {
            column.truncate(rows);
        }
        self.extra.truncate(rows);
    }

    /// The complete rows as arrays of [`page_schema`](crate::schema::page_schema), leaving
    /// empty buffers of the same size behind.
    pub(crate) fn finish(&mut self) -> Result<Vec<ArrayRef>, ArrowError> {
        let rows = self.rows.max(self.capacity);
        let mut arrays = Vec::with_capacity(self.fields.len() + 1);
        for column in &mut self.fields {
            arrays.push(column.finish(rows)?);
        }
        arrays.push(Arc::new(self.extra.finish(rows)?));
        self.rows = 0;
        Ok(arrays)
    }
}
