//! `read_contacts` and `read_lists`: record batches through the Arrow PyCapsule stream
//! interface.
//!
//! # Guarantees
//!
//! The stream is [`trackly_export::RecordBatches`]: every contact exactly once, or an error, never
//! a short stream. `read_contacts` waits for the first batch before it returns, so a refused
//! key, a bad setting or an unreachable API raises one of the package's exceptions right there;
//! an error after that ends the stream with an error that the reader (pyarrow, Polars, DuckDB)
//! raises as its own exception, with the package's class name, exit code and message in its
//! text.
//!
//! # Memory
//!
//! A consumer pulls one batch at a time; between pulls the fetcher holds at most its pages in
//! flight (`concurrency` pages of `per_page` contacts) and the decoder one batch being built,
//! as in the Rust stream: memory does not grow with the number of contacts. Batches cross to
//! Python through the C data interface, without copies.
//!
//! # The GIL and Ctrl-C
//!
//! The reader calls back into the stream from its own code. On the main thread the stream
//! releases the GIL while it waits (pyarrow has released it already; Polars has not). Ctrl-C is
//! watched while it waits, from any thread, when Python's SIGINT handler is the default one: it
//! ends the stream with an `Interrupted` error and cancels the requests in flight, and Python's
//! own handler still runs, so `KeyboardInterrupt` follows as soon as Python code runs again. The
//! watch is tokio's SIGINT handler, which calls the handler it replaced (Python's) after its
//! own.

use std::sync::{Mutex, OnceLock};
use std::thread::ThreadId;

use arrow_array::ffi::FFI_ArrowSchema;
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use futures::StreamExt;
use futures::stream::BoxStream;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use tokio::runtime::Runtime;
use trackly_export::fetcher::RetryConfig;
use trackly_export::{
    ApiKey, Client, DecoderOptions, E164, ExportError, InvalidPolicy, Query, contacts_schema,
    lists_schema,
};

use crate::errors;
use crate::wait;

/// The thread that imported the module: Python's main thread, where the GIL may be released.
static MAIN_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// Notes the importing thread as the main one.
pub(crate) fn note_main_thread() {
    MAIN_THREAD.get_or_init(|| std::thread::current().id());
}

/// The API settings `read_contacts`, `read_lists` and `export` share; `None` leaves the
/// library's default (or the environment's, for the key and the base URL).
#[derive(Default)]
pub(crate) struct ClientSettings {
    pub(crate) api_key: Option<String>,
    pub(crate) base_url: Option<String>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) per_page: Option<u32>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) request_timeout: Option<f64>,
    pub(crate) http_compression: bool,
}

impl ClientSettings {
    /// The client: `TRACKLY_API_KEY` and `TRACKLY_BASE_URL` when not given.
    pub(crate) fn build(self, py: Python<'_>) -> PyResult<Client> {
        let mut builder = trackly_export::ClientBuilder::from_env();
        if let Some(key) = self.api_key {
            builder = builder.with_api_key(ApiKey::new(key));
        }
        if let Some(url) = self.base_url {
            builder = builder.with_base_url(url);
        }
        if let Some(n) = self.concurrency {
            builder = builder.with_concurrency(n);
        }
        if let Some(n) = self.per_page {
            builder = builder.with_per_page(n);
        }
        if let Some(attempts) = self.max_attempts {
            builder = builder.with_retry(RetryConfig {
                max_attempts: attempts,
                ..RetryConfig::default()
            });
        }
        if let Some(seconds) = self.request_timeout {
            let timeout = std::time::Duration::try_from_secs_f64(seconds).map_err(|_| {
                errors::config(py, format!("request_timeout {seconds} is not a duration"))
            })?;
            builder = builder.with_request_timeout(timeout);
        }
        builder = builder.with_http_compression(self.http_compression);
        builder
            .build()
            .map_err(|e| errors::to_py(py, &ExportError::from(e)))
    }
}

/// `list_number` and `active` as a [`Query`].
pub(crate) fn query(
    py: Python<'_>,
    list_number: Option<&str>,
    active: Option<bool>,
) -> PyResult<Query> {
    let mut query = Query::all();
    if let Some(number) = list_number {
        let number = E164::parse(number)
            .map_err(|e| errors::config(py, format!("list_number {number:?}: {e}")))?;
        query = query.with_list_number(number);
    }
    if let Some(active) = active {
        query = query.with_active(active);
    }
    Ok(query)
}

