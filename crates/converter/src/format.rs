//! [`TableFormat`]: how a run's files become what readers see, and `Format`, the one
//! interface every table format implements for what differs between them: where a run stages
//! a data file, what statistics it keeps of it, how a run commits, and how the data a commit
//! replaced is removed. The rest of the converter (the rolling files, the staged tables, the
//! sink's phases) is format-agnostic: it asks the run's format through this interface.
//!
//! - [`TableFormat::Parquet`] (the default): Hive-style date folders of plain Parquet files,
//!   published with `_manifest.json` and `_SUCCESS` (see `hive` and
//!   [`publish`](crate::publish)).
//! - `TableFormat::Delta` (feature `delta`): each table is a Delta Lake table partitioned by
//!   `extract_date`, and a run is one Delta commit per table (see `delta`).
//!
//! Which implementation a [`TableFormat`] stands for is said in one place,
//! `formats`; a third format (Iceberg is the candidate) is one more module
//! implementing `Format`, one variant here and one line there.

use arrow_array::RecordBatch;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::path::Path;

use crate::error::Result;
use crate::layout::RunDirs;
use crate::location::OutputLocation;
use crate::manifest::{FileInfo, ManifestRejects};
use crate::options::{RetentionPolicy, SinkOptions};
use crate::summary::SinkSummary;
use trackly_contacts::TableDefinition;
use trackly_contacts::decode::DecodeStats;

/// How a run is published; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TableFormat {
    /// Hive-style `extract_date=` folders with `_manifest.json` and `_SUCCESS`.
    #[default]
    Parquet,
    /// A Delta Lake table per table, one commit per run (feature `delta`).
    #[cfg(feature = "delta")]
    Delta,
}

impl TableFormat {
    /// Every format this build supports.
    pub(crate) const ALL: &'static [TableFormat] = &[
        TableFormat::Parquet,
        #[cfg(feature = "delta")]
        TableFormat::Delta,
    ];

    /// The format's name, as [`FromStr`](std::str::FromStr) takes it.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            #[cfg(feature = "delta")]
            TableFormat::Delta => "delta",
        }
    }
}

impl std::fmt::Display for TableFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of the formats of this build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a table format of this build (one of: {})", TableFormat::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "))]
pub struct InvalidTableFormat {
    name: String,
}

impl std::str::FromStr for TableFormat {
    type Err = InvalidTableFormat;

    /// A format by [`name`](TableFormat::name), in any case, blanks around it ignored.
    fn from_str(s: &str) -> std::result::Result<TableFormat, InvalidTableFormat> {
        let name = s.trim().to_ascii_lowercase();
        let found = TableFormat::ALL.iter().find(|f| f.name() == name);
        found
            .copied()
            .ok_or_else(|| InvalidTableFormat { name: s.to_owned() })
    }
}

impl serde::Serialize for TableFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for TableFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What differs between table formats; see the [module docs](self). A run asks its format
/// (through [`TableFormat::implementation`]) and nothing else names one.
pub(crate) trait Format: Send + Sync {
    /// Where a run writes its data file `name` of the table in `dirs` until the commit: hidden
    /// in the run's staging folder, or in the date folder where only the commit makes it
    /// visible.
    fn staged_path(&self, dirs: &RunDirs, name: &str) -> Path;

    /// What the format records of each data file of `table` beside the file, gathered as the
    /// file is written (default `None`: nothing).
    fn file_statistics(
        &self,
        _table: &'static TableDefinition,
    ) -> Result<Option<Box<dyn FileStatistics>>> {
        Ok(None)
    }

    /// Commits `run`; returns each table's summary, in the order of `run.tables`. On error
    /// readers see what they saw before (see [`CommitState`](crate::CommitState)); date
    /// folders older than the run's [`Retention`](crate::Retention) go with the commit.
    fn commit<'a>(&'a self, run: &'a StagedRun<'a>) -> BoxFuture<'a, Result<Vec<SinkSummary>>>;

    /// After a successful commit, best effort: removes what the commit replaced and left
    /// behind (Delta: the VACUUM and the replaced runs' rejects files; by default nothing, as
    /// a Hive-style publication leaves nothing).
    fn remove_replaced<'a>(&'a self, _run: &'a StagedRun<'a>) -> BoxFuture<'a, ()> {
        futures::future::ready(()).boxed()
    }

    /// Best effort, for a run that is not committed: removes those of its `uncommitted` files
    /// that the run wrote outside its staging folder and that no commit uses. The staging
    /// folder is the caller's to clear. By default nothing: a format that stages every file in
    /// the staging folder (Hive-style) wrote nothing outside it.
    fn discard<'a>(&'a self, _uncommitted: &'a Uncommitted<'a>) -> BoxFuture<'a, ()> {
        futures::future::ready(()).boxed()
    }
}

