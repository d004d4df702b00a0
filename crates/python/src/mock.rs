//! The in-process mock API (`trackly-mock`) for Python tests; `trackly_export.mock` wraps it in
//! a context manager.

use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use trackly_export::mock::{Damage, DatasetConfig, Faults, MockConfig};

use crate::wait;

/// A running mock of the Trackly API on `127.0.0.1`, serving a deterministic data set, with
/// faults to inject; its ground truth is what a complete export must hold.
#[pyclass(module = "trackly_export._native", name = "MockServer", frozen)]
pub struct MockServer {
    url: String,
    api_key: String,
    server: Mutex<Option<trackly_export::mock::MockServer>>,
}

impl MockServer {
    fn with<T>(&self, f: impl FnOnce(&trackly_export::mock::MockServer) -> T) -> PyResult<T> {
        let server = self
            .server
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match server.as_ref() {
            Some(server) => Ok(f(server)),
            None => Err(PyRuntimeError::new_err("the mock server was shut down")),
        }
    }
}

fn damage(kind: &str) -> PyResult<Damage> {
    match kind {
        "nan" => Ok(Damage::NaN),
        "infinity" => Ok(Damage::Infinity),
        "control_char" => Ok(Damage::ControlChar),
        other => Err(PyValueError::new_err(format!(
            "damage {other:?}: expected \"nan\", \"infinity\" or \"control_char\""
        ))),
    }
}

#[pymethods]
impl MockServer {
    /// Starts a mock server (see `trackly_export.mock.MockServer` for the arguments).
    #[new]
    #[pyo3(signature = (
        contacts=1000, *, seed=42, lists=None, api_key="trk_test_key", latency_ms=0,
        p_500=0.0, p_503=0.0, damaged=Vec::new(), suspended=false, lists_churn=false,
        lists_per_page=None, fault_seed=1
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        contacts: usize,
        seed: u64,
        lists: Option<usize>,
        api_key: &str,
        latency_ms: u64,
        p_500: f64,
        p_503: f64,
        damaged: Vec<(usize, String)>,
        suspended: bool,
        lists_churn: bool,
        lists_per_page: Option<u32>,
        fault_seed: u64,
    ) -> PyResult<MockServer> {
        let damaged = damaged
            .into_iter()
            .map(|(position, kind)| Ok((position, damage(&kind)?)))
            .collect::<PyResult<Vec<_>>>()?;
        let config = MockConfig {
            dataset: DatasetConfig {
                seed,
                contacts,
                lists: lists.unwrap_or(DatasetConfig::default().lists),
                ..DatasetConfig::default()
            },
            api_key: api_key.to_owned(),
            faults: Faults {
                latency: Duration::from_millis(latency_ms),
                p_500,
                p_503,
                damaged,
                suspended,
                fault_seed,
                ..Faults::default()
            },
            lists_per_page,
            lists_churn,
            ..MockConfig::default()
        };
        // The server's tasks run on the module's runtime, which outlives this call.
        let runtime = wait::runtime()?;
        let started = py.detach(|| {
            runtime.block_on(async { trackly_export::mock::MockServer::start(config).await })
        });
        let server = started
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start the mock server: {e}")))?;
        Ok(MockServer {
            url: server.url(),
            api_key: server.api_key().to_owned(),
            server: Mutex::new(Some(server)),
        })
    }

    /// The base URL to pass as `base_url`: `http://127.0.0.1:PORT/api`.
    #[getter]
    fn base_url(&self) -> &str {
        &self.url
    }

    /// The key the server accepts (a test key, not a secret).
    #[getter]
    fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Contacts in the data set now.
    #[getter]
    fn contact_count(&self) -> PyResult<usize> {
        self.with(|s| s.contact_count())
    }

    /// Every contact matching the filters, one JSON object per line, newest first: what a
    /// complete read or export of them holds.
    #[pyo3(signature = (list_number=None, active=None))]
    fn ground_truth<'py>(
        &self,
        py: Python<'py>,
        list_number: Option<&str>,
        active: Option<bool>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let text = self.with(|s| s.ground_truth(list_number, active))?;
        Ok(PyBytes::new(py, &text))
    }

    /// Every list, deleted ones included, one JSON object per line in `id` order.
    fn lists_ground_truth<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let text = self.with(|s| s.lists_ground_truth())?;
        Ok(PyBytes::new(py, &text))
    }

    /// The server's counters (requests by status and endpoint, ...) as JSON.
    fn stats_json(&self) -> PyResult<String> {
        let stats = self.with(|s| s.stats())?;
        serde_json::to_string(&stats)
            .map_err(|e| PyRuntimeError::new_err(format!("cannot serialize the stats: {e}")))
    }

    /// Stops the server and waits for it; later calls do nothing.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let server = self
            .server
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(server) = server {
            let runtime = wait::runtime()?;
            py.detach(|| runtime.block_on(server.shutdown()));
        }
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("<trackly_export.mock.MockServer {}>", self.url)
    }
}
