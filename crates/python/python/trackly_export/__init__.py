"""Export every contact from the Trackly SMS API, from Python.

- :func:`read_contacts` and :func:`read_lists` return an :class:`ArrowStream`, which implements
  the Arrow PyCapsule stream interface: ``pyarrow.RecordBatchReader.from_stream(stream)``,
  ``polars.DataFrame(stream)`` and ``duckdb.sql("from stream")`` read it batch by batch, without
  copies, in bounded memory.
- :func:`export` runs the same export as ``trackly-export export`` (Parquet or Delta Lake, on
  local disk or S3) and returns an :class:`ExportSummary`.
- Failures raise a subclass of :class:`TracklyExportError`, one per exit code of the CLI.
- :mod:`trackly_export.mock` starts the in-process mock API, for tests.

The API key comes from the ``api_key`` argument or, when it is ``None``, from
``TRACKLY_API_KEY``; it never appears in a ``repr`` or an exception. Every call releases the GIL
while it waits, and Ctrl-C interrupts it.

The ``trackly-export`` command installed with the package is the Rust CLI itself.
"""

from __future__ import annotations

from trackly_export import _errors
from trackly_export._errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    IncompleteError,
    InvalidDataError,
    Interrupted,
    StorageError,
    TracklyExportError,
)
from trackly_export._native import (
    ArrowStream,
    ExportSummary,
    FetchStats,
    FileInfo,
    TableSummary,
    __version__,
    export,
    read_contacts,
    read_lists,
)

__all__ = [
    "__version__",
    "read_contacts",
    "read_lists",
    "export",
    "ArrowStream",
    "ExportSummary",
    "TableSummary",
    "FileInfo",
    "FetchStats",
    *_errors.__all__,
]