/// `"fail"` or `"quarantine"`.
pub(crate) fn invalid_policy(py: Python<'_>, on_invalid: &str) -> PyResult<InvalidPolicy> {
    match on_invalid {
        "fail" => Ok(InvalidPolicy::Fail),
        "quarantine" => Ok(InvalidPolicy::Quarantine),
        other => Err(errors::config(
            py,
            format!("on_invalid {other:?}: expected \"fail\" or \"quarantine\""),
        )),
    }
}

/// A fresh run id and now, as the export's decoder options use them.
fn decoder_options(batch_size: Option<usize>, on_invalid: InvalidPolicy) -> DecoderOptions {
    let mut options = DecoderOptions::new(uuid::Uuid::now_v7().to_string(), chrono::Utc::now())
        .with_on_invalid(on_invalid);
    if let Some(rows) = batch_size {
        options = options.with_batch_size(rows);
    }
    options
}

/// Whether Ctrl-C should end a stream read by another library: only when Python's SIGINT
/// handler is its default (a program that ignores SIGINT, or handles it its own way, keeps
/// that).
fn default_sigint(py: Python<'_>) -> PyResult<bool> {
    let signal = py.import("signal")?;
    let current = signal.call_method1("getsignal", (signal.getattr("SIGINT")?,))?;
    Ok(current.is(&signal.getattr("default_int_handler")?))
}

/// Every contact matching the filters, as an Arrow stream of record batches.
#[pyfunction]
#[pyo3(signature = (
    api_key=None, *, base_url=None, list_number=None, active=None, concurrency=8,
    per_page=1000, batch_size=None, on_invalid="fail", max_attempts=None,
    request_timeout=None, http_compression=true
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_contacts(
    py: Python<'_>,
    api_key: Option<String>,
    base_url: Option<String>,
    list_number: Option<&str>,
    active: Option<bool>,
    concurrency: usize,
    per_page: u32,
    batch_size: Option<usize>,
    on_invalid: &str,
    max_attempts: Option<u32>,
    request_timeout: Option<f64>,
    http_compression: bool,
) -> PyResult<ArrowStream> {
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
    let options = decoder_options(batch_size, invalid_policy(py, on_invalid)?);
    // The fetcher spawns its tasks as the stream is made.
    let _in_runtime = wait::runtime()?.enter();
    let mut batches = trackly_export::record_batches(&client, query, options)
        .map_err(|e| errors::to_py(py, &e))?
        .boxed();
    // The first batch (or the end, or the first error) before returning: failures that stop
    // every read raise here, as the package's exceptions.
    let first = match wait::block_on(py, batches.next())? {
        Some(Ok(batch)) => Some(batch),
        Some(Err(e)) => return Err(errors::to_py(py, &e)),
        None => None,
    };
    Ok(ArrowStream::new(
        "contacts",
        contacts_schema(),
        Source {
            first,
            rest: Some(batches),
            watch_ctrl_c: default_sigint(py)?,
        },
    ))
}

/// Every list of the account, deleted ones included, as an Arrow stream of one batch.
#[pyfunction]
#[pyo3(signature = (
    api_key=None, *, base_url=None, on_invalid="fail", max_attempts=None,
    request_timeout=None
))]
pub(crate) fn read_lists(
    py: Python<'_>,
    api_key: Option<String>,
    base_url: Option<String>,
    on_invalid: &str,
    max_attempts: Option<u32>,
    request_timeout: Option<f64>,
) -> PyResult<ArrowStream> {
    let client = ClientSettings {
        api_key,
        base_url,
        max_attempts,
        request_timeout,
        http_compression: true,
        ..ClientSettings::default()
    }
    .build(py)?;
    let options = decoder_options(None, invalid_policy(py, on_invalid)?);
    let read = wait::block_on(py, trackly_export::read_lists(&client, options))?;
    let (batch, _fetch) = read.map_err(|e| errors::to_py(py, &e))?;
    Ok(ArrowStream::new(
        "lists",
        lists_schema(),
        Source {
            first: Some(batch),
            rest: None,
            watch_ctrl_c: false,
        },
    ))
}

