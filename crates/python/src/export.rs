//! `export(output, ...)`: the CLI's export ([`trackly_export::Export`]) from Python, and its
//! summary as typed objects.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::PyAny;
use tokio::sync::oneshot;
use trackly_export::{
    Export, ExportError, LocationOptions, OutputLocation, RunSummary, TableFormat, Tables,
};

use crate::errors;
use crate::stream::{ClientSettings, invalid_policy, query};
use crate::wait;

/// Runs an export and returns its summary; raises the exception of its exit code.
#[pyfunction]
#[pyo3(signature = (
    output, *, api_key=None, base_url=None, tables=None, table_format="parquet",
    storage_options=None, list_number=None, active=None, extract_date=None, resume=false,
    retain_days=None, concurrency=8, per_page=1000, batch_size=None, on_invalid="fail",
    max_attempts=None, request_timeout=None, http_compression=true
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn export(
    py: Python<'_>,
    output: &Bound<'_, PyAny>,
    api_key: Option<String>,
    base_url: Option<String>,
    tables: Option<&Bound<'_, PyAny>>,
    table_format: &str,
    storage_options: Option<HashMap<String, String>>,
    list_number: Option<&str>,
    active: Option<bool>,
    extract_date: Option<&Bound<'_, PyAny>>,
    resume: bool,
    retain_days: Option<u32>,
    concurrency: usize,
    per_page: u32,
    batch_size: Option<usize>,
    on_invalid: &str,
    max_attempts: Option<u32>,
    request_timeout: Option<f64>,
    http_compression: bool,
) -> PyResult<ExportSummary> {
    // A str or an os.PathLike.
    let output: String = py
        .import("os")?
        .call_method1("fspath", (output,))?
        .extract()?;
    let client = ClientSettings {
        api_key,
        base_url,
        concurrency: Some(concurrency),
        per_page: Some(per_page),
        max_attempts,
        request_timeout,
        http_compression,
    }
    .build(py)?;
    let query = query(py, list_number, active)?;
    let tables = parse_tables(py, tables)?;
    let format: TableFormat = table_format
        .parse()
        .map_err(|e| errors::config(py, format!("table_format: {e}")))?;
    // deltalake's and Polars' keys; an unknown one is refused by name when the location is
    // parsed (the values are never shown).
    let location_options = LocationOptions::default()
        .with_storage_options(storage_options.unwrap_or_default().into_iter().collect());
    let location = OutputLocation::parse_with(&output, location_options)
        .map_err(|e| errors::to_py(py, &ExportError::from(e)))?;
    let mut builder = Export::builder()
        .client(client)
        .query(query)
        .location(location)
        .tables(tables)
        .table_format(format)
        .resume(resume)
        .retain_days(retain_days)
        .on_invalid(invalid_policy(py, on_invalid)?);
    if let Some(rows) = batch_size {
        builder = builder.batch_size(rows);
    }
    if let Some(date) = extract_date {
        // A datetime.date or an ISO string.
        let text: String = match date.call_method0("isoformat") {
            Ok(iso) => iso.extract()?,
            Err(_) => date.extract()?,
        };
        let date = chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|e| {
            errors::config(
                py,
                format!("extract_date {text:?}: expected YYYY-MM-DD ({e})"),
            )
        })?;
        builder = builder.extract_date(date);
    }
    let export = builder.build().map_err(|e| errors::to_py(py, &e))?;
    let summary = run(py, export)?;
    ExportSummary::new(py, &summary)
}

/// `"contacts,lists"`, or a sequence of table names; `None` for both.
fn parse_tables(py: Python<'_>, tables: Option<&Bound<'_, PyAny>>) -> PyResult<Tables> {
    let Some(tables) = tables else {
        return Ok(Tables::default());
    };
    let text = match tables.extract::<String>() {
        Ok(text) => text,
        Err(_) => tables.extract::<Vec<String>>()?.join(","),
    };
    text.parse()
        .map_err(|e| errors::config(py, format!("tables {text:?}: {e}")))
}

