//! Batches → Parquet files in an object store, published atomically per file at the end of a
//! run, with a manifest and a `_SUCCESS` marker.
//!
//! ```no_run
//! # async fn run(batches: Vec<arrow_array::RecordBatch>) -> trackly_converter::Result<()> {
//! use trackly_converter::{OutputLocation, ParquetSink, SinkOptions, WriterOptions};
//!
//! let location = OutputLocation::parse("./trackly-lake")?;
//! let options = SinkOptions {
//!     extract_date: chrono::NaiveDate::from_ymd_opt(2025, 4, 2).unwrap(),
//!     run_id: "0196f1c2-run".into(),
//!     writer: WriterOptions::default(),
//!     query_json: serde_json::json!({"list_number": null, "active": true}),
//! };
//! let mut sink = ParquetSink::create(location, options).await?;
//! for batch in &batches {
//!     if let Err(e) = sink.write(batch).await {
//!         sink.abort().await?;
//!         return Err(e);
//!     }
//! }
//! let summary = sink.finish(serde_json::json!({"pages": 12})).await?;
//! println!("{} rows in {} files", summary.rows, summary.files.len());
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! ```text
//! {prefix}/contacts/
//!   _staging/{run_id}/part-00000-{run_id}.parquet.inprogress   (while the run writes)
//!   _staging/{run_id}/_rejects-{run_id}.ndjson.inprogress
//!   _staging/_retired/{run_id}/...   (the previous run's files, while `finish` replaces them)
//!   extract_date=2025-04-02/
//!     part-00000-{run_id}.parquet
//!     part-00001-{run_id}.parquet
//!     _rejects-{run_id}.ndjson      (only under quarantine, only if a record was rejected)
//!     _manifest.json
//!     _SUCCESS                      (empty, written last)
//! ```
//!
//! A file is closed and the next one started once `bytes written + in-progress row group`
//! reaches [`WriterOptions::target_file_bytes`] (checked after every batch, so a file overshoots
//! by at most one batch). Staged names end in `.inprogress` inside `_staging/`: DuckDB's
//! `**/*.parquet` glob does not match them and Spark and Hive skip `_`-prefixed paths, so a
//! reader of `contacts/` never sees a file that is being written.
//!
//! # Publication, and what a reader sees
//!
//! [`ParquetSink::finish`] runs these steps, in order:
//!
//! 1. close the last file (a run without rows still publishes one file with the schema and no
//!    rows, so the partition is never empty) and build the manifest;
//! 2. move the date's objects of the previous run aside, into the hidden
//!    `_staging/_retired/{run_id}/`: first `_SUCCESS`, then `_manifest.json`, then every
//!    `part-*.parquet` and `_rejects-*.ndjson` (a re-run replaces the date; other objects in the
//!    folder are left alone);
//! 3. move each staged file to its final `part-NNNNN-{run_id}.parquet` name, then the rejects
//!    file (`rename`: atomic on a local file system; copy then delete on S3, where each object
//!    still appears whole);
//! 4. write `_manifest.json`, then the empty `_SUCCESS`: from here on the run is published;
//! 5. delete the retired objects (best effort: one that cannot be deleted is logged with
//!    `tracing::warn!` and stays in `_staging/_retired/{run_id}/`, hidden).
//!
//! [`ParquetSink::finish_with`] runs steps 2–5 for the contacts and the run's other tables (the
//! lists, staged with [`StagedTable`]) together, each table in its own folder: every table's
//! previous run is retired first, then every table's files move in, then every manifest is
//! written, then every `_SUCCESS` (the contacts' last); a failure at any of these steps rolls
//! back every table as described below (see [`publish`](crate::publish)). So every table of a
//! run is published, or none is; a table the run does not export is not touched.
//!
//! **When `finish` has returned**, the date folder holds the files of exactly one run:
//!
//! - on success, this run's files, its `_manifest.json` and `_SUCCESS`;
//! - on a failure at any of steps 2–4, the previous run's files as they were, with its
//!   `_manifest.json`, and `_SUCCESS` if it had one. `finish` rolls back: it deletes what it
//!   moved or wrote into the folder (newest first, so `_SUCCESS` goes first), then moves the
//!   retired objects back (`_SUCCESS` last). Each of these operations is tried up to
//!   [`ROLLBACK_ATTEMPTS`] times. The error of the failed step is returned.
//!
//! If the rollback fails too, the error of the failed step is still returned, and a
//! `tracing::error!` event names the date folder, the objects of this run still in it and the
//! previous run's objects still in `_staging/_retired/{run_id}/`. The folder then still holds
//! the files of one run only, but maybe not all of them: some of this run's (when one of them
//! cannot be deleted, the previous run's stay retired rather than be mixed with them) or some of
//! the previous run's (when one cannot be moved back). `_SUCCESS` is never left beside an
//! incomplete set. Nothing deletes `_staging/_retired/` after a failure: move its objects back
//! by hand (they keep their names), or delete them once a later run has replaced the date.
//!
//! **While `finish` runs** (steps 2–4, or a rollback), the folder has no `_SUCCESS` and changes
//! one object at a time: without a table format (Delta Lake, Iceberg) there is no atomic switch
//! from one run to the next. At any instant the folder holds objects of at most one run, but a
//! reader that globs `part-*.parquet` meanwhile may find some of the previous run's files (they
//! leave one by one during step 2), none at all, or some of this run's (they arrive one by one
//! during step 3); never a partial file. A listing is not a snapshot either (S3 returns 1000 keys
//! per request; a directory is read entry by entry), so a reader that lists while the folder
//! changes can still collect files of both runs, or list a file that is gone when it opens it.
//! Readers that need a consistent date should wait for `_SUCCESS`, read exactly the files listed
//! in `_manifest.json`, and start over if one of them is gone (a later run is replacing the
//! date). A run that fails before step 2 never touches the date folder at all.
//!
//! # Failure and cancellation
//!
//! No `.parquet` file of a failed run is left visible, unless the rollback above fails too. On
//! any error from `write`, or on Ctrl-C, call [`ParquetSink::abort`]: it aborts the in-progress
//! multipart upload and deletes this run's staging objects. `finish` cleans up the same way by
//! itself when it fails. Dropping a sink without either leaves its staging objects (hidden, see
//! above) and, on S3, possibly an incomplete multipart upload; a bucket lifecycle rule
//! `AbortIncompleteMultipartUpload` is the backstop for a killed process. A process killed
//! during steps 2–4 cannot roll back: the folder stays as the kill left it (see "while `finish`
//! runs"), without `_SUCCESS`, and the previous run's objects moved so far stay in
//! `_staging/_retired/{run_id}/`.
//!
//! # Memory usage
//!
//! Per open file: the encoded (compressed) pages of the row group in progress, which the Parquet
//! writer must hold until the row group is complete (about `row_group_rows` × the encoded row
//! size: 131072 rows of typical contacts are some 10–30 MiB), plus the upload buffer, at most
//! [`UPLOAD_PART_BYTES`] buffered and [`UPLOAD_CONCURRENCY`] parts of that size in flight. One
//! file is open at a time. Rejects are streamed to the store the same way.

