//! A table of a run written whole in one go (the lists), staged beside the contacts and
//! published with them in the same step.
//!
//! ```text
//! {prefix}/lists/
//!   _staging/{run_id}/part-00000-{run_id}.parquet.inprogress   (from staging to publication)
//!   _staging/{run_id}/_rejects-{run_id}.ndjson.inprogress
//!   _staging/_retired/{run_id}/...   (the previous run's files, while they are replaced)
//!   extract_date=2025-04-02/
//!     part-00000-{run_id}.parquet    (one file, written with the contacts' writer settings)
//!     _rejects-{run_id}.ndjson       (only if a record was quarantined)
//!     _manifest.json
//!     _SUCCESS
//! ```
//!
//! [`StagedTable::stage`] writes the table's one Parquet file (with the schema and no rows
//! when the table is empty, so the date folder is never empty) and its rejects under hidden
//! staging names. [`ParquetSink::finish_with`](crate::ParquetSink::finish_with) then publishes
//! it together with the contacts, or [`StagedTable::publish`] alone (a run that exports no
//! contacts); either way through the run's [`commit`](crate::commit), with the same steps,
//! order and rollback as the contacts (see [`sink`](crate::sink)): a reader of a table sees its previous run's files or this run's, and
//! the run's `_SUCCESS` files appear only once every table is in place. The table gets its own
//! `_manifest.json` and `_SUCCESS`, so a reader of `lists/` alone can wait for the same signal
//! as a reader of `contacts/`.
//!
//! # Failure
//!
//! Staging happens at the end of the run, right before publication, so staged objects live for
//! seconds. A failed publication removes them; [`StagedTable::abort`] does on any other error.
//! A process killed in between leaves them hidden under `_staging/{run_id}/`; a later
//! successful publication of the table removes staging folders of other runs in which nothing
//! has changed for [`STALE_STAGING`](crate::heartbeat::STALE_STAGING) (see [`heartbeat`]; never
//! `_staging/_retired/`, which a failed rollback leaves for a person to look at).
//!
//! # Memory usage
//!
//! The caller holds the whole table as one batch; writing it holds one encoded row group
//! besides (a table of some thousand lists is a few hundred KiB).

use arrow_array::RecordBatch;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use serde::Serialize;

use crate::checkpoint;
use crate::error::Result;
use crate::format::{StagedFile, TableFormat, TableToCommit};
use crate::heartbeat;
use crate::layout::{
    RETIRED_DIR, RunDirs, in_progress, rejects_name, staging_root, validate_run_id,
};
use crate::location::OutputLocation;
use crate::options::{RetentionPolicy, SinkOptions};
use crate::rejects::ndjson;
use crate::retention::Retention;
use crate::rolling::RollingFiles;
use crate::store::{delete_all, list_dirs, put};
use trackly_contacts::TableDefinition;
use trackly_contacts::decode::DecodeStats;
use trackly_contacts::table::CONTACTS;

/// What a [`StagedTable`] is and what its manifest records of the run.
#[derive(Debug, Clone)]
pub struct TableSpec {
    /// The table, e.g. [`LISTS`](trackly_contacts::table::LISTS): its folder, schema (every
    /// batch given to [`StagedTable::stage`] has it), manifest format and column hints.
    pub table: &'static TableDefinition,
    /// What was asked of the API, recorded in its manifest as `query`.
    pub query_json: serde_json::Value,
    /// What decoding kept as sent or replaced, recorded in its manifest as `decode`.
    pub decode: DecodeStats,
    /// The statistics of the requests that fetched the table, recorded in its manifest as
    /// `fetch_stats`.
    pub fetch_stats: serde_json::Value,
}

/// A table staged in full, waiting to be published; see the [module docs](self).
#[derive(Debug)]
pub struct StagedTable {
    pub(crate) location: OutputLocation,
    spec: TableSpec,
    pub(crate) options: SinkOptions,
    pub(crate) started_at: DateTime<Utc>,
    dirs: RunDirs,
    /// The Parquet file (none until written).
    files: Vec<StagedFile>,
    /// `(staged, published)` of the rejects file, if any.
    rejects_file: Option<(Path, Path)>,
    rejects_written: u64,
    /// Applied by [`publish`](Self::publish).
    pub(crate) retention_policy: RetentionPolicy,
    format: TableFormat,
}

impl StagedTable {
    /// Writes `batch` (the whole table) as one staged Parquet file with `options.writer`, and
    /// `rejects` (one JSON object per line) as its staged rejects file, for the run
    /// `options.run_id` started at `started_at`, to be published as `format` (with Delta the
    /// file is written in its date folder, outside the log until the commit, with its
    /// statistics). Anything this run staged for the table before (an attempt killed earlier)
    /// is removed first.
    pub async fn stage<R: Serialize>(
        format: TableFormat,
        location: &OutputLocation,
        spec: TableSpec,
        options: &SinkOptions,
        started_at: DateTime<Utc>,
        batch: &RecordBatch,
        rejects: &[R],
    ) -> Result<StagedTable> {
        validate_run_id(&options.run_id)?;
        let mut staged = StagedTable {
            location: location.clone(),
            dirs: RunDirs::new(
                location,
                spec.table.name,
                &options.run_id,
                options.extract_date,
            ),
            spec,
            options: options.clone(),
            started_at,
            files: Vec::new(),
            rejects_file: None,
            rejects_written: 0,
            retention_policy: RetentionPolicy::DEFAULT,
            format,
        };
        staged.remove_staging().await?;
        if let Err(e) = staged.write_files(batch, rejects).await {
            let _ = staged.abort().await;
            return Err(e);
        }
        Ok(staged)
    }

