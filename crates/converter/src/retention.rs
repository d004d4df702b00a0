//! Retention: once a run is published, the date folders of each of its tables older than
//! [`Retention::retain_days`] before the run's extract date are deleted; only folders this
//! tool wrote, never anything else under the output.
//!
//! ```
//! use trackly_converter::retention::Retention;
//!
//! let retention = Retention::days(2).unwrap();
//! let run = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
//! // 2026-11-20, -21 and -22 stay; 2026-11-19 and older go.
//! assert_eq!(retention.cutoff(run).to_string(), "2026-11-20");
//! assert!(Retention::days(0).is_err());
//! ```
//!
//! # The rule
//!
//! With `cutoff = extract_date − retain_days`, a folder `{table}/extract_date=YYYY-MM-DD/` of
//! a table the run published is removed when, and only when:
//!
//! - its date is strictly before the cutoff (so the run's own date and the `retain_days`
//!   before it are always kept, and a backfill of an old date never removes newer ones), and
//! - it holds a `_manifest.json` whose `format` is one of this tool's
//!   (a [`TableDefinition::manifest_format`](trackly_contacts::TableDefinition::manifest_format)), whose `table` is the folder's table and
//!   whose `extract_date` is the folder's date.
//!
//! Anything else is left alone: other files and folders under the table (`_staging/`
//! included), a date folder without a manifest, with a manifest that does not parse or is
//! not ours, or whose name is not a date. Such a folder older than the cutoff is named in a
//! `tracing::warn!` event and in [`RetentionReport::left_alone`]. A table the run did not
//! publish is not looked at.
//!
//! # Order, and what a half-deleted folder looks like
//!
//! Retention is planned before the publication (one listing of the table's folder, one read
//! of each expired folder's manifest; nothing is changed), recorded in the run's
//! `_manifest.json` as `retention`, and carried out only after every `_SUCCESS` of the run is
//! written: a failed or interrupted run never removes anything.
//!
//! In each folder it removes, `_SUCCESS` goes first, then the `part-*.parquet` and
//! `_rejects-*.ndjson` files, and `_manifest.json` last. So a folder whose deletion stopped
//! half-way (an error, a killed process) has no `_SUCCESS`, and readers that wait for it skip
//! the folder; it still has its manifest, so the next run with retention finds it and
//! finishes the job. Objects of other names in the folder (a file a person put there) are not
//! deleted; the folder then stays with them alone.
//!
//! # Failure
//!
//! The run's data is published before anything is deleted, so a deletion that fails does not
//! fail the run: it is logged with `tracing::warn!`, the folder is named in
//! [`RetentionReport::failed`] and taken out of `removed`, and the run's manifests are
//! written again to say so. A listing that fails at planning time is reported the same way
//! (nothing of that table is removed). A process killed between its `_SUCCESS` and the end of
//! the deletions leaves manifests that list as removed folders that may still be there (each
//! without `_SUCCESS` if its deletion began): the next run with retention removes them.

use chrono::NaiveDate;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use crate::error::{ConvertError, Result};
use crate::layout::{MANIFEST_FILE, Published, published, relative_to};
pub use crate::layout::{PARTITION_COLUMN, PARTITION_PREFIX};
use crate::store::{delete_if_exists, list_paths};
use trackly_contacts::table::TABLES;

/// How many days of date folders to keep before a run's extract date (see the
/// [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    retain_days: u32,
}

impl Retention {
    /// Keep the `retain_days` dates before the run's (at least 1).
    pub fn days(retain_days: u32) -> Result<Retention> {
        if retain_days == 0 {
            return Err(ConvertError::InvalidOption {
                option: "retain_days",
                reason: "must be at least 1 (days of date folders kept before the run's)".into(),
            });
        }
        Ok(Retention { retain_days })
    }

    /// The days kept before the run's extract date.
    pub fn retain_days(self) -> u32 {
        self.retain_days
    }

    /// The oldest date kept by a run of `extract_date`: folders of earlier dates are removed.
    pub fn cutoff(self, extract_date: NaiveDate) -> NaiveDate {
        extract_date
            .checked_sub_days(chrono::Days::new(u64::from(self.retain_days)))
            .unwrap_or(NaiveDate::MIN)
    }
}