/// Runs the export with the GIL released. When a Python signal handler raises (Ctrl-C, or a
/// SIGTERM handler such as Airflow's), the export is stopped as the CLI stops it on SIGINT
/// (nothing published, the upload in flight aborted) and then the handler's exception is
/// raised; a `KeyboardInterrupt` becomes `Interrupted`, which is one.
fn run(py: Python<'_>, export: Export) -> PyResult<RunSummary> {
    let runtime = wait::runtime()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let mut task = runtime.spawn(export.run_until(async move {
        // A dropped sender (the export finished first) is no stop.
        if stopped.await.is_err() {
            std::future::pending::<()>().await;
        }
    }));
    let mut stop = Some(stop);
    let mut signal_error: Option<PyErr> = None;
    loop {
        let step = py.detach(|| {
            runtime.block_on(async { tokio::time::timeout(wait::TICK, &mut task).await })
        });
        match step {
            Ok(joined) => {
                return match (joined, signal_error) {
                    (Ok(Ok(summary)), None) => Ok(summary),
                    (Ok(Err(e)), None) => Err(errors::to_py(py, &e)),
                    (Ok(Err(ExportError::Interrupted { run_id })), Some(raised)) => {
                        Err(interrupted(py, &run_id, raised))
                    }
                    // Stopped otherwise (it finished or failed before it saw the stop, or a
                    // second signal aborted it): the handler's exception, as Python raises it.
                    (_, Some(raised)) => Err(raised),
                    (Err(e), None) => Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                        "the export task failed: {e}"
                    ))),
                };
            }
            Err(_elapsed) if signal_error.is_none() => {
                if let Err(raised) = py.check_signals() {
                    signal_error = Some(raised);
                    if let Some(stop) = stop.take() {
                        let _ = stop.send(());
                    }
                }
            }
            // Stopping: the export finishes its clean-up (a second Ctrl-C is not waited for).
            Err(_elapsed) => {
                if py.check_signals().is_err() {
                    task.abort();
                }
            }
        }
    }
}

/// What an export stopped by a signal handler's exception raises: `Interrupted` for Ctrl-C's
/// `KeyboardInterrupt`, with it as the cause; any other exception (a SIGTERM handler's) as it
/// is.
fn interrupted(py: Python<'_>, run_id: &str, raised: PyErr) -> PyErr {
    if !raised.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
        return raised;
    }
    let error = errors::raise(
        py,
        "Interrupted",
        &format!("interrupted: run {run_id} was stopped and nothing of it was published"),
        None,
        None,
    );
    error.set_cause(py, Some(raised));
    error
}

/// One file an export published.
#[pyclass(module = "trackly_export._native", name = "FileInfo", frozen, get_all)]
pub struct FileInfo {
    /// Path under the output location, e.g. `contacts/extract_date=2026-12-07/part-00000-….parquet`.
    path: String,
    /// Rows in the file.
    rows: u64,
    /// Size in bytes.
    bytes: u64,
}

#[pymethods]
impl FileInfo {
    fn __repr__(&self) -> String {
        format!(
            "FileInfo(path={:?}, rows={}, bytes={})",
            self.path, self.rows, self.bytes
        )
    }
}

/// What the requests of a table cost and found.
#[pyclass(
    module = "trackly_export._native",
    name = "FetchStats",
    frozen,
    get_all
)]
pub struct FetchStats {
    /// HTTP requests made (retries and verification reads included).
    requests: u64,
    /// Contact pages delivered.
    pages: u64,
    /// Contacts delivered.
    contacts: u64,
    /// Retries of every cause.
    retries: u64,
    /// Bytes received on the wire (compressed).
    wire_bytes: u64,
    /// Bytes of JSON after decompression.
    body_bytes: u64,
    /// Extra reads made to prove page boundaries after the listing changed.
    verification_reads: u64,
    /// Changes of the listing seen during the run.
    drift_events: u64,
    /// Contacts delivered twice by the API and dropped.
    duplicates_dropped: u64,
    /// Whether the count was reconciled against the API's total with the listing steady;
    /// `None` when no reconciliation was made.
    reconciled: Option<bool>,
}

impl FetchStats {
    fn new(stats: &trackly_export::FetchStats) -> FetchStats {
        FetchStats {
            requests: stats.requests,
            pages: stats.pages,
            contacts: stats.contacts,
            retries: stats.retries.total(),
            wire_bytes: stats.wire_bytes,
            body_bytes: stats.body_bytes,
            verification_reads: stats.verification_reads,
            drift_events: stats.drift_events.len() as u64,
            duplicates_dropped: stats.duplicates_dropped,
            reconciled: stats.reconciliation.as_ref().map(|r| r.steady),
        }
    }
}

