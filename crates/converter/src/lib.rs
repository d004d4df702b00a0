//! # trackly-converter
//!
//! Writes Arrow [`RecordBatch`](arrow_array::RecordBatch)es of contacts and lists, as
//! `trackly-contacts` decodes them, as Parquet files on local disk, S3, Google Cloud Storage or
//! Azure Blob Storage / ADLS Gen2 (or any [`object_store::ObjectStore`]) for DuckDB, Spark and pyarrow, published atomically with a
//! manifest. It knows nothing of HTTP: the data flows fetcher → contacts → converter.
//!
//! - [`location`]: [`OutputLocation`], a local directory or `s3://`, `gs://`, `az://` /
//!   `abfss://` URL; [`credentials`]: the [`StorageOptions`] that configure its store beside
//!   the environment; [`access`]: the probe that checks a location can be written, and the
//!   errors that say what to do when it cannot.
//! - [`sink`]: [`ParquetSink`], the facade of a run: staged Parquet files published at the end
//!   of it. A run goes through four phases, each a module with one job:
//!   1. [`rolling`]: batches → rolling Parquet part files (rotation by size, staging paths,
//!      file statistics);
//!   2. [`rejects`]: the quarantined records, in segments beside the files;
//!   3. [`checkpoint`]: [`Checkpoint`], what a run has finished, for resuming it after a crash;
//!   4. [`commit`]: one state machine with explicit [`CommitState`]s that commits every table
//!      of a run through the run's format.
//!
//!   While a run stages, [`heartbeat`] keeps its staging folder marked alive, so that only
//!   folders of runs that died are cleaned up.
//! - [`publish`]: the Hive-style publication of every table of a run in one step, and its
//!   rollback, one run at a time per date folder ([`lease`]); [`manifest`]: the
//!   `_manifest.json` it writes for each table.
//! - [`table`]: [`StagedTable`], a smaller table (the lists) staged in full and committed
//!   through the same [`commit`] as the contacts, with them or alone.
//! - [`retention`]: [`Retention`], the removal of a table's date folders older than N days
//!   once a run is published.
//! - [`format`](mod@format): [`TableFormat`], how a run is published, and the one interface of
//!   what differs between formats (where a data file is staged, its statistics, the commit,
//!   removing what a commit replaced): Hive-style folders (default, `hive.rs`) or, with the
//!   cargo feature `delta`, Delta Lake tables (the `delta` module: one delta-rs commit per
//!   table and run, file statistics, VACUUM). No other module names a format.
//!
//! ```no_run
//! # async fn export(pages: Vec<trackly_contacts::Page>) -> Result<(), Box<dyn std::error::Error>> {
//! use trackly_contacts::{ContactBatcher, DecoderOptions, InvalidPolicy};
//! use trackly_converter::{OutputLocation, ParquetSink, SinkOptions, WriterOptions};
//!
//! let started = chrono::Utc::now();
//! let run_id = "0196f1c2-7a3b".to_string();
//! let mut decoder = ContactBatcher::new(
//!     DecoderOptions::new(run_id.clone(), started).with_on_invalid(InvalidPolicy::Quarantine),
//! )?;
//! let location = OutputLocation::parse("s3://my-lake/trackly")?;
//! let mut sink = ParquetSink::create(location, SinkOptions {
//!     extract_date: started.date_naive(),
//!     run_id,
//!     writer: WriterOptions::default(),
//!     query_json: serde_json::json!({"active": true}),
//! })
//! .await?;
//! let written: Result<(), Box<dyn std::error::Error>> = async {
//!     for page in &pages {
//!         decoder.push_page(page)?;
//!         while let Some(batch) = decoder.next_batch() {
//!             sink.write(&batch).await?;
//!         }
//!         sink.write_rejects(&decoder.take_rejects()).await?;
//!     }
//!     while let Some(batch) = decoder.flush()? {
//!         sink.write(&batch).await?;
//!     }
//!     Ok(())
//! }
//! .await;
//! match written {
//!     Ok(()) => {
//!         let summary = sink.finish(serde_json::json!({"pages": pages.len()})).await?;
//!         println!("{} rows, {} files", summary.rows, summary.files.len());
//!         Ok(())
//!     }
//!     Err(e) => {
//!         sink.abort().await?;
//!         Err(e)
//!     }
//! }
//! # }
//! ```
//!
//! # Guarantees
//!
//! - **Exact values.** Every Arrow value is written as decoded (see `trackly-contacts` for how
//!   JSON becomes Arrow); rejects are written verbatim, one JSON line each, in a rejects file.
//! - **Order.** Batches reach the files in the order they were written.
//! - **Atomic publication.** Readers never see a partial Parquet file or a file of a failed run;
//!   a successful run replaces its extract date and writes `_manifest.json` and `_SUCCESS` last.
//!   See [`sink`] for exactly what a reader sees while a date is being replaced.
//! - **Environment.** Only cloud locations read the environment, through object_store's
//!   `from_env` builders: `AWS_*` for `s3://`, `GOOGLE_*` for `gs://`, `AZURE_*` (and
//!   `AZURITE_BLOB_STORAGE_URL` with the emulator) for Azure.
//!
//! # Cargo features
//!
//! - `aws`, `gcp`, `azure`: the object_store backends of `s3://`, `gs://` and the Azure URLs
//!   (none by default; a URL whose feature is off is refused with a message naming it).
//! - `delta`: Delta Lake output through delta-rs.
//!
//! # Memory usage
//!
//! Nothing holds a whole export: the sink holds one open file's row group in progress and its
//! upload buffer (see [`sink`](sink#memory-usage)). Lower `row_group_rows` to lower the peak,
//! at some cost in compression and scan speed.

// No module uses one listed before it here (no cycles): sink (the facade), commit, table,
// checkpoint, rolling, formats (which implementation each format is), hive and delta (the
// formats), format (`TableFormat` and the `Format` interface), rejects, publish, lease (one
// publisher per date folder), summary (`SinkSummary`), manifest, options (the settings),
// retention, layout (every name and folder a run writes), access, location, store (the
// object-store helpers), backend, credentials, error, heartbeat (whether a staging folder's
// run is alive).
pub mod access;
pub mod backend;
pub mod checkpoint;
pub mod commit;
pub mod credentials;
#[cfg(feature = "delta")]
pub mod delta;
mod error;
pub mod format;
mod formats;
pub mod heartbeat;
mod hive;
mod layout;
pub mod lease;
pub mod location;
pub mod manifest;
mod options;
pub mod publish;
pub mod rejects;
pub mod retention;
pub mod rolling;
pub mod sink;
mod store;
mod summary;
pub mod table;

pub use backend::Backend;
pub use commit::CommitState;
pub use credentials::StorageOptions;
pub use error::{ConvertError, Result};
pub use format::{InvalidTableFormat, TableFormat};
pub use location::{LocationOptions, OutputLocation};
pub use retention::{Retention, RetentionReport};
pub use sink::{
    Checkpoint, CheckpointFile, Compression, DEFAULT_VACUUM_RETENTION, FileInfo,
    InvalidCompression, ParquetSink, SinkOptions, SinkSummary, WriterOptions,
};
pub use table::{StagedTable, TableSpec};
