"""read_contacts / read_lists through the Arrow PyCapsule interface, read by pyarrow, Polars and
DuckDB, against the mock's ground truth."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import polars as pl
import pyarrow as pa
import pytest

import trackly_export
from conftest import SECRET, keys
from trackly_export.mock import MockServer

CONTACTS = 5_000


@pytest.fixture(scope="module")
def mock():
    with MockServer(CONTACTS, seed=11, api_key=SECRET) as server:
        yield server


def read(mock, **kwargs):
    return trackly_export.read_contacts(SECRET, base_url=mock.base_url, per_page=500, batch_size=1000, **kwargs)


def test_pyarrow_reads_every_contact_once_batch_by_batch(mock):
    reader = pa.RecordBatchReader.from_stream(read(mock))
    batches = list(reader)
    assert len(batches) == CONTACTS // 1000
    assert all(b.num_rows == 1000 for b in batches)
    table = pa.Table.from_batches(batches)
    truth = mock.ground_truth()
    assert sorted(keys(table.select(["phone_number", "list_id"]).to_pylist())) == sorted(keys(truth))
    by_key = {(r["phone_number"], r["list_id"]): r for r in truth}
    for row in table.slice(0, 200).to_pylist():
        expected = by_key[(row["phone_number"], row["list_id"])]
        for column in ("carrier", "send_count", "click_count", "active", "in_workflow", "timezone"):
            assert row[column] == expected[column], column
        if expected["revenue_total"] is None:
            assert row["revenue_total"] is None
        else:
            assert row["revenue_total"] == Decimal(str(expected["revenue_total"]))


def test_the_schema_is_the_exports(mock):
    stream = read(mock)
    schema = pa.schema(stream)
    assert schema.field("revenue_total").type == pa.decimal128(18, 4)
    assert schema.field("custom_fields").type == pa.map_(pa.string(), pa.string())
    table = pa.RecordBatchReader.from_stream(stream).read_all()
    assert table.schema == schema


def test_polars_reads_the_stream(mock):
    frame = pl.DataFrame(read(mock))
    assert frame.height == CONTACTS
    truth = mock.ground_truth()
    assert frame["send_count"].sum() == sum(r["send_count"] for r in truth)
    frame2 = pl.from_arrow(pa.RecordBatchReader.from_stream(read(mock, active=True)))
    assert frame2.height == len(mock.ground_truth(active=True))


def test_duckdb_queries_the_stream(mock):
    stream = read(mock)
    [(count, clicks)] = duckdb.sql("select count(*), sum(click_count) from stream").fetchall()
    truth = mock.ground_truth()
    assert count == CONTACTS
    assert clicks == sum(r["click_count"] for r in truth)


def test_filters_match_the_ground_truth_of_the_same_filters(mock):
    number = mock.ground_truth()[0]["list_number"]
    table = pa.RecordBatchReader.from_stream(read(mock, list_number=number, active=False)).read_all()
    assert sorted(keys(table.to_pylist())) == sorted(keys(mock.ground_truth(number, False)))


def test_read_lists_has_every_list(mock):
    table = pa.RecordBatchReader.from_stream(trackly_export.read_lists(SECRET, base_url=mock.base_url)).read_all()
    assert sorted(table.column("id").to_pylist()) == sorted(l["id"] for l in mock.lists_ground_truth())


def test_a_stream_is_read_once(mock):
    stream = read(mock)
    assert stream.readable
    pa.RecordBatchReader.from_stream(stream).read_all()
    assert not stream.readable
    with pytest.raises(ValueError, match="read already"):
        pa.RecordBatchReader.from_stream(stream)
    closed = read(mock)
    closed.close()
    assert not closed.readable


def test_the_key_is_never_in_a_repr(mock):
    stream = read(mock)
    assert SECRET not in repr(stream)
    assert "contacts" in repr(stream)
    stream.close()


def test_the_key_comes_from_the_environment(mock, monkeypatch):
    monkeypatch.setenv("TRACKLY_API_KEY", SECRET)
    monkeypatch.setenv("TRACKLY_BASE_URL", mock.base_url)
    table = pa.RecordBatchReader.from_stream(trackly_export.read_contacts()).read_all()
    assert table.num_rows == CONTACTS


def test_an_error_after_the_first_batch_ends_the_stream_loudly():
    # Damage deep in the listing: the first batches are fine, then the reader raises.
    with MockServer(3000, api_key=SECRET, damaged=[(2500, "control_char")]) as mock:
        stream = trackly_export.read_contacts(SECRET, base_url=mock.base_url, per_page=500, batch_size=500)
        reader = pa.RecordBatchReader.from_stream(stream)
        rows = 0
        with pytest.raises(pa.ArrowException) as raised:
            for batch in reader:
                rows += batch.num_rows
        assert rows < 3000
        assert "trackly_export.InvalidDataError (exit code 6)" in str(raised.value)
        assert SECRET not in str(raised.value)