/// What retention did to one table, in its `_manifest.json` (`retention`) and the run's
/// summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// [`Retention::retain_days`].
    pub retain_days: u32,
    /// [`Retention::cutoff`] of the run's extract date (`YYYY-MM-DD`): date folders before it
    /// are removed.
    pub cutoff: String,
    /// The date folders removed (object paths), oldest first.
    pub removed: Vec<String>,
    /// Date folders before the cutoff that are not provably this tool's, left as they are
    /// (by path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_alone: Vec<LeftAlone>,
    /// Date folders (or the table's folder, when it could not be listed) that retention
    /// meant to remove and could not, in whole or in part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<RetentionFailure>,
}

/// A folder retention did not touch, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftAlone {
    /// Its object path.
    pub path: String,
    /// Why it is not provably this tool's.
    pub reason: String,
}

/// A removal that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionFailure {
    /// The folder concerned.
    pub path: String,
    /// What went wrong.
    pub error: String,
}

/// What a folder under a table is to retention, from its name alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Age {
    /// Not an `extract_date=` folder (`_staging`, anything else): never looked at.
    NotAPartition,
    /// `extract_date=` with something that is not exactly a `YYYY-MM-DD` date.
    Unparseable,
    /// A date on or after the cutoff.
    Kept,
    /// A date before the cutoff: removed if it is ours.
    Expired(NaiveDate),
}

/// The [`Age`] of the folder named `name` under a cutoff.
pub(crate) fn age(name: &str, cutoff: NaiveDate) -> Age {
    let Some(text) = name.strip_prefix(PARTITION_PREFIX) else {
        return Age::NotAPartition;
    };
    // Only the exact form this tool writes: `2025-4-2` or `+2025-04-02` are someone else's.
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(date) if date.format("%Y-%m-%d").to_string() == text => {
            if date < cutoff {
                Age::Expired(date)
            } else {
                Age::Kept
            }
        }
        _ => Age::Unparseable,
    }
}

/// The `_manifest.json` of an expired folder, as read.
#[derive(Debug)]
pub(crate) enum ManifestRead {
    /// There is none.
    Missing,
    /// It could not be read.
    Failed(String),
    /// Its bytes.
    Found(bytes::Bytes),
}

/// The fields that say who wrote a manifest; the rest may change between versions.
#[derive(Deserialize)]
struct ManifestOwner {
    format: String,
    table: String,
    extract_date: String,
}

/// Whether the folder of `table` and `date` whose manifest is `manifest` is this tool's
/// (`Ok`), or why it is left alone.
pub(crate) fn ownership(
    table: &str,
    date: NaiveDate,
    manifest: &ManifestRead,
) -> std::result::Result<(), String> {
    let bytes = match manifest {
        ManifestRead::Missing => return Err(format!("no {MANIFEST_FILE}")),
        ManifestRead::Failed(error) => return Err(format!("cannot read {MANIFEST_FILE}: {error}")),
        ManifestRead::Found(bytes) => bytes,
    };
    let identity: ManifestOwner = serde_json::from_slice(bytes)
        .map_err(|e| format!("{MANIFEST_FILE} is not a manifest of this tool: {e}"))?;
    if !TABLES.iter().any(|t| t.manifest_format == identity.format) {
        return Err(format!(
            "{MANIFEST_FILE} has format {:?}, not one of this tool's",
            identity.format
        ));
    }
    if identity.table != table {
        return Err(format!(
            "{MANIFEST_FILE} describes table {:?}, not {table:?}",
            identity.table
        ));
    }
    if identity.extract_date != date.to_string() {
        return Err(format!(
            "{MANIFEST_FILE} describes extract date {:?}, not {date}",
            identity.extract_date
        ));
    }
    Ok(())
}

/// When an object of a removed folder is deleted, by its path inside the folder: `_SUCCESS`
/// first, the data files, `_manifest.json` last (`None`: not this tool's, left in place).
pub(crate) fn delete_order(relative: &str) -> Option<u8> {
    match published(relative)? {
        Published::Success => Some(0),
        Published::Data => (!relative.contains('/')).then_some(1),
        Published::Manifest => Some(2),
    }
}

