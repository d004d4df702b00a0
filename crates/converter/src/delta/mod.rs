//! Delta Lake output (feature `delta`): each table of a run is a Delta table partitioned by
//! `extract_date`, and each run is one Delta commit per table that replaces the run's date.
//!
//! The sink keeps writing the data files with its own Parquet writer (same properties,
//! rotation and resume checkpoint as the plain Parquet layout); this module only turns them
//! into a commit, through delta-rs (`deltalake-core`): table creation, the commit with its
//! conflict detection, checkpoints, the schema in the table metadata, and VACUUM.
//!
//! # Layout
//!
//! ```text
//! {prefix}/contacts/                          a Delta table
//!   _delta_log/00000000000000000000.json      one commit per run (plus checkpoints)
//!   _staging/{run_id}/_checkpoint.json        (while the run writes; for --resume)
//!   _staging/{run_id}/_rejects-*.inprogress   (rejects segments, while the run writes)
//!   extract_date=2025-04-02/
//!     part-00000-{run_id}.parquet             written in place; visible once committed
//!     _rejects-{run_id}.ndjson                (hidden from Delta readers by its `_`)
//! ```
//!
//! # What a commit does
//!
//! `DeltaTarget::commit_partition` reads the newest snapshot, then commits in one version:
//! a `remove` for every file of the run's `extract_date` (and, with a
//! [`Retention`](crate::Retention), of the dates before its cutoff) and an `add` for each new
//! file, with its partition value and statistics (`numRecords`, `minValues`, `maxValues`,
//! `nullCount`, from the batches as they were written). The operation is recorded as a
//! `WRITE` in `Overwrite` mode with the predicate it replaced (like Spark's `replaceWhere`),
//! and the run's metadata (run id, query, rows, rejects, fetch statistics) goes into the
//! commit's `commitInfo` under `trackly`.
//!
//! A reader sees the snapshot before the commit or after it, never a mix: files that are
//! written but not committed are not in the log. A run that fails or is killed before its
//! commit leaves the table at its previous version (its files stay in the date folder, unused
//! by any snapshot, until `--resume` commits them or a VACUUM in `full` mode removes them).
//!
//! # Concurrent writers
//!
//! The commit is `put-if-absent` of `_delta_log/{version}.json` (delta-rs's default log store):
//! on a local disk a hard link that fails if the file exists, on S3 a `PUT` with
//! `If-None-Match: *` (object_store's `PutMode::Create`; S3 has supported it since August
//! 2024). When another writer took the version first, delta-rs reports a conflict and the
//! commit is planned again from the new snapshot (at most [`COMMIT_ATTEMPTS`] times): the last
//! writer of a date replaces the files of the writers before it, nothing is lost or doubled.
//!
//! # Two tables
//!
//! Delta has no multi-table transaction: a run commits the lists first and the contacts last,
//! so a run whose contacts are committed has its lists committed too. The converse does not
//! hold: when the contacts' commit fails after the lists' succeeded, the run fails with the
//! lists table at this run's date and the contacts table at the previous run's (each table
//! still shows one whole run; `commitInfo.trackly.run_id` tells which). The next successful
//! run of the date replaces both. The Hive-style layout has no such gap (see
//! [`publish`](crate::publish)).
//!
//! # Vacuum
//!
//! `DeltaTarget::vacuum` deletes the data files that commits removed more than the retention
//! ago (delta-rs's `lite` mode: only files a `remove` names, never a file of the current
//! snapshot, never a file outside the log). It records `VACUUM START` / `VACUUM END` commits
//! when, and only when, it deletes something.

mod commit;

pub(crate) use commit::Delta;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use delta_kernel::engine::arrow_conversion::TryFromArrow;
use delta_kernel::expressions::ColumnName;
use delta_kernel::schema::StructType;
use delta_kernel_default_engine::stats::FileStatsAccumulator;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake_core::kernel::{Action, Add, Remove};
use deltalake_core::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;

use crate::backend::Backend;
use crate::error::{ConvertError, Result};
use crate::format::{StagedFile, Uncommitted};
use crate::layout::{PARTITION_COLUMN, relative_to};
use crate::location::OutputLocation;
use crate::store::delete_if_exists;
use trackly_contacts::TableDefinition;

/// Times a commit is planned and tried when other writers commit to the table meanwhile.
pub const COMMIT_ATTEMPTS: u32 = 5;

