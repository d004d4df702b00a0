//! The commit phase of a run: how its finished files become what readers see. One small
//! interface, `Commit`, with two implementations:
//!
//! - `HivePublish` (`TableFormat::Parquet`): the staged files
//!   are renamed into their `extract_date=` folders, then `_manifest.json` and `_SUCCESS` are
//!   written, every table of the run in one step with a rollback (see [`publish`](crate::publish));
//! - `DeltaCommit` (`TableFormat::Delta`, feature `delta`): one Delta commit per table, the
//!   lists first and the contacts last (see `delta`), then VACUUM.
//!
//! Writing the files (the [`sink`](crate::sink)), the rejects and the resume checkpoint happen
//! before; clean-up of staging after. A commit goes through the states of [`CommitState`]:
//! `Staged` → `Committing` → `Committed`, or `RolledBack` when it fails (readers see what
//! they saw before it began; for Delta, see the two-table caveat of `delta`).

use chrono::{DateTime, Utc};
#[cfg(feature = "delta")]
use object_store::ObjectStoreExt as _;
use object_store::path::Path;

use crate::error::{ConvertError, Result};
use crate::layout::CONTACTS_TABLE;
use crate::location::OutputLocation;
use crate::manifest::{
    FileInfo, MANIFEST_FORMAT, Manifest, ManifestRejects, rfc3339, schema_fields,
};
use crate::options::SinkOptions;
use crate::publish::{Release, publish};
use crate::retention::Retention;
use crate::sink::StagedFile;
use crate::summary::SinkSummary;
use crate::table::StagedTable;

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

/// Everything of a finished run that its commit needs: the contacts' files (and rejects), the
/// companion tables, and what the run records about itself.
pub(crate) struct StagedRun<'a> {
    pub(crate) location: &'a OutputLocation,
    pub(crate) options: &'a SinkOptions,
    pub(crate) started_at: DateTime<Utc>,
    /// `{prefix}/contacts`.
    #[cfg_attr(not(feature = "delta"), allow(dead_code))]
    pub(crate) table_dir: &'a Path,
    pub(crate) date_dir: &'a Path,
    pub(crate) retired_dir: &'a Path,
    pub(crate) files: &'a [StagedFile],
    /// `(staged, published)` of the run's one rejects file.
    pub(crate) rejects_file: Option<(Path, Path)>,
    pub(crate) rejects_written: u64,
    pub(crate) decode_stats: trackly_contacts::decode::DecodeStats,
    pub(crate) fetch_stats: serde_json::Value,
    pub(crate) retention: Option<Retention>,
    #[cfg_attr(not(feature = "delta"), allow(dead_code))]
    pub(crate) vacuum_retention: Option<std::time::Duration>,
    /// The run's other tables (the lists), committed with the contacts.
    pub(crate) companions: &'a [StagedTable],
}

impl StagedRun<'_> {
    fn file_infos(&self) -> Vec<FileInfo> {
        self.files
            .iter()
            .map(|f| FileInfo {
                path: f.published.to_string(),
                rows: f.rows,
                bytes: f.bytes,
            })
            .collect()
    }

    fn rejects(&self) -> ManifestRejects {
        ManifestRejects {
            count: self.rejects_written,
            file: self.rejects_file.as_ref().map(|(_, p)| p.to_string()),
        }
    }
}

/// How a run is committed; see the [module docs](self). Returns the contacts' summary and the
/// companions', in their order.
pub(crate) trait Commit {
    /// Commits `run`; on error readers see what they saw before (see [`CommitState`]).
    async fn commit(&mut self, run: StagedRun<'_>) -> Result<(SinkSummary, Vec<SinkSummary>)>;

    /// Where the commit stands.
    #[allow(dead_code)]
    fn state(&self) -> CommitState;
}

/// Moves `state` on, with a debug event.
fn enter(state: &mut CommitState, next: CommitState, format: &'static str) {
    tracing::debug!(format, from = ?*state, to = ?next, "commit");
    *state = next;
}

/// The Hive-style publication (see [`publish`](crate::publish)).
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
    async fn commit(&mut self, run: StagedRun<'_>) -> Result<(SinkSummary, Vec<SinkSummary>)> {
        enter(&mut self.state, CommitState::Committing, "parquet");
        let result = self.publish(run).await;
        let next = match result {
            Ok(_) => CommitState::Committed,
            Err(_) => CommitState::RolledBack,
        };
        enter(&mut self.state, next, "parquet");
        result
    }

