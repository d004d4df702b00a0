//! Library errors as the package's exceptions (`trackly_export._errors`): one class per exit
//! code of the CLI, each with the API's `code` and `error` where the API said them.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use trackly_export::{ErrorKind, ExportError};

/// The exception class of an error of this kind, as named in `trackly_export._errors`, and the
/// CLI's exit code for it.
fn class_of(kind: ErrorKind) -> (&'static str, u8) {
    use trackly_export::cli::exit;
    match kind {
        ErrorKind::Config => ("ConfigurationError", exit::CONFIG),
        ErrorKind::Auth => ("AuthenticationError", exit::AUTH),
        ErrorKind::Storage => ("StorageError", exit::STORAGE),
        ErrorKind::InvalidData => ("InvalidDataError", exit::INVALID_DATA),
        ErrorKind::Incomplete => ("IncompleteError", exit::INCOMPLETE),
        ErrorKind::Interrupted => ("Interrupted", exit::INTERRUPTED),
        // `Api`, and any kind added later: the CLI maps those to exit code 4 too.
        _ => ("ApiError", exit::API),
    }
}

/// The text a stream ends with when `error` stops it (the reader raises its own exception
/// with it): the package's class, the exit code and the message.
pub(crate) fn describe(error: &ExportError) -> String {
    let (class, code) = class_of(error.kind());
    format!(
        "trackly_export.{class} (exit code {code}): {}",
        one_line(error)
    )
}

/// The text a stream ends with when Ctrl-C stops it.
pub(crate) fn describe_interrupted() -> String {
    format!(
        "trackly_export.Interrupted (exit code {}): the read was stopped by Ctrl-C; its requests were cancelled",
        trackly_export::cli::exit::INTERRUPTED
    )
}

/// The error and its causes on one line, each cause once (the CLI's format: many layers quote
/// their cause in their own message already). The API key is never part of it: the library
/// redacts it from every URL and error.
pub(crate) fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    line
}

/// The Python exception for `error`.
pub(crate) fn to_py(py: Python<'_>, error: &ExportError) -> PyErr {
    let api = match error {
        ExportError::Fetch(fetch) => fetch.api_error(),
        _ => None,
    };
    raise(
        py,
        class_of(error.kind()).0,
        &one_line(error),
        api.and_then(|a| a.code.as_deref()),
        api.and_then(|a| a.error.as_deref()),
    )
}

/// An instance of `trackly_export._errors.<class>` as a `PyErr` (or the error met making it).
pub(crate) fn raise(
    py: Python<'_>,
    class: &str,
    message: &str,
    code: Option<&str>,
    api_error: Option<&str>,
) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let class = py.import("trackly_export._errors")?.getattr(class)?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("code", code)?;
        kwargs.set_item("error", api_error)?;
        Ok(PyErr::from_value(class.call((message,), Some(&kwargs))?))
    })();
    made.unwrap_or_else(|e| e)
}

/// A configuration error found before the library runs (a bad argument).
pub(crate) fn config(py: Python<'_>, message: impl AsRef<str>) -> PyErr {
    raise(py, "ConfigurationError", message.as_ref(), None, None)
}
