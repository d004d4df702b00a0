//! One publisher at a time per date folder (the Hive-style layout; a Delta commit has its own
//! conditional write, see the `delta` module).
//!
//! Before step 1 of a [publication](crate::publish), each date folder the run replaces gets a
//! lease: the object `_publishing` in it, created with a conditional write that fails when it
//! exists (object_store's `PutMode::Create`: S3 `If-None-Match: *`, GCS
//! `ifGenerationMatch=0`, Azure `If-None-Match: *`, a hard link on a local disk). It holds the
//! run id and goes once the publication (or its rollback) is over. Readers skip it by its `_`.
//!
//! A second run of the same date waits for the lease, then publishes over the first: the last
//! run to publish a date replaces it whole, as the last Delta commit does, and no reader sees
//! two runs' files in one folder. A lease of the same run id (a run killed while publishing,
//! resumed) is taken over at once; a lease older than [`LEASE_STALE`] (its holder died
//! without `--resume`) is taken over too. Taking over is a conditional replacement on the
//! lease's ETag or generation (`PutMode::Update`), so two runs cannot both take one lease; a
//! local disk, which has no such write, deletes the old lease and creates its own.
//!
//! Leases are taken in path order, so two runs that publish overlapping sets of tables cannot
//! wait for each other.

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use object_store::path::Path;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::{Deserialize, Serialize};

use crate::error::{ConvertError, Result};
use crate::store::delete_if_exists;

/// The lease's name in a date folder.
pub const LEASE_FILE: &str = "_publishing";

/// Age after which a lease is taken as left by a run that died while publishing (a
/// publication takes seconds: renames and a few small writes).
pub const LEASE_STALE: Duration = Duration::from_secs(10 * 60);

const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(2);

/// What a lease holds.
#[derive(Debug, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    since: String,
}

/// The leases a publication holds; [`release`](Self::release) them when it is over.
#[must_use = "leases are released with `release`"]
pub(crate) struct Leases<'a> {
    store: &'a dyn ObjectStore,
    run_id: String,
    held: Vec<Path>,
}

/// Takes the lease of every folder of `date_dirs` for `run_id`, waiting while another run
/// holds one.
pub(crate) async fn acquire<'a>(
    store: &'a dyn ObjectStore,
    date_dirs: &[Path],
    run_id: &str,
) -> Result<Leases<'a>> {
    let mut paths: Vec<Path> = date_dirs
        .iter()
        .map(|dir| dir.clone().join(LEASE_FILE))
        .collect();
    paths.sort();
    paths.dedup();
    let mut leases = Leases {
        store,
        run_id: run_id.to_owned(),
        held: Vec::with_capacity(paths.len()),
    };
    for path in paths {
        if let Err(e) = acquire_one(store, &path, run_id).await {
            leases.release().await;
            return Err(e);
        }
        leases.held.push(path);
    }
    Ok(leases)
}

async fn acquire_one(store: &dyn ObjectStore, path: &Path, run_id: &str) -> Result<()> {
    let body = serde_json::to_vec(&Holder {
        run_id: run_id.to_owned(),
        since: Utc::now().to_rfc3339(),
    })
    .map_err(|e| ConvertError::json(path, e))?;
    let body = Bytes::from(body);
    let mut backoff = POLL_FIRST;
    let mut told = false;
    loop {
        let create = PutOptions::from(PutMode::Create);
        match store
            .put_opts(path, PutPayload::from(body.clone()), create)
            .await
        {
            Ok(_) => return Ok(()),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {}
            Err(e) => return Err(ConvertError::storage(path, e)),
        }
        let (meta, held) = match store.get(path).await {
            Ok(got) => {
                let meta = got.meta.clone();
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| ConvertError::storage(path, e))?;
                (meta, serde_json::from_slice::<Holder>(&bytes).ok())
            }
            // Released in between: try again at once.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(ConvertError::storage(path, e)),
        };
        let age = (Utc::now() - meta.last_modified)
            .to_std()
            .unwrap_or_default();
        let ours = held.as_ref().is_some_and(|h| h.run_id == run_id);
        if ours || age > LEASE_STALE {
            tracing::warn!(
                path = %path,
                holder = held.as_ref().map_or("?", |h| h.run_id.as_str()),
                age_secs = age.as_secs(),
                "taking over a publication lease left by a run that stopped while publishing"
            );
            if take_over(store, path, &body, &meta).await? {
                return Ok(());
            }
            continue;
        }
        if !told {
            tracing::info!(
                path = %path,
                holder = held.as_ref().map_or("?", |h| h.run_id.as_str()),
                "another run is publishing this date; waiting for it to finish"
            );
            told = true;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(POLL_MAX);
    }
}

