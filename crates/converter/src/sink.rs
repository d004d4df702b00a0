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
//!   _staging/{run_id}/_rejects-{run_id}-00000.ndjson.inprogress (a segment; see `rejects`)
//!   _staging/{run_id}/_checkpoint.json                         (for resume; see `checkpoint`)
//!   _staging/{run_id}/_heartbeat        (rewritten while the run lives; see `heartbeat`)
//!   _staging/_retired/{run_id}/...   (the previous run's files, while `finish` replaces them)
//!   extract_date=2025-04-02/
//!     part-00000-{run_id}.parquet
//!     part-00001-{run_id}.parquet
//!     _rejects-{run_id}.ndjson      (only under quarantine, only if a record was rejected)
//!     _manifest.json
//!     _SUCCESS                      (empty, written last)
//! ```
//!
//! A file is closed and the next one started once it reaches
//! [`WriterOptions::target_file_bytes`] (see [`rolling`](crate::rolling)). Staged names end in
//! `.inprogress` inside `_staging/`: DuckDB's `**/*.parquet` glob does not match them and Spark
//! and Hive skip `_`-prefixed paths, so a reader of `contacts/` never sees a file that is being
//! written.
//!
//! # Phases
//!
//! [`ParquetSink`] is the facade of a run; each phase is a module of its own (writing,
//! rejects, checkpoint, commit: see the [crate docs](crate)).
//!
//! After a commit the sink clears the run's staging and that of older interrupted runs of the
//! date, once they are abandoned: a run's [`heartbeat`](crate::heartbeat) keeps its staging
//! marked as alive from its first write until it is published or given up, so a run still
//! exporting (or waiting to publish) is never touched and publishes in its turn.
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
//! One file is open at a time: its row group in progress (some 10–30 MiB for 131072 rows of
//! typical contacts) and its upload buffer (see [`rolling`](crate::rolling)), a part being
//! [`UPLOAD_PART_BYTES`] on an object store and [`LOCAL_UPLOAD_PART_BYTES`] on a local disk.
//! Rejects are streamed to the store the same way.

use std::time::Duration;

use arrow_array::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use object_store::path::Path;

use crate::checkpoint;
use crate::commit::{CommitState, Committer, last_summary};
use crate::error::Result;
use crate::format::{StagedRun, TableFormat, TableToCommit, Uncommitted};
use crate::heartbeat::Heartbeat;
use crate::layout::{RunDirs, staging_root, validate_run_id};
use crate::location::OutputLocation;
use crate::options::RetentionPolicy;
use crate::rejects::Rejects;
use crate::retention::Retention;
use crate::rolling::RollingFiles;
use crate::store::{delete_all, delete_all_best_effort, list_paths, storage_error};
use crate::table::StagedTable;
use trackly_contacts::ResumePoint;
use trackly_contacts::decode::{DecodeStats, Reject};
use trackly_contacts::table::CONTACTS;

pub use crate::checkpoint::{CHECKPOINT_FORMAT, Checkpoint, CheckpointFile};
pub use crate::manifest::FileInfo;
pub use crate::options::{
    Compression, DEFAULT_VACUUM_RETENTION, InvalidCompression, SinkOptions, WriterOptions,
};
pub use crate::publish::ROLLBACK_ATTEMPTS;
pub use crate::store::{LOCAL_UPLOAD_PART_BYTES, UPLOAD_CONCURRENCY, UPLOAD_PART_BYTES};
pub use crate::summary::SinkSummary;

/// Writes batches to staged Parquet files and publishes them on [`finish`](Self::finish); see
/// the [module docs](self).
pub struct ParquetSink {
    location: OutputLocation,
    options: SinkOptions,
    started_at: DateTime<Utc>,
    dirs: RunDirs,
    files: RollingFiles,
    rejects: Rejects,
    /// What decoding reported, for the manifest.
    decode_stats: DecodeStats,
    /// Applied to every table of the run once it is published.
    retention_policy: RetentionPolicy,
    /// Keeps the run's staging marked as alive from its first write until it is published or
    /// given up (see [`heartbeat`](crate::heartbeat)).
    heartbeat: Option<Heartbeat>,
}

impl std::fmt::Debug for ParquetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSink")
            .field("location", &self.location)
            .field("run_id", &self.options.run_id)
            .field("date_dir", &self.dirs.date.as_ref())
            .field("closed_files", &self.files.finished().len())
            .field("open_file", &self.files.open_part())
            .field("rejects_written", &self.rejects.written())
            .finish()
    }
}

