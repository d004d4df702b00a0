//! [`SinkSummary`]: what the commit of one table published, as the caller gets it back.

use object_store::path::Path;

use crate::manifest::{FileInfo, Manifest};
use crate::retention::RetentionReport;

/// What [`ParquetSink::finish`](crate::ParquetSink::finish) published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSummary {
    /// The Parquet files, in part order.
    pub files: Vec<FileInfo>,
    /// Rows over all files.
    pub rows: u64,
    /// Bytes over all files.
    pub bytes: u64,
    /// Records written to the rejects file.
    pub rejects: u64,
    /// Object path of `_manifest.json`.
    pub manifest_path: String,
    /// The date folders removed after publication, under a [`Retention`](crate::Retention).
    pub retention: Option<RetentionReport>,
}

impl SinkSummary {
    /// What the published `manifest` at `path` says.
    pub(crate) fn of(path: &Path, manifest: Manifest) -> SinkSummary {
        SinkSummary {
            rows: manifest.rows,
            bytes: manifest.bytes,
            rejects: manifest.rejects.count,
            files: manifest.files,
            manifest_path: path.to_string(),
            retention: manifest.retention,
        }
    }
}
