//! Phase 4 of a run, the commit: how its finished files become what readers see. One small
//! interface, `Commit`, with two implementations, chosen by the run's
//! [`TableFormat`] (`Committer`):
//!
//! - `HivePublish` (`TableFormat::Parquet`): the staged files are renamed into their
//!   `extract_date=` folders, then `_manifest.json` and `_SUCCESS` are written, every table of
//!   the run in one step with a rollback (see [`publish`](crate::publish));
//! - `DeltaCommit` (`TableFormat::Delta`, feature `delta`): one Delta commit per table, the
//!   lists first and the contacts last (see `delta`), then VACUUM.
//!
//! Before it: the [`rolling`](crate::rolling) Parquet files, the [`rejects`](crate::rejects)
//! and the resume [`checkpoint`](crate::checkpoint). After it, the [`sink`](crate::sink)
//! clears the run's staging. A commit goes through the states of [`CommitState`]: `Staged` →
//! `Committing` → `Committed`, or `RolledBack` when it fails (readers see what they saw before
//! it began; for Delta, see the two-table caveat of `delta`). A run that is not committed, or
//! whose commit failed, is discarded through the same interface (`Commit::discard`: Delta
//! removes the data files it wrote in place; Hive-style runs wrote nothing outside staging).

use chrono::{DateTime, Utc};
#[cfg(feature = "delta")]
use object_store::ObjectStoreExt as _;
use object_store::path::Path;

use crate::error::{ConvertError, Result};
use crate::format::TableFormat;
use crate::location::OutputLocation;
use crate::manifest::{Manifest, rfc3339, schema_fields_of};
use crate::options::{SinkOptions, Upkeep};
use crate::publish::{Release, publish};
use crate::rolling::StagedFile;
use crate::summary::SinkSummary;
use crate::table::{StagedTable, TablePart};
#[cfg(feature = "delta")]
use trackly_contacts::table::CONTACTS;

/// Where a run's commit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitState {
    /// The files are written and waiting; readers see nothing of them.
    Staged,
    /// The commit is under way.
    Committing,
    /// Readers see the run.
    Committed,
    /// The commit failed; readers see what they saw before it began.
    RolledBack,
}

impl CommitState {
    /// The state after this one on `next`, with a debug event. The only moves are `Staged` →
    /// `Committing` → `Committed` or `RolledBack`.
    fn then(self, next: CommitState, format: &'static str) -> CommitState {
        use CommitState::*;
        debug_assert!(
            matches!(
                (self, next),
                (Staged, Committing) | (Committing, Committed | RolledBack)
            ),
            "commit cannot move from {self:?} to {next:?}"
        );
        tracing::debug!(format, from = ?self, to = ?next, "commit");
        next
    }
}

/// Everything of a finished run that its commit needs: its tables and what the run records
/// about itself.
pub(crate) struct StagedRun<'a> {
    pub(crate) location: &'a OutputLocation,
    pub(crate) options: &'a SinkOptions,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) upkeep: Upkeep,
    /// The run's tables in commit order: the companions (the lists), then the contacts when
    /// the run exports them. The last table's `_SUCCESS` is the run's last object.
    pub(crate) tables: Vec<TablePart<'a>>,
}

