//! Phase 3 of a run, between the [`rolling`](crate::rolling) files and the
//! [`commit`](crate::commit): the resume checkpoint.
//!
//! `_staging/{run_id}/_checkpoint.json` records what a run has finished (its
//! [`CheckpointFile`]s and closed [`rejects`](crate::rejects) segments) and where its caller can
//! pick up again (`progress`, a [`ResumePoint`]). A later run of the same extract date and query finds the newest
//! such checkpoint in `_staging` and continues that run under its id; what the interrupted run
//! was writing when it stopped is deleted. A successful commit removes the checkpoint with the
//! run's staging, and with it the staging of older interrupted runs of the date once they are
//! abandoned (see [`heartbeat`]: a run still alive is never touched).
//!
//! A checkpoint of another format, or one that does not parse (a torn write), is not ours to
//! resume: it is ignored. One whose `progress` alone is not a [`ResumePoint`] is ours, and
//! resumes from the start.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::error::{ConvertError, Result};
use crate::format::StagedFile;
use crate::heartbeat;
use crate::layout::part_name;
use crate::location::OutputLocation;
use crate::manifest::rfc3339;
use crate::options::SinkOptions;
use crate::rejects::Rejects;
use crate::store::{delete_all_best_effort, delete_if_exists, list_dirs, list_paths};
use trackly_contacts::ResumePoint;
use trackly_contacts::table::CONTACTS;

/// The value of [`Checkpoint::format`].
pub const CHECKPOINT_FORMAT: &str = "trackly-export/checkpoint/v1";
const CHECKPOINT_FILE: &str = "_checkpoint.json";

/// `_staging/{run_id}/_checkpoint.json`: what an interrupted run had finished, and where its
/// caller can pick up again. Written by [`ParquetSink::checkpoint`](crate::ParquetSink::checkpoint),
/// read by [`ParquetSink::resume`](crate::ParquetSink::resume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Where the run picks up again (`"progress"` in the file). A `progress` that is not a
    /// [`ResumePoint`] reads as [`ResumePoint::default`] (page 1, no frontier): the
    /// checkpoint is still ours, its finished files are kept, and the run starts over from
    /// page 1, as before the resume point was typed.
    #[serde(rename = "progress", deserialize_with = "resume_point_or_start")]
    pub resume_point: ResumePoint,
}

/// A checkpoint's `progress` (any JSON value, as before it was typed) as a [`ResumePoint`],
/// or [`ResumePoint::default`] when it is not one (said in a warning, not silently).
fn resume_point_or_start<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<ResumePoint, D::Error> {
    let progress = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(progress).unwrap_or_else(|e| {
        tracing::warn!(
            error = %e,
            "a checkpoint's progress is not a resume point: that run resumes from page 1"
        );
        ResumePoint::default()
    }))
}

/// One finished staged file in a [`Checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl Checkpoint {
    /// The checkpoint of the run of `options` started at `started_at`, with its finished
    /// `files` and the closed segments of its `rejects`.
    pub(crate) fn of(
        options: &SinkOptions,
        started_at: DateTime<Utc>,
        files: &[StagedFile],
        rejects: &Rejects,
        resume_point: ResumePoint,
    ) -> Checkpoint {
        Checkpoint {
            format: CHECKPOINT_FORMAT.to_owned(),
            run_id: options.run_id.clone(),
            extract_date: options.extract_date.to_string(),
            query: options.query_json.clone(),
            started_at: rfc3339(started_at),
            files: files
                .iter()
                .map(|f| CheckpointFile {
                    part: f.part,
                    staging: f.staging.to_string(),
                    rows: f.rows,
                    bytes: f.bytes,
                    stats: f.stats.clone(),
                })
                .collect(),
            rejects: rejects
                .closed_segments()
                .iter()
                .map(|p| p.to_string())
                .collect(),
            rejects_written: rejects.written(),
            resume_point,
        }
    }

    /// Writes the checkpoint into `run_dir`, replacing the previous one.
    pub(crate) async fn write(&self, store: &dyn ObjectStore, run_dir: &Path) -> Result<()> {
        let path = run_dir.clone().join(CHECKPOINT_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| ConvertError::json(&path, e))?;
        crate::store::put(store, &path, json).await
    }

    /// The checkpoint in `run_dir`, if there is one of ours.
    pub(crate) async fn read(
        store: &dyn ObjectStore,
        run_dir: &Path,
    ) -> Result<Option<Checkpoint>> {
        let path = run_dir.clone().join(CHECKPOINT_FILE);
        let Some(bytes) = crate::store::read_if_exists(store, &path).await? else {
            return Ok(None);
        };
        // A checkpoint of another format or a torn write is not ours to resume.
        Ok(serde_json::from_slice::<Checkpoint>(&bytes)
            .ok()
            .filter(|c| c.format == CHECKPOINT_FORMAT))
    }

    /// When the interrupted run started, if the checkpoint says so readably.
    pub(crate) fn started(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.started_at)
            .map(|t| t.with_timezone(&Utc))
            .ok()
    }

    /// The finished files, as the run resumed in `date_dir` continues from them.
    pub(crate) fn staged_files(&self, date_dir: &Path) -> Vec<StagedFile> {
        self.files
            .iter()
            .map(|file| StagedFile {
                part: file.part,
                staging: Path::from(file.staging.as_str()),
                published: date_dir.clone().join(part_name(file.part, &self.run_id)),
                rows: file.rows,
                bytes: file.bytes,
                stats: file.stats.clone(),
            })
            .collect()
    }

    /// The closed rejects segments (staging paths).
    pub(crate) fn rejects_segments(&self) -> Vec<Path> {
        self.rejects
            .iter()
            .map(|segment| Path::from(segment.as_str()))
            .collect()
    }
}

