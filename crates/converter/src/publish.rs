//! Publication: the one step that turns a run's staged files into what readers see, for every
//! table of the run at once (steps 2–5 of the [`sink`](crate::sink) docs), and its rollback.
//!
//! A run publishes one or more tables (the contacts, the lists): each has its
//! own date folder, retired folder, files and manifest. The steps run across all of them, so
//! that either every table of the run is published or none is:
//!
//! 1. every table's previous run is moved aside (first every `_SUCCESS`, then every
//!    `_manifest.json`, then the `part-*.parquet` and `_rejects-*.ndjson`);
//! 2. every table's staged files are moved in;
//! 3. every table's `_manifest.json` is written (each lists all the tables, see
//!    [`Manifest::tables`]);
//! 4. every table's `_SUCCESS` is written, in the order the releases are given (the caller
//!    gives the contacts last): no `_SUCCESS` of the run appears before every file and every
//!    manifest of every table is in place;
//! 5. the retired objects are deleted (best effort);
//! 6. with a [`Retention`], every table's expired date folders are removed (see
//!    [`retention`]: planned before step 1 without changing anything, and
//!    recorded in each table's manifest at step 3; a removal that fails is reported, and the
//!    table's manifest written again to say so, but does not fail the publication).
//!
//! Around steps 1–6 the run holds a lease on each date folder (see [`lease`](mod@crate::lease)):
//! a second run of the same date waits for the first to finish, then replaces it whole.
//!
//! A failure at steps 1–4 rolls back every table: this run's objects are deleted newest first
//! (`_SUCCESS` files first), then the previous runs' objects are moved back (every `_SUCCESS`
//! last). A table whose date folder is not in the releases is never touched.

use std::future::Future;
use std::time::Duration;

use chrono::NaiveDate;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{ConvertError, Result};
use crate::layout::{MANIFEST_FILE, Published, RunDirs, SUCCESS_FILE, published};
use crate::lease;
use crate::manifest::{Manifest, ManifestTable};
use crate::retention::{self, Retention};
use crate::store::{delete_if_exists, list_paths_shallow, put};

/// Tries of each rollback operation when a publication fails (see the [module docs](self)):
/// 50 ms pass before the second try, twice as long before each further one.
///
/// The one retry outside the object store's own, on purpose: `object_store` retries transient
/// HTTP errors within one request and does not retry the local file system at all, while a
/// rollback that gives up leaves a date folder that someone must repair by hand.
pub const ROLLBACK_ATTEMPTS: u32 = 3;
const ROLLBACK_FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// One table's part of a publication.
pub(crate) struct TablePublication {
    /// The table's folders: the table's (which [`Retention`] looks through), the date folder
    /// this run replaces, and the retired folder where the previous run's objects wait.
    pub(crate) dirs: RunDirs,
    /// The run's extract date.
    pub(crate) extract_date: NaiveDate,
    /// `(staging, published)` of every file to move in: the parts in order, then the rejects.
    pub(crate) moves: Vec<(Path, Path)>,
    /// The table's manifest; [`Manifest::tables`] is filled in by [`publish`].
    pub(crate) manifest: Manifest,
}

impl TablePublication {
    fn summary(&self) -> ManifestTable {
        ManifestTable {
            name: self.manifest.table.clone(),
            path: self.dirs.date.to_string(),
            files: self.manifest.files.clone(),
            rows: self.manifest.rows,
            bytes: self.manifest.bytes,
            rejects: self.manifest.rejects.clone(),
        }
    }
}

/// Publishes every release in one step (see the [module docs](self)), then applies
/// `retention` to each release's table; returns each manifest as written, with its path, in
/// the order of `releases`. On error every date folder is as it was before (unless the
/// rollback fails too, which is logged), and nothing is removed.
pub(crate) async fn publish(
    store: &dyn ObjectStore,
    mut releases: Vec<TablePublication>,
    retention: Option<Retention>,
) -> Result<Vec<(Path, Manifest)>> {
    // Everything that can fail without the store is done before the first folder is touched;
    // planning retention only reads.
    let mut plans = Vec::new();
    if let Some(retention) = retention {
        for release in &mut releases {
            let table = &release.manifest.table;
            let plan = retention::plan(
                store,
                &release.dirs.table,
                table,
                release.extract_date,
                retention,
            )
            .await;
            release.manifest.retention = Some(plan.report.clone());
            plans.push(plan);
        }
    }
    let manifests = manifests(&mut releases)?;
    // One publisher per date folder: a second run of the date waits here (see `lease`).
    let date_dirs: Vec<Path> = releases.iter().map(|r| r.dirs.date.clone()).collect();
    let run_id = releases
        .first()
        .map(|r| r.manifest.run_id.clone())
        .unwrap_or_default();
    let leases = lease::acquire(store, &date_dirs, &run_id).await?;
    let mut publication = Publication {
        store,
        date_dirs,
        retired: Vec::new(),
        published: Vec::new(),
    };
    if let Err(e) = publication.replace(&releases, &manifests).await {
        publication.roll_back(&e).await;
        leases.release().await;
        return Err(e);
    }
    publication.drop_retired().await;
    for (plan, ((path, _), release)) in plans.into_iter().zip(manifests.iter().zip(&mut releases)) {
        apply_retention(store, plan, path, &mut release.manifest).await;
    }
    leases.release().await;
    Ok(manifests
        .into_iter()
        .zip(releases)
        .map(|((path, _), release)| (path, release.manifest))
        .collect())
}