/// What is left to read of a stream.
struct Source {
    /// The batch read ahead, handed out first.
    first: Option<RecordBatch>,
    /// The rest; `None` once ended, failed or interrupted.
    rest: Option<BoxStream<'static, Result<RecordBatch, ExportError>>>,
    /// Whether Ctrl-C ends it (see the module docs).
    watch_ctrl_c: bool,
}

/// Record batches of one table, read once, through the Arrow PyCapsule interface.
#[pyclass(module = "trackly_export._native", name = "ArrowStream", frozen)]
pub struct ArrowStream {
    table: &'static str,
    schema: SchemaRef,
    source: Mutex<Option<Source>>,
}

impl ArrowStream {
    fn new(table: &'static str, schema: SchemaRef, source: Source) -> ArrowStream {
        ArrowStream {
            table,
            schema,
            source: Mutex::new(Some(source)),
        }
    }

    fn take(&self) -> Option<Source> {
        self.source
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

#[pymethods]
impl ArrowStream {
    /// The table: `"contacts"` or `"lists"`.
    #[getter]
    fn table(&self) -> &'static str {
        self.table
    }

    /// True until the stream has been handed to a reader (or closed).
    #[getter]
    fn readable(&self) -> bool {
        self.source
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some()
    }

    /// The schema, as an Arrow C schema capsule (`pyarrow.schema(stream)` reads it).
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = FFI_ArrowSchema::try_from(self.schema.as_ref())
            .map_err(|e| PyValueError::new_err(format!("cannot export the schema: {e}")))?;
        PyCapsule::new_with_value(py, schema, c"arrow_schema")
    }

    /// The batches, as an Arrow C stream capsule; a stream can be read once. A
    /// `requested_schema` is not applied: the interface lets a producer answer in its own
    /// schema, and this one has a single schema.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let source = self.take().ok_or_else(|| {
            PyValueError::new_err(format!(
                "this {} stream was read already: call read_{}() again for a new one",
                self.table, self.table
            ))
        })?;
        let reader = Blocking {
            source,
            schema: self.schema.clone(),
            runtime: wait::runtime()?,
        };
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }

    /// Ends the stream without reading it: requests in flight are cancelled.
    fn close(&self) {
        drop(self.take());
    }

    fn __repr__(&self) -> String {
        format!(
            "<trackly_export.ArrowStream {} ({} columns){}>",
            self.table,
            self.schema.fields().len(),
            if self.readable() { "" } else { ", read" }
        )
    }
}

/// One step of a blocking read.
enum Step {
    Item(Option<Result<RecordBatch, ExportError>>),
    Interrupted,
}

/// The stream as a blocking iterator, for the C stream interface.
struct Blocking {
    source: Source,
    schema: SchemaRef,
    runtime: &'static Runtime,
}

impl RecordBatchReader for Blocking {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Blocking {
    /// The next item of the rest, waiting on the runtime (with the GIL released on the main
    /// thread) and watching Ctrl-C when asked to.
    fn wait(&mut self) -> Step {
        let Some(rest) = self.source.rest.as_mut() else {
            return Step::Item(None);
        };
        let watch = self.source.watch_ctrl_c;
        let runtime = self.runtime;
        let read = move || {
            runtime.block_on(async move {
                if !watch {
                    return Step::Item(rest.next().await);
                }
                tokio::select! {
                    biased;
                    item = rest.next() => Step::Item(item),
                    Ok(()) = tokio::signal::ctrl_c() => Step::Interrupted,
                }
            })
        };
        let on_main = MAIN_THREAD.get() == Some(&std::thread::current().id());
        if on_main {
            Python::attach(|py| py.detach(read))
        } else {
            read()
        }
    }
}

impl Iterator for Blocking {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(batch) = self.source.first.take() {
            return Some(Ok(batch));
        }
        let failure = match self.wait() {
            Step::Item(Some(Ok(batch))) => return Some(Ok(batch)),
            Step::Item(None) => {
                self.source.rest = None;
                return None;
            }
            Step::Item(Some(Err(e))) => errors::describe(&e),
            Step::Interrupted => errors::describe_interrupted(),
        };
        // Dropping the stream cancels its requests; a failed stream does not go on.
        self.source.rest = None;
        Some(Err(ArrowError::ExternalError(failure.into())))
    }
}