/// How a run is committed; see the [module docs](self).
pub(crate) trait Commit {
    /// Commits `run`; returns each table's summary, in the order of `run.tables`. On error
    /// readers see what they saw before (see [`CommitState`]).
    async fn commit(&mut self, run: StagedRun<'_>) -> Result<Vec<SinkSummary>>;

    /// After a failed commit, or instead of one: removes (best effort) what the run wrote
    /// outside its staging folder for the contacts that no reader uses. The staging folder
    /// is the caller's to clear (a [`StagedTable`] clears its own with
    /// [`abort`](StagedTable::abort)).
    async fn discard(&mut self, location: &OutputLocation, files: &[StagedFile]);

    /// Where the commit stands.
    fn state(&self) -> CommitState;
}

/// For a run of unknown format that will not be committed (an interrupted run discarded):
/// removes (best effort) those of its finished `files` written outside its staging folder
/// that no commit uses. Only Delta writes there (its data files, in place); without the
/// feature `delta` there is nothing to do.
pub(crate) async fn discard_in_place(location: &OutputLocation, files: &[Path]) {
    #[cfg(feature = "delta")]
    DeltaCommit::discard_files(location, files).await;
    #[cfg(not(feature = "delta"))]
    let _ = (location, files);
}

impl StagedTable {
    /// Publishes this table alone, for a run that exports no contacts, through the same
    /// commit as a run with contacts ([`commit`](crate::commit)): the steps, order and rollback of
    /// [`ParquetSink::finish`](crate::ParquetSink::finish) (Delta: one commit), then the
    /// table's [`with_retention`](Self::with_retention) and (Delta)
    /// [`with_vacuum_retention`](Self::with_vacuum_retention). On error the date folder is as
    /// it was and the staged objects are removed.
    pub async fn publish(self) -> Result<SinkSummary> {
        let mut commit = Committer::of(self.table_format());
        let run = StagedRun {
            location: &self.location,
            options: &self.options,
            started_at: self.started_at,
            upkeep: self.upkeep,
            tables: vec![self.part()],
        };
        match commit.commit(run).await {
            Ok(mut summaries) => {
                self.clean_up_after_publication(Utc::now()).await;
                summaries.pop().ok_or_else(|| ConvertError::InvalidOption {
                    option: "publication",
                    reason: "no summary of the table (bug)".into(),
                })
            }
            Err(e) => {
                debug_assert_ne!(commit.state(), CommitState::Committed);
                let table = self.part().definition.name;
                if let Err(cleanup) = self.abort().await {
                    tracing::warn!(%cleanup, table, "cannot remove a staged table");
                }
                Err(e)
            }
        }
    }
}

/// The commit of a run's [`TableFormat`].
#[derive(Debug)]
pub(crate) enum Committer {
    /// [`TableFormat::Parquet`].
    Hive(HivePublish),
    /// `TableFormat::Delta`.
    #[cfg(feature = "delta")]
    Delta(DeltaCommit),
}

impl Committer {
    /// A commit of `format`, [`CommitState::Staged`].
    pub(crate) fn of(format: TableFormat) -> Committer {
        match format {
            TableFormat::Parquet => Committer::Hive(HivePublish::default()),
            #[cfg(feature = "delta")]
            TableFormat::Delta => Committer::Delta(DeltaCommit::default()),
        }
    }
}

impl Commit for Committer {
    async fn commit(&mut self, run: StagedRun<'_>) -> Result<Vec<SinkSummary>> {
        match self {
            Committer::Hive(hive) => hive.commit(run).await,
            #[cfg(feature = "delta")]
            Committer::Delta(delta) => delta.commit(run).await,
        }
    }

    async fn discard(&mut self, location: &OutputLocation, files: &[StagedFile]) {
        match self {
            Committer::Hive(hive) => hive.discard(location, files).await,
            #[cfg(feature = "delta")]
            Committer::Delta(delta) => delta.discard(location, files).await,
        }
    }

    fn state(&self) -> CommitState {
        match self {
            Committer::Hive(hive) => hive.state(),
            #[cfg(feature = "delta")]
            Committer::Delta(delta) => delta.state(),
        }
    }
}

/// The Hive-style publication (see [`publish`](crate::publish)): renames, `_manifest.json`,
/// `_SUCCESS`, and the rollback of every table's date folder when a step fails.
#[derive(Debug)]
pub(crate) struct HivePublish {
    state: CommitState,
}

impl Default for HivePublish {
    fn default() -> Self {
        HivePublish {
            state: CommitState::Staged,
        }
    }
}

impl Commit for HivePublish {
    async fn commit(&mut self, run: StagedRun<'_>) -> Result<Vec<SinkSummary>> {
        self.state = self.state.then(CommitState::Committing, "parquet");
        let result = Self::publish(run).await;
        let next = match result {
            Ok(_) => CommitState::Committed,
            Err(_) => CommitState::RolledBack,
        };
        self.state = self.state.then(next, "parquet");
        result
    }

    /// Nothing: every file of a Hive-style run is in its staging folder until published.
    async fn discard(&mut self, _location: &OutputLocation, _files: &[StagedFile]) {}

    fn state(&self) -> CommitState {
        self.state
    }
}

impl HivePublish {
    /// Every table's release in one [`publish`]; on error it has rolled every date folder
    /// back.
    async fn publish(run: StagedRun<'_>) -> Result<Vec<SinkSummary>> {
        // The manifests are built before a date folder is touched: from the first move on,
        // only the store can fail.
        let finished_at = Utc::now();
        let releases: Vec<Release> = run
            .tables
            .iter()
            .map(|table| Self::release(&run, table, finished_at))
            .collect();
        let store = run.location.store().clone();
        let manifests = publish(store.as_ref(), releases, run.upkeep.retention).await?;
        Ok(manifests
            .into_iter()
            .map(|(path, m)| SinkSummary::of(&path, m))
            .collect())
    }