use std::collections::HashSet;

use arrow_array::RecordBatch;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::AsyncArrowWriter;
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

#[cfg(feature = "delta")]
use crate::commit::DeltaCommit;
use crate::commit::{Commit, HivePublish, StagedRun};
use crate::error::{ConvertError, Result};
use crate::format::TableFormat;
use crate::layout::{RETIRED_DIR, part_name, validate_run_id};
use crate::location::OutputLocation;
use crate::manifest::rfc3339;
use crate::retention::Retention;
use crate::store::{delete_if_exists, io_storage, list_paths, upload};
use crate::table::StagedTable;
use trackly_contacts::decode::Reject;
use trackly_contacts::schema::contacts_schema;

pub use crate::layout::{CONTACTS_TABLE, LISTS_TABLE};
pub use crate::manifest::FileInfo;
pub use crate::options::{Compression, InvalidCompression, SinkOptions, WriterOptions};
pub use crate::publish::ROLLBACK_ATTEMPTS;
pub use crate::store::{UPLOAD_CONCURRENCY, UPLOAD_PART_BYTES};
pub use crate::summary::SinkSummary;

struct OpenFile {
    writer: AsyncArrowWriter<BufWriter>,
    staging: Path,
    part: u32,
    rows: u64,
    /// The file's Delta statistics, gathered batch by batch (Delta only).
    #[cfg(feature = "delta")]
    stats: Option<crate::delta::FileStats>,
}

pub(crate) struct StagedFile {
    /// Where the file is written: under `_staging/` for Parquet, in its date folder (its
    /// final place, outside the log until the commit) for Delta.
    pub(crate) staging: Path,
    pub(crate) published: Path,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    /// Delta statistics JSON of the file (Delta only).
    pub(crate) stats: Option<String>,
}

struct RejectsFile {
    writer: BufWriter,
    staging: Path,
}

