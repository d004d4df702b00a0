//! Delta Lake as a [`Format`]: a run writes its data files in place
//! (`extract_date=…/part-NNNNN-{run_id}.parquet`, outside the log, so invisible to Delta
//! readers until the commit adds them) with each file's statistics; its commit is one Delta
//! commit per table, the lists first and the contacts last (see the [module docs](super)),
//! which also removes the date folders older than the run's retention; after it, VACUUM and
//! the replaced runs' rejects files go (best effort); a run that is not committed has its
//! in-place files deleted unless a snapshot uses them.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::ObjectStoreExt as _;
use object_store::path::Path;

use super::{FileStats, discard_in_place, target};
use crate::error::{ConvertError, Result};
use crate::format::{FileStatistics, Format, StagedRun, TableToCommit, Uncommitted};
use crate::layout;
use crate::layout::RunDirs;
use crate::manifest::rfc3339;
use crate::retention::RetentionReport;
use crate::store::{delete_if_exists, list_paths_shallow};
use crate::summary::SinkSummary;
use trackly_contacts::TableDefinition;

/// Delta Lake; see the [module docs](self).
pub(crate) struct Delta;

impl Format for Delta {
    /// Outside the log until the commit: invisible to Delta readers where it is.
    fn staged_path(&self, dirs: &RunDirs, name: &str) -> Path {
        dirs.date.clone().join(name)
    }

    fn file_statistics(
        &self,
        table: &'static TableDefinition,
    ) -> Result<Option<Box<dyn FileStatistics>>> {
        let schema = table.schema();
        let stats = FileStats::new(&schema, table.hints.no_statistics)?;
        Ok(Some(Box::new(AddStats { stats, schema })))
    }

    fn commit<'a>(&'a self, run: &'a StagedRun<'a>) -> BoxFuture<'a, Result<Vec<SinkSummary>>> {
        commit_tables(run).boxed()
    }

    fn remove_replaced<'a>(&'a self, run: &'a StagedRun<'a>) -> BoxFuture<'a, ()> {
        async move {
            vacuum(run).await;
            let store = run.location.store().clone();
            for table in &run.tables {
                let ours = table.rejects_file.as_ref().map(|(_, published)| published);
                remove_replaced_rejects(store.as_ref(), &table.dirs.date, ours).await;
            }
        }
        .boxed()
    }

    fn discard<'a>(&'a self, uncommitted: &'a Uncommitted<'a>) -> BoxFuture<'a, ()> {
        discard_in_place(uncommitted).boxed()
    }
}

/// The statistics of an `add` action, gathered as the file is written.
struct AddStats {
    stats: FileStats,
    schema: SchemaRef,
}

impl FileStatistics for AddStats {
    fn merge(&mut self, path: &Path, batch: &RecordBatch) -> Result<()> {
        self.stats.merge(path, batch)
    }

    fn finish(mut self: Box<Self>, path: &Path, rows: u64) -> Result<Option<String>> {
        if rows == 0 {
            // `numRecords: 0` needs one (empty) batch merged.
            let empty = RecordBatch::new_empty(self.schema.clone());
            self.stats.merge(path, &empty)?;
        }
        self.stats.finish(path)
    }
}

/// Delta has no multi-table transaction: the tables commit one by one in the run's order, so
/// a run whose contacts (last) are committed has its lists committed too.
async fn commit_tables(run: &StagedRun<'_>) -> Result<Vec<SinkSummary>> {
    let finished_at = Utc::now();
    let mut summaries = Vec::with_capacity(run.tables.len());
    for table in &run.tables {
        summaries.push(commit_table(run, table, finished_at).await?);
    }
    Ok(summaries)
}

/// One table's commit: its rejects file moves in (hidden from Delta readers by its `_`), then
/// one commit replaces the date; when the commit fails, the rejects file is removed again
/// (the data files are left to the caller's discard).
async fn commit_table(
    run: &StagedRun<'_>,
    table: &TableToCommit<'_>,
    finished_at: DateTime<Utc>,
) -> Result<SinkSummary> {
    let store = run.location.store().clone();
    if let Some((staged, published)) = &table.rejects_file {
        store
            .rename(staged, published)
            .await
            .map_err(|e| ConvertError::storage(published, e))?;
    }
    let committed = commit_files(run, table, finished_at).await;
    if committed.is_err()
        && let Some((_, published)) = &table.rejects_file
        && let Err(cleanup) = delete_if_exists(store.as_ref(), published).await
    {
        let table = table.definition.name;
        tracing::warn!(%cleanup, table, "cannot remove the rejects file of the failed run");
    }
    committed
}

async fn commit_files(
    run: &StagedRun<'_>,
    table: &TableToCommit<'_>,
    finished_at: DateTime<Utc>,
) -> Result<SinkSummary> {
    let extract_date = run.options.extract_date;
    let expire_before = run
        .retention_policy
        .retention
        .map(|r| r.cutoff(extract_date));
    let (rows, bytes) = table.totals();
    let metadata = metadata(run, table, finished_at, rows, bytes);
    let commit = target(run.location, table.definition)?
        .commit_partition(extract_date, table.files, expire_before, metadata)
        .await?;
    tracing::info!(
        table = table.definition.name,
        version = commit.version,
        removed = commit.removed_files,
        added = table.files.len(),
        "delta commit"
    );
    let retention = run
        .retention_policy
        .retention
        .zip(expire_before)
        .map(|(r, cutoff)| RetentionReport {
            retain_days: r.retain_days(),
            cutoff: cutoff.to_string(),
            removed: commit.expired.clone(),
            left_alone: Vec::new(),
            failed: Vec::new(),
        });
    Ok(SinkSummary {
        files: table.file_infos(),
        rows,
        bytes,
        rejects: table.rejects_written,
        manifest_path: commit.log_path.to_string(),
        retention,
    })
}

/// Best-effort VACUUM of every table of the run.
async fn vacuum(run: &StagedRun<'_>) {
    let Some(retention) = run.retention_policy.vacuum_retention else {
        return;
    };
    for table in &run.tables {
        let vacuumed = async {
            target(run.location, table.definition)?
                .vacuum(retention)
                .await
        };
        match vacuumed.await {
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
    table: &TableToCommit<'_>,
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

/// The rejects files of the runs this one replaced (they are not in the log).
async fn remove_replaced_rejects(
    store: &dyn object_store::ObjectStore,
    date_dir: &Path,
    ours: Option<&Path>,
) {
    let Ok(paths) = list_paths_shallow(store, date_dir).await else {
        return;
    };
    for path in paths {
        let is_rejects = path.filename().is_some_and(layout::is_rejects_name);
        if is_rejects && Some(&path) != ours {
            let _ = delete_if_exists(store, &path).await;
        }
    }
}