    fn state(&self) -> CommitState {
        self.state
    }
}

impl HivePublish {
    async fn publish(&mut self, run: StagedRun<'_>) -> Result<(SinkSummary, Vec<SinkSummary>)> {
        // The manifest is built before the date folder is touched: from the first move on,
        // only the store can fail.
        let files = run.file_infos();
        let rows = files.iter().map(|f| f.rows).sum();
        let bytes = files.iter().map(|f| f.bytes).sum();
        let finished_at = Utc::now();
        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            table: CONTACTS_TABLE.to_owned(),
            run_id: run.options.run_id.clone(),
            extract_date: run.options.extract_date.to_string(),
            started_at: rfc3339(run.started_at),
            finished_at: rfc3339(finished_at),
            query: run.options.query_json.clone(),
            schema: schema_fields(),
            files,
            rows,
            bytes,
            fetch_stats: run.fetch_stats.clone(),
            decode: run.decode_stats,
            rejects: run.rejects(),
            writer: run.options.writer.clone(),
            tables: Vec::new(),
            retention: None,
        };
        let mut moves: Vec<(Path, Path)> = run
            .files
            .iter()
            .map(|f| (f.staging.clone(), f.published.clone()))
            .collect();
        moves.extend(run.rejects_file.clone());
        // The contacts go last: their `_SUCCESS`, the run's last object, says everything of
        // the run is in place.
        let mut releases: Vec<Release> = run
            .companions
            .iter()
            .map(|table| table.release(finished_at))
            .collect();
        releases.push(Release {
            date_dir: run.date_dir.clone(),
            retired_dir: run.retired_dir.clone(),
            moves,
            manifest,
        });
        let store = run.location.store().clone();
        let manifests = publish(store.as_ref(), releases, run.retention).await?;
        let mut summaries: Vec<SinkSummary> = manifests
            .into_iter()
            .map(|(path, m)| SinkSummary::of(&path, m))
            .collect();
        let contacts = summaries.pop().ok_or_else(|| ConvertError::InvalidOption {
            option: "publication",
            reason: "no contacts manifest was written (bug)".into(),
        })?;
        Ok((contacts, summaries))
    }
}

/// The contacts' Delta table under `location`.
#[cfg(feature = "delta")]
pub(crate) fn contacts_delta_target(
    location: &OutputLocation,
    table_dir: &Path,
) -> Result<crate::delta::DeltaTarget> {
    let (root, url) = location.delta_root(CONTACTS_TABLE)?;
    Ok(crate::delta::DeltaTarget::new(
        root,
        url,
        table_dir.clone(),
        CONTACTS_TABLE,
        trackly_contacts::schema::contacts_schema(),
    ))
}

