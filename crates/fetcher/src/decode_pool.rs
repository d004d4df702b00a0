//! A fixed pool of threads that decode response bodies, so that decoding runs on every core
//! and never on the async runtime's workers.
//!
//! A job is submitted in FIFO order and its result comes back through a
//! `tokio::sync::oneshot`; a request awaits it after releasing its admission permit, so the
//! next request goes out while this body is decoded. The pool holds no queue of its own beyond
//! the jobs submitted: those are bounded by the requests in flight.

use std::panic::AssertUnwindSafe;

/// The decode threads of one client (shared by its clones).
pub(crate) struct DecodePool {
    pool: rayon::ThreadPool,
    threads: usize,
}

/// The most decode threads a client takes.
pub const MAX_DECODE_THREADS: usize = 256;

/// The default number of decode threads: one per core the process may use (at most
/// [`MAX_DECODE_THREADS`]).
pub fn default_decode_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_DECODE_THREADS))
}

impl DecodePool {
    /// `threads` threads named `trackly-decode-{i}`.
    pub(crate) fn new(threads: usize) -> Result<Self, String> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("trackly-decode-{i}"))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(DecodePool { pool, threads })
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `job` on a decode thread and waits for its result. `Err` only if the job panicked
    /// (a bug): the panic is caught there rather than taking the pool down.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.spawn_fifo(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(job));
            // The receiver is gone only when the request was dropped (run cancelled).
            let _ = tx.send(outcome);
        });
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err("a decode thread panicked".to_owned()),
            Err(_) => Err("a decode thread stopped without an answer".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_pool_and_panics_are_errors() {
        let pool = DecodePool::new(2).unwrap();
        let name = pool
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(name.unwrap().starts_with("trackly-decode-"));
        assert!(pool.run(|| panic!("boom")).await.is_err());
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }
}