/// The runs in `staging_root` of `extract_date` with one of our checkpoints, with their
/// folders, in listing order; a checkpoint that cannot be read is an error in its place.
pub(crate) async fn runs_of_date(
    store: &dyn ObjectStore,
    staging_root: &Path,
    extract_date: NaiveDate,
) -> Result<Vec<Result<(Path, Checkpoint)>>> {
    let extract_date = extract_date.to_string();
    let mut runs = Vec::new();
    for run_dir in list_dirs(store, staging_root).await? {
        match Checkpoint::read(store, &run_dir).await {
            Ok(Some(c)) if c.extract_date == extract_date => runs.push(Ok((run_dir, c))),
            Ok(_) => {}
            Err(e) => runs.push(Err(e)),
        }
    }
    Ok(runs)
}

/// The newest interrupted run in `staging_root` of the extract date and query of `options`.
pub(crate) async fn newest_resumable(
    store: &dyn ObjectStore,
    staging_root: &Path,
    options: &SinkOptions,
) -> Result<Option<Checkpoint>> {
    let mut newest: Option<Checkpoint> = None;
    for run in runs_of_date(store, staging_root, options.extract_date).await? {
        let (_, c) = run?;
        if c.query == options.query_json && newest.as_ref().is_none_or(|n| c.run_id > n.run_id) {
            newest = Some(c);
        }
    }
    Ok(newest)
}

/// Makes `run_dir` hold what `checkpoint` records, and nothing else: every finished file must
/// still be there; what the interrupted run was writing when it stopped is incomplete and
/// deleted.
pub(crate) async fn keep_only_finished(
    store: &dyn ObjectStore,
    run_dir: &Path,
    checkpoint: &Checkpoint,
) -> Result<()> {
    let mut keep: HashSet<Path> = HashSet::new();
    keep.insert(run_dir.clone().join(CHECKPOINT_FILE));
    for file in &checkpoint.files {
        let staging = Path::from(file.staging.as_str());
        store
            .head(&staging)
            .await
            .map_err(|e| ConvertError::storage(&staging, e))?;
        keep.insert(staging);
    }
    keep.extend(checkpoint.rejects_segments());
    for path in list_paths(store, run_dir).await? {
        if !keep.contains(&path) {
            delete_if_exists(store, &path).await?;
        }
    }
    Ok(())
}

/// Best-effort removal of the staging of the runs of `extract_date` in `staging_root` older
/// than `run_id` (interrupted runs that the run `run_id` replaced) that are abandoned: nothing
/// in their folder, heartbeat included, changed for
/// [`STALE_STAGING`](crate::heartbeat::STALE_STAGING) before `now` (the store's time). A run
/// still alive (writing, or waiting to publish) keeps its staging and publishes in its turn.
pub(crate) async fn remove_older_runs(
    location: &OutputLocation,
    staging_root: &Path,
    extract_date: NaiveDate,
    run_id: &str,
    now: DateTime<Utc>,
) {
    let store = location.store().as_ref();
    let Ok(runs) = runs_of_date(store, staging_root, extract_date).await else {
        return;
    };
    for (run_dir, checkpoint) in runs.into_iter().flatten() {
        if checkpoint.run_id.as_str() < run_id {
            remove_if_abandoned(location, &run_dir, now).await;
        }
    }
}