    /// A table's part of the publication: its files and rejects, and its manifest.
    fn release(run: &StagedRun<'_>, table: &TablePart<'_>, finished_at: DateTime<Utc>) -> Release {
        let files = table.file_infos();
        let manifest = Manifest {
            format: table.definition.manifest_format.to_owned(),
            table: table.definition.name.to_owned(),
            run_id: run.options.run_id.clone(),
            extract_date: run.options.extract_date.to_string(),
            started_at: rfc3339(run.started_at),
            finished_at: rfc3339(finished_at),
            query: table.query.clone(),
            schema: schema_fields_of(&table.definition.schema()),
            rows: files.iter().map(|f| f.rows).sum(),
            bytes: files.iter().map(|f| f.bytes).sum(),
            files,
            fetch_stats: table.fetch_stats.clone(),
            decode: table.decode,
            rejects: table.rejects(),
            writer: run.options.writer.clone(),
            tables: Vec::new(),
            retention: None,
        };
        let mut moves: Vec<(Path, Path)> = table
            .files
            .iter()
            .map(|f| (f.staging.clone(), f.published.clone()))
            .collect();
        moves.extend(table.rejects_file.clone());
        Release {
            date_dir: table.dirs.date.clone(),
            retired_dir: table.dirs.retired.clone(),
            moves,
            manifest,
        }
    }
}

/// The Delta commit: one commit per table, in the run's order (the companions first, the
/// contacts last; see [`delta`](crate::delta)), then VACUUM (best effort).
#[cfg(feature = "delta")]
#[derive(Debug)]
pub(crate) struct DeltaCommit {
    state: CommitState,
}

#[cfg(feature = "delta")]
impl Default for DeltaCommit {
    fn default() -> Self {
        DeltaCommit {
            state: CommitState::Staged,
        }
    }
}

#[cfg(feature = "delta")]
impl Commit for DeltaCommit {
    async fn commit(&mut self, run: StagedRun<'_>) -> Result<Vec<SinkSummary>> {
        self.state = self.state.then(CommitState::Committing, "delta");
        let committed = Self::commit_tables(&run).await;
        let next = match committed {
            Ok(_) => CommitState::Committed,
            Err(_) => CommitState::RolledBack,
        };
        self.state = self.state.then(next, "delta");
        let summaries = committed?;
        // The run is committed: what follows is best effort.
        Self::vacuum(&run).await;
        let store = run.location.store().clone();
        for table in &run.tables {
            let ours = table.rejects_file.as_ref().map(|(_, published)| published);
            remove_replaced_rejects(store.as_ref(), &table.dirs.date, ours).await;
        }
        Ok(summaries)
    }

    /// Deletes the run's contacts data files (written in place) that no snapshot uses.
    async fn discard(&mut self, location: &OutputLocation, files: &[StagedFile]) {
        let files: Vec<Path> = files.iter().map(|f| f.staging.clone()).collect();
        Self::discard_files(location, &files).await;
    }

    fn state(&self) -> CommitState {
        self.state
    }
}

#[cfg(feature = "delta")]
impl DeltaCommit {
    /// Deletes those of `files`, contacts data files written in place by a run that is not
    /// committed, that no snapshot uses (see `delta::discard_uncommitted`).
    async fn discard_files(location: &OutputLocation, files: &[Path]) {
        crate::delta::discard_in_place(location, &CONTACTS, files).await;
    }

    /// Delta has no multi-table transaction: the tables commit one by one in the run's
    /// order, so a run whose contacts (last) are committed has its lists committed too.
    async fn commit_tables(run: &StagedRun<'_>) -> Result<Vec<SinkSummary>> {
        let finished_at = Utc::now();
        let mut summaries = Vec::with_capacity(run.tables.len());
        for table in &run.tables {
            summaries.push(Self::commit_table(run, table, finished_at).await?);
        }
        Ok(summaries)
    }

    /// One table's commit: its rejects file moves in (hidden from Delta readers by its `_`),
    /// then one commit replaces the date; when the commit fails, the rejects file is removed
    /// again (the data files are left to the caller's discard).
    async fn commit_table(
        run: &StagedRun<'_>,
        table: &TablePart<'_>,
        finished_at: DateTime<Utc>,
    ) -> Result<SinkSummary> {
        let store = run.location.store().clone();
        if let Some((staged, published)) = &table.rejects_file {
            store
                .rename(staged, published)
                .await
                .map_err(|e| ConvertError::storage(published, e))?;
        }
        let committed = Self::commit_files(run, table, finished_at).await;
        if committed.is_err()
            && let Some((_, published)) = &table.rejects_file
            && let Err(cleanup) = crate::store::delete_if_exists(store.as_ref(), published).await
        {
            let table = table.definition.name;
            tracing::warn!(%cleanup, table, "cannot remove the rejects file of the failed run");
        }
        committed
    }