    /// The table's name (its folder).
    pub fn name(&self) -> &'static str {
        self.spec.table.name
    }

    /// Rows in the staged file.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// The date folder publication replaces.
    pub fn date_dir(&self) -> &Path {
        &self.dirs.date
    }

    /// Once [`publish`](Self::publish) has published the table, remove its date folders older
    /// than `retention` (default: none, keep everything); see [`retention`](crate::retention).
    /// Published with the contacts, the table follows the sink's
    /// [`set_retention`](crate::ParquetSink::set_retention) instead.
    pub fn with_retention(mut self, retention: Option<Retention>) -> Self {
        self.retention_policy.retention = retention;
        self
    }

    /// Delta only: the VACUUM after [`publish`](Self::publish) (default 7 days; `None`:
    /// never). Published with the contacts, the table follows the sink's
    /// [`set_vacuum_retention`](crate::ParquetSink::set_vacuum_retention).
    pub fn with_vacuum_retention(mut self, retention: Option<std::time::Duration>) -> Self {
        self.retention_policy.set_vacuum_retention(retention);
        self
    }

    /// The format the table is published as.
    pub fn table_format(&self) -> TableFormat {
        self.format
    }

    /// The table as its commit takes it.
    pub(crate) fn to_commit(&self) -> TableToCommit<'_> {
        TableToCommit {
            definition: self.spec.table,
            dirs: &self.dirs,
            files: &self.files,
            rejects_file: self.rejects_file.clone(),
            rejects_written: self.rejects_written,
            query: &self.spec.query_json,
            decode: self.spec.decode,
            fetch_stats: &self.spec.fetch_stats,
        }
    }

    /// Abandons the table: deletes what was staged. Nothing in the date folder is touched
    /// (Delta: the data file written there is deleted unless a commit uses it).
    pub async fn abort(self) -> Result<()> {
        let (location, table) = (&self.location, self.spec.table);
        self.format.discard(location, table, &self.files).await;
        let result = self.remove_staging().await;
        self.dirs.remove_empty_local_dirs(&self.location);
        result
    }

    /// After a successful publication: best-effort removal of this run's staging folders and
    /// of what killed runs left, abandoned before `now` (the store's time; see the
    /// [module docs](self)).
    pub(crate) async fn clean_up_after_publication(&self, now: DateTime<Utc>) {
        let store = self.location.store().as_ref();
        let run_dirs = list_dirs(store, &self.dirs.staging_root).await;
        for run_dir in run_dirs.unwrap_or_default() {
            if run_dir == self.dirs.staging || run_dir.filename() == Some(RETIRED_DIR) {
                continue;
            }
            // The run's heartbeat beats in its contacts staging: a run that staged this
            // table and is waiting to publish is alive as long as it beats.
            let contacts_dir = run_dir
                .filename()
                .map(|run_id| staging_root(&self.location, CONTACTS.name).join(run_id));
            let beating = match &contacts_dir {
                Some(dir) if *dir != run_dir => !heartbeat::abandoned(store, dir, now).await,
                _ => false,
            };
            if !beating {
                checkpoint::remove_if_abandoned(&self.location, &run_dir, now).await;
            }
        }
        let _ = self.remove_staging().await;
        self.dirs.remove_empty_local_dirs(&self.location);
    }

    async fn write_files<R: Serialize>(
        &mut self,
        batch: &RecordBatch,
        rejects: &[R],
    ) -> Result<()> {
        // One batch makes one file: a file rolls over only after a batch.
        let mut files =
            RollingFiles::new(&self.location, self.spec.table, &self.options, &self.dirs)?;
        files.set_format(self.format)?;
        let written = async {
            files.write(batch).await?;
            files.finish().await.map(<[StagedFile]>::to_vec)
        };
        match written.await {
            Ok(written) => self.files = written,
            Err(e) => {
                files.abort_open().await;
                return Err(e);
            }
        }
        let run_id = &self.options.run_id;
        if !rejects.is_empty() {
            let name = rejects_name(run_id);
            let staging = self.dirs.staging.clone().join(in_progress(&name));
            let lines = ndjson(rejects, &staging)?;
            put(self.location.store().as_ref(), &staging, lines).await?;
            self.rejects_file = Some((staging, self.dirs.date.clone().join(name)));
            self.rejects_written = rejects.len() as u64;
        }
        Ok(())
    }

    async fn remove_staging(&self) -> Result<()> {
        delete_all(self.location.store().as_ref(), &self.dirs.staging).await
    }
}
