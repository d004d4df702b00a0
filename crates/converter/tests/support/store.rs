//! Reading back what a test wrote to an object store.

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// Every object under `prefix`, sorted.
pub async fn objects(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = store
        .list(Some(&Path::from(prefix)))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    out.sort();
    out
}

/// The JSON object at `path`.
pub async fn json(store: &dyn ObjectStore, path: &str) -> serde_json::Value {
    let bytes = store
        .get(&path.into())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
