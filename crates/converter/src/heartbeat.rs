//! Whether a staging folder belongs to a run that is still alive, or was left by one that died.
//!
//! A live run keeps the object `_staging/{run_id}/_heartbeat` fresh: the sink writes it with
//! the run's first write and again every 30 seconds, from a task of its own, until the
//! run has published or given up, or is dropped. A run that publishes a date then removes the
//! staging of older runs of that date only when nothing in their folder, the heartbeat
//! included, has changed for [`STALE_STAGING`]: a run that is still writing, or waiting for the
//! [`lease`](crate::lease) to publish, is never touched, and publishes in its turn.
//!
//! Ages are measured on the store's clock where there is one to read: against the
//! last-modified time of this run's own heartbeat, just written, so a client clock that is off
//! does not make a live run look dead.
//!
//! # Limits
//!
//! A run that stops beating for [`STALE_STAGING`] while it is alive (a process suspended, a
//! store that refused every heartbeat for that long) may have its staging removed by another
//! run; it then fails at publication with
//! [`ConvertError::StagingLost`](crate::ConvertError::StagingLost) and publishes nothing.
//! A run killed less than [`STALE_STAGING`] ago cannot be told from a live one: its staging
//! stays (hidden) until a later run finds it stale, or until
//! [`ParquetSink::discard_interrupted`](crate::ParquetSink::discard_interrupted) removes it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The heartbeat's name in a run's staging folder (hidden from readers by its `_`).
pub(crate) const HEARTBEAT_FILE: &str = "_heartbeat";

/// How often a live run rewrites its heartbeat.
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// How long a staging folder must have been left unchanged (heartbeat included) before
/// another run removes it: twenty missed heartbeats.
pub const STALE_STAGING: Duration = Duration::from_secs(10 * 60);

/// A run's heartbeat task; see the [module docs](self). Dropping it stops the task.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    store: Arc<dyn ObjectStore>,
    path: Path,
    stop: Arc<Notify>,
    task: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Writes the heartbeat of the run whose staging folder is `run_dir`, then keeps it fresh
    /// from a task of its own (without a tokio runtime, only the first write is made).
    pub(crate) async fn start(store: Arc<dyn ObjectStore>, run_dir: &Path) -> Heartbeat {
        let path = run_dir.clone().join(HEARTBEAT_FILE);
        beat(store.as_ref(), &path).await;
        let stop = Arc::new(Notify::new());
        let task = tokio::runtime::Handle::try_current().ok().map(|runtime| {
            let (store, path, stop) = (store.clone(), path.clone(), stop.clone());
            runtime.spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.notified() => return,
                        () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                    }
                    // Not inside the select: a write under way finishes before a stop is seen,
                    // so none lands after the run has removed its staging.
                    beat(store.as_ref(), &path).await;
                }
            })
        });
        Heartbeat {
            store,
            path,
            stop,
            task,
        }
    }

    /// The store's time now, as the last-modified time of the heartbeat written for it; the
    /// local clock when the store does not answer.
    pub(crate) async fn now(&self) -> DateTime<Utc> {
        beat(self.store.as_ref(), &self.path).await;
        match self.store.head(&self.path).await {
            Ok(meta) => meta.last_modified,
            Err(_) => Utc::now(),
        }
    }

    /// Stops the task and waits until no heartbeat write is under way, so that the run's
    /// staging can be removed for good.
    pub(crate) async fn stop(mut self) {
        self.stop.notify_one();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Writes the heartbeat (best effort: a failure is logged, the run goes on).
async fn beat(store: &dyn ObjectStore, path: &Path) {
    let body = PutPayload::from(Utc::now().to_rfc3339().into_bytes());
    if let Err(error) = store.put(path, body).await {
        tracing::warn!(
            path = %path,
            %error,
            "cannot refresh this run's heartbeat; after 10 minutes without one, another run of \
             this date may take its staging for abandoned"
        );
    }
}

/// Whether nothing under `run_dir` has changed for [`STALE_STAGING`] before `now` (the store's
/// time, see [`Heartbeat::now`]). A folder that cannot be listed is not abandoned.
pub(crate) async fn abandoned(store: &dyn ObjectStore, run_dir: &Path, now: DateTime<Utc>) -> bool {
    let Ok(stale) = chrono::Duration::from_std(STALE_STAGING) else {
        return false;
    };
    let newest = store
        .list(Some(run_dir))
        .try_fold(None::<DateTime<Utc>>, |newest, meta| async move {
            Ok(Some(
                newest.map_or(meta.last_modified, |n| n.max(meta.last_modified)),
            ))
        })
        .await;
    match newest {
        Ok(Some(newest)) => newest < now - stale,
        // Nothing left in it: nothing to keep alive either.
        Ok(None) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn a_live_runs_folder_is_not_abandoned_and_a_silent_one_is() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let run_dir = Path::from("t/contacts/_staging/r1");
        let heartbeat = Heartbeat::start(store.clone(), &run_dir).await;
        let now = heartbeat.now().await;
        assert!(!abandoned(store.as_ref(), &run_dir, now).await);
        // The same folder seen from a time STALE_STAGING and a second later.
        let later =
            now + chrono::Duration::from_std(STALE_STAGING).unwrap() + chrono::Duration::seconds(1);
        assert!(abandoned(store.as_ref(), &run_dir, later).await);
        heartbeat.stop().await;
        assert!(
            store
                .head(&run_dir.clone().join(HEARTBEAT_FILE))
                .await
                .is_ok(),
            "a stopped heartbeat stays until the run removes its staging"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_heartbeat_is_rewritten_while_the_run_lives() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let run_dir = Path::from("t/contacts/_staging/r1");
        let path = run_dir.clone().join(HEARTBEAT_FILE);
        let heartbeat = Heartbeat::start(store.clone(), &run_dir).await;
        let first = store.head(&path).await.unwrap().e_tag;
        // Paused time: the sleep ends when every task is idle, after the next beat.
        tokio::time::sleep(HEARTBEAT_EVERY + Duration::from_secs(1)).await;
        tokio::task::yield_now().await;
        let second = store.head(&path).await.unwrap().e_tag;
        assert_ne!(first, second, "the heartbeat was rewritten");
        heartbeat.stop().await;
    }
}
