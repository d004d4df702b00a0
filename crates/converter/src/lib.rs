//! # trackly-converter
//!
//! Turns Trackly contacts, as the fetcher delivers them ([`trackly_fetcher::Page`]), into Arrow
//! [`RecordBatch`](arrow_array::RecordBatch)es of one fixed schema, and writes those as Parquet
//! files on local disk or S3 (or any [`object_store::ObjectStore`]) for DuckDB, Spark and
//! pyarrow.
//!
//! - [`schema`]: the Arrow schema ([`contacts_schema`]) and matching DuckDB / Spark DDL.
//! - [`decode`]: [`ContactDecoder`], a push-style decoder from contact JSON to batches.
//! - [`lists`]: the lists table ([`lists_schema`]) and [`ListDecoder`], from `GET /v2/lists`.
//! - [`location`]: [`OutputLocation`], a local directory or `s3://bucket/prefix`.
//! - [`sink`]: [`ParquetSink`], staged Parquet files published at the end of a run.
//! - [`manifest`]: the `_manifest.json` written with every run.
//! - [`retention`]: [`Retention`], the removal of a table's date folders older than N days
//!   once a run is published.
//!
//! ```no_run
//! # async fn export(pages: Vec<trackly_fetcher::Page>) -> trackly_converter::Result<()> {
//! use trackly_converter::*;
//!
//! let started = chrono::Utc::now();
//! let run_id = "0196f1c2-7a3b".to_string();
//! let mut decoder = ContactDecoder::new(
//!     DecoderOptions::new(run_id.clone(), started).with_on_invalid(InvalidPolicy::Quarantine),
//! )?;
//! let location = OutputLocation::parse("s3://my-lake/trackly", false)?;
//! let mut sink = ParquetSink::create(location, SinkOptions {
//!     extract_date: started.date_naive(),
//!     run_id,
//!     writer: WriterOptions::default(),
//!     query_json: serde_json::json!({"active": true}),
//! })
//! .await?;
//! let written: Result<()> = async {
//!     for page in &pages {
//!         decoder.decode_page(page)?;
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
//! - **Exact values.** Strings are stored as sent (unescaped); timestamps keep microseconds;
//!   numbers and nested values in `custom_fields` keep their exact JSON text; `revenue_total`
//!   (a number or a decimal string) is parsed digit by digit into `DECIMAL(18,4)`, exactly when
//!   it has at most 4 decimals, else rounded half to even and counted
//!   ([`ContactDecoder::rounded_values`]). Any other value that cannot be stored exactly makes
//!   the record invalid instead.
//! - **Nothing dropped silently.** Undocumented fields land in `_extra`; invalid records either
//!   stop the run ([`InvalidPolicy::Fail`]) or are kept verbatim in a rejects file
//!   ([`InvalidPolicy::Quarantine`]); counters say how many of each.
//! - **Order.** Rows keep the order in which pages and contacts were given to the decoder, and
//!   batches reach the files in the order they were written.
//! - **Atomic publication.** Readers never see a partial Parquet file or a file of a failed run;
//!   a successful run replaces its extract date and writes `_manifest.json` and `_SUCCESS` last.
//!   See [`sink`] for exactly what a reader sees while a date is being replaced.
//! - **Environment.** Only `s3://` locations read the environment (the standard `AWS_*`
//!   variables, through `object_store`'s `AmazonS3Builder::from_env`).
//!
//! # Memory usage
//!
//! Nothing holds a whole export. The decoder holds one partial batch (`batch_size` rows, 8192
//! by default, about the size of the decoded JSON) plus full batches and rejects the caller has
//! not taken yet. The sink holds the encoded row group in progress of the one open file
//! (`row_group_rows`, 131072 by default: typically 10–30 MiB) and an upload buffer of at most
//! [`sink::UPLOAD_PART_BYTES`] plus [`sink::UPLOAD_CONCURRENCY`] parts in flight. Lower
//! `row_group_rows` to lower the peak, at some cost in compression and scan speed.

pub mod decode;
mod error;
pub mod lists;
pub mod location;
pub mod manifest;
pub mod publish;
pub mod retention;
pub mod schema;
pub mod sink;
pub mod table;

pub use decode::{
    ContactDecoder, DEFAULT_BATCH_SIZE, DecodeStats, DecoderOptions, InvalidPolicy, Reject,
};
pub use error::{ConvertError, Result};
pub use lists::{LISTS_TABLE, ListDecoder, ListReject, lists_schema};
pub use location::OutputLocation;
pub use retention::{Retention, RetentionReport};
pub use schema::{contacts_schema, duckdb_ddl, spark_ddl};
pub use sink::{
    CONTACTS_TABLE, Checkpoint, CheckpointFile, Compression, FileInfo, InvalidCompression,
    ParquetSink, SinkOptions, SinkSummary, WriterOptions,
};
pub use table::{StagedTable, TableSpec};