    async fn commit_files(
        run: &StagedRun<'_>,
        table: &TablePart<'_>,
        finished_at: DateTime<Utc>,
    ) -> Result<SinkSummary> {
        let extract_date = run.options.extract_date;
        let expire_before = run.upkeep.retention.map(|r| r.cutoff(extract_date));
        let files: Vec<crate::delta::DeltaFile> = table
            .files
            .iter()
            .map(|f| crate::delta::DeltaFile {
                path: f.published.clone(),
                bytes: f.bytes,
                rows: f.rows,
                stats: f.stats.clone(),
            })
            .collect();
        let infos = table.file_infos();
        let rows: u64 = infos.iter().map(|f| f.rows).sum();
        let bytes: u64 = infos.iter().map(|f| f.bytes).sum();
        let metadata = Self::metadata(run, table, finished_at, rows, bytes);
        let commit = crate::delta::target(run.location, table.definition)?
            .commit_partition(extract_date, &files, expire_before, metadata)
            .await?;
        tracing::info!(
            table = table.definition.name,
            version = commit.version,
            removed = commit.removed_files,
            added = files.len(),
            "delta commit"
        );
        let retention = run.upkeep.retention.zip(expire_before).map(|(r, cutoff)| {
            crate::delta::retention_report(r.retain_days(), cutoff, commit.expired.clone())
        });
        Ok(SinkSummary {
            files: infos,
            rows,
            bytes,
            rejects: table.rejects_written,
            manifest_path: commit.log_path.to_string(),
            retention,
        })
    }

    /// Best-effort VACUUM of every table of the run.
    async fn vacuum(run: &StagedRun<'_>) {
        let Some(retention) = run.upkeep.vacuum_retention else {
            return;
        };
        for table in &run.tables {
            let vacuumed = match crate::delta::target(run.location, table.definition) {
                Ok(target) => target.vacuum(retention).await,
                Err(e) => Err(e),
            };
            match vacuumed {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(files = n, "vacuum deleted files removed by earlier commits")
                }
                Err(e) => tracing::warn!(error = %e, "vacuum failed; the table is unchanged"),
            }
        }
    }

    /// What a table's commit records about the run (`commitInfo.trackly`).
    fn metadata(
        run: &StagedRun<'_>,
        table: &TablePart<'_>,
        finished_at: DateTime<Utc>,
        rows: u64,
        bytes: u64,
    ) -> serde_json::Value {
        serde_json::json!({
            "table": table.definition.name,
            "run_id": run.options.run_id,
            "extract_date": run.options.extract_date.to_string(),
            "started_at": rfc3339(run.started_at),
            "finished_at": rfc3339(finished_at),
            "query": table.query,
            "rows": rows,
            "bytes": bytes,
            "rejects": table.rejects(),
            "fetch_stats": table.fetch_stats,
            "decode": table.decode,
            "writer": run.options.writer,
        })
    }
}

/// Delta only: the rejects files of the runs this one replaced (they are not in the log).
#[cfg(feature = "delta")]
async fn remove_replaced_rejects(
    store: &dyn object_store::ObjectStore,
    date_dir: &Path,
    ours: Option<&Path>,
) {
    let Ok(paths) = crate::store::list_paths_shallow(store, date_dir).await else {
        return;
    };
    for path in paths {
        let is_rejects = path
            .filename()
            .is_some_and(|n| n.starts_with("_rejects-") && n.ends_with(".ndjson"));
        if is_rejects && Some(&path) != ours {
            let _ = crate::store::delete_if_exists(store, &path).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_starts_staged_and_moves_through_its_states() {
        let hive = Committer::of(TableFormat::Parquet);
        assert_eq!(hive.state(), CommitState::Staged);
        let committing = hive.state().then(CommitState::Committing, "parquet");
        assert_eq!(
            committing.then(CommitState::RolledBack, "parquet"),
            CommitState::RolledBack
        );
        assert_eq!(
            committing.then(CommitState::Committed, "parquet"),
            CommitState::Committed
        );
    }

    #[test]
    #[should_panic(expected = "cannot move")]
    #[cfg(debug_assertions)]
    fn a_commit_cannot_skip_a_state() {
        CommitState::Staged.then(CommitState::Committed, "parquet");
    }
}