/// Writes batches to staged Parquet files and publishes them on [`finish`](Self::finish); see
/// the [module docs](self).
pub struct ParquetSink {
    location: OutputLocation,
    options: SinkOptions,
    props: WriterProperties,
    started_at: DateTime<Utc>,
    contacts_dir: Path,
    date_dir: Path,
    staging_dir: Path,
    /// Where `finish` moves the previous run's files of the date while it replaces them.
    retired_dir: Path,
    current: Option<OpenFile>,
    closed: Vec<StagedFile>,
    next_part: u32,
    rejects: Option<RejectsFile>,
    /// Rejects segments closed at a checkpoint (staging paths).
    closed_rejects: Vec<Path>,
    rejects_written: u64,
    /// What decoding reported, for the manifest.
    decode_stats: trackly_contacts::decode::DecodeStats,
    /// Applied to every table of the run once it is published.
    retention: Option<Retention>,
    /// How the run is published.
    format: TableFormat,
    /// Delta only: the VACUUM after the commit (`None`: no VACUUM).
    #[cfg_attr(not(feature = "delta"), allow(dead_code))]
    vacuum_retention: Option<std::time::Duration>,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink")
            .field("location", &self.location)
            .field("run_id", &self.options.run_id)
            .field("date_dir", &self.date_dir.as_ref())
            .field("closed_files", &self.closed.len())
            .field("open_file", &self.current.as_ref().map(|f| f.part))
            .field("rejects_written", &self.rejects_written)
            .finish()
    }
}

impl ParquetSink {
    /// Validates the options and prepares a run; nothing is written until the first batch.
    pub async fn create(location: OutputLocation, options: SinkOptions) -> Result<Self> {
        validate_run_id(&options.run_id)?;
        let props = options
            .writer
            .writer_properties(&options.run_id, options.extract_date)?;
        let contacts_dir = location.child([CONTACTS_TABLE]);
        let date_dir = contacts_dir
            .clone()
            .join(format!("extract_date={}", options.extract_date));
        let staging_dir = contacts_dir
            .clone()
            .join("_staging")
            .join(options.run_id.as_str());
        let retired_dir = contacts_dir
            .clone()
            .join("_staging")
            .join(RETIRED_DIR)
            .join(options.run_id.as_str());
        Ok(ParquetSink {
            location,
            props,
            started_at: Utc::now(),
            contacts_dir,
            date_dir,
            staging_dir,
            retired_dir,
            current: None,
            closed: Vec::new(),
            next_part: 0,
            rejects: None,
            closed_rejects: Vec::new(),
            rejects_written: 0,
            decode_stats: trackly_contacts::decode::DecodeStats::default(),
            retention: None,
            format: TableFormat::Parquet,
            #[cfg(feature = "delta")]
            vacuum_retention: Some(crate::delta::DEFAULT_VACUUM_RETENTION),
            #[cfg(not(feature = "delta"))]
            vacuum_retention: None,
            options,
        })
    }

    /// Publishes the run as `format` (default [`TableFormat::Parquet`]); set it before the
    /// first [`write`](Self::write). A resumed run must keep the format it was written with:
    /// its finished files are where that format writes them.
    pub fn set_table_format(&mut self, format: TableFormat) -> Result<()> {
        let in_place = |f: &StagedFile| f.staging == f.published;
        let wrong = match format {
            TableFormat::Parquet => self.closed.iter().any(in_place),
            #[cfg(feature = "delta")]
            TableFormat::Delta => self.closed.iter().any(|f| !in_place(f)),
        };
        if wrong || self.current.is_some() {
            return Err(ConvertError::InvalidOption {
                option: "table_format",
                reason: format!(
                    "run {} was written with another table format; resume it with the same one",
                    self.options.run_id
                ),
            });
        }
        self.format = format;
        Ok(())
    }

    /// The format the run is published as.
    pub fn table_format(&self) -> TableFormat {
        self.format
    }

    /// Delta only: after the commit, delete the data files that earlier commits removed more
    /// than `retention` ago (default 7 days; `None`: never); see [`delta`](crate::delta).
    pub fn set_vacuum_retention(&mut self, retention: Option<std::time::Duration>) {
        self.vacuum_retention = retention;
    }

