//! The Arrow schema of the contacts table, and the matching DuckDB and Spark DDL.
//!
//! | # | column | Arrow type | null? | from |
//! |---|--------|------------|-------|------|
//! | 0 | `phone_number` | Utf8 | no | `phone_number` (required) |
//! | 1 | `list_number` | Utf8 | no | `list_number` (required) |
//! | 2 | `list_id` | Int64 | yes | `list_id` |
//! | 3 | `active` | Boolean | yes | `active` |
//! | 4 | `signup_date` | Timestamp(µs, "UTC") | yes | `signup_date` |
//! | 5 | `signup_method` | Utf8 | yes | `signup_method` |
//! | 6 | `custom_fields` | Map<Utf8, Utf8> | yes | `custom_fields` |
//! | 7 | `carrier` | Utf8 | yes | `carrier` |
//! | 8 | `line_type` | Utf8 | yes | `line_type` |
//! | 9 | `timezone` | Utf8 | yes | `timezone` |
//! | 10 | `is_valid` | Boolean | yes | `is_valid` |
//! | 11 | `send_count` | Int64 | yes | `send_count` |
//! | 12 | `click_count` | Int64 | yes | `click_count` |
//! | 13 | `revenue_total` | Decimal128(18, 4) | yes | `revenue_total` |
//! | 14 | `conversion_count` | Int64 | yes | `conversion_count` |
//! | 15 | `last_sent_at` | Timestamp(µs, "UTC") | yes | `last_sent_at` |
//! | 16 | `last_clicked_at` | Timestamp(µs, "UTC") | yes | `last_clicked_at` |
//! | 17 | `in_workflow` | Boolean | yes | `in_workflow` |
//! | 18 | `_extra` | Utf8 | yes | undocumented top-level fields, as one compact JSON object |
//! | 19 | `_extracted_at` | Timestamp(µs, "UTC") | no | the run's start |
//! | 20 | `_run_id` | Utf8 | no | the run's id |
//!
//! # Why these types
//!
//! - **Timestamps are `Timestamp(Microsecond, "UTC")`.** The API sends naive ISO-8601 text that
//!   is UTC; storing instants (Parquet `isAdjustedToUTC = true`) makes DuckDB read
//!   `TIMESTAMP WITH TIME ZONE`, Spark `TIMESTAMP` and pyarrow `timestamp[us, tz=UTC]`, so no
//!   reader guesses a zone. Microseconds are the finest unit all three read natively;
//!   nanoseconds would overflow Spark and cap dates at 2262.
//! - **`revenue_total` is `DECIMAL(18, 4)`.** Money must not go through binary floating point:
//!   `47.50` stays exactly `47.5000`. Four decimals hold any currency's minor unit with room for
//!   fractional-cent rates; 14 integer digits hold totals up to 99 trillion. Precision 18 is the
//!   largest that Parquet stores as a plain `INT64`, which every reader handles and which
//!   compresses and filters well. Values that do not fit are rejected, never rounded.
//! - **`custom_fields` is a `MAP<STRING, STRING>`.** Its keys differ per account, so a struct
//!   would change shape between runs. Values of other JSON types keep their exact JSON text
//!   (numbers as sent, nested objects and arrays as compact JSON), so nothing is lost and a
//!   reader can cast or `json_extract` as it likes. The entry fields are named `key_value`,
//!   `key`, `value` as the Parquet spec's MAP logical type asks, so Spark, DuckDB and pyarrow
//!   all see a map rather than a list of structs.
//! - **Counters are `Int64`,** never unsigned: Spark and many SQL engines have no unsigned types.
//! - **`_extra`** keeps fields the API adds after this schema was written, so a new field is
//!   never dropped silently and never breaks a run; it is null when there are none.
//! - **`_extracted_at` and `_run_id`** say which run wrote a row, for lineage and de-duplication
//!   across runs.

use std::sync::{Arc, LazyLock};

