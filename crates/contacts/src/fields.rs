//! The documented contact fields, once: each field's name, the column type it becomes and
//! whether a contact must have it. The Arrow schema ([`crate::schema`]), the scanner's dispatch
//! and the column buffers are all derived from [`FIELDS`].

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

/// Precision of `revenue_total`.
pub const REVENUE_PRECISION: u8 = 18;
/// Scale of `revenue_total`.
pub const REVENUE_SCALE: i8 = 4;

/// The time zone of every timestamp column.
pub const TIMESTAMP_TZ: &str = "UTC";

/// Name of the map entry struct of `custom_fields`, as the Parquet spec names it.
pub const MAP_ENTRIES: &str = "key_value";
/// Name of the map key field of `custom_fields`.
pub const MAP_KEY: &str = "key";
/// Name of the map value field of `custom_fields`.
pub const MAP_VALUE: &str = "value";

/// The Arrow type of the timestamp columns.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(TIMESTAMP_TZ.into()))
}

/// The Arrow type of `custom_fields`.
pub fn custom_fields_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new(MAP_KEY, DataType::Utf8, false),
        Field::new(MAP_VALUE, DataType::Utf8, true),
    ]);
    DataType::Map(
        Arc::new(Field::new(MAP_ENTRIES, DataType::Struct(entries), false)),
        false,
    )
}

/// What a documented field becomes in Arrow, and so how its JSON value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ColumnType {
    /// A JSON string (unescaped) → `Utf8`.
    Utf8,
    /// A JSON integer that fits i64 → `Int64`.
    Int64,
    /// `true` / `false` → `Boolean`.
    Boolean,
    /// An ISO-8601 string → `Timestamp(Microsecond, "UTC")`.
    Timestamp,
    /// A JSON number (or a string spelling one) → `Decimal128(18, 4)`.
    Decimal18_4,
    /// An object of any values → `Map<Utf8, Utf8>` (values as text).
    StringMap,
}

impl ColumnType {
    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            ColumnType::Utf8 => DataType::Utf8,
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Timestamp => timestamp_type(),
            ColumnType::Decimal18_4 => DataType::Decimal128(REVENUE_PRECISION, REVENUE_SCALE),
            ColumnType::StringMap => custom_fields_type(),
        }
    }
}

/// One documented contact field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The API's field name, which is also the column name.
    pub name: &'static str,
    /// The column it fills.
    pub ty: ColumnType,
    /// Whether a contact without it (or with `null`) is invalid. Required columns are not
    /// nullable.
    pub required: bool,
}

const fn field(name: &'static str, ty: ColumnType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: false,
    }
}

const fn required(name: &'static str, ty: ColumnType) -> FieldSpec {
    FieldSpec {
        name,
        ty,
        required: true,
    }
}

/// The documented contact fields, in schema order (also the order the API sends them in).
pub const FIELDS: [FieldSpec; 18] = {
    use ColumnType::*;
    [
        required("phone_number", Utf8),
        required("list_number", Utf8),
        field("list_id", Int64),
        field("active", Boolean),
        field("signup_date", Timestamp),
        field("signup_method", Utf8),
        field("custom_fields", StringMap),
        field("carrier", Utf8),
        field("line_type", Utf8),
        field("timezone", Utf8),
        field("is_valid", Boolean),
        field("send_count", Int64),
        field("click_count", Int64),
        field("revenue_total", Decimal18_4),
        field("conversion_count", Int64),
        field("last_sent_at", Timestamp),
        field("last_clicked_at", Timestamp),
        field("in_workflow", Boolean),
    ]
};

/// The position of documented field `name` in [`FIELDS`]; a compile error when used in a
/// `const` with a name that is not there.
pub const fn index(name: &str) -> usize {
    match position(name.as_bytes()) {
        Some(i) => i,
        None => panic!("not a documented field"),
    }
}

/// The position of the documented field spelled `name`, if any.
#[inline]
pub const fn position(name: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < FIELDS.len() {
        if same(FIELDS[i].name.as_bytes(), name) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Byte equality usable in `const` and inlined for short keys.
#[inline(always)]
pub(crate) const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The fields that identify a contact, `(phone_number, list_number)`.
pub const KEY: [usize; 2] = [index("phone_number"), index("list_number")];
/// The field the API sorts by, newest first.
pub const ORDER: usize = index("signup_date");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert_eq!(position(f.name.as_bytes()), Some(i));
        }
        assert_eq!(position(b"phone"), None);
        assert_eq!(KEY, [0, 1]);
        assert!(FIELDS[KEY[0]].required && FIELDS[KEY[1]].required);
        assert_eq!(FIELDS.iter().filter(|f| f.required).count(), 2);
    }
}