    /// Picks up the newest interrupted run of the same extract date and query (see
    /// [`Checkpoint`]): its finished staged files are kept, everything else it staged is
    /// deleted, and new files continue its part numbering under its run id. `None` when there
    /// is no such run. `options.run_id` is replaced by the resumed run's id.
    pub async fn resume(
        location: OutputLocation,
        mut options: SinkOptions,
    ) -> Result<Option<(Self, Checkpoint)>> {
        let store = location.store().clone();
        let staging_root = location.child([CONTACTS_TABLE, "_staging"]);
        let runs = match store.list_with_delimiter(Some(&staging_root)).await {
            Ok(listing) => listing.common_prefixes,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(ConvertError::storage(&staging_root, e)),
        };
        let mut best: Option<Checkpoint> = None;
        for run_dir in runs {
            let Some(checkpoint) = read_checkpoint(store.as_ref(), &run_dir).await? else {
                continue;
            };
            let same = checkpoint.extract_date == options.extract_date.to_string()
                && checkpoint.query == options.query_json;
            if same && best.as_ref().is_none_or(|b| checkpoint.run_id > b.run_id) {
                best = Some(checkpoint);
            }
        }
        let Some(checkpoint) = best else {
            return Ok(None);
        };
        options.run_id = checkpoint.run_id.clone();
        let mut sink = ParquetSink::create(location, options).await?;
        sink.started_at = DateTime::parse_from_rfc3339(&checkpoint.started_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(sink.started_at);
        let mut keep: HashSet<Path> = HashSet::new();
        keep.insert(sink.checkpoint_path());
        for file in &checkpoint.files {
            let staging = Path::from(file.staging.as_str());
            store
                .head(&staging)
                .await
                .map_err(|e| ConvertError::storage(&staging, e))?;
            keep.insert(staging.clone());
            sink.closed.push(StagedFile {
                staging,
                published: sink
                    .date_dir
                    .clone()
                    .join(part_name(file.part, &checkpoint.run_id)),
                rows: file.rows,
                bytes: file.bytes,
                stats: file.stats.clone(),
            });
            sink.next_part = sink.next_part.max(file.part + 1);
        }
        for segment in &checkpoint.rejects {
            let path = Path::from(segment.as_str());
            keep.insert(path.clone());
            sink.closed_rejects.push(path);
        }
        sink.rejects_written = checkpoint.rejects_written;
        // What the interrupted run was writing when it stopped is incomplete: drop it.
        for path in list_paths(store.as_ref(), &sink.staging_dir).await? {
            if !keep.contains(&path) {
                delete_if_exists(store.as_ref(), &path).await?;
            }
        }
        Ok(Some((sink, checkpoint)))
    }

    /// This run's id.
    pub fn run_id(&self) -> &str {
        &self.options.run_id
    }

    /// When this run started (for a resumed run: when the interrupted run started).
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// Files finished so far (they are published by [`finish`](Self::finish)).
    pub fn closed_files(&self) -> usize {
        self.closed.len()
    }

    /// Rows in the files finished so far.
    pub fn closed_rows(&self) -> u64 {
        self.closed.iter().map(|f| f.rows).sum()
    }

    /// Records the run's finished files and the caller's `progress` (where to pick up again)
    /// beside the staging files, so [`resume`](Self::resume) can continue after a crash. Also
    /// closes the current rejects segment, so the rejects written so far survive a crash too.
    pub async fn checkpoint(&mut self, progress: serde_json::Value) -> Result<()> {
        if let Some(mut file) = self.rejects.take() {
            file.writer
                .shutdown()
                .await
                .map_err(|e| io_storage(&file.staging, e))?;
            self.closed_rejects.push(file.staging);
        }
        let checkpoint = Checkpoint {
            format: CHECKPOINT_FORMAT.to_owned(),
            run_id: self.options.run_id.clone(),
            extract_date: self.options.extract_date.to_string(),
            query: self.options.query_json.clone(),
            started_at: rfc3339(self.started_at),
            files: self
                .closed
                .iter()
                .map(|f| CheckpointFile {
                    part: part_of(&f.published),
                    staging: f.staging.to_string(),
                    rows: f.rows,
                    bytes: f.bytes,
                    stats: f.stats.clone(),
                })
                .collect(),
            rejects: self.closed_rejects.iter().map(|p| p.to_string()).collect(),
            rejects_written: self.rejects_written,
            progress,
        };
        let path = self.checkpoint_path();
        let json = serde_json::to_vec_pretty(&checkpoint).map_err(|source| ConvertError::Json {
            path: path.to_string(),
            source,
        })?;
        self.location
            .store()
            .put(&path, PutPayload::from(json))
            .await
            .map_err(|e| ConvertError::storage(&path, e))?;
        Ok(())
    }

    /// `(phone_number, list_number)` of every row in the finished files, read back from the
    /// store (two columns only): what a resumed run must not deliver again. Takes `&mut self`
    /// so the future is `Send` (the sink is `Send` but not `Sync`: its Parquet writer is not).
    // parquet (since 59) deprecates `ParquetObjectReader` in favour of a hand-written `AsyncFileReader`;
    // it still works, and reading two columns with ranged GETs is exactly what it does.
    #[allow(deprecated)]
    pub async fn written_keys(&mut self) -> Result<Vec<(String, String)>> {
        use arrow_array::Array;
        use arrow_array::cast::AsArray;
        use futures::TryStreamExt;
        use parquet::arrow::ProjectionMask;
        use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};

        let mut keys = Vec::with_capacity(self.closed_rows() as usize);
        for file in &self.closed {
            let reader =
                ParquetObjectReader::new(self.location.store().clone(), file.staging.clone())
                    .with_file_size(file.bytes);
            let builder = ParquetRecordBatchStreamBuilder::new(reader)
                .await
                .map_err(|e| ConvertError::parquet(&file.staging, e))?;
            let mask = ProjectionMask::roots(builder.parquet_schema(), [0, 1]);
            let mut batches = builder
                .with_projection(mask)
                .build()
                .map_err(|e| ConvertError::parquet(&file.staging, e))?;
            while let Some(batch) = batches
                .try_next()
                .await
                .map_err(|e| ConvertError::parquet(&file.staging, e))?
            {
                let phones = batch.column(0).as_string::<i32>();
                let lists = batch.column(1).as_string::<i32>();
                for i in 0..batch.num_rows() {
                    if phones.is_valid(i) && lists.is_valid(i) {
                        keys.push((phones.value(i).to_owned(), lists.value(i).to_owned()));
                    }
                }
            }
        }
        Ok(keys)
    }

