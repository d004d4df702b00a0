//! The lists table: every sending list of `GET /v2/lists` (deleted ones included) as one Arrow
//! batch, written beside the contacts and published with them.
//!
//! | # | column | Arrow type | null? | from |
//! |---|--------|------------|-------|------|
//! | 0 | `id` | Int64 | no | `id` (required): what contacts carry as `list_id` |
//! | 1 | `phone_number` | Utf8 | yes | `phone_number`: what contacts carry as `list_number` |
//! | 2 | `brand_name` | Utf8 | yes | `brand_name` |
//! | 3 | `list_name` | Utf8 | yes | `list_name` |
//! | 4 | `list_type` | Utf8 | yes | `list_type` (documented: `lime`, `infobip`, `twilio`, `cm`) |
//! | 5 | `status` | Utf8 | yes | `status` (documented: `active`, `paused`, `suspended`, `deleted`) |
//! | 6 | `contact_count` | Int64 | yes | `contact_count` (active contacts) |
//! | 7 | `created_at` | Timestamp(µs, "UTC") | yes | `created_at` |
//! | 8 | `_extra` | Utf8 | yes | undocumented top-level fields, as one compact JSON object |
//! | 9 | `_extracted_at` | Timestamp(µs, "UTC") | no | the run's start (as on the contacts) |
//! | 10 | `_run_id` | Utf8 | no | the run's id (as on the contacts) |
//!
//! `contacts.list_id = lists.id` joins the two tables of one run (and `contacts.list_number =
//! lists.phone_number` does too). The types follow the contacts table's reasons (see
//! [`schema`](crate::schema)): `BIGINT` ids and counters, `TIMESTAMP WITH TIME ZONE` in DuckDB
//! and `TIMESTAMP` in Spark for instants, the same lineage columns.
//!
//! # How lists are read
//!
//! [`ListDecoder`] reads each list object once:
//!
//! - **Strict types.** `id` and `contact_count` must be JSON integers that fit i64 (`1.0`,
//!   `"42"` are invalid), the text columns JSON strings, `created_at` an ISO-8601 string (a `Z`
//!   or an offset, or none for UTC; at most microsecond precision). `null` or a missing field is
//!   null, except `id`: a list without one cannot be joined and is invalid. A key that appears
//!   twice in one list makes it invalid.
//! - **Tolerant values.** A `list_type` or `status` outside the documented values is kept as
//!   sent and counted ([`DecodeStats::unknown_values`]), with one `tracing` warning per new
//!   value: the API adding a provider or a status must not stop the nightly run.
//! - **Nothing dropped silently.** Undocumented fields go, in order and compact, into `_extra`
//!   (as for contacts) and are counted ([`DecodeStats::unknown_fields`]).
//! - **One row per list.** The answers are read in the order given; a list met again (the
//!   fetcher asks for the default answer first and for `status=deleted` second, so a list
//!   deleted in between is in both) replaces the earlier row, and is counted
//!   ([`DecodeStats::replaced`]): it lands as deleted. Rows come out in `id` order.
//! - **Invalid lists** follow [`InvalidPolicy`](crate::InvalidPolicy) as contacts do: under
//!   `Fail`, [`DecodeError::InvalidList`](crate::DecodeError::InvalidList) names the answer
//!   (`GET /v2/lists?status=deleted, page 1`), the list's 0-based position in it, the field, the
//!   value (cut to ~200 characters) and the reason; under `Quarantine` a [`ListReject`] keeps it
//!   verbatim.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use trackly_contacts::{DecoderOptions, ListDecoder};
//!
//! let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
//! let mut decoder = ListDecoder::new(DecoderOptions::new("run-1", started));
//! decoder.decode_raw("GET /v2/lists, page 1", [
//!     &br#"{"id": 42, "phone_number": "+18005551234", "status": "active", "contact_count": 7}"#[..],
//! ])?;
//! decoder.decode_raw("GET /v2/lists?status=deleted, page 1", [
//!     &br#"{"id": 42, "phone_number": "+18005551234", "status": "deleted", "contact_count": 0}"#[..],
//! ])?;
//! let batch = decoder.finish()?;
//! assert_eq!(batch.num_rows(), 1);
//! assert_eq!(decoder.stats().replaced, 1);
//! # Ok::<(), trackly_contacts::DecodeError>(())
//! ```
//!
//! # Memory usage
//!
//! Every list is held until [`ListDecoder::finish`]: an account has some thousands of lists at
//! most (a few hundred bytes each), and de-duplicating by `id` needs them all.
//!
//! [`DecodeStats::unknown_values`]: crate::DecodeStats::unknown_values
//! [`DecodeStats::unknown_fields`]: crate::DecodeStats::unknown_fields
//! [`DecodeStats::replaced`]: crate::DecodeStats::replaced

mod decode;
mod page;

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::schema::{lineage_fields, timestamp_type};

pub use crate::reject::ListReject;
pub use decode::ListDecoder;
pub use page::ListsPage;

/// The documented values of `list_type`.
pub const LIST_TYPES: [&str; 4] = ["lime", "infobip", "twilio", "cm"];
/// The documented values of `status`.
pub const LIST_STATUSES: [&str; 4] = ["active", "paused", "suspended", "deleted"];

/// How a documented list field is read and stored.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A JSON integer that fits i64 → Int64.
    Int,
    /// A JSON string → Utf8.
    Text,
    /// A JSON string, expected to be one of these values (others are kept and counted) → Utf8.
    OneOf(&'static [&'static str]),
    /// An ISO-8601 string → Timestamp(µs, "UTC").
    Timestamp,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::Int => DataType::Int64,
            Kind::Text | Kind::OneOf(_) => DataType::Utf8,
            Kind::Timestamp => timestamp_type(),
        }
    }
}

/// One documented field of a list: the one description the schema, the decoder's dispatch and
/// the array building are derived from.
#[derive(Debug, Clone, Copy)]
struct ListField {
    name: &'static str,
    kind: Kind,
    /// Missing or `null` makes the list invalid (the column is non-nullable).
    required: bool,
}

const fn column(name: &'static str, kind: Kind) -> ListField {
    ListField {
        name,
        kind,
        required: false,
    }
}

/// The documented fields, in the documented (and schema) order.
const COLUMNS: [ListField; 8] = [
    ListField {
        name: "id",
        kind: Kind::Int,
        required: true,
    },
    column("phone_number", Kind::Text),
    column("brand_name", Kind::Text),
    column("list_name", Kind::Text),
    column("list_type", Kind::OneOf(&LIST_TYPES)),
    column("status", Kind::OneOf(&LIST_STATUSES)),
    column("contact_count", Kind::Int),
    column("created_at", Kind::Timestamp),
];

/// Position of `id` in [`COLUMNS`] and the schema.
const ID: usize = 0;

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields: Vec<Field> = COLUMNS
        .iter()
        .map(|c| Field::new(c.name, c.kind.data_type(), !c.required))
        .collect();
    fields.push(Field::new("_extra", DataType::Utf8, true));
    fields.extend(lineage_fields());
    Arc::new(Schema::new(fields))
});

/// The schema of the lists table: the batch [`ListDecoder::finish`] returns and the Parquet
/// file of `{output}/lists/extract_date=…/`. See the [module docs](self).
pub fn lists_schema() -> SchemaRef {
    SCHEMA.clone()
}

#[cfg(test)]
mod tests;
