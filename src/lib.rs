//! # trackly-export
//!
//! Pulls every contact out of the Trackly SMS API (`GET /v2/contacts`) and lands it as Parquet
//! on local disk, S3, Google Cloud Storage, Azure Blob Storage / ADLS Gen2 or any other
//! [`object_store`], with every
//! sending list (`GET /v2/lists`, deleted ones included) as a second table beside it, so that
//! `contacts.list_id = lists.id` joins (see [`ExportBuilder::tables`]). This crate is a thin
//! facade over four libraries, re-exported here, in the order the data flows through them:
//!
//! - [`fetcher`] (`trackly-fetcher`): concurrent, ordered, retrying page requests, exactly once
//!   under drift;
//! - [`contacts`] (`trackly-contacts`): the API's JSON contract: the documented fields and their
//!   Arrow columns (with `custom_fields` as `Map<Utf8, Utf8>`), the page envelope, the contact
//!   key, and the decoding of pages into Arrow record batches;
//! - [`converter`] (`trackly-converter`): Arrow record batches to Parquet files with a manifest,
//!   published atomically;
//! - `mock` (`trackly-mock`, feature `mock`): a faithful, fault-injecting mock of the API.
//!
//! ## Features
//!
//! - `cli` (default): the `trackly-export` binary and its crates (clap, indicatif, toml,
//!   tracing-subscriber, anyhow); implies `mock`, `delta`, `aws`, `gcp` and `azure`. The command
//!   line itself is [`cli::run`] (the binary's `main` calls it, and so does the Python package's
//!   console script). Embedders turn default features off.
//! - `aws`, `gcp`, `azure`: the object_store backends of `s3://`, `gs://` and `az://` /
//!   `abfss://` / `https://*.blob.core.windows.net` outputs (see [`OutputLocation`]), each
//!   configured from the environment and [`StorageOptions`] (deltalake's and Polars' keys).
//!   Without default features none is compiled unless named.
//! - `mock`: re-exports `trackly-mock` as `trackly_export::mock`, for tests against the
//!   in-process mock API.
//! - `delta`: `TableFormat::Delta`, each table a Delta Lake table with one commit per run,
//!   through delta-rs (`deltalake-core`, which needs Rust 1.95); implied by `cli`. Without it
//!   delta-rs is not compiled.
//!
//! ## One-call export
//!
//! Against the in-process mock API (feature `mock`) into an in-memory object store; for the
//! real API leave the base URL at its default and take the key from `TRACKLY_API_KEY`, and for
//! a cloud use `OutputLocation::parse("s3://my-lake/trackly")?` (or `gs://`, `az://`; with
//! options: `OutputLocation::parse_with(url, LocationOptions::default().with_storage_options(..))`):
//!
//! ```
//! use std::sync::Arc;
//! use trackly_export::mock::{MockConfig, MockServer};
//! use trackly_export::object_store::memory::InMemory;
//! use trackly_export::{ApiKey, Client, Export, OutputLocation, Query};
//!
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mock = MockServer::start(MockConfig::default()).await?;
//! let client = Client::builder()
//!     .with_base_url(mock.url())
//!     .with_api_key(ApiKey::new(mock.api_key()))
//!     .build()?;
//! let lake = OutputLocation::from_store(Arc::new(InMemory::new()), "trackly");
//! let summary = Export::builder()
//!     .client(client)
//!     .query(Query::all())
//!     .location(lake)
//!     .build()?
//!     .run()
//!     .await?;
//! assert_eq!(summary.rows, mock.contact_count() as u64);
//! println!("{} contacts in {} files", summary.rows, summary.files.len());
//! # Ok(()) }
//! ```
//!
//! ## Arrow in memory
//!
//! ```no_run
//! use trackly_export::futures::StreamExt;
//! use trackly_export::{Client, DecoderOptions, Query, record_batches};
//!
//! # async fn example(client: Client) -> Result<(), trackly_export::ExportError> {
//! let options = DecoderOptions::new("my-run", trackly_export::chrono::Utc::now());
//! let mut batches = record_batches(&client, Query::all(), options)?;
//! while let Some(batch) = batches.next().await {
//!     println!("{} rows", batch?.num_rows());
//! }
//! # Ok(()) }
//! ```
//!
//! ## Versions and spawning
//!
//! The facade speaks arrow 59 (arrow-array, arrow-schema, parquet) and object_store 0.13: the
//! versions the current DataFusion (55) and delta-rs (`deltalake-core` 1.1) releases use, so a
//! job can hand our `RecordBatch`es and `ObjectStore`s to them directly. The workspace follows
//! those two projects' arrow and object_store versions, not the newest arrow. It re-exports
//! them (with `chrono` and `futures`) as [`arrow_array`], [`arrow_schema`], [`object_store`],
//! [`chrono`] and [`futures`]: depend on `trackly-export` alone and use those paths, and no
//! second version of them can enter your build. [`Export::run`], [`Export::run_until`] (given
//! a `Send` shutdown future), [`RecordBatches`], [`fetcher::Contacts`] and [`Client::lists`]
//! are `Send + 'static`, so a job runner can `tokio::spawn` them. A published run's
//! `_manifest.json` reads back as [`Manifest`].
//!
//! ## Guarantees
//!
//! - **Exactly once.** Every contact that exists for the whole run is written exactly once,
//!   even when contacts are added or removed during the run (see [`fetcher`]).
//! - **Order.** Rows are written in the API's order (newest sign-up first), except contacts
//!   recovered by a re-read after drift, which follow the page that revealed the drift.
//! - **All or nothing.** Files are written under staging names that DuckDB and Spark skip and
//!   published only when the whole run succeeded; on failure or interruption, the multipart
//!   upload in progress is aborted and finished files stay hidden in staging for
//!   [`ExportBuilder::resume`]. `_SUCCESS` is written last. The tables of a run (contacts and
//!   lists) are published in one step with one run id: both or neither (with Delta Lake, which
//!   has no multi-table transaction, a failed contacts commit can follow a committed lists
//!   one; see the converter's `delta` module).
//! - **Bounded memory.** Peak memory depends on concurrency, batch size and row-group size, not
//!   on the number of contacts (the fetcher de-duplicates over a window of recent pages). How
//!   much of it the process keeps is the allocator's business and yours: with glibc's defaults
//!   freed page and row-group buffers stay in per-thread arenas (≈ 140–155 MiB peak RSS at 5M
//!   contacts against ≈ 80 MB of heap); the `trackly-export` binary sets one arena and a fixed
//!   1 MiB mmap threshold (≈ 115 MiB), which a job can do too (`MALLOC_ARENA_MAX=1
//!   MALLOC_MMAP_THRESHOLD_=1048576` in its environment). See BENCHMARKS.md.
//! - **Secrets.** The API key is never logged, printed, written, or shown by `Debug`.