use arrow_array::{ArrayRef, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::fields::FIELDS;

pub use crate::fields::{
    MAP_ENTRIES, MAP_KEY, MAP_VALUE, REVENUE_PRECISION, REVENUE_SCALE, TIMESTAMP_TZ,
    custom_fields_type, timestamp_type,
};

/// Column positions in [`contacts_schema`] (and [`page_schema`]), for
/// `batch.column(col::REVENUE_TOTAL)`; derived from [`FIELDS`].
pub mod col {
    use crate::fields::{FIELDS, index};

    /// Position of `phone_number`.
    pub const PHONE_NUMBER: usize = index("phone_number");
    /// Position of `list_number`.
    pub const LIST_NUMBER: usize = index("list_number");
    /// Position of `list_id`.
    pub const LIST_ID: usize = index("list_id");
    /// Position of `active`.
    pub const ACTIVE: usize = index("active");
    /// Position of `signup_date`.
    pub const SIGNUP_DATE: usize = index("signup_date");
    /// Position of `signup_method`.
    pub const SIGNUP_METHOD: usize = index("signup_method");
    /// Position of `custom_fields`.
    pub const CUSTOM_FIELDS: usize = index("custom_fields");
    /// Position of `carrier`.
    pub const CARRIER: usize = index("carrier");
    /// Position of `line_type`.
    pub const LINE_TYPE: usize = index("line_type");
    /// Position of `timezone`.
    pub const TIMEZONE: usize = index("timezone");
    /// Position of `is_valid`.
    pub const IS_VALID: usize = index("is_valid");
    /// Position of `send_count`.
    pub const SEND_COUNT: usize = index("send_count");
    /// Position of `click_count`.
    pub const CLICK_COUNT: usize = index("click_count");
    /// Position of `revenue_total`.
    pub const REVENUE_TOTAL: usize = index("revenue_total");
    /// Position of `conversion_count`.
    pub const CONVERSION_COUNT: usize = index("conversion_count");
    /// Position of `last_sent_at`.
    pub const LAST_SENT_AT: usize = index("last_sent_at");
    /// Position of `last_clicked_at`.
    pub const LAST_CLICKED_AT: usize = index("last_clicked_at");
    /// Position of `in_workflow`.
    pub const IN_WORKFLOW: usize = index("in_workflow");
    /// Position of `_extra`, right after the documented fields.
    pub const EXTRA: usize = FIELDS.len();
    /// Position of `_extracted_at`.
    pub const EXTRACTED_AT: usize = EXTRA + 1;
    /// Position of `_run_id`.
    pub const RUN_ID: usize = EXTRA + 2;
}

/// The lineage columns every table of a run ends with, in this order: `_extracted_at` (the
/// run's start, the same on every row of every table of the run) and `_run_id`.
pub fn lineage_fields() -> [Field; 2] {
    [
        Field::new("_extracted_at", timestamp_type(), false),
        Field::new("_run_id", DataType::Utf8, false),
    ]
}

/// The values of [`lineage_fields`] for `rows` rows of run `run_id` started at
/// `extracted_at` (microseconds since the epoch).
pub fn lineage_columns(extracted_at: i64, run_id: &str, rows: usize) -> [ArrayRef; 2] {
    [
        Arc::new(
            TimestampMicrosecondArray::from_value(extracted_at, rows).with_timezone(TIMESTAMP_TZ),
        ),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            run_id, rows,
        ))),
    ]
}

/// The documented fields (required ones not nullable), then `_extra`.
fn page_fields() -> Vec<Field> {
    let mut fields: Vec<Field> = FIELDS
        .iter()
        .map(|f| Field::new(f.name, f.ty.data_type(), !f.required))
        .collect();
    fields.push(Field::new("_extra", DataType::Utf8, true));
    fields
}

static PAGE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| Arc::new(Schema::new(page_fields())));

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = page_fields();
    fields.extend(lineage_fields());
    Arc::new(Schema::new(fields))
});

/// The schema of a decoded page ([`ContactsPage::rows`](crate::ContactsPage::rows)): the
/// columns of [`contacts_schema`] up to `_extra`, without the lineage columns (a page does not
/// know its run).
pub fn page_schema() -> SchemaRef {
    PAGE_SCHEMA.clone()
}

/// The schema of every batch the decoder emits and every Parquet file the sink writes.
///
/// Column order and types are part of this crate's contract; see the [module docs](self).
pub fn contacts_schema() -> SchemaRef {
    SCHEMA.clone()
}

/// `CREATE TABLE {table} (...)` for DuckDB, with the column types DuckDB gives the Parquet files.
///
/// `table` is inserted verbatim (so `db.schema.name` works); column names are quoted.
///
/// ```
/// let ddl = trackly_contacts::schema::duckdb_ddl("contacts");
/// assert!(ddl.contains("\"custom_fields\" MAP(VARCHAR, VARCHAR)"));
/// assert!(ddl.contains("\"revenue_total\" DECIMAL(18,4)"));
/// ```
pub fn duckdb_ddl(table: &str) -> String {
    duckdb_ddl_of(&contacts_schema(), table)
}

/// [`duckdb_ddl`] for any table this crate defines (e.g. [`lists_schema`](crate::lists_schema)).
///
/// ```
/// use trackly_contacts::{lists_schema, schema::duckdb_ddl_of};
/// let ddl = duckdb_ddl_of(&lists_schema(), "lists");
/// assert!(ddl.contains("\"id\" BIGINT NOT NULL"));
/// ```
pub fn duckdb_ddl_of(schema: &Schema, table: &str) -> String {
    DUCKDB.ddl(schema, table)
}

/// `CREATE TABLE {table} (...) USING PARQUET` for Spark SQL, matching the Parquet files.
///
/// `table` is inserted verbatim; column names are quoted with backticks.
///
/// ```
/// let ddl = trackly_contacts::schema::spark_ddl("contacts");
/// assert!(ddl.contains("`custom_fields` MAP<STRING, STRING>"));
/// assert!(ddl.ends_with("USING PARQUET"));
/// ```
pub fn spark_ddl(table: &str) -> String {
    spark_ddl_of(&contacts_schema(), table)
}

