"""The in-process mock of the Trackly API, for your own tests.

It serves a deterministic, realistic data set on ``127.0.0.1`` (the same mock the Rust test
suite and ``trackly-export demo`` use), can inject faults, and tells what a complete read or
export must hold::

    import pyarrow as pa
    import trackly_export
    from trackly_export.mock import MockServer

    with MockServer(contacts=5_000) as mock:
        stream = trackly_export.read_contacts(mock.api_key, base_url=mock.base_url)
        table = pa.RecordBatchReader.from_stream(stream).read_all()
        assert table.num_rows == len(mock.ground_truth())
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Sequence

from trackly_export import _native

__all__ = ["MockServer"]


class MockServer:
    """A running mock API; a context manager that shuts it down on exit.

    :param contacts: contacts in the data set.
    :param seed: the data set's seed (the same seed gives the same bytes).
    :param lists: sending lists in the data set (the mock's default when ``None``).
    :param api_key: the only key the server accepts.
    :param latency_ms: delay before every answer.
    :param p_500: probability of an HTTP 500 ``internal_error`` answer.
    :param p_503: probability of an HTTP 503 ``service_unavailable`` answer.
    :param damaged: ``(position, kind)`` pairs: the contact at that position (newest first)
        carries JSON damage, ``"nan"``, ``"infinity"`` or ``"control_char"``.
    :param suspended: every request with the right key gets 403 "Account is suspended".
    :param lists_churn: the lists change under every read of them.
    :param lists_per_page: page ``/v2/lists`` with this many lists per page.
    :param fault_seed: seed of the fault draws.
    """

    def __init__(
        self,
        contacts: int = 1000,
        *,
        seed: int = 42,
        lists: int | None = None,
        api_key: str = "trk_test_key",
        latency_ms: int = 0,
        p_500: float = 0.0,
        p_503: float = 0.0,
        damaged: Sequence[tuple[int, str]] = (),
        suspended: bool = False,
        lists_churn: bool = False,
        lists_per_page: int | None = None,
        fault_seed: int = 1,
    ) -> None:
        self._server = _native.MockServer(
            contacts,
            seed=seed,
            lists=lists,
            api_key=api_key,
            latency_ms=latency_ms,
            p_500=p_500,
            p_503=p_503,
            damaged=list(damaged),
            suspended=suspended,
            lists_churn=lists_churn,
            lists_per_page=lists_per_page,
            fault_seed=fault_seed,
        )

    @property
    def base_url(self) -> str:
        """The base URL to pass as ``base_url`` (``http://127.0.0.1:PORT/api``)."""
        return self._server.base_url

    @property
    def api_key(self) -> str:
        """The key the server accepts (a test key)."""
        return self._server.api_key

    @property
    def contact_count(self) -> int:
        """Contacts in the data set now."""
        return self._server.contact_count

    def ground_truth(self, list_number: str | None = None, active: bool | None = None) -> list[dict[str, Any]]:
        """Every contact matching the filters, newest first, as the API serves it (parsed JSON)."""
        return [json.loads(line) for line in self.ground_truth_ndjson(list_number, active).splitlines()]

    def ground_truth_ndjson(self, list_number: str | None = None, active: bool | None = None) -> bytes:
        """:meth:`ground_truth` as the exact NDJSON text the server serves."""
        return self._server.ground_truth(list_number, active)

    def lists_ground_truth(self) -> list[dict[str, Any]]:
        """Every list, deleted ones included, in ``id`` order (parsed JSON)."""
        return [json.loads(line) for line in self._server.lists_ground_truth().splitlines()]

    def stats(self) -> dict[str, Any]:
        """The server's counters (requests by status, ...)."""
        return json.loads(self._server.stats_json())

    def close(self) -> None:
        """Stops the server; later calls do nothing."""
        self._server.shutdown()

    def __enter__(self) -> MockServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<trackly_export.mock.MockServer {self.base_url}>"
