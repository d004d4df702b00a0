//! Phase 2 of a run, beside the [`rolling`](crate::rolling) files: the records decoding
//! quarantined, one JSON object per line, written verbatim.
//!
//! They are streamed to `_staging/{run_id}/_rejects-{run_id}-NNNNN.ndjson.inprogress`, one
//! segment at a time: each [`checkpoint`](crate::checkpoint) closes the segment in progress
//! so the rejects written so far survive a crash, and the next reject starts a new one. At the
//! [`commit`](crate::commit) the run has one rejects file, `_rejects-{run_id}.ndjson` in its
//! date folder: a single segment is published as it is; several (a resumed run) are joined
//! into one staged object first. A run without rejects has no rejects file.
//!
//! # Memory usage
//!
//! The segment in progress is an upload like a Parquet file's: at most
//! [`UPLOAD_PART_BYTES`](crate::sink::UPLOAD_PART_BYTES) buffered and
//! [`UPLOAD_CONCURRENCY`](crate::sink::UPLOAD_CONCURRENCY) parts in flight. Joining segments
//! holds all of them at once (only a resumed run has several).

use bytes::Bytes;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use crate::error::{ConvertError, Result};
use crate::layout::{RunDirs, in_progress, rejects_name};
use crate::location::OutputLocation;
use crate::store::storage_error;

/// The rejects of one run: the segment being written and those closed.
pub(crate) struct Rejects {
    location: OutputLocation,
    run_id: String,
    staging_dir: Path,
    date_dir: Path,
    open: Option<Segment>,
    /// Closed segments (staging paths), in order.
    closed: Vec<Path>,
    /// Records written over all segments.
    written: u64,
}

struct Segment {
    writer: BufWriter,
    staging: Path,
}

impl Rejects {
    /// No rejects yet; nothing is written until the first.
    pub(crate) fn new(location: &OutputLocation, run_id: &str, dirs: &RunDirs) -> Rejects {
        Rejects {
            location: location.clone(),
            run_id: run_id.to_owned(),
            staging_dir: dirs.staging.clone(),
            date_dir: dirs.date.clone(),
            open: None,
            closed: Vec::new(),
            written: 0,
        }
    }

    /// Continues after an interrupted run's closed `segments` holding `written` records.
    pub(crate) fn resume_after(&mut self, segments: Vec<Path>, written: u64) {
        self.closed.extend(segments);
        self.written = written;
    }

    /// Records written so far.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// The closed segments (staging paths), in order.
    pub(crate) fn closed_segments(&self) -> &[Path] {
        &self.closed
    }

    /// Appends `rejects` to the segment in progress, starting one if needed.
    pub(crate) async fn write<R: Serialize>(&mut self, rejects: &[R]) -> Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        let segment = match &mut self.open {
            Some(segment) => segment,
            None => {
                let staging = self.staging_dir.clone().join(in_progress(&format!(
                    "_rejects-{}-{:05}.ndjson",
                    self.run_id,
                    self.closed.len()
                )));
                let writer = self.location.upload(&staging);
                self.open.insert(Segment { writer, staging })
            }
        };
        let lines = ndjson(rejects, &segment.staging)?;
        segment
            .writer
            .put(Bytes::from(lines))
            .await
            .map_err(|e| ConvertError::storage(&segment.staging, e))?;
        self.written += rejects.len() as u64;
        Ok(())
    }

    /// Completes the upload of the segment in progress, if any.
    pub(crate) async fn close_segment(&mut self) -> Result<()> {
        if let Some(mut segment) = self.open.take() {
            segment
                .writer
                .shutdown()
                .await
                .map_err(|e| storage_error(&segment.staging, e))?;
            self.closed.push(segment.staging);
        }
        Ok(())
    }

    /// Closes the segment in progress; returns `(staged, published)` of the run's one rejects
    /// file (several segments are joined first), if any.
    pub(crate) async fn finish(&mut self) -> Result<Option<(Path, Path)>> {
        self.close_segment().await?;
        let published = self.date_dir.clone().join(rejects_name(&self.run_id));
        match self.closed.as_slice() {
            [] => Ok(None),
            [only] => Ok(Some((only.clone(), published))),
            segments => {
                let joined = self
                    .staging_dir
                    .clone()
                    .join(in_progress(&rejects_name(&self.run_id)));
                join(self.location.store().as_ref(), segments, &joined).await?;
                Ok(Some((joined, published)))
            }
        }
    }

    /// Aborts the upload of the segment in progress (best effort); closed segments stay.
    pub(crate) async fn abort_open(&mut self) {
        if let Some(mut segment) = self.open.take() {
            let _ = segment.writer.abort().await;
        }
    }
}

/// Writes the concatenation of `segments` to `joined`.
async fn join(store: &dyn ObjectStore, segments: &[Path], joined: &Path) -> Result<()> {
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
    crate::store::put(store, joined, all).await
}

/// `records` as NDJSON, one object per line, for the object at `path` (named in errors).
pub(crate) fn ndjson<R: Serialize>(records: &[R], path: &Path) -> Result<Vec<u8>> {
    let mut lines = Vec::new();
    for record in records {
        serde_json::to_writer(&mut lines, record).map_err(|e| ConvertError::json(path, e))?;
        lines.push(b'\n');
    }
    Ok(lines)
}