pub use crate::options::DEFAULT_VACUUM_RETENTION;

/// What one commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedVersion {
    /// The table version the commit created.
    pub(crate) version: u64,
    /// Object path of the commit's log entry.
    pub(crate) log_path: Path,
    /// Files of earlier runs the commit removed from the snapshot.
    pub(crate) removed_files: usize,
    /// Dates before the retention cutoff whose files the commit removed (`extract_date=...`
    /// folder paths), oldest first.
    pub(crate) expired: Vec<String>,
}

/// A Delta table of the output location: where its log lives, and the store to reach it.
pub(crate) struct DeltaTarget {
    /// The store with "/" at its root (what delta-rs resolves the table URL against).
    root_store: Arc<dyn ObjectStore>,
    /// The table's URL (`s3://bucket/prefix/contacts`, `file:///.../contacts`).
    url: url::Url,
    /// The table's folder as an object path of the location's store.
    table_dir: Path,
    name: &'static str,
    /// The data files' schema (the partition column is not in the files).
    schema: SchemaRef,
}

impl DeltaTarget {
    fn error(&self, source: DeltaTableError) -> ConvertError {
        ConvertError::Delta {
            table: self.url.to_string(),
            source: Box::new(source),
        }
    }

    /// delta-rs's default log store (put-if-absent commits) over this target's store.
    fn log_store(&self) -> Result<LogStoreRef> {
        let table_path =
            Path::from_url_path(self.url.path()).map_err(|e| ConvertError::Location {
                input: self.url.to_string(),
                reason: format!("not an object path: {e}"),
            })?;
        let prefixed: Arc<dyn ObjectStore> =
            Arc::new(PrefixStore::new(self.root_store.clone(), table_path));
        Ok(default_logstore(
            prefixed,
            self.root_store.clone(),
            &self.url,
            &StorageConfig::default(),
        ))
    }

