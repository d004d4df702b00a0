//! The few object-store operations every phase uses: an upload with bounded memory, listing a
//! prefix, deleting what may already be gone. `object_store` retries its own requests; nothing
//! here retries again.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{ConvertError, Result};

/// Size of one multipart-upload part, and of the buffer below which a file is sent in one PUT:
/// S3's smallest part (the last part may be smaller), so a 256 MiB file is 52 parts of the
/// 10,000 S3 allows. Each part is a block the writer allocates and frees; 10 MiB parts with 4 in
/// flight held up to 50 MiB and were the largest growth of the heap in long runs
/// (BENCHMARKS.md, "Issue 12: memory").
pub const UPLOAD_PART_BYTES: usize = 5 * 1024 * 1024;
/// Size of one part on a local disk, where a part is one write at its offset into a staging
/// file and no minimum applies: a long run then holds about 3 MiB of upload buffers instead
/// of 15, the same as a short one (flat memory, BENCHMARKS.md "Issue 12").
pub const LOCAL_UPLOAD_PART_BYTES: usize = 1024 * 1024;
/// Parts of one upload in flight at a time: two keep a part uploading while the next fills
/// (the encoder produces tens of MB/s, a part uploads at tens to hundreds of MB/s).
pub const UPLOAD_CONCURRENCY: usize = 2;

/// The bytes of the object at `path`, `None` when there is none.
pub(crate) async fn read_if_exists(store: &dyn ObjectStore, path: &Path) -> Result<Option<Bytes>> {
    match store.get(path).await {
        Ok(result) => Ok(Some(
            result
                .bytes()
                .await
                .map_err(|e| ConvertError::storage(path, e))?,
        )),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(ConvertError::storage(path, e)),
    }
}

/// Writes `bytes` as the object at `path`, replacing it.
pub(crate) async fn put(store: &dyn ObjectStore, path: &Path, bytes: Vec<u8>) -> Result<()> {
    match store.put(path, PutPayload::from(bytes)).await {
        Ok(_) => Ok(()),
        Err(e) => Err(ConvertError::storage(path, e)),
    }
}

pub(crate) async fn delete_if_exists(store: &dyn ObjectStore, path: &Path) -> Result<()> {
    match store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(ConvertError::storage(path, e)),
    }
}

/// Deletes every object under `prefix`; stops at the first failure.
pub(crate) async fn delete_all(store: &dyn ObjectStore, prefix: &Path) -> Result<()> {
    for path in list_paths(store, prefix).await? {
        delete_if_exists(store, &path).await?;
    }
    Ok(())
}

/// Deletes what it can of the objects under `prefix` (best effort: failures are skipped).
pub(crate) async fn delete_all_best_effort(store: &dyn ObjectStore, prefix: &Path) {
    if let Ok(paths) = list_paths(store, prefix).await {
        for path in paths {
            let _ = delete_if_exists(store, &path).await;
        }
    }
}

/// Every object under `prefix`, recursively; an absent prefix is empty.
pub(crate) async fn list_paths(store: &dyn ObjectStore, prefix: &Path) -> Result<Vec<Path>> {
    use futures::TryStreamExt;
    match store
        .list(Some(prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
    {
        Ok(paths) => Ok(paths),
        Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(ConvertError::storage(prefix, e)),
    }
}

/// The objects directly in `dir`; an absent folder is empty.
pub(crate) async fn list_paths_shallow(store: &dyn ObjectStore, dir: &Path) -> Result<Vec<Path>> {
    match store.list_with_delimiter(Some(dir)).await {
        Ok(listing) => Ok(listing.objects.into_iter().map(|m| m.location).collect()),
        Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(ConvertError::storage(dir, e)),
    }
}

/// The folders directly in `dir`; an absent folder has none.
pub(crate) async fn list_dirs(store: &dyn ObjectStore, dir: &Path) -> Result<Vec<Path>> {
    match store.list_with_delimiter(Some(dir)).await {
        Ok(listing) => Ok(listing.common_prefixes),
        Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(ConvertError::storage(dir, e)),
    }
}

/// An error of our own about `path` (an upload's I/O error, objects a clean-up left) as a
/// storage error on it.
pub(crate) fn storage_error(
    path: &Path,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> ConvertError {
    let source = object_store::Error::Generic {
        store: "trackly-converter",
        source: source.into(),
    };
    ConvertError::storage(path, source)
}