/// Every release's manifest (each listing all the tables) as JSON, with its path.
fn manifests(releases: &mut [TablePublication]) -> Result<Vec<(Path, Vec<u8>)>> {
    let tables: Vec<ManifestTable> = releases.iter().map(TablePublication::summary).collect();
    let mut manifests = Vec::with_capacity(releases.len());
    for release in releases {
        release.manifest.tables = tables.clone();
        let path = release.dirs.date.clone().join(MANIFEST_FILE);
        manifests.push((path.clone(), manifest_json(&path, &release.manifest)?));
    }
    Ok(manifests)
}

/// Step 6 for one table: removes what `plan` expires; when a removal fails, writes the
/// table's manifest at `path` again to say what was removed, not what was meant to be (a
/// failure to do so is logged: the publication stands).
async fn apply_retention(
    store: &dyn ObjectStore,
    plan: retention::Plan,
    path: &Path,
    manifest: &mut Manifest,
) {
    let planned = plan.report.clone();
    let done = retention::execute(store, plan).await;
    if done == planned {
        return;
    }
    manifest.retention = Some(done);
    let rewritten = async { put(store, path, manifest_json(path, manifest)?).await };
    if let Err(e) = rewritten.await {
        tracing::warn!(
            path = %path,
            error = %e,
            "cannot record the failed removals in the manifest; it lists them as removed"
        );
    }
}

fn manifest_json(path: &Path, manifest: &Manifest) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(manifest).map_err(|e| ConvertError::json(path, e))
}

/// Steps 1–4, recording every object before it is moved or written: an operation that fails
/// may still have taken effect (an S3 rename is a copy, then a delete), and
/// [`roll_back`](Self::roll_back) must undo it as well.
struct Publication<'a> {
    store: &'a dyn ObjectStore,
    /// The date folders concerned, for messages.
    date_dirs: Vec<Path>,
    /// The previous runs' objects moved aside, as (path in a date folder, retired path), in
    /// the order they were moved.
    retired: Vec<(Path, Path)>,
    /// This run's objects moved or written into the date folders, in that order.
    published: Vec<Path>,
}

