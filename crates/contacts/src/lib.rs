//! # trackly-contacts
//!
//! The Trackly API's JSON contract, in one place: which contact fields are documented and which
//! Arrow column each one becomes, the envelope of a page (`contacts`, `pagination`), the key
//! that identifies a contact (`phone_number`, `list_number`), and the decoding of a page into
//! Arrow record batches. The same for `GET /v2/lists`. This crate knows nothing of HTTP,
//! retries, Parquet or object stores: the fetcher hands it response bodies, and the sink writes
//! what it decodes.
//!
//! ```text
//! trackly-fetcher      HTTP, retries, paging, de-duplication, verification
//!      │  response bodies
//!      ▼
//! trackly-contacts     page (envelope), key, schema (fields → columns), decode, lists
//!      │  Arrow RecordBatches of contacts_schema() / lists_schema()
//!      ▼
//! trackly-converter    Parquet files on local disk or an object store, published atomically
//! ```
//!
//! The modules, from the leaves up (no module imports one above it):
//!
//! - [`fields`]: the documented fields and their column types, the one table the schema, the
//!   scanner's dispatch and the column buffers are derived from; [`schema`]: the Arrow schema
//!   ([`contacts_schema`]) and the matching DuckDB / Spark DDL.
//! - Leaves that read JSON text: `scan` (the one tokenizer), `json_text` (unescaping,
//!   compacting, quoting), `decimal` (`DECIMAL(18,4)` from number text), `timestamp`
//!   (ISO-8601), `envelope` (`{"contacts": [...], "pagination": {...}}`, [`Pagination`],
//!   [`EnvelopeError`]); and [`Reject`] / [`ListReject`], one kept record type per table.
//! - [`decode_page`]: one `GET /v2/contacts` answer decoded in a single pass over its bytes into
//!   a [`ContactsPage`]: its [`Pagination`], every contact's key, the valid contacts as Arrow
//!   columns of [`page_schema`], and the invalid ones as [`Reject`]s (field, value, reason). A
//!   body that is not the documented envelope is an [`EnvelopeError`]. This is the only way
//!   bytes become columns ([`decode`] says how each value is read).
//! - [`page`]: [`Page`], that decoded answer as the fetcher delivers it: plus the mask of the
//!   contacts the run keeps (its de-duplication), its frontier, and the JSON text of each contact for callers who want it
//!   ([`Contact`] for callers who prefer structs).
//! - [`key`]: what identifies a contact (`phone_number`, `list_number`, hashed) and where it
//!   sorts (`signup_date`), read without decoding it.
//! - [`ContactBatcher`]: cuts the kept rows of decoded pages into `batch_size`-row batches
//!   (arrow-select's `BatchCoalescer`), adds the lineage columns and applies the
//!   invalid-record policy.
//! - [`lists`]: [`ListsPage`], the lists table ([`lists_schema`]) and [`ListDecoder`].
//! - [`table`]: each table as one [`TableDefinition`] (name, schema, key, manifest format,
//!   column hints), which the converter, the CLI and the facade read.
//!
//! ```
//! use bytes::Bytes;
//! use chrono::Utc;
//! use trackly_contacts::{ContactBatcher, DecoderOptions, Page, Pass};
//!
//! let body = Bytes::from_static(br#"{"contacts": [
//!     {"phone_number": "+14155559876", "list_number": "+18005551234", "send_count": 3}
//! ], "pagination": {"page": 1, "per_page": 1000, "total": 1, "total_pages": 1}}"#);
//! let page = Page::parse(1, Pass::Main, body)?;
//! let mut batcher = ContactBatcher::new(DecoderOptions::new("run-1", Utc::now()))?;
//! batcher.push_page(&page)?;
//! let batch = batcher.flush()?.expect("one row buffered");
//! assert_eq!(batch.num_rows(), 1);
//! assert_eq!(batch.schema(), trackly_contacts::contacts_schema());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! - **Exact values.** Strings are stored as sent (unescaped); timestamps keep microseconds;
//!   numbers and nested values in `custom_fields` keep their exact JSON text; `revenue_total`
//!   (a number or a decimal string) is parsed digit by digit into `DECIMAL(18,4)`, exactly when
//!   it has at most 4 decimals, else rounded half to even and counted
//!   ([`ContactBatcher::rounded_values`]). Any other value that cannot be stored exactly makes
//!   the record invalid instead.
//! - **Nothing dropped silently.** Undocumented fields land in `_extra`; invalid records either
//!   stop decoding ([`InvalidPolicy::Fail`], with a [`DecodeError`] naming page, record, field
//!   and value) or are kept verbatim as [`Reject`]s ([`InvalidPolicy::Quarantine`]); counters
//!   say how many of each.
//! - **Order.** Rows keep the order in which pages and contacts were given to the batcher.
//! - **No I/O.** Nothing here reads the network, the disk or the environment.
//!
//! # Memory usage
//!
//! A [`Page`] holds its response body and its decoded columns (about the size of the body
//! again) until it is dropped; [`decode_page`] itself needs only small per-contact scratch
//! space beyond the columns it returns. The batcher holds one partial batch (`batch_size` rows,
//! 8192 by default, about the size of the decoded JSON) plus full batches and rejects the caller
//! has not taken yet; see [`ContactBatcher`].

mod batcher;
mod columns;
mod contacts_page;
mod decimal;
pub mod decode;
mod envelope;
mod error;
pub mod fields;
mod json_text;
pub mod key;
pub mod lists;
pub mod page;
mod record;
mod reject;
mod scan;
pub mod schema;
pub mod table;
mod timestamp;

pub use batcher::ContactBatcher;
pub use contacts_page::{ContactsPage, NO_ROW, Pass, decode_page};
pub use decode::{DEFAULT_BATCH_SIZE, DecodeStats, DecoderOptions, InvalidPolicy};
pub use envelope::EnvelopeError;
pub use error::DecodeError;
pub use lists::{ListDecoder, ListsPage, lists_schema};
pub use page::{Contact, Frontier, Page, Pagination, ResumePoint};
pub use reject::{ListReject, Reject};
pub use schema::{contacts_schema, duckdb_ddl, page_schema, spark_ddl};
pub use table::{ColumnHints, TableDefinition};
pub use timestamp::{naive_seconds_micros, signup_micros};