    /// Like [`abort`](Self::abort) for the file in progress, but keeps the finished files and
    /// the checkpoint, so a later [`resume`](Self::resume) continues from them. A run that has
    /// not checkpointed a finished file is aborted outright.
    pub async fn suspend(mut self) -> Result<()> {
        if self.closed.is_empty() {
            return self.abort().await;
        }
        if let Some(file) = self.current.take() {
            let mut upload = file.writer.into_inner();
            let _ = upload.abort().await;
        }
        if let Some(mut file) = self.rejects.take() {
            let _ = file.writer.abort().await;
        }
        Ok(())
    }

    fn checkpoint_path(&self) -> Path {
        self.staging_dir.clone().join(CHECKPOINT_FILE)
    }

    /// The date folder this run replaces.
    pub fn date_dir(&self) -> &Path {
        &self.date_dir
    }

    /// Appends a batch (of [`contacts_schema`]) to the current file, starting a new file when
    /// the current one has reached the target size.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.current.is_none() {
            self.open_next()?;
        }
        let Some(file) = self.current.as_mut() else {
            return Ok(());
        };
        file.writer
            .write(batch)
            .await
            .map_err(|e| ConvertError::parquet(&file.staging, e))?;
        #[cfg(feature = "delta")]
        if let Some(stats) = file.stats.as_mut() {
            stats.merge(&file.staging, batch)?;
        }
        file.rows += batch.num_rows() as u64;
        let size = file.writer.bytes_written() + file.writer.in_progress_size();
        if size as u64 >= self.options.writer.target_file_bytes {
            self.close_current().await?;
        }
        Ok(())
    }

    /// Appends quarantined records to this run's rejects file (NDJSON, one object per line
    /// with `page`, `index`, `field`, `value`, `reason`, `raw`).
    pub async fn write_rejects(&mut self, rejects: &[Reject]) -> Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        let rejects_file = match &mut self.rejects {
            Some(file) => file,
            None => {
                let staging = self.staging_dir.clone().join(format!(
                    "_rejects-{}-{:05}.ndjson.inprogress",
                    self.options.run_id,
                    self.closed_rejects.len()
                ));
                let writer = upload(self.location.store(), &staging);
                self.rejects.insert(RejectsFile { writer, staging })
            }
        };
        let mut lines = Vec::new();
        for reject in rejects {
            serde_json::to_writer(&mut lines, reject).map_err(|source| ConvertError::Json {
                path: rejects_file.staging.to_string(),
                source,
            })?;
            lines.push(b'\n');
        }
        rejects_file
            .writer
            .put(Bytes::from(lines))
            .await
            .map_err(|e| ConvertError::storage(&rejects_file.staging, e))?;
        self.rejects_written += rejects.len() as u64;
        Ok(())
    }

    /// What decoding changed within accepted rows, recorded in `_manifest.json` (`decode`) by
    /// [`finish`](Self::finish). A resumed run records what it decoded itself.
    pub fn set_decode_stats(&mut self, stats: trackly_contacts::decode::DecodeStats) {
        self.decode_stats = stats;
    }

    /// Once the run is published, remove the date folders older than `retention` of the
    /// contacts and of every companion table of [`finish_with`](Self::finish_with) (default:
    /// none, keep everything); see [`retention`](crate::retention).
    pub fn set_retention(&mut self, retention: Option<Retention>) {
        self.retention = retention;
    }

    /// Closes the last file and publishes the run (see the [module docs](self)), recording
    /// `fetch_stats` in the manifest. On error, the date folder is rolled back to the previous
    /// run's files and this run's staging objects are removed as [`abort`](Self::abort) would.
    pub async fn finish(self, fetch_stats: serde_json::Value) -> Result<SinkSummary> {
        self.finish_with(fetch_stats, Vec::new())
            .await
            .map(|(contacts, _)| contacts)
    }

    /// [`finish`](Self::finish), publishing `companions` (other tables of the run, such as
    /// the lists, staged with [`StagedTable::stage`]) in the same step: every table of the run
    /// or none (see [`publish`](crate::publish)). Returns the contacts' summary and the
    /// companions', in the order given. On error every table's date folder is rolled back and
    /// every table's staging objects are removed.
    pub async fn finish_with(
        mut self,
        fetch_stats: serde_json::Value,
        companions: Vec<StagedTable>,
    ) -> Result<(SinkSummary, Vec<SinkSummary>)> {
        match self.publish(fetch_stats, &companions).await {
            Ok(summaries) => Ok(summaries),
            Err(e) => {
                self.discard().await;
                for table in companions {
                    if let Err(cleanup) = table.abort().await {
                        tracing::warn!(%cleanup, "cannot remove a staged table of the failed run");
                    }
                }
                Err(e)
            }
        }
    }

    /// Abandons the run: aborts the upload in progress and deletes this run's staging objects.
    /// Nothing in the date folder is touched.
    pub async fn abort(mut self) -> Result<()> {
        self.discard().await;
        // Report a store that refuses the clean-up, so the caller can tell the user.
        let leftovers = list_paths(self.location.store().as_ref(), &self.staging_dir).await?;
        match leftovers.first() {
            None => Ok(()),
            Some(path) => Err(ConvertError::Storage {
                path: path.to_string(),
                source: object_store::Error::Generic {
                    store: "trackly-converter",
                    source: match leftovers.len() {
                        1 => "1 staging object could not be deleted".to_owned(),
                        n => format!("{n} staging objects could not be deleted"),
                    }
                    .into(),
                },
            }),
        }
    }

    fn open_next(&mut self) -> Result<()> {
        let part = self.next_part;
        self.next_part += 1;
        let staging = match self.format {
            TableFormat::Parquet => self.staging_dir.clone().join(format!(
                "{}.inprogress",
                part_name(part, &self.options.run_id)
            )),
            // Outside the log until the commit: invisible to Delta readers where it is.
            #[cfg(feature = "delta")]
            TableFormat::Delta => self
                .date_dir
                .clone()
                .join(part_name(part, &self.options.run_id)),
        };
        let writer = AsyncArrowWriter::try_new(
            upload(self.location.store(), &staging),
            contacts_schema(),
            Some(self.props.clone()),
        )
        .map_err(|e| ConvertError::parquet(&staging, e))?;
        self.current = Some(OpenFile {
            writer,
            staging,
            part,
            rows: 0,
            #[cfg(feature = "delta")]
            stats: match self.format {
                TableFormat::Delta => Some(crate::delta::FileStats::new(&contacts_schema())?),
                TableFormat::Parquet => None,
            },
        });
        Ok(())
    }

    async fn close_current(&mut self) -> Result<()> {
        // Taken out first: a writer whose upload failed to complete must not be aborted later
        // (its upload is gone or unusable either way).
        let Some(mut file) = self.current.take() else {
            return Ok(());
        };
        file.writer
            .finish()
            .await
            .map_err(|e| ConvertError::parquet(&file.staging, e))?;
        let bytes = file.writer.bytes_written() as u64;
        let published = self
            .date_dir
            .clone()
            .join(part_name(file.part, &self.options.run_id));
        #[cfg(feature = "delta")]
        let stats = match file.stats {
            Some(mut stats) => {
                if file.rows == 0 {
                    // `numRecords: 0` needs one (empty) batch merged.
                    stats.merge(&file.staging, &RecordBatch::new_empty(contacts_schema()))?;
                }
                stats.finish(&file.staging)?
            }
            None => None,
        };
        #[cfg(not(feature = "delta"))]
        let stats = None;
        self.closed.push(StagedFile {
            staging: file.staging,
            published,
            rows: file.rows,
            bytes,
            stats,
        });
        Ok(())
    }

    /// Closes the rejects segment in progress; returns `(staged, published)` of the run's one
    /// rejects file (several segments of a resumed run are joined first), if any.
    async fn close_rejects(&mut self, store: &dyn ObjectStore) -> Result<Option<(Path, Path)>> {
        if let Some(mut file) = self.rejects.take() {
            file.writer
                .shutdown()
                .await
                .map_err(|e| io_storage(&file.staging, e))?;
            self.closed_rejects.push(file.staging);
        }
        Ok(match self.closed_rejects.as_slice() {
            [] => None,
            segments => {
                let final_path = self
                    .date_dir
                    .clone()
                    .join(format!("_rejects-{}.ndjson", self.options.run_id));
                if let [only] = segments {
                    Some((only.clone(), final_path))
                } else {
                    // Several segments (a resumed run): join them into one staged object.
                    let joined = self.staging_dir.clone().join(format!(
                        "_rejects-{}.ndjson.inprogress",
                        self.options.run_id
                    ));
                    let mut all = Vec::new();
                    for segment in segments {
                        let bytes = store
                            .get(segment)
                            .await
                            .map_err(|e| ConvertError::storage(segment, e))?
                            .bytes()
                            .await
                            .map_err(|e| ConvertError::storage(segment, e))?;
                        all.extend_from_slice(&bytes);
                    }
                    store
                        .put(&joined, PutPayload::from(all))
                        .await
                        .map_err(|e| ConvertError::storage(&joined, e))?;
                    Some((joined, final_path))
                }
            }
        })
    }

    /// Closes the last file and the rejects, then hands the run to the commit of its format
    /// ([`commit`](crate::commit): Hive-style publication or a Delta commit); once committed,
    /// removes this run's staging and that of older interrupted runs of the date.
    async fn publish(
        &mut self,
        fetch_stats: serde_json::Value,
        companions: &[StagedTable],
    ) -> Result<(SinkSummary, Vec<SinkSummary>)> {
        let store = self.location.store().clone();
        let store = store.as_ref();

        if self.current.is_none() && self.closed.is_empty() {
            self.open_next()?;
        }
        self.close_current().await?;
        let rejects_file = self.close_rejects(store).await?;
        let run = StagedRun {
            location: &self.location,
            options: &self.options,
            started_at: self.started_at,
            table_dir: &self.contacts_dir,
            date_dir: &self.date_dir,
            retired_dir: &self.retired_dir,
            files: &self.closed,
            rejects_file,
            rejects_written: self.rejects_written,
            decode_stats: self.decode_stats,
            fetch_stats,
            retention: self.retention,
            vacuum_retention: self.vacuum_retention,
            companions,
        };
        let summaries = match self.format {
            TableFormat::Parquet => HivePublish::default().commit(run).await?,
            #[cfg(feature = "delta")]
            TableFormat::Delta => DeltaCommit::default().commit(run).await?,
        };

        // This run's staging (checkpoint, joined segments) and that of older interrupted runs
        // of the same date are of no use any more.
        self.remove_staging(store).await;
        self.remove_stale_runs(store).await;
        self.remove_staging_dirs();
        for table in companions {
            table.clean_up_after_publication().await;
        }
        Ok(summaries)
    }

    #[cfg(feature = "delta")]
    fn delta_target(&self) -> Result<crate::delta::DeltaTarget> {
        crate::commit::contacts_delta_target(&self.location, &self.contacts_dir)
    }

    /// Best-effort removal of everything this run staged.
    async fn discard(&mut self) {
        let store = self.location.store().clone();
        if let Some(file) = self.current.take() {
            let mut upload = file.writer.into_inner();
            let _ = upload.abort().await;
        }
        #[cfg(feature = "delta")]
        if self.format == TableFormat::Delta {
            let target = self.delta_target();
            let files: Vec<Path> = self.closed.iter().map(|f| f.staging.clone()).collect();
            crate::delta::discard_uncommitted(store.as_ref(), target, &files).await;
        }
        if let Some(mut file) = self.rejects.take() {
            let _ = file.writer.abort().await;
        }
        if let Ok(paths) = list_paths(store.as_ref(), &self.staging_dir).await {
            for path in paths {
                let _ = delete_if_exists(store.as_ref(), &path).await;
            }
        }
        self.remove_staging_dirs();
    }

    // `&mut self` here and below, although nothing is changed: the sink is not `Sync`, and a
    // shared borrow held across an await would make every caller's future `!Send`.
    async fn remove_staging(&mut self, store: &dyn ObjectStore) {
        if let Ok(paths) = list_paths(store, &self.staging_dir).await {
            for path in paths {
                let _ = delete_if_exists(store, &path).await;
            }
        }
    }

    /// Best-effort removal of the staging of interrupted runs of the same date.
    async fn remove_stale_runs(&mut self, store: &dyn ObjectStore) {
        let root = self.contacts_dir.clone().join("_staging");
        let Ok(listing) = store.list_with_delimiter(Some(&root)).await else {
            return;
        };
        for run_dir in listing.common_prefixes {
            if run_dir == self.staging_dir {
                continue;
            }
            let Ok(Some(checkpoint)) = read_checkpoint(store, &run_dir).await else {
                continue;
            };
            if checkpoint.extract_date == self.options.extract_date.to_string()
                && checkpoint.run_id < self.options.run_id
                && let Ok(paths) = list_paths(store, &run_dir).await
            {
                for path in paths {
                    let _ = delete_if_exists(store, &path).await;
                }
                self.location.remove_empty_local_dir(&run_dir);
            }
        }
    }

    /// Deletes what interrupted runs of `extract_date` left in staging under `location` (their
    /// finished files and `_checkpoint.json`, kept for [`resume`](Self::resume)), for a caller
    /// that will not resume them; returns how many runs were discarded. Published files, other
    /// dates' runs and anything without one of our checkpoints are never touched. Run it only
    /// when no export of that date is running: a live run's staging looks the same.
    pub async fn discard_interrupted(
        location: &OutputLocation,
        extract_date: NaiveDate,
    ) -> Result<usize> {
        let store = location.store().clone();
        let root = location.child([CONTACTS_TABLE, "_staging"]);
        let listing = match store.list_with_delimiter(Some(&root)).await {
            Ok(listing) => listing,
            Err(object_store::Error::NotFound { .. }) => return Ok(0),
            Err(e) => return Err(ConvertError::storage(&root, e)),
        };
        let mut discarded = 0;
        for run_dir in listing.common_prefixes {
            let Some(checkpoint) = read_checkpoint(store.as_ref(), &run_dir).await? else {
                continue;
            };
            if checkpoint.extract_date != extract_date.to_string() {
                continue;
            }
            // Delta: the run's finished files are in the date folder, not in its staging.
            #[cfg(feature = "delta")]
            {
                let outside: Vec<Path> = checkpoint
                    .files
                    .iter()
                    .map(|f| Path::from(f.staging.as_str()))
                    .filter(|p| p.prefix_match(&run_dir).is_none())
                    .collect();
                let target = location.delta_root(CONTACTS_TABLE).map(|(root, url)| {
                    crate::delta::DeltaTarget::new(
                        root,
                        url,
                        location.child([CONTACTS_TABLE]),
                        CONTACTS_TABLE,
                        contacts_schema(),
                    )
                });
                crate::delta::discard_uncommitted(store.as_ref(), target, &outside).await;
            }
            for path in list_paths(store.as_ref(), &run_dir).await? {
                delete_if_exists(store.as_ref(), &path).await?;
            }
            location.remove_empty_local_dir(&run_dir);
            discarded += 1;
        }
        location.remove_empty_local_dir(&root);
        Ok(discarded)
    }

    fn remove_staging_dirs(&self) {
        let root = self.contacts_dir.clone().join("_staging");
        self.location.remove_empty_local_dir(&self.staging_dir);
        self.location.remove_empty_local_dir(&self.retired_dir);
        self.location
            .remove_empty_local_dir(&root.clone().join(RETIRED_DIR));
        self.location.remove_empty_local_dir(&root);
    }
}

