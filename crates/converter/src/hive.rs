//! Hive-style Parquet ([`TableFormat::Parquet`](crate::TableFormat::Parquet)), as a
//! [`Format`]: a run writes its data files hidden under
//! `_staging/{run_id}/part-NNNNN-{run_id}.parquet.inprogress` and keeps no statistics beside
//! them; its commit renames them into their `extract_date=` folders and writes `_manifest.json`
//! and `_SUCCESS`, every table of the run in one step with a rollback, the date folders
//! older than the run's retention going in the same step (see [`publish`](crate::publish)).
//! The folders a publication replaces are gone once it is done: there is nothing to remove
//! after it, and nothing outside staging to discard for a run that is not committed.

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::path::Path;

use crate::error::Result;
use crate::format::{Format, StagedRun, TableToCommit};
use crate::layout::{RunDirs, in_progress};
use crate::manifest::{Manifest, rfc3339, schema_fields_of};
use crate::publish::{TablePublication, publish};
use crate::summary::SinkSummary;

/// Hive-style Parquet; see the [module docs](self). It keeps no file statistics, and has
/// nothing to remove after a commit or to discard outside staging (the `Format` defaults).
pub(crate) struct Hive;

impl Format for Hive {
    fn commit<'a>(&'a self, run: &'a StagedRun<'a>) -> BoxFuture<'a, Result<Vec<SinkSummary>>> {
        publish_run(run).boxed()
    }

    /// Hidden in the run's staging folder, under an `.inprogress` name.
    fn staged_path(&self, dirs: &RunDirs, name: &str) -> Path {
        dirs.staging.clone().join(in_progress(name))
    }
}

/// Every table's publication in one [`publish`]; on error it has rolled every date folder back.
async fn publish_run(run: &StagedRun<'_>) -> Result<Vec<SinkSummary>> {
    // The manifests are built before a date folder is touched: from the first move on, only
    // the store can fail.
    let finished_at = Utc::now();
    let releases: Vec<TablePublication> = run
        .tables
        .iter()
        .map(|table| publication(run, table, finished_at))
        .collect();
    let store = run.location.store().clone();
    let manifests = publish(store.as_ref(), releases, run.retention_policy.retention).await?;
    Ok(manifests
        .into_iter()
        .map(|(path, m)| SinkSummary::of(&path, m))
        .collect())
}

/// A table's part of the publication: its files and rejects, and its manifest.
fn publication(
    run: &StagedRun<'_>,
    table: &TableToCommit<'_>,
    finished_at: DateTime<Utc>,
) -> TablePublication {
    let (rows, bytes) = table.totals();
    let manifest = Manifest {
        format: table.definition.manifest_format.to_owned(),
        table: table.definition.name.to_owned(),
        run_id: run.options.run_id.clone(),
        extract_date: run.options.extract_date.to_string(),
        started_at: rfc3339(run.started_at),
        finished_at: rfc3339(finished_at),
        query: table.query.clone(),
        schema: schema_fields_of(&table.definition.schema()),
        rows,
        bytes,
        files: table.file_infos(),
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
    TablePublication {
        dirs: table.dirs.clone(),
        extract_date: run.options.extract_date,
        moves,
        manifest,
    }
}