/// Retention of one table, planned and not yet carried out.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The report as it will be if every removal succeeds.
    pub(crate) report: RetentionReport,
    /// The folders to remove, with `report.removed`.
    partitions: Vec<Path>,
}

/// Plans retention for `table` (the folder `table_dir`) after a run of `extract_date`: lists
/// the table's folders and reads the manifest of each expired one; changes nothing.
pub(crate) async fn plan(
    store: &dyn ObjectStore,
    table_dir: &Path,
    table: &str,
    extract_date: NaiveDate,
    retention: Retention,
) -> Plan {
    let cutoff = retention.cutoff(extract_date);
    let mut plan = Plan {
        report: RetentionReport {
            retain_days: retention.retain_days(),
            cutoff: cutoff.to_string(),
            removed: Vec::new(),
            left_alone: Vec::new(),
            failed: Vec::new(),
        },
        partitions: Vec::new(),
    };
    let folders = match store.list_with_delimiter(Some(table_dir)).await {
        Ok(listing) => listing.common_prefixes,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => {
            tracing::warn!(table, path = %table_dir, error = %e, "cannot list the table for retention; nothing of it is removed");
            plan.report.failed.push(RetentionFailure {
                path: table_dir.to_string(),
                error: e.to_string(),
            });
            return plan;
        }
    };
    let expired = expired_folders(folders, cutoff, &mut plan.report.left_alone);
    for (date, folder) in expired {
        let manifest = read_manifest(store, &folder.clone().join(MANIFEST_FILE)).await;
        match ownership(table, date, &manifest) {
            Ok(()) => {
                plan.report.removed.push(folder.to_string());
                plan.partitions.push(folder);
            }
            Err(reason) => plan.report.left_alone.push(LeftAlone {
                path: folder.to_string(),
                reason,
            }),
        }
    }
    plan.report.left_alone.sort_by(|a, b| a.path.cmp(&b.path));
    for skipped in &plan.report.left_alone {
        tracing::warn!(
            table,
            path = %skipped.path,
            reason = %skipped.reason,
            "retention leaves alone a folder older than the cutoff: it is not provably this tool's"
        );
    }
    plan
}

/// The date folders among `folders` older than `cutoff`, oldest first; a folder that looks
/// like a partition but whose date does not read goes to `left_alone`.
fn expired_folders(
    folders: Vec<Path>,
    cutoff: NaiveDate,
    left_alone: &mut Vec<LeftAlone>,
) -> Vec<(NaiveDate, Path)> {
    let mut expired = Vec::new();
    for folder in folders {
        let Some(name) = folder.filename() else {
            continue;
        };
        match age(name, cutoff) {
            Age::NotAPartition | Age::Kept => {}
            Age::Unparseable => left_alone.push(LeftAlone {
                path: folder.to_string(),
                reason: "the folder's name is not extract_date=YYYY-MM-DD".into(),
            }),
            Age::Expired(date) => expired.push((date, folder)),
        }
    }
    expired.sort();
    expired
}

/// The manifest at `path`, as far as it could be read.
async fn read_manifest(store: &dyn ObjectStore, path: &Path) -> ManifestRead {
    match store.get(path).await {
        Ok(got) => match got.bytes().await {
            Ok(bytes) => ManifestRead::Found(bytes),
            Err(e) => ManifestRead::Failed(e.to_string()),
        },
        Err(object_store::Error::NotFound { .. }) => ManifestRead::Missing,
        Err(e) => ManifestRead::Failed(e.to_string()),
    }
}