/// The Delta commit: one commit per table, the companions first and the contacts last (see
/// [`delta`](crate::delta)), then VACUUM (best effort).
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
    async fn commit(&mut self, run: StagedRun<'_>) -> Result<(SinkSummary, Vec<SinkSummary>)> {
        enter(&mut self.state, CommitState::Committing, "delta");
        let store = run.location.store().clone();
        // The rejects file goes in first, hidden from Delta readers by its `_`.
        if let Some((staged, published)) = &run.rejects_file
            && let Err(e) = store.rename(staged, published).await
        {
            enter(&mut self.state, CommitState::RolledBack, "delta");
            return Err(ConvertError::storage(published, e));
        }
        let (contacts, companions) = match self.commit_tables(&run).await {
            Ok(done) => done,
            Err(e) => {
                if let Some((_, published)) = &run.rejects_file
                    && let Err(cleanup) =
                        crate::store::delete_if_exists(store.as_ref(), published).await
                {
                    tracing::warn!(%cleanup, "cannot remove the rejects file of the failed run");
                }
                enter(&mut self.state, CommitState::RolledBack, "delta");
                return Err(e);
            }
        };
        enter(&mut self.state, CommitState::Committed, "delta");
        // The run is committed: what follows is best effort.
        if let Some(retention) = run.vacuum_retention {
            let targets = run
                .companions
                .iter()
                .filter_map(|t| t.delta_target().ok())
                .chain(contacts_delta_target(run.location, run.table_dir).ok());
            for target in targets {
                match target.vacuum(retention).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(files = n, "vacuum deleted files removed by earlier commits")
                    }
                    Err(e) => tracing::warn!(error = %e, "vacuum failed; the table is unchanged"),
                }
            }
        }
        remove_replaced_rejects(
            store.as_ref(),
            run.date_dir,
            run.rejects_file.as_ref().map(|(_, published)| published),
        )
        .await;
        Ok((contacts, companions))
    }

    fn state(&self) -> CommitState {
        self.state
    }
}

#[cfg(feature = "delta")]
impl DeltaCommit {
    async fn commit_tables(
        &mut self,
        run: &StagedRun<'_>,
    ) -> Result<(SinkSummary, Vec<SinkSummary>)> {
        let finished_at = Utc::now();
        let extract_date = run.options.extract_date;
        let expire_before = run.retention.map(|r| r.cutoff(extract_date));
        // Delta has no multi-table transaction: the lists commit first, the contacts last, so
        // a run whose contacts are committed has its lists committed too.
        let mut summaries = Vec::with_capacity(run.companions.len());
        for table in run.companions {
            summaries.push(table.commit_delta(run.retention, finished_at).await?);
        }
        let files: Vec<crate::delta::DeltaFile> = run
            .files
            .iter()
            .map(|f| crate::delta::DeltaFile {
                path: f.published.clone(),
                bytes: f.bytes,
                rows: f.rows,
                stats: f.stats.clone(),
            })
            .collect();
        let infos = run.file_infos();
        let rows: u64 = infos.iter().map(|f| f.rows).sum();
        let bytes: u64 = infos.iter().map(|f| f.bytes).sum();
        let metadata = serde_json::json!({
            "table": CONTACTS_TABLE,
            "run_id": run.options.run_id,
            "extract_date": extract_date.to_string(),
            "started_at": rfc3339(run.started_at),
            "finished_at": rfc3339(finished_at),
            "query": run.options.query_json,
            "rows": rows,
            "bytes": bytes,
            "rejects": run.rejects(),
            "fetch_stats": run.fetch_stats,
            "decode": run.decode_stats,
            "writer": run.options.writer,
        });
        let commit = contacts_delta_target(run.location, run.table_dir)?
            .commit_partition(extract_date, &files, expire_before, metadata)
            .await?;
        tracing::info!(
            table = CONTACTS_TABLE,
            version = commit.version,
            removed = commit.removed_files,
            added = files.len(),
            "delta commit"
        );
        let retention = run.retention.zip(expire_before).map(|(r, cutoff)| {
            crate::delta::retention_report(r.retain_days(), cutoff, commit.expired.clone())
        });
        let contacts = SinkSummary {
            files: infos,
            rows,
            bytes,
            rejects: run.rejects_written,
            manifest_path: commit.log_path.to_string(),
            retention,
        };
        Ok((contacts, summaries))
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
        let mut hive = HivePublish::default();
        assert_eq!(hive.state(), CommitState::Staged);
        enter(&mut hive.state, CommitState::Committing, "parquet");
        enter(&mut hive.state, CommitState::RolledBack, "parquet");
        assert_eq!(hive.state(), CommitState::RolledBack);
    }
}
