//! One tokio runtime for the module, and waiting on it from Python with the GIL released and
//! Python's signal handlers still running.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

/// How often a wait wakes to run Python's signal handlers (Ctrl-C answers within this).
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// The runtime and the process it was made in.
static RUNTIME: Mutex<Option<(u32, &'static Runtime)>> = Mutex::new(None);

/// The module's multi-threaded runtime, made on first use (importing the module starts no
/// thread). A forked child (Airflow's and Celery's workers fork) gets a runtime of its own:
/// the parent's threads do not exist in it. The parent's runtime is leaked there, as dropping
/// it would wait for threads that are gone.
pub(crate) fn runtime() -> PyResult<&'static Runtime> {
    let pid = std::process::id();
    let mut slot = RUNTIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((owner, runtime)) = *slot
        && owner == pid
    {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("trackly-export")
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the async runtime: {e}")))?;
    let runtime: &'static Runtime = Box::leak(Box::new(runtime));
    *slot = Some((pid, runtime));
    Ok(runtime)
}

/// Runs `future` to completion with the GIL released, running Python's signal handlers every
/// [`TICK`] (they run on the main thread only, as in Python). When a handler raises (Ctrl-C's
/// `KeyboardInterrupt`, or a SIGTERM handler such as Airflow's), `future` is dropped, which
/// cancels its requests, and the handler's exception is returned.
pub(crate) fn block_on<F>(py: Python<'_>, future: F) -> PyResult<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    let runtime = runtime()?;
    let mut future = std::pin::pin!(future);
    loop {
        // The timer is made inside the runtime, which it needs.
        let step = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(TICK, future.as_mut()).await })
        });
        match step {
            Ok(output) => return Ok(output),
            Err(_elapsed) => py.check_signals()?,
        }
    }
}