/// Best-effort removal of the staging folder `run_dir` when it is [abandoned](heartbeat::abandoned).
pub(crate) async fn remove_if_abandoned(
    location: &OutputLocation,
    run_dir: &Path,
    now: DateTime<Utc>,
) {
    let store = location.store().as_ref();
    if heartbeat::abandoned(store, run_dir, now).await {
        delete_all_best_effort(store, run_dir).await;
        location.remove_empty_local_dir(run_dir);
    }
}

/// The [key](trackly_contacts::TableDefinition::key) of every row in `files` (of the contacts: `(phone_number,
/// list_number)`), read back from the store (those columns only): what a resumed run must not
/// deliver again.
// parquet (since 59) deprecates `ParquetObjectReader` in favour of a hand-written `AsyncFileReader`;
// it still works, and reading two columns with ranged GETs is exactly what it does.
#[allow(deprecated)]
pub(crate) async fn written_keys(
    location: &OutputLocation,
    files: &[StagedFile],
) -> Result<Vec<(String, String)>> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use futures::TryStreamExt;
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};

    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let mut keys = Vec::with_capacity(rows as usize);
    for file in files {
        let reader = ParquetObjectReader::new(location.store().clone(), file.staging.clone())
            .with_file_size(file.bytes);
        let builder = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(|e| ConvertError::parquet(&file.staging, e))?;
        let [phone, list] = CONTACTS.key else {
            unreachable!("the contacts' key is two columns");
        };
        let mask = ProjectionMask::columns(builder.parquet_schema(), [*phone, *list]);
        let mut batches = builder
            .with_projection(mask)
            .build()
            .map_err(|e| ConvertError::parquet(&file.staging, e))?;
        while let Some(batch) = batches
            .try_next()
            .await
            .map_err(|e| ConvertError::parquet(&file.staging, e))?
        {
            let column = |name| batch.column_by_name(name).map(|c| c.as_string::<i32>());
            let (Some(phones), Some(lists)) = (column(phone), column(list)) else {
                return Err(ConvertError::parquet(
                    &file.staging,
                    parquet::errors::ParquetError::General("no key column".into()),
                ));
            };
            for i in 0..batch.num_rows() {
                if phones.is_valid(i) && lists.is_valid(i) {
                    keys.push((phones.value(i).to_owned(), lists.value(i).to_owned()));
                }
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    async fn read(progress: Option<serde_json::Value>) -> Option<Checkpoint> {
        let store = InMemory::new();
        let run_dir = Path::from("lake/contacts/_staging/r1");
        let mut json = serde_json::json!({
            "format": CHECKPOINT_FORMAT, "run_id": "r1", "extract_date": "2025-04-02",
            "query": {"active": true}, "started_at": "2025-04-02T03:00:00.000000Z",
            "files": [{"part": 0, "staging": "lake/contacts/_staging/r1/p", "rows": 3, "bytes": 9}],
            "rejects": [], "rejects_written": 0,
        });
        if let Some(progress) = progress {
            json["progress"] = progress;
        }
        let path = run_dir.clone().join(CHECKPOINT_FILE);
        store
            .put(&path, PutPayload::from(json.to_string()))
            .await
            .unwrap();
        Checkpoint::read(&store, &run_dir).await.unwrap()
    }

    #[tokio::test]
    async fn a_progress_that_is_not_a_resume_point_resumes_from_the_start() {
        let point = ResumePoint {
            page: 7,
            total: 900,
            frontier: None,
        };
        let typed = read(Some(serde_json::to_value(point).unwrap())).await;
        assert_eq!(typed.unwrap().resume_point, point);
        for progress in [
            serde_json::json!(null),
            serde_json::json!("page 7"),
            serde_json::json!({"page": "seven", "total": 900}),
            serde_json::json!({"total": 900}),
        ] {
            let checkpoint = read(Some(progress.clone())).await;
            let checkpoint = checkpoint.unwrap_or_else(|| panic!("{progress}: not ours"));
            assert_eq!(
                checkpoint.resume_point,
                ResumePoint::default(),
                "{progress}"
            );
            assert_eq!(checkpoint.files.len(), 1);
        }
        assert!(
            read(None).await.is_none(),
            "a checkpoint without progress is not ours"
        );
    }
}