#[pymethods]
impl FetchStats {
    fn __repr__(&self) -> String {
        format!(
            "FetchStats(requests={}, pages={}, contacts={}, retries={})",
            self.requests, self.pages, self.contacts, self.retries
        )
    }
}

/// One table of a run.
#[pyclass(
    module = "trackly_export._native",
    name = "TableSummary",
    frozen,
    get_all
)]
pub struct TableSummary {
    /// `"contacts"` or `"lists"`.
    table: String,
    /// Rows written.
    rows: u64,
    /// The data files published.
    files: Vec<Py<FileInfo>>,
    /// Bytes of those files.
    bytes: u64,
    /// Records set aside under `on_invalid="quarantine"`.
    rejects: u64,
    /// Path of the table's `_manifest.json` under the output location (Parquet).
    manifest_path: String,
    /// The table's requests.
    fetch: Py<FetchStats>,
}

#[pymethods]
impl TableSummary {
    fn __repr__(&self) -> String {
        format!(
            "TableSummary(table={:?}, rows={}, files={}, bytes={})",
            self.table,
            self.rows,
            self.files.len(),
            self.bytes
        )
    }
}

/// The summary of an export: what the CLI prints at its end, as an object.
#[pyclass(
    module = "trackly_export._native",
    name = "ExportSummary",
    frozen,
    get_all
)]
pub struct ExportSummary {
    /// The run's id (a UUIDv7), in every manifest and file name of the run.
    run_id: String,
    /// The partition date (`datetime.date`).
    extract_date: Py<PyAny>,
    /// Seconds from start to publication.
    seconds: f64,
    /// Contacts written.
    rows: u64,
    /// The contacts files published.
    files: Vec<Py<FileInfo>>,
    /// Bytes of the contacts files.
    bytes: u64,
    /// Contacts set aside under `on_invalid="quarantine"`.
    rejects: u64,
    /// Undocumented fields met (kept in `_extra`).
    unknown_fields: u64,
    /// `revenue_total` values rounded to 4 decimals.
    rounded_values: u64,
    /// The contacts' requests.
    fetch: Py<FetchStats>,
    /// Every table written (contacts, lists).
    tables: Vec<Py<TableSummary>>,
    /// The whole summary as JSON (the manifest's vocabulary), for `to_dict()`.
    json: String,
}

fn files(py: Python<'_>, files: &[trackly_export::FileInfo]) -> PyResult<Vec<Py<FileInfo>>> {
    files
        .iter()
        .map(|f| {
            Py::new(
                py,
                FileInfo {
                    path: f.path.clone(),
                    rows: f.rows,
                    bytes: f.bytes,
                },
            )
        })
        .collect()
}

impl ExportSummary {
    fn new(py: Python<'_>, summary: &RunSummary) -> PyResult<ExportSummary> {
        let extract_date = py
            .import("datetime")?
            .getattr("date")?
            .call_method1("fromisoformat", (summary.extract_date.to_string(),))?
            .unbind();
        let tables = summary
            .tables
            .iter()
            .map(|t| {
                Py::new(
                    py,
                    TableSummary {
                        table: t.table.to_string(),
                        rows: t.rows,
                        files: files(py, &t.files)?,
                        bytes: t.bytes,
                        rejects: t.rejects,
                        manifest_path: t.manifest_path.clone(),
                        fetch: Py::new(py, FetchStats::new(&t.fetch))?,
                    },
                )
            })
            .collect::<PyResult<_>>()?;
        let json = serde_json::to_string(summary).map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("cannot serialize the summary: {e}"))
        })?;
        Ok(ExportSummary {
            run_id: summary.run_id.clone(),
            extract_date,
            seconds: summary.duration().as_secs_f64(),
            rows: summary.rows,
            files: files(py, &summary.files)?,
            bytes: summary.bytes,
            rejects: summary.rejects,
            unknown_fields: summary.unknown_fields,
            rounded_values: summary.rounded_values,
            fetch: Py::new(py, FetchStats::new(&summary.fetch))?,
            tables,
            json,
        })
    }
}

#[pymethods]
impl ExportSummary {
    /// Every field of the summary (per-table fetch statistics, retries by cause, drift
    /// events, retention) as plain Python values.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (&self.json,))
    }

    fn __repr__(&self) -> String {
        format!(
            "ExportSummary(run_id={:?}, rows={}, files={}, bytes={}, seconds={:.1})",
            self.run_id,
            self.rows,
            self.files.len(),
            self.bytes,
            self.seconds
        )
    }
}
