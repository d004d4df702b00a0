"""Type stubs of the extension module ``trackly_export._native`` (the Rust part)."""

import datetime
import os
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, final

__version__: str

def cli_main(argv: Sequence[str]) -> int:
    """Runs the ``trackly-export`` command with ``argv`` (program name first); returns its exit
    code. Resets Python's SIGINT/SIGTERM handlers to the defaults first (main thread)."""

@final
class ArrowStream:
    """Record batches of one table, read once, through the Arrow PyCapsule stream interface.

    ``pyarrow.RecordBatchReader.from_stream(s)``, ``polars.DataFrame(s)`` and
    ``duckdb.sql("from s")`` read it without copies. An error after the first batch ends the
    stream with an error the reader raises, whose text starts with the package's class name
    (``trackly_export.IncompleteError (exit code 7): ...``)."""

    table: Final[Literal["contacts", "lists"]]
    """The table."""
    readable: Final[bool]
    """True until the stream was handed to a reader, or closed."""
    def __arrow_c_schema__(self) -> object:
        """The schema as an Arrow C schema PyCapsule."""
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The batches as an Arrow C stream PyCapsule (once)."""
    def close(self) -> None:
        """Ends the stream without reading it; requests in flight are cancelled."""

@final
class FileInfo:
    """One published file."""

    path: Final[str]
    rows: Final[int]
    bytes: Final[int]

@final
class FetchStats:
    """What a table's requests cost and found."""

    requests: Final[int]
    pages: Final[int]
    contacts: Final[int]
    retries: Final[int]
    wire_bytes: Final[int]
    body_bytes: Final[int]
    verification_reads: Final[int]
    drift_events: Final[int]
    duplicates_dropped: Final[int]
    reconciled: Final[bool | None]

@final
class TableSummary:
    """One table of a run."""

    table: Final[Literal["contacts", "lists"]]
    rows: Final[int]
    files: Final[list[FileInfo]]
    bytes: Final[int]
    rejects: Final[int]
    manifest_path: Final[str]
    fetch: Final[FetchStats]

@final
class ExportSummary:
    """The summary of an export (what the CLI prints at its end)."""

    run_id: Final[str]
    extract_date: Final[datetime.date]
    seconds: Final[float]
    rows: Final[int]
    """Contacts written."""
    files: Final[list[FileInfo]]
    """The contacts files published."""
    bytes: Final[int]
    rejects: Final[int]
    unknown_fields: Final[int]
    rounded_values: Final[int]
    fetch: Final[FetchStats]
    """The contacts' requests."""
    tables: Final[list[TableSummary]]
    def to_dict(self) -> dict[str, Any]:
        """Every field of the summary as plain Python values."""

def read_contacts(
    api_key: str | None = None,
    *,
    base_url: str | None = None,
    list_number: str | None = None,
    active: bool | None = None,
    concurrency: int = 8,
    per_page: int = 1000,
    batch_size: int | None = None,
    on_invalid: Literal["fail", "quarantine"] = "fail",
    max_attempts: int | None = None,
    request_timeout: float | None = None,
    http_compression: bool = True,
) -> ArrowStream:
    """Every contact matching the filters as an Arrow stream; waits for the first batch, so a
    refused key or a bad setting raises here. The key and base URL default to
    ``TRACKLY_API_KEY`` and ``TRACKLY_BASE_URL`` (then the real API)."""

def read_lists(
    api_key: str | None = None,
    *,
    base_url: str | None = None,
    on_invalid: Literal["fail", "quarantine"] = "fail",
    max_attempts: int | None = None,
    request_timeout: float | None = None,
) -> ArrowStream:
    """Every list of the account, deleted ones included, as an Arrow stream (one batch)."""

def export(
    output: str | os.PathLike[str],
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    tables: str | Sequence[Literal["contacts", "lists"]] | None = None,
    table_format: Literal["parquet", "delta"] = "parquet",
    storage_options: Mapping[str, str] | None = None,
    list_number: str | None = None,
    active: bool | None = None,
    extract_date: datetime.date | str | None = None,
    resume: bool = False,
    retain_days: int | None = None,
    concurrency: int = 8,
    per_page: int = 1000,
    batch_size: int | None = None,
    on_invalid: Literal["fail", "quarantine"] = "fail",
    max_attempts: int | None = None,
    request_timeout: float | None = None,
    http_compression: bool = True,
) -> ExportSummary:
    """Runs the export the CLI runs and returns its summary."""

class MockServer:
    # The typed, documented signature is trackly_export.mock.MockServer's, which wraps this one.
    def __init__(self, contacts: int = 1000, **options: Any) -> None: ...
    base_url: Final[str]
    api_key: Final[str]
    contact_count: Final[int]
    def ground_truth(self, list_number: str | None = None, active: bool | None = None) -> bytes: ...
    def lists_ground_truth(self) -> bytes: ...
    def stats_json(self) -> str: ...
    def shutdown(self) -> None: ...