/// Replaces the lease at `path` if it is still the version `meta` describes (a stale lease,
/// or this run's own): whether it is now this run's (`false`: someone else changed it first,
/// start again).
async fn take_over(
    store: &dyn ObjectStore,
    path: &Path,
    body: &Bytes,
    meta: &ObjectMeta,
) -> Result<bool> {
    let version = UpdateVersion {
        e_tag: meta.e_tag.clone(),
        version: meta.version.clone(),
    };
    let update = PutOptions::from(PutMode::Update(version));
    match store
        .put_opts(path, PutPayload::from(body.clone()), update)
        .await
    {
        Ok(_) => Ok(true),
        // Someone else took it over (or released it) first.
        Err(object_store::Error::Precondition { .. })
        | Err(object_store::Error::AlreadyExists { .. })
        | Err(object_store::Error::NotFound { .. }) => Ok(false),
        // A local disk has no conditional replacement.
        Err(object_store::Error::NotImplemented { .. }) => {
            delete_if_exists(store, path).await?;
            Ok(false)
        }
        Err(e) => Err(ConvertError::storage(path, e)),
    }
}

impl Leases<'_> {
    /// Deletes the leases this run still holds (best effort: a lease left behind is taken
    /// over by the next run after [`LEASE_STALE`], at once by a resume of this run).
    pub(crate) async fn release(self) {
        for path in &self.held {
            // Not ours any more (taken over as stale): leave it to its new holder.
            let still_ours = match self.store.get(path).await {
                Ok(got) => match got.bytes().await {
                    Ok(bytes) => serde_json::from_slice::<Holder>(&bytes)
                        .map_or(true, |h| h.run_id == self.run_id),
                    Err(_) => true,
                },
                Err(_) => false,
            };
            if !still_ours {
                continue;
            }
            if let Err(e) = delete_if_exists(self.store, path).await {
                tracing::warn!(
                    path = %path,
                    error = %e,
                    "cannot remove the publication lease; the next run of this date waits for it to go stale"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    async fn lease_body(store: &dyn ObjectStore, path: &Path) -> Option<String> {
        let got = store.get(path).await.ok()?;
        let bytes = got.bytes().await.ok()?;
        serde_json::from_slice::<Holder>(&bytes)
            .ok()
            .map(|h| h.run_id)
    }

    #[tokio::test]
    async fn a_second_run_waits_for_the_first_to_release() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let dir = Path::from("t/contacts/extract_date=2026-05-01");
        let a = acquire(store.as_ref(), std::slice::from_ref(&dir), "a")
            .await
            .unwrap();
        let lease = dir.clone().join(LEASE_FILE);
        assert_eq!(
            lease_body(store.as_ref(), &lease).await.as_deref(),
            Some("a")
        );
        let waiting = {
            let store = store.clone();
            let dir = dir.clone();
            tokio::spawn(async move {
                let b = acquire(store.as_ref(), &[dir], "b").await.unwrap();
                b.release().await;
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "b must wait while a holds the lease"
        );
        a.release().await;
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lease_body(store.as_ref(), &lease).await, None);
    }

    #[tokio::test]
    async fn the_same_run_takes_its_own_lease_over_at_once_on_a_local_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let date = Path::from("contacts/extract_date=2026-05-01");
        // A run killed while publishing leaves its lease.
        let _killed = acquire(&store, std::slice::from_ref(&date), "r")
            .await
            .unwrap();
        let again = tokio::time::timeout(
            Duration::from_secs(5),
            acquire(&store, std::slice::from_ref(&date), "r"),
        )
        .await
        .unwrap()
        .unwrap();
        again.release().await;
        assert!(
            !dir.path()
                .join("contacts/extract_date=2026-05-01/_publishing")
                .exists()
        );
    }
}