    /// The table schema: the data files' columns, then `extract_date` (a `date`).
    fn table_schema(&self) -> Result<StructType> {
        let mut fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(PARTITION_COLUMN, DataType::Date32, false));
        StructType::try_from_arrow(&Schema::new(fields)).map_err(|e| ConvertError::DeltaStats {
            path: self.url.to_string(),
            reason: format!("the schema has no Delta equivalent: {e}"),
        })
    }

    /// The newest snapshot of the table; `None` when there is no table (no `_delta_log/`).
    async fn load(&self) -> Result<Option<DeltaTable>> {
        let mut table = DeltaTable::new(self.log_store()?);
        // Asked first: loading a location without a log logs an error inside delta-rs.
        if !table
            .verify_deltatable_existence()
            .await
            .map_err(|e| self.error(e))?
        {
            return Ok(None);
        }
        match table.load().await {
            Ok(()) => Ok(Some(table)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The newest snapshot of the table, created (empty, with its schema and partitioning)
    /// if there is none yet.
    async fn open_or_create(&self) -> Result<DeltaTable> {
        let log_store = self.log_store()?;
        if let Some(table) = self.load().await? {
            return Ok(table);
        }
        let schema = self.table_schema()?;
        let created = CreateBuilder::new()
            .with_log_store(log_store.clone())
            .with_table_name(self.name)
            .with_columns(schema.fields().cloned())
            .with_partition_columns([PARTITION_COLUMN])
            .with_save_mode(SaveMode::Ignore)
            .await;
        match created {
            Ok(table) => Ok(table),
            // Another writer created it first: use theirs.
            Err(DeltaTableError::VersionAlreadyExists(_)) => {
                let mut table = DeltaTable::new(log_store);
                table.load().await.map_err(|e| self.error(e))?;
                Ok(table)
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// Commits `files` as the whole of `extract_date` (and removes the dates before
    /// `expire_before`, if given) in one version; see the [module docs](self).
    pub(crate) async fn commit_partition(
        &self,
        extract_date: NaiveDate,
        files: &[StagedFile],
        expire_before: Option<NaiveDate>,
        app_metadata: serde_json::Value,
    ) -> Result<CommittedVersion> {
        let date = extract_date.to_string();
        let mut predicate = format!("{PARTITION_COLUMN} = '{date}'");
        if let Some(cutoff) = expire_before {
            predicate.push_str(&format!(" OR {PARTITION_COLUMN} < '{cutoff}'"));
        }
        let now = chrono::Utc::now().timestamp_millis();
        let adds = files
            .iter()
            .map(|file| self.add_action(file, &date, now))
            .collect::<Result<Vec<Action>>>()?;
        let mut attempt = 1;
        loop {
            let (read_version, committed) = self
                .try_commit(&date, &adds, expire_before, &predicate, &app_metadata)
                .await?;
            match committed {
                Ok(done) => return Ok(done),
                Err(e) if attempt < COMMIT_ATTEMPTS && self.moved_on(read_version).await => {
                    tracing::warn!(
                        table = self.name,
                        attempt,
                        error = %e,
                        "another writer committed first; planning the commit again"
                    );
                    attempt += 1;
                }
                Err(e) => return Err(self.error(e)),
            }
        }
    }

    /// One attempt of [`commit_partition`](Self::commit_partition): the removes planned on
    /// the newest snapshot, committed with `adds` as one version. Returns the version it read
    /// and the commit's outcome (a failure may be another writer's commit in between).
    async fn try_commit(
        &self,
        date: &str,
        adds: &[Action],
        expire_before: Option<NaiveDate>,
        predicate: &str,
        app_metadata: &serde_json::Value,
    ) -> Result<(u64, std::result::Result<CommittedVersion, DeltaTableError>)> {
        let table = self.open_or_create().await?;
        let read_version = table.version().unwrap_or(0);
        let (removes, expired) = self.removes(&table, date, expire_before).await?;
        let removed_files = removes.len();
        let mut actions = removes;
        actions.extend(adds.iter().cloned());
        let snapshot = table.snapshot().map_err(|e| self.error(e))?;
        let committed = CommitBuilder::from(
            CommitProperties::default()
                .with_max_retries(0)
                .with_create_checkpoint(true)
                .with_metadata([("trackly".to_owned(), app_metadata.clone())]),
        )
        .with_actions(actions)
        .build(
            Some(snapshot),
            table.log_store(),
            DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: Some(vec![PARTITION_COLUMN.to_owned()]),
                predicate: Some(predicate.to_owned()),
            },
        )
        .await;
        let committed = committed.map(|done| CommittedVersion {
            version: done.version,
            log_path: self
                .table_dir
                .clone()
                .join("_delta_log")
                .join(format!("{:020}.json", done.version)),
            removed_files,
            expired,
        });
        Ok((read_version, committed))
    }

    /// Whether the table has a version newer than `read_version` (another writer's commit).
    async fn moved_on(&self, read_version: u64) -> bool {
        let Ok(log_store) = self.log_store() else {
            return false;
        };
        let table = DeltaTable::new(log_store);
        matches!(table.get_latest_version().await, Ok(v) if v > read_version)
    }

    /// `remove` actions for the files of `date` and of the dates before `expire_before`; and
    /// the expired dates' folders.
    async fn removes(
        &self,
        table: &DeltaTable,
        date: &str,
        expire_before: Option<NaiveDate>,
    ) -> Result<(Vec<Action>, Vec<String>)> {
        let cutoff = expire_before.map(|d| d.to_string());
        let files: Vec<_> = table
            .get_active_add_actions_by_partitions(&[])
            .try_collect()
            .await
            .map_err(|e| self.error(e))?;
        let mut removes = Vec::new();
        let mut expired = std::collections::BTreeSet::new();
        for file in files {
            let partition = file
                .partition_values_map()
                .get(PARTITION_COLUMN)
                .cloned()
                .flatten();
            let Some(value) = partition else { continue };
            let is_date = value == date;
            // `YYYY-MM-DD` strings sort as the dates do.
            let is_expired = cutoff.as_deref().is_some_and(|c| value.as_str() < c);
            if is_date || is_expired {
                let mut remove: Remove = file.remove_action(true);
                remove.deletion_timestamp = Some(chrono::Utc::now().timestamp_millis());
                removes.push(Action::Remove(remove));
            }
            if is_expired {
                expired.insert(
                    self.table_dir
                        .clone()
                        .join(format!("{PARTITION_COLUMN}={value}"))
                        .to_string(),
                );
            }
        }
        Ok((removes, expired.into_iter().collect()))
    }

    /// The object paths of the files the newest snapshot uses (none for a table not yet
    /// created).
    pub(crate) async fn active_files(&self) -> Result<std::collections::HashSet<Path>> {
        let Some(table) = self.load().await? else {
            return Ok(Default::default());
        };
        let files: Vec<_> = table
            .get_active_add_actions_by_partitions(&[])
            .try_collect()
            .await
            .map_err(|e| self.error(e))?;
        Ok(files
            .iter()
            .filter_map(|f| Path::from_url_path(f.path().as_ref()).ok())
            .map(|relative| {
                relative
                    .parts()
                    .fold(self.table_dir.clone(), |dir, part| dir.join(part))
            })
            .collect())
    }

    /// The `add` of `file` (its published path, size and statistics).
    fn add_action(&self, file: &StagedFile, date: &str, now: i64) -> Result<Action> {
        let relative = relative_to(&self.table_dir, &file.published).ok_or_else(|| {
            ConvertError::InvalidOption {
                option: "delta",
                reason: format!(
                    "{} is not inside the table {}",
                    file.published, self.table_dir
                ),
            }
        })?;
        Ok(Action::Add(Add {
            path: relative,
            partition_values: HashMap::from([(PARTITION_COLUMN.to_owned(), Some(date.to_owned()))]),
            size: file.bytes as i64,
            modification_time: now,
            data_change: true,
            stats: file.stats.clone(),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        }))
    }

    /// Deletes the data files removed from the table more than `retention` ago (see the
    /// [module docs](self)); returns their number. Does nothing to a table that does not exist.
    pub(crate) async fn vacuum(&self, retention: Duration) -> Result<usize> {
        let Some(table) = self.load().await? else {
            return Ok(0);
        };
        let retention =
            chrono::Duration::from_std(retention).map_err(|e| ConvertError::InvalidOption {
                option: "vacuum_retention",
                reason: e.to_string(),
            })?;
        let (_, metrics) = table
            .vacuum()
            .with_retention_period(retention)
            // The caller chose the period; Delta's default guard would refuse less than 7 days.
            .with_enforce_retention_duration(false)
            .await
            .map_err(|e| self.error(e))?;
        Ok(metrics.files_deleted.len())
    }
}

/// The Delta statistics of one data file, gathered from the batches written to it.
pub(crate) struct FileStats {
    accumulator: FileStatsAccumulator,
}

impl FileStats {
    /// Statistics of every column of `schema` but those named in `no_statistics` (a table's
    /// [`ColumnHints::no_statistics`](trackly_contacts::ColumnHints::no_statistics)).
    pub(crate) fn new(schema: &Schema, no_statistics: &[&str]) -> Result<FileStats> {
        let physical =
            StructType::try_from_arrow(schema).map_err(|e| ConvertError::DeltaStats {
                path: String::new(),
                reason: format!("the schema has no Delta equivalent: {e}"),
            })?;
        let columns: Vec<ColumnName> = schema
            .fields()
            .iter()
            .filter(|f| !no_statistics.contains(&f.name().as_str()))
            .map(|f| ColumnName::new([f.name().as_str()]))
            .collect();
        Ok(FileStats {
            accumulator: FileStatsAccumulator::new(&columns, &physical),
        })
    }

    /// Adds one batch written to the file.
    pub(crate) fn merge(&mut self, path: &Path, batch: &RecordBatch) -> Result<()> {
        self.accumulator
            .merge(batch)
            .map_err(|e| ConvertError::DeltaStats {
                path: path.to_string(),
                reason: e.to_string(),
            })
    }

    /// The file's statistics as the JSON of an `add` action's `stats`. A file without rows
    /// must have merged an empty batch to say `numRecords: 0`.
    pub(crate) fn finish(self, path: &Path) -> Result<Option<String>> {
        let fail = |reason: String| ConvertError::DeltaStats {
            path: path.to_string(),
            reason,
        };
        let Some(stats) = self.accumulator.finish().map_err(|e| fail(e.to_string()))? else {
            return Ok(None);
        };
        let batch = RecordBatch::from(stats);
        let mut json = Vec::new();
        {
            let mut writer = arrow_json::LineDelimitedWriter::new(&mut json);
            writer.write(&batch).map_err(|e| fail(e.to_string()))?;
            writer.finish().map_err(|e| fail(e.to_string()))?;
        }
        let text = String::from_utf8(json).map_err(|e| fail(e.to_string()))?;
        Ok(Some(text.trim_end().to_owned()))
    }
}

/// The store with "/" at its root and the URL of the table `table` in it, as delta-rs
/// resolves a table: `file:///dir/table` over the root of the file system,
/// `s3://bucket/prefix/table` (`gs://bucket/...`, `az://container/...`) over the bucket, and
/// `memory:///prefix/table` over any other store given to
/// [`OutputLocation::from_store`] (the URL only names the path there).
fn table_root(location: &OutputLocation, table: &str) -> Result<(Arc<dyn ObjectStore>, url::Url)> {
    let fail = |reason: String| ConvertError::Location {
        input: location.to_string(),
        reason,
    };
    let path = location.child([table]);
    if let Some(root) = location.local_root() {
        let mut dir = root.to_path_buf();
        dir.extend(path.parts().map(|p| p.as_ref().to_owned()));
        let url = url::Url::from_directory_path(&dir)
            .map_err(|()| fail(format!("{} is not an absolute path", dir.display())))?;
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        return Ok((store, url));
    }
    let url = match (location.cloud(), location.backend()) {
        (Some(cloud), Backend::S3) => format!("s3://{}/{path}", cloud.bucket),
        (Some(cloud), Backend::Gcs) => format!("gs://{}/{path}", cloud.bucket),
        (Some(cloud), Backend::Azure) => format!("az://{}/{path}", cloud.bucket),
        _ => format!("memory:///{path}"),
    };
    let url = url::Url::parse(&url).map_err(|e| fail(format!("no table URL: {e}")))?;
    Ok((location.store().clone(), url))
}

/// The Delta table of `table` under `location`.
pub(crate) fn target(location: &OutputLocation, table: &TableDefinition) -> Result<DeltaTarget> {
    let (root_store, url) = table_root(location, table.name)?;
    Ok(DeltaTarget {
        root_store,
        url,
        table_dir: location.child([table.name]),
        name: table.name,
        schema: table.schema(),
    })
}

/// Deletes those of the `run`'s files (written in their date folder) that the table's current
/// snapshot does not use. When the table cannot be read,
/// nothing is deleted: a commit whose answer was lost may have used them, and a file left
/// over is invisible to readers.
pub(crate) async fn discard_in_place(run: &Uncommitted<'_>) {
    if run.files.is_empty() {
        return;
    }
    match async { target(run.location, run.table)?.active_files().await }.await {
        Ok(active) => {
            for path in run.files.iter().filter(|p| !active.contains(*p)) {
                let _ = delete_if_exists(run.location.store().as_ref(), path).await;
            }
        }
        Err(e) => tracing::warn!(
            error = %e,
            files = run.files.len(),
            "cannot read the delta table; the run's data files stay (unused by any snapshot)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_relative_to_the_table() {
        let dir = Path::from("out/contacts");
        let file = Path::from("out/contacts/extract_date=2025-04-02/part-00000-r.parquet");
        assert_eq!(
            relative_to(&dir, &file).unwrap(),
            "extract_date=2025-04-02/part-00000-r.parquet"
        );
        assert!(relative_to(&dir, &Path::from("out/lists/x.parquet")).is_none());
        assert!(relative_to(&dir, &dir).is_none());
    }

    #[test]
    fn statistics_cover_rows_min_max_and_nulls() {
        use arrow_array::{Int64Array, StringArray};
        let schema = Arc::new(Schema::new(vec![
            Field::new("phone_number", DataType::Utf8, false),
            Field::new("send_count", DataType::Int64, true),
            Field::new("_extra", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["+1555", "+1444"])),
                Arc::new(Int64Array::from(vec![Some(3), None])),
                Arc::new(StringArray::from(vec![None::<&str>, None])),
            ],
        )
        .unwrap();
        let mut stats = FileStats::new(&schema, &["_extra"]).unwrap();
        let path = Path::from("t/x.parquet");
        stats.merge(&path, &batch).unwrap();
        stats.merge(&path, &batch.slice(0, 1)).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&stats.finish(&path).unwrap().unwrap()).unwrap();
        assert_eq!(json["numRecords"], 3);
        assert_eq!(json["minValues"]["phone_number"], "+1444");
        assert_eq!(json["maxValues"]["phone_number"], "+1555");
        assert_eq!(json["minValues"]["send_count"], 3);
        assert_eq!(json["nullCount"]["send_count"], 1);
        assert!(json["minValues"].get("_extra").is_none(), "{json}");
    }
}