/// [`spark_ddl`] for any table this crate defines (e.g. [`lists_schema`](crate::lists_schema)).
pub fn spark_ddl_of(schema: &Schema, table: &str) -> String {
    SPARK.ddl(schema, table)
}

/// How one SQL dialect quotes a column name, ends the DDL and spells the types.
struct Dialect {
    quote: char,
    suffix: &'static str,
    utf8: &'static str,
    int64: &'static str,
    boolean: &'static str,
    /// A timestamp with a time zone.
    zoned: &'static str,
    /// A timestamp without one.
    naive: &'static str,
    /// What stands before and after a map's key and value types.
    map: (&'static str, &'static str),
}

const DUCKDB: Dialect = Dialect {
    quote: '"',
    suffix: "",
    utf8: "VARCHAR",
    int64: "BIGINT",
    boolean: "BOOLEAN",
    zoned: "TIMESTAMP WITH TIME ZONE",
    naive: "TIMESTAMP",
    map: ("MAP(", ")"),
};

const SPARK: Dialect = Dialect {
    quote: '`',
    suffix: " USING PARQUET",
    utf8: "STRING",
    int64: "BIGINT",
    boolean: "BOOLEAN",
    zoned: "TIMESTAMP",
    naive: "TIMESTAMP_NTZ",
    map: ("MAP<", ">"),
};

impl Dialect {
    fn ddl(&self, schema: &Schema, table: &str) -> String {
        let quote = self.quote;
        let columns: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| {
                let not_null = if f.is_nullable() { "" } else { " NOT NULL" };
                let ty = self.sql_type(f.data_type());
                format!("  {quote}{}{quote} {ty}{not_null}", f.name())
            })
            .collect();
        let suffix = self.suffix;
        format!("CREATE TABLE {table} (\n{}\n){suffix}", columns.join(",\n"))
    }

    fn sql_type(&self, t: &DataType) -> String {
        let (open, close) = self.map;
        match t {
            DataType::Utf8 => self.utf8.into(),
            DataType::Int64 => self.int64.into(),
            DataType::Boolean => self.boolean.into(),
            DataType::Timestamp(_, Some(_)) => self.zoned.into(),
            DataType::Timestamp(_, None) => self.naive.into(),
            DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => format!(
                    "{open}{}, {}{close}",
                    self.sql_type(kv[0].data_type()),
                    self.sql_type(kv[1].data_type())
                ),
                other => format!("/* unsupported {other} */"),
            },
            other => format!("/* unsupported {other} */"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_documented_columns_in_order() {
        let schema = contacts_schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let documented: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        assert_eq!(&names[..18], &documented[..]);
        assert_eq!(&page_schema().fields()[..], &schema.fields()[..19]);
        assert_eq!(&names[18..], ["_extra", "_extracted_at", "_run_id"]);
        for (i, name) in [
            (col::PHONE_NUMBER, "phone_number"),
            (col::CUSTOM_FIELDS, "custom_fields"),
            (col::IN_WORKFLOW, "in_workflow"),
            (col::EXTRA, "_extra"),
            (col::EXTRACTED_AT, "_extracted_at"),
            (col::RUN_ID, "_run_id"),
        ] {
            assert_eq!(schema.field(i).name(), name);
        }
        assert!(!schema.field(col::PHONE_NUMBER).is_nullable());
        assert!(!schema.field(col::LIST_NUMBER).is_nullable());
        assert!(!schema.field(col::EXTRACTED_AT).is_nullable());
        assert!(!schema.field(col::RUN_ID).is_nullable());
        assert!(schema.field(col::LIST_ID).is_nullable());
    }

    #[test]
    fn custom_fields_is_a_map_with_parquet_spec_names() {
        let DataType::Map(entries, sorted) = custom_fields_type() else {
            panic!("not a map");
        };
        assert!(!sorted);
        assert_eq!(entries.name(), "key_value");
        let DataType::Struct(kv) = entries.data_type() else {
            panic!("entries not a struct");
        };
        assert_eq!(kv[0].name(), "key");
        assert!(!kv[0].is_nullable());
        assert_eq!(kv[1].name(), "value");
        assert!(kv[1].is_nullable());
    }

    #[test]
    fn ddl_covers_every_column_with_engine_types() {
        let duck = duckdb_ddl("main.contacts");
        assert!(duck.starts_with("CREATE TABLE main.contacts ("));
        assert!(duck.contains("\"phone_number\" VARCHAR NOT NULL"));
        assert!(duck.contains("\"signup_date\" TIMESTAMP WITH TIME ZONE,"));
        assert!(duck.contains("\"_extracted_at\" TIMESTAMP WITH TIME ZONE NOT NULL"));
        assert!(!duck.contains("unsupported"));
        let spark = spark_ddl("contacts");
        assert!(spark.contains("`list_id` BIGINT,"));
        assert!(spark.contains("`revenue_total` DECIMAL(18,4)"));
        assert!(spark.contains("`_run_id` STRING NOT NULL"));
        assert!(!spark.contains("unsupported"));
        assert_eq!(duck.matches('\n').count(), 22);
    }
}
