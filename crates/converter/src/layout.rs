//! Where a run's objects live and what they are called: the one owner of every name this tool
//! writes under a table's folder (see the layout in the [`sink`](crate::sink) docs), so the
//! phases that write them, the commit that publishes them and the retention that removes them
//! agree by construction.
//!
//! ```text
//! {prefix}/{table}/
//!   _staging/                                    RunDirs::staging_root
//!     {run_id}/                                  RunDirs::staging
//!     _retired/{run_id}/                         RunDirs::retired
//!   extract_date=YYYY-MM-DD/                     RunDirs::date
//!     part-00000-{run_id}.parquet, _rejects-{run_id}.ndjson, _manifest.json, _SUCCESS
//! ```

use chrono::NaiveDate;
use object_store::path::Path;

use crate::error::{ConvertError, Result};
use crate::location::OutputLocation;

/// The partition column: `extract_date`.
pub const PARTITION_COLUMN: &str = "extract_date";

/// The prefix of a date folder's name: `extract_date=YYYY-MM-DD`.
pub const PARTITION_PREFIX: &str = "extract_date=";

/// `{table}/_staging/`: hidden from readers (Spark and Hive skip `_`-prefixed paths).
const STAGING_DIR: &str = "_staging";
/// `_staging/_retired/`: not a run id (those never start with `_`), so no resume and no
/// clean-up of a run's staging ever touches the previous run's files moved here.
pub(crate) const RETIRED_DIR: &str = "_retired";
pub(crate) const SUCCESS_FILE: &str = "_SUCCESS";
pub(crate) const MANIFEST_FILE: &str = "_manifest.json";

/// What a run publishes in a date folder, by name, in the order a publication retires a
/// previous run's objects (`_SUCCESS` first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Published {
    Success,
    Manifest,
    /// A `part-*.parquet` or `_rejects-*.ndjson`.
    Data,
}

/// What the object named `name` of a date folder is to a run (`None`: not one of its own).
pub(crate) fn published(name: &str) -> Option<Published> {
    match name {
        SUCCESS_FILE => Some(Published::Success),
        MANIFEST_FILE => Some(Published::Manifest),
        _ if (name.starts_with("part-") && name.ends_with(".parquet")) || is_rejects_name(name) => {
            Some(Published::Data)
        }
        _ => None,
    }
}

/// `part-00042-{run_id}.parquet`
pub(crate) fn part_name(part: u32, run_id: &str) -> String {
    format!("part-{part:05}-{run_id}.parquet")
}

/// `_rejects-{run_id}.ndjson`: the run's one rejects file in its date folder.
pub(crate) fn rejects_name(run_id: &str) -> String {
    format!("_rejects-{run_id}.ndjson")
}

/// Whether `name` is a run's rejects file ([`rejects_name`]).
pub(crate) fn is_rejects_name(name: &str) -> bool {
    name.starts_with("_rejects-") && name.ends_with(".ndjson")
}

/// The staging name of an object whose published name is `name`: `{name}.inprogress`, which
/// DuckDB's `**/*.parquet` glob does not match.
pub(crate) fn in_progress(name: &str) -> String {
    format!("{name}.inprogress")
}

/// `path` relative to `dir` (`a/b/c` under `a` is `b/c`); `None` outside it or for `dir`
/// itself.
pub(crate) fn relative_to(dir: &Path, path: &Path) -> Option<String> {
    let parts: Vec<String> = path
        .prefix_match(dir)?
        .map(|p| p.as_ref().to_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Checks that `run_id` is a safe path segment: 1 to 128 letters, digits, `-`, `_` and `.`,
/// not starting with `.`, `_` or `-`.
pub(crate) fn validate_run_id(run_id: &str) -> Result<()> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 128
        && !run_id.starts_with(['.', '_', '-'])
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConvertError::InvalidOption {
            option: "run_id",
            reason: format!(
                "{run_id:?} must be 1 to 128 letters, digits, '-', '_' or '.', not starting with '.', '_' or '-'"
            ),
        })
    }
}

/// `{prefix}/{table}/_staging`, where every run of `table` stages.
pub(crate) fn staging_root(location: &OutputLocation, table: &str) -> Path {
    location.child([table, STAGING_DIR])
}

/// The folders of one table for one run (see the [module docs](self)).
#[derive(Debug, Clone)]
pub(crate) struct RunDirs {
    /// `{table}`: the table's folder.
    pub(crate) table: Path,
    /// `{table}/_staging`.
    pub(crate) staging_root: Path,
    /// `{table}/_staging/{run_id}`: what the run writes before its commit.
    pub(crate) staging: Path,
    /// `{table}/_staging/_retired/{run_id}`: the previous run's files while they are replaced.
    pub(crate) retired: Path,
    /// `{table}/extract_date=YYYY-MM-DD`: the date folder the run replaces.
    pub(crate) date: Path,
}

impl RunDirs {
    /// The folders of `table` under `location` for run `run_id` of `extract_date`.
    pub(crate) fn new(
        location: &OutputLocation,
        table: &str,
        run_id: &str,
        extract_date: NaiveDate,
    ) -> RunDirs {
        let staging_root = staging_root(location, table);
        RunDirs {
            table: location.child([table]),
            date: location.child([table, &format!("{PARTITION_PREFIX}{extract_date}")]),
            staging: staging_root.clone().join(run_id),
            retired: staging_root.clone().join(RETIRED_DIR).join(run_id),
            staging_root,
        }
    }

    /// Removes the run's staging folders from a local disk once they are empty (a no-op on
    /// object stores, which have no folders).
    pub(crate) fn remove_empty_local_dirs(&self, location: &OutputLocation) {
        location.remove_empty_local_dir(&self.staging);
        location.remove_empty_local_dir(&self.retired);
        location.remove_empty_local_dir(&self.staging_root.clone().join(RETIRED_DIR));
        location.remove_empty_local_dir(&self.staging_root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_must_be_safe_path_segments() {
        for ok in ["0196f1c2-7a3b-7c1d", "run.1", "R_2"] {
            assert!(validate_run_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a/b",
            "_hidden",
            ".x",
            "-x",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(validate_run_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn published_objects_retire_success_first_then_manifest_then_data() {
        assert_eq!(published("_SUCCESS"), Some(Published::Success));
        assert_eq!(published("_manifest.json"), Some(Published::Manifest));
        assert_eq!(published("part-00000-r.parquet"), Some(Published::Data));
        assert_eq!(published("_rejects-r.ndjson"), Some(Published::Data));
        assert_eq!(published("notes.txt"), None);
        assert_eq!(published("part-00000-r.parquet.inprogress"), None);
        assert!(Published::Success < Published::Manifest && Published::Manifest < Published::Data);
    }

    #[test]
    fn part_names_sort_by_part_number() {
        assert_eq!(part_name(7, "r1"), "part-00007-r1.parquet");
        assert!(part_name(9, "r") < part_name(10, "r"));
    }

    #[test]
    fn a_run_stages_beside_its_date_folder() {
        let location = OutputLocation::from_store(
            std::sync::Arc::new(object_store::memory::InMemory::new()),
            "lake",
        );
        let date = NaiveDate::from_ymd_opt(2025, 4, 2).unwrap();
        let dirs = RunDirs::new(&location, "contacts", "r1", date);
        assert_eq!(dirs.date.as_ref(), "lake/contacts/extract_date=2025-04-02");
        assert_eq!(dirs.staging.as_ref(), "lake/contacts/_staging/r1");
        assert_eq!(dirs.retired.as_ref(), "lake/contacts/_staging/_retired/r1");
    }
}
