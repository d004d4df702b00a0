"""Type stubs of the extension module ``trackly_export._native`` (the Rust part)."""

import datetime
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal, final

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

    @property
    def table(self) -> Literal["contacts", "lists"]:
        """The table."""
    @property
    def readable(self) -> bool:
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

    @property
    def path(self) -> str: ...
    @property
    def rows(self) -> int: ...
    @property
    def bytes(self) -> int: ...

@final
class FetchStats:
    """What a table's requests cost and found."""

    @property
    def requests(self) -> int: ...
    @property
    def pages(self) -> int: ...
    @property
    def contacts(self) -> int: ...
    @property
    def retries(self) -> int: ...
    @property
    def wire_bytes(self) -> int: ...
    @property
    def body_bytes(self) -> int: ...
    @property
    def verification_reads(self) -> int: ...
    @property
    def drift_events(self) -> int: ...
    @property
    def duplicates_dropped(self) -> int: ...
    @property
    def reconciled(self) -> bool | None: ...

@final
class TableSummary:
    """One table of a run."""

    @property
    def table(self) -> Literal["contacts", "lists"]: ...
    @property
    def rows(self) -> int: ...
    @property
    def files(self) -> list[FileInfo]: ...
    @property
    def bytes(self) -> int: ...
    @property
    def rejects(self) -> int: ...
    @property
    def manifest_path(self) -> str: ...
    @property
    def fetch(self) -> FetchStats: ...

@final
class ExportSummary:
    """The summary of an export (what the CLI prints at its end)."""

    @property
    def run_id(self) -> str: ...
    @property
    def extract_date(self) -> datetime.date: ...
    @property
    def seconds(self) -> float: ...
    @property
    def rows(self) -> int:
        """Contacts written."""
    @property
    def files(self) -> list[FileInfo]:
        """The contacts files published."""
    @property
    def bytes(self) -> int: ...
    @property
    def rejects(self) -> int: ...
    @property
    def unknown_fields(self) -> int: ...
    @property
    def rounded_values(self) -> int: ...
    @property
    def fetch(self) -> FetchStats:
        """The contacts' requests."""
    @property
    def tables(self) -> list[TableSummary]: ...
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
    @property
    def base_url(self) -> str: ...
    @property
    def api_key(self) -> str: ...
    @property
    def contact_count(self) -> int: ...
    def ground_truth(self, list_number: str | None = None, active: bool | None = None) -> bytes: ...
    def lists_ground_truth(self) -> bytes: ...
    def stats_json(self) -> str: ...
    def shutdown(self) -> None: ...