/// The value of [`Checkpoint::format`].
pub const CHECKPOINT_FORMAT: &str = "trackly-export/checkpoint/v1";
const CHECKPOINT_FILE: &str = "_checkpoint.json";

/// `_staging/{run_id}/_checkpoint.json`: what an interrupted run had finished, and where its
/// caller can pick up again. Written by [`ParquetSink::checkpoint`], read by
/// [`ParquetSink::resume`].
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// The interrupted run.
    pub run_id: String,
    /// Its extract date (`YYYY-MM-DD`).
    pub extract_date: String,
    /// Its query, as the caller serialised it.
    pub query: serde_json::Value,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Its finished staged files.
    pub files: Vec<CheckpointFile>,
    /// Its finished rejects segments (staging paths).
    pub rejects: Vec<String>,
    /// Rejects in those segments.
    pub rejects_written: u64,
    /// The caller's resume point, as it gave it.
    pub progress: serde_json::Value,
}

/// One finished staged file in a [`Checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CheckpointFile {
    /// Part number.
    pub part: u32,
    /// Staging object path.
    pub staging: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// Its Delta statistics (Delta only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<String>,
}

async fn read_checkpoint(store: &dyn ObjectStore, run_dir: &Path) -> Result<Option<Checkpoint>> {
    let path = run_dir.clone().join(CHECKPOINT_FILE);
    let Some(bytes) = crate::store::read_if_exists(store, &path).await? else {
        return Ok(None);
    };
    // A checkpoint of another format or a torn write is not ours to resume.
    Ok(serde_json::from_slice::<Checkpoint>(&bytes)
        .ok()
        .filter(|c| c.format == CHECKPOINT_FORMAT))
}

/// The part number of a published `part-NNNNN-...` path.
fn part_of(published: &Path) -> u32 {
    published
        .filename()
        .and_then(|name| name.strip_prefix("part-"))
        .and_then(|rest| rest.get(..5))
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}