// The CLI's modules name this crate as the binary did (`trackly_export::...`).
extern crate self as trackly_export;

mod batches;
#[cfg(feature = "cli")]
pub mod cli;
mod error;
mod export;
mod lists;
mod tables;

// The crates whose types the facade's signatures use, so that one dependency line is enough
// and an embedder never mixes in a second, incompatible version of them.
pub use arrow_array;
pub use arrow_schema;
pub use chrono;
pub use futures;
pub use object_store;

pub use trackly_contacts as contacts;
pub use trackly_converter as converter;
pub use trackly_fetcher as fetcher;
#[cfg(feature = "mock")]
pub use trackly_mock as mock;

pub use batches::{RecordBatches, record_batches};
pub use error::{ConfigError, ErrorKind, ExportError};
pub use export::{
    DEFAULT_VACUUM_RETENTION, Export, ExportBuilder, ExportProgress, RunSummary, TableSummary,
};
pub use lists::read_lists;
pub use tables::{InvalidTables, Table, Tables};
pub use trackly_contacts::{
    ContactBatcher, DecodeError, DecoderOptions, InvalidPolicy, Reject, contacts_schema,
    lists_schema,
};
pub use trackly_converter::manifest::Manifest;
pub use trackly_converter::{
    Backend, Compression, ConvertError, FileInfo, InvalidTableFormat, LocationOptions,
    OutputLocation, ParquetSink, StorageOptions, TableFormat, WriterOptions,
};
pub use trackly_fetcher::{
    ApiError, ApiKey, AttemptError, Client, ClientBuilder, Contact, E164, FetchError, FetchStats,
    InvalidApiKey, ListsPage, Page, Pass, Query, RetryConfig,
};