/// Carries out `plan` (see the [module docs](self) for the order); returns the report of what
/// was done.
pub(crate) async fn execute(store: &dyn ObjectStore, plan: Plan) -> RetentionReport {
    let mut report = plan.report;
    for partition in plan.partitions {
        match remove_partition(store, &partition).await {
            Ok(kept) => {
                if !kept.is_empty() {
                    tracing::warn!(
                        path = %partition,
                        kept = ?kept.iter().map(|p| p.as_ref()).collect::<Vec<_>>(),
                        "removed an expired date folder but kept the objects this tool did not write"
                    );
                }
                tracing::info!(path = %partition, "retention removed an expired date folder");
            }
            Err(e) => {
                tracing::warn!(
                    path = %partition,
                    error = %e,
                    "retention could not remove an expired date folder (without _SUCCESS now if \
                     its deletion began); the next run with retention tries again"
                );
                let path = partition.to_string();
                report.removed.retain(|p| *p != path);
                report.failed.push(RetentionFailure {
                    path,
                    error: e.to_string(),
                });
            }
        }
    }
    report
}

/// Deletes this tool's objects of one date folder in [`delete_order`]; stops at the first
/// failure. Returns the objects left in place because they are not this tool's.
async fn remove_partition(store: &dyn ObjectStore, partition: &Path) -> Result<Vec<Path>> {
    let mut ours = Vec::new();
    let mut kept = Vec::new();
    for path in list_paths(store, partition).await? {
        match relative_to(partition, &path)
            .as_deref()
            .and_then(delete_order)
        {
            Some(order) => ours.push((order, path)),
            None => kept.push(path),
        }
    }
    ours.sort();
    for (_, path) in ours {
        delete_if_exists(store, &path).await?;
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trackly_contacts::table::{CONTACTS, LISTS};

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn manifest(format: &str, table: &str, extract_date: &str) -> ManifestRead {
        ManifestRead::Found(bytes::Bytes::from(
            serde_json::json!({
                "format": format, "table": table, "extract_date": extract_date,
                "run_id": "r", "files": [],
            })
            .to_string(),
        ))
    }

    #[test]
    fn retain_days_must_be_at_least_one() {
        assert!(Retention::days(0).is_err());
        let two = Retention::days(2).unwrap();
        assert_eq!(two.retain_days(), 2);
        assert_eq!(two.cutoff(date("2026-03-01")), date("2026-02-27"));
        assert_eq!(
            Retention::days(u32::MAX)
                .unwrap()
                .cutoff(date("2026-03-01")),
            NaiveDate::MIN
        );
    }

    #[test]
    fn only_dates_strictly_before_the_cutoff_expire() {
        let cutoff = date("2026-11-20");
        assert_eq!(
            age("extract_date=2026-11-19", cutoff),
            Age::Expired(date("2026-11-19"))
        );
        assert_eq!(age("extract_date=2026-11-20", cutoff), Age::Kept);
        assert_eq!(age("extract_date=2026-12-01", cutoff), Age::Kept);
        for foreign in ["_staging", "notes", "extract_date", "date=2020-01-01"] {
            assert_eq!(age(foreign, cutoff), Age::NotAPartition, "{foreign}");
        }
        for bad in [
            "extract_date=",
            "extract_date=2020-1-1",
            "extract_date=2020-01-01x",
            "extract_date=2020-02-30",
            "extract_date=yesterday",
        ] {
            assert_eq!(age(bad, cutoff), Age::Unparseable, "{bad}");
        }
    }

    #[test]
    fn only_folders_with_this_tools_manifest_of_the_same_table_and_date_are_ours() {
        let d = date("2020-01-01");
        assert_eq!(
            ownership(
                "contacts",
                d,
                &manifest(CONTACTS.manifest_format, "contacts", "2020-01-01")
            ),
            Ok(())
        );
        assert_eq!(
            ownership(
                "lists",
                d,
                &manifest(LISTS.manifest_format, "lists", "2020-01-01")
            ),
            Ok(())
        );
        let refused = |table: &str, m: ManifestRead| ownership(table, d, &m).unwrap_err();
        assert!(refused("contacts", ManifestRead::Missing).contains("no _manifest.json"));
        assert!(refused("contacts", ManifestRead::Failed("503".into())).contains("503"));
        assert!(
            refused(
                "contacts",
                ManifestRead::Found(bytes::Bytes::from_static(b"{not json"))
            )
            .contains("not a manifest")
        );
        assert!(
            refused(
                "contacts",
                ManifestRead::Found(bytes::Bytes::from_static(b"{\"format\":\"x\"}"))
            )
            .contains("not a manifest")
        );
        assert!(
            refused(
                "contacts",
                manifest("someone-else/v1", "contacts", "2020-01-01")
            )
            .contains("format")
        );
        assert!(
            refused(
                "contacts",
                manifest(LISTS.manifest_format, "lists", "2020-01-01")
            )
            .contains("table")
        );
        assert!(
            refused(
                "contacts",
                manifest(CONTACTS.manifest_format, "contacts", "2020-01-02")
            )
            .contains("extract date")
        );
    }

    #[test]
    fn success_goes_first_and_the_manifest_last_and_foreign_objects_stay() {
        assert_eq!(delete_order("_SUCCESS"), Some(0));
        assert_eq!(delete_order("part-00000-r.parquet"), Some(1));
        assert_eq!(delete_order("_rejects-r.ndjson"), Some(1));
        assert_eq!(delete_order("_manifest.json"), Some(2));
        for foreign in [
            "notes.txt",
            "sub/part-00000-r.parquet",
            "sub/_SUCCESS",
            "part-00000-r.parquet.inprogress",
        ] {
            assert_eq!(delete_order(foreign), None, "{foreign}");
        }
    }

    #[tokio::test]
    async fn expired_partitions_of_ours_are_removed_and_everything_else_stays() {
        use object_store::PutPayload;
        use object_store::memory::InMemory;
        let store = InMemory::new();
        let put = |path: &str, body: Vec<u8>| {
            let store = &store;
            let path = Path::from(path);
            async move { store.put(&path, PutPayload::from(body)).await.unwrap() }
        };
        let ours = |d: &str| {
            serde_json::to_vec(&serde_json::json!({
                "format": CONTACTS.manifest_format, "table": "contacts", "extract_date": d,
            }))
            .unwrap()
        };
        for d in ["2026-11-17", "2026-11-19", "2026-11-20", "2026-11-22"] {
            let dir = format!("p/contacts/extract_date={d}");
            put(&format!("{dir}/part-00000-r.parquet"), b"x".to_vec()).await;
            put(&format!("{dir}/_manifest.json"), ours(d)).await;
            put(&format!("{dir}/_SUCCESS"), Vec::new()).await;
        }
        put(
            "p/contacts/extract_date=2026-11-17/notes.txt",
            b"mine".to_vec(),
        )
        .await;
        put(
            "p/contacts/extract_date=2020-01-01/part-0.parquet",
            b"x".to_vec(),
        )
        .await;
        put(
            "p/contacts/_staging/other/part.parquet.inprogress",
            b"x".to_vec(),
        )
        .await;
        put("p/contacts/readme.txt", b"x".to_vec()).await;

        let table_dir = Path::from("p/contacts");
        let retention = Retention::days(2).unwrap();
        let plan = plan(
            &store,
            &table_dir,
            "contacts",
            date("2026-11-22"),
            retention,
        )
        .await;
        assert_eq!(
            plan.report.removed,
            vec![
                "p/contacts/extract_date=2026-11-17",
                "p/contacts/extract_date=2026-11-19"
            ]
        );
        assert_eq!(plan.report.left_alone.len(), 1, "{:?}", plan.report);
        assert_eq!(
            plan.report.left_alone[0].path,
            "p/contacts/extract_date=2020-01-01"
        );
        let report = execute(&store, plan).await;
        assert!(report.failed.is_empty(), "{report:?}");

        let mut left: Vec<String> = list_paths(&store, &Path::from("p"))
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.to_string())
            .collect();
        left.sort();
        let mut expected = vec![
            "p/contacts/_staging/other/part.parquet.inprogress".to_owned(),
            "p/contacts/extract_date=2020-01-01/part-0.parquet".to_owned(),
            "p/contacts/extract_date=2026-11-17/notes.txt".to_owned(),
            "p/contacts/readme.txt".to_owned(),
        ];
        for d in ["2026-11-20", "2026-11-22"] {
            for f in ["_SUCCESS", "_manifest.json", "part-00000-r.parquet"] {
                expected.push(format!("p/contacts/extract_date={d}/{f}"));
            }
        }
        expected.sort();
        assert_eq!(left, expected);
    }
}