/// Data files of `table` under `location` that a run wrote and did not commit, as
/// [`Format::discard`] takes them.
#[cfg_attr(not(feature = "delta"), allow(dead_code))] // only Delta writes outside staging
pub(crate) struct Uncommitted<'a> {
    pub(crate) location: &'a OutputLocation,
    pub(crate) table: &'static TableDefinition,
    pub(crate) files: Vec<Path>,
}

/// What a format records of one data file, gathered batch by batch as the file is written.
pub(crate) trait FileStatistics: Send {
    /// Takes in `batch`, just written to the file at `path`.
    fn merge(&mut self, path: &Path, batch: &RecordBatch) -> Result<()>;

    /// The statistics of the file at `path`, closed with `rows` rows, as its commit records
    /// them.
    fn finish(self: Box<Self>, path: &Path, rows: u64) -> Result<Option<String>>;
}

/// A finished data file, waiting for the commit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StagedFile {
    /// Its part number (`part-NNNNN`).
    pub(crate) part: u32,
    /// Where the file is written: its format's [`staged_path`](Format::staged_path).
    pub(crate) staging: Path,
    /// Where it is published.
    pub(crate) published: Path,
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    /// Its format's [`FileStatistics`], if it keeps any.
    pub(crate) stats: Option<String>,
}

/// Everything of a finished run that its commit needs: its tables and what the run records
/// about itself.
pub(crate) struct StagedRun<'a> {
    pub(crate) location: &'a OutputLocation,
    pub(crate) options: &'a SinkOptions,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) retention_policy: RetentionPolicy,
    /// The run's tables in commit order: the companions (the lists), then the contacts when
    /// the run exports them. The last table's `_SUCCESS` is the run's last object.
    pub(crate) tables: Vec<TableToCommit<'a>>,
}

/// One table of a run as a [`commit`](crate::commit) takes it, whichever table it is (the
/// contacts, the lists): what the table is and what the run staged for it.
pub(crate) struct TableToCommit<'a> {
    pub(crate) definition: &'static TableDefinition,
    pub(crate) dirs: &'a RunDirs,
    /// The data files, in part order.
    pub(crate) files: &'a [StagedFile],
    /// `(staged, published)` of the table's one rejects file.
    pub(crate) rejects_file: Option<(Path, Path)>,
    pub(crate) rejects_written: u64,
    pub(crate) query: &'a serde_json::Value,
    pub(crate) decode: DecodeStats,
    pub(crate) fetch_stats: &'a serde_json::Value,
}

impl TableToCommit<'_> {
    /// Rows and bytes of the data files.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let rows = self.files.iter().map(|f| f.rows).sum();
        (rows, self.files.iter().map(|f| f.bytes).sum())
    }

    /// The data files as the manifest and the summary list them.
    pub(crate) fn file_infos(&self) -> Vec<FileInfo> {
        self.files
            .iter()
            .map(|f| FileInfo {
                path: f.published.to_string(),
                rows: f.rows,
                bytes: f.bytes,
            })
            .collect()
    }

    /// The rejects as the manifest records them.
    pub(crate) fn rejects(&self) -> ManifestRejects {
        ManifestRejects {
            count: self.rejects_written,
            file: self.rejects_file.as_ref().map(|(_, p)| p.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        assert_eq!(
            "parquet".parse::<TableFormat>().unwrap(),
            TableFormat::Parquet
        );
        assert_eq!(TableFormat::default(), TableFormat::Parquet);
        #[cfg(feature = "delta")]
        assert_eq!(
            " Delta ".parse::<TableFormat>().unwrap(),
            TableFormat::Delta
        );
        let err = "iceberg".parse::<TableFormat>().unwrap_err().to_string();
        assert!(err.contains("parquet"), "{err}");
    }
}
