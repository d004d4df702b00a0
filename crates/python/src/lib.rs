//! The native part of the Python package `trackly_export` (built by maturin from
//! `crates/python/pyproject.toml` into an abi3 wheel for CPython 3.10 and later).
//!
//! It is a thin layer over the `trackly-export` crate and adds no behaviour of its own:
//!
//! - `cli_main(argv)`: the `trackly-export` console script, which runs
//!   [`trackly_export::cli::run`], the same code as the cargo-built binary;
//! - `read_contacts(...)` / `read_lists(...)`: an [`ArrowStream`](stream::ArrowStream) of
//!   record batches that implements the Arrow PyCapsule stream interface
//!   (`__arrow_c_stream__`, `__arrow_c_schema__`), read by pyarrow, Polars and DuckDB without
//!   copies;
//! - `export(output, ...)`: [`trackly_export::Export`], returning an
//!   [`ExportSummary`](export::ExportSummary);
//! - `MockServer`: the in-process mock API of `trackly-mock`, for tests.
//!
//! The Python side (`python/trackly_export`) holds the exception classes, the context manager
//! of the mock, the console script's two lines, and the type stubs.
//!
//! # Waiting, the GIL and signals
//!
//! Every call that waits on the network releases the GIL. Calls made from Python
//! ([`wait::block_on`]) wake every 50 ms to run Python's signal handlers, so Ctrl-C raises
//! `KeyboardInterrupt` (an export stops cleanly first and raises `Interrupted`). A stream read
//! through the C interface by pyarrow, Polars or DuckDB is read from their code, possibly off
//! the main thread: there Ctrl-C ends the stream with an error (see [`stream`]).

// The crate is a Python extension, not a Rust library: its docs are for its maintainers and
// link to the private modules they describe.
#![allow(rustdoc::private_intra_doc_links)]

mod errors;
mod export;
mod mock;
mod stream;
mod wait;

use pyo3::prelude::*;

/// The `trackly-export` command with `argv` (`sys.argv`: the program name first); returns the
/// exit code. Python's handlers of SIGINT and SIGTERM are reset to the defaults first, so that
/// Ctrl-C and SIGTERM behave as for the binary (the CLI installs its own handlers while an
/// export runs). Runs with the GIL released.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> PyResult<u8> {
    let signal = py.import("signal")?;
    for name in ["SIGINT", "SIGTERM"] {
        let number = signal.getattr(name)?;
        // Only the main thread may set handlers; elsewhere Python's stay as they are.
        if let Err(e) = signal.call_method1("signal", (number, signal.getattr("SIG_DFL")?))
            && !e.is_instance_of::<pyo3::exceptions::PyValueError>(py)
        {
            return Err(e);
        }
    }
    Ok(py.detach(move || trackly_export::cli::run(argv)))
}

/// The extension module `trackly_export._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    stream::note_main_thread();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(stream::read_contacts, m)?)?;
    m.add_function(wrap_pyfunction!(stream::read_lists, m)?)?;
    m.add_function(wrap_pyfunction!(export::export, m)?)?;
    m.add_class::<stream::ArrowStream>()?;
    m.add_class::<export::ExportSummary>()?;
    m.add_class::<export::TableSummary>()?;
    m.add_class::<export::FileInfo>()?;
    m.add_class::<export::FetchStats>()?;
    m.add_class::<mock::MockServer>()?;
    Ok(())
}