impl Publication<'_> {
    /// Steps 1–4: the previous runs aside, this run's files in, the manifests, the `_SUCCESS`
    /// markers (the caller rolls back on error).
    async fn replace(
        &mut self,
        releases: &[TablePublication],
        manifests: &[(Path, Vec<u8>)],
    ) -> Result<()> {
        self.retire_previous(releases).await?;
        for release in releases {
            for (staging, published) in &release.moves {
                self.move_in(staging, published).await?;
            }
        }
        for (path, json) in manifests {
            self.put(path, json.clone()).await?;
        }
        for release in releases {
            let success = release.dirs.date.clone().join(SUCCESS_FILE);
            self.put(&success, Vec::new()).await?;
        }
        Ok(())
    }

    /// Step 1: moves every date folder's `_SUCCESS`, then every `_manifest.json`, then every
    /// `part-*.parquet` and `_rejects-*.ndjson`, to the table's retired folder.
    async fn retire_previous(&mut self, releases: &[TablePublication]) -> Result<()> {
        let mut previous: Vec<(Published, usize, Path)> = Vec::new();
        for (table, release) in releases.iter().enumerate() {
            previous.extend(
                list_paths_shallow(self.store, &release.dirs.date)
                    .await?
                    .into_iter()
                    .filter_map(|path| Some((published(path.filename()?)?, table, path))),
            );
        }
        previous.sort();
        for (_, table, path) in previous {
            let Some(name) = path.parts().next_back() else {
                continue;
            };
            let retired = releases[table].dirs.retired.clone().join(name);
            self.retired.push((path.clone(), retired.clone()));
            self.store
                .rename(&path, &retired)
                .await
                .map_err(|e| ConvertError::storage(&path, e))?;
        }
        Ok(())
    }

    /// Step 2, for one file.
    async fn move_in(&mut self, staging: &Path, published: &Path) -> Result<()> {
        self.published.push(published.clone());
        self.store
            .rename(staging, published)
            .await
            .map_err(|e| match e {
                // Only the source can be missing: another run removed this run's staging.
                object_store::Error::NotFound { .. } => ConvertError::StagingLost {
                    path: staging.to_string(),
                    source: e,
                },
                e => ConvertError::storage(published, e),
            })
    }

    /// Steps 3 and 4, for one object.
    async fn put(&mut self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        self.published.push(path.clone());
        put(self.store, path, bytes).await
    }

    /// Step 5: the run is published, the retired objects are of no use any more.
    async fn drop_retired(self) {
        for (_, retired) in &self.retired {
            if let Err(e) = delete_if_exists(self.store, retired).await {
                tracing::warn!(
                    path = %retired,
                    error = %e,
                    "cannot delete a replaced file of the previous run; it stays hidden"
                );
            }
        }
    }

    /// Undoes steps 1–4 after `cause` failed one: deletes this run's objects newest first
    /// (`_SUCCESS` files first), then moves the previous runs' back (`_SUCCESS` files last),
    /// each operation tried up to [`ROLLBACK_ATTEMPTS`] times. When one of this run's objects
    /// cannot be deleted, the rollback stops there: moving the previous runs' back would mix
    /// two runs, and what is left is a prefix of this run's publication, so a `_SUCCESS` left
    /// behind has all its files. A previous `_SUCCESS` goes back only once everything else is
    /// back.
    async fn roll_back(self, cause: &ConvertError) {
        if self.published.is_empty() && self.retired.is_empty() {
            return;
        }
        let store = self.store;
        let date_dirs = display_all(&self.date_dirs);
        for (i, path) in self.published.iter().enumerate().rev() {
            if let Err(e) = retried(|| store.delete(path)).await {
                tracing::error!(
                    date_dirs = ?date_dirs,
                    error = %cause,
                    rollback_error = %e,
                    failed_on = %path,
                    left_in_date_dir = ?display_all(&self.published[..=i]),
                    left_retired = ?display_all(self.retired.iter().map(|(_, r)| r)),
                    "publication failed and this run's files could not all be removed; \
                     the previous run's files stay retired"
                );
                return;
            }
        }
        let mut not_restored: Vec<&(Path, Path)> = Vec::new();
        let mut first_error = None;
        for entry in self.retired.iter().rev() {
            let (original, retired) = entry;
            if original.filename() == Some(SUCCESS_FILE) && !not_restored.is_empty() {
                not_restored.push(entry);
                continue;
            }
            // Still in place: its retirement failed before the original was removed (a
            // rename onto a path that cannot be created, or a copy whose delete failed). It
            // is restored as it is; a copy made aside goes.
            if store.head(original).await.is_ok() {
                if let Err(e) = retried(|| store.delete(retired)).await {
                    tracing::warn!(error = %e, path = %retired, "cannot remove a retired copy");
                }
                continue;
            }
            if let Err(e) = retried(|| store.rename(retired, original)).await {
                first_error.get_or_insert(e);
                not_restored.push(entry);
            }
        }
        match first_error {
            // The caller reports `cause`; say only that the dates are as they were.
            None => tracing::warn!(
                date_dirs = ?date_dirs,
                "publication failed; the previous run's files are back in place"
            ),
            Some(e) => tracing::error!(
                date_dirs = ?date_dirs,
                error = %cause,
                rollback_error = %e,
                not_restored = ?not_restored
                    .iter()
                    .map(|(original, retired)| format!("{retired} -> {original}"))
                    .collect::<Vec<_>>(),
                "publication failed and the previous run's files could not all be moved back"
            ),
        }
    }
}

/// Runs a rollback operation up to [`ROLLBACK_ATTEMPTS`] times. `NotFound` means done: the
/// object to delete is gone, or the object to move back was never moved away (its copy failed).
async fn retried<F, Fut>(mut op: F) -> object_store::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = object_store::Result<()>>,
{
    let mut backoff = ROLLBACK_FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) if attempt >= ROLLBACK_ATTEMPTS => return Err(e),
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
        }
    }
}

fn display_all<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Vec<&'a str> {
    paths.into_iter().map(|p| p.as_ref()).collect()
}