impl ParquetSink {
    /// Validates the options and prepares a run; nothing is written until the first batch.
    pub async fn create(location: OutputLocation, options: SinkOptions) -> Result<Self> {
        validate_run_id(&options.run_id)?;
        let dirs = RunDirs::new(
            &location,
            CONTACTS.name,
            &options.run_id,
            options.extract_date,
        );
        Ok(ParquetSink {
            files: RollingFiles::new(&location, &CONTACTS, &options, &dirs)?,
            rejects: Rejects::new(&location, &options.run_id, &dirs),
            location,
            options,
            started_at: Utc::now(),
            dirs,
            decode_stats: DecodeStats::default(),
            retention_policy: RetentionPolicy::DEFAULT,
            heartbeat: None,
        })
    }

    /// Starts the heartbeat, if it is not beating yet: the run's staging is about to hold
    /// something another run must not take for abandoned.
    async fn keep_alive(&mut self) {
        if self.heartbeat.is_none() {
            let store = self.location.store().clone();
            self.heartbeat = Some(Heartbeat::start(store, &self.dirs.staging).await);
        }
    }

    /// Stops the heartbeat and waits for a write under way, before the run's staging goes.
    async fn stop_heartbeat(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.stop().await;
        }
    }

    /// Publishes the run as `format` (default [`TableFormat::Parquet`]); set it before the
    /// first [`write`](Self::write). A resumed run must keep the format it was written with:
    /// its finished files are where that format writes them.
    pub fn set_table_format(&mut self, format: TableFormat) -> Result<()> {
        self.files.set_format(format)
    }

    /// The format the run is published as.
    pub fn table_format(&self) -> TableFormat {
        self.files.format()
    }

    /// Delta only: after the commit, delete the data files that earlier commits removed more
    /// than `retention` ago (default 7 days; `None`: never); see the `delta` module.
    pub fn set_vacuum_retention(&mut self, retention: Option<Duration>) {
        self.retention_policy.set_vacuum_retention(retention);
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
        let root = staging_root(&location, CONTACTS.name);
        let Some(checkpoint) =
            checkpoint::newest_resumable(store.as_ref(), &root, &options).await?
        else {
            return Ok(None);
        };
        options.run_id = checkpoint.run_id.clone();
        let mut sink = ParquetSink::create(location, options).await?;
        if let Some(started_at) = checkpoint.started() {
            sink.started_at = started_at;
        }
        checkpoint::keep_only_finished(store.as_ref(), &sink.dirs.staging, &checkpoint).await?;
        sink.keep_alive().await;
        sink.files
            .resume_after(checkpoint.staged_files(&sink.dirs.date));
        sink.rejects
            .resume_after(checkpoint.rejects_segments(), checkpoint.rejects_written);
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
        self.files.finished().len()
    }

    /// Records the run's finished files and where to pick up again beside the staging files,
    /// so [`resume`](Self::resume) can continue after a crash. Also closes the current rejects
    /// segment, so the rejects written so far survive a crash too.
    pub async fn checkpoint(&mut self, resume_point: ResumePoint) -> Result<()> {
        self.keep_alive().await;
        self.rejects.close_segment().await?;
        let files = self.files.finished();
        Checkpoint::of(
            &self.options,
            self.started_at,
            files,
            &self.rejects,
            resume_point,
        )
        .write(self.location.store().as_ref(), &self.dirs.staging)
        .await
    }

    /// `(phone_number, list_number)` of every row in the finished files, read back from the
    /// store (two columns only): what a resumed run must not deliver again. Takes `&mut self`
    /// so the future is `Send` (the sink is `Send` but not `Sync`: its Parquet writer is not).
    pub async fn written_keys(&mut self) -> Result<Vec<(String, String)>> {
        checkpoint::written_keys(&self.location, self.files.finished()).await
    }

    /// Like [`abort`](Self::abort) for the file in progress, but keeps the finished files and
    /// the checkpoint, so a later [`resume`](Self::resume) continues from them. A run that has
    /// not checkpointed a finished file is aborted outright.
    pub async fn suspend(mut self) -> Result<()> {
        if self.files.finished().is_empty() {
            return self.abort().await;
        }
        // The last heartbeat stays and goes stale: `resume` picks the run up whatever its age.
        self.stop_heartbeat().await;
        self.files.abort_open().await;
        self.rejects.abort_open().await;
        Ok(())
    }

    /// The date folder this run replaces.
    pub fn date_dir(&self) -> &Path {
        &self.dirs.date
    }

    /// Appends a batch (of [`contacts_schema`](trackly_contacts::contacts_schema)) to
    /// the current file, starting a new file when the current one has reached the target size.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.keep_alive().await;
        self.files.write(batch).await
    }

    /// Appends quarantined records to this run's rejects file (NDJSON, one object per line
    /// with `page`, `index`, `field`, `value`, `reason`, `raw`).
    pub async fn write_rejects(&mut self, rejects: &[Reject]) -> Result<()> {
        self.keep_alive().await;
        self.rejects.write(rejects).await
    }

    /// What decoding changed within accepted rows, recorded in `_manifest.json` (`decode`) by
    /// [`finish`](Self::finish). A resumed run records what it decoded itself.
    pub fn set_decode_stats(&mut self, stats: DecodeStats) {
        self.decode_stats = stats;
    }

    /// Once the run is published, remove the date folders older than `retention` of the
    /// contacts and of every companion table of [`finish_with`](Self::finish_with) (default:
    /// none, keep everything); see [`retention`](crate::retention).
    pub fn set_retention(&mut self, retention: Option<Retention>) {
        self.retention_policy.retention = retention;
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
        let mut commit = Committer::of(self.files.format());
        match self.commit(&mut commit, &fetch_stats, &companions).await {
            Ok(mut summaries) => {
                self.clean_up_after_commit(&companions).await;
                let contacts = last_summary(&mut summaries, "the contacts")?;
                Ok((contacts, summaries))
            }
            Err(e) => {
                // Readers see the previous run: the commit was never reached (`Staged`: the
                // last file could not be closed) or `RolledBack`. What this run wrote goes.
                debug_assert_ne!(commit.state(), CommitState::Committed);
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
        let leftovers = list_paths(self.location.store().as_ref(), &self.dirs.staging).await?;
        match (leftovers.first(), leftovers.len()) {
            (None, _) => Ok(()),
            (Some(path), 1) => Err(storage_error(path, "1 staging object could not be deleted")),
            (Some(path), n) => Err(storage_error(
                path,
                format!("{n} staging objects could not be deleted"),
            )),
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
        let store = location.store().as_ref();
        let root = staging_root(location, CONTACTS.name);
        let mut discarded = 0;
        for run in checkpoint::runs_of_date(store, &root, extract_date).await? {
            let (run_dir, checkpoint) = run?;
            // Files outside the run's staging folder (Delta writes its data files in place).
            let files = checkpoint
                .files
                .iter()
                .map(|f| Path::from(f.staging.as_str()));
            let uncommitted = Uncommitted {
                location,
                table: &CONTACTS,
                files: files
                    .filter(|p| p.prefix_match(&run_dir).is_none())
                    .collect(),
            };
            // Its format is unknown: every format of this build removes what it wrote.
            for format in TableFormat::ALL {
                format.implementation().discard(&uncommitted).await;
            }
            delete_all(store, &run_dir).await?;
            location.remove_empty_local_dir(&run_dir);
            discarded += 1;
        }
        location.remove_empty_local_dir(&root);
        Ok(discarded)
    }

    /// Closes the last file and the rejects, then hands the run to `commit`: the companions
    /// first, the contacts last. Returns the summaries in that order.
    async fn commit(
        &mut self,
        commit: &mut Committer,
        fetch_stats: &serde_json::Value,
        companions: &[StagedTable],
    ) -> Result<Vec<SinkSummary>> {
        let files = self.files.finish().await?;
        let rejects_file = self.rejects.finish().await?;
        let contacts = TableToCommit {
            definition: &CONTACTS,
            dirs: &self.dirs,
            files,
            rejects_file,
            rejects_written: self.rejects.written(),
            query: &self.options.query_json,
            decode: self.decode_stats,
            fetch_stats,
        };
        let run = StagedRun {
            location: &self.location,
            options: &self.options,
            started_at: self.started_at,
            retention_policy: self.retention_policy,
            tables: companions
                .iter()
                .map(StagedTable::to_commit)
                .chain([contacts])
                .collect(),
        };
        commit.commit(run).await
    }

    /// Once committed: best-effort removal of this run's staging (checkpoint, joined
    /// segments), of that of older interrupted runs of the date, and of the companions'.
    // `&mut self` here and below, although nothing is changed: the sink is not `Sync`, and a
    // shared borrow held across an await would make every caller's future `!Send`.
    async fn clean_up_after_commit(&mut self, companions: &[StagedTable]) {
        let store = self.location.store().clone();
        // The store's time, from this run's own heartbeat: other runs' ages are read on it.
        let now = match &self.heartbeat {
            Some(heartbeat) => heartbeat.now().await,
            None => Utc::now(),
        };
        self.stop_heartbeat().await;
        delete_all_best_effort(store.as_ref(), &self.dirs.staging).await;
        checkpoint::remove_older_runs(
            &self.location,
            &self.dirs.staging_root,
            self.options.extract_date,
            &self.options.run_id,
            now,
        )
        .await;
        self.dirs.remove_empty_local_dirs(&self.location);
        for table in companions {
            table.clean_up_after_publication(now).await;
        }
    }

    /// Best-effort removal of everything this run wrote, which is not committed.
    async fn discard(&mut self) {
        self.stop_heartbeat().await;
        self.files.abort_open().await;
        let (location, table) = (&self.location, self.files.table());
        self.files
            .format()
            .discard(location, table, self.files.finished())
            .await;
        self.rejects.abort_open().await;
        let store = self.location.store().clone();
        delete_all_best_effort(store.as_ref(), &self.dirs.staging).await;
        self.dirs.remove_empty_local_dirs(&self.location);
    }
}
