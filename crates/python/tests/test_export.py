"""export(): the CLI's export from Python, its typed summary, Delta Lake, and S3 through
storage_options (moto on loopback, started by scripts/test.sh)."""

from __future__ import annotations

import datetime
import os
import uuid

import deltalake
import pyarrow.dataset as ds
import pytest

import trackly_export
from conftest import SECRET, keys
from trackly_export.mock import MockServer


@pytest.fixture(scope="module")
def mock():
    with MockServer(3000, seed=5, api_key=SECRET) as server:
        yield server


def test_export_returns_a_typed_summary(mock, tmp_path):
    summary = trackly_export.export(
        tmp_path / "lake", api_key=SECRET, base_url=mock.base_url, extract_date=datetime.date(2026, 11, 27)
    )
    assert isinstance(summary, trackly_export.ExportSummary)
    assert summary.rows == 3000
    assert summary.extract_date == datetime.date(2026, 11, 27)
    assert uuid.UUID(summary.run_id).version == 7
    assert summary.fetch.contacts == 3000
    assert summary.fetch.requests >= 3
    assert summary.fetch.reconciled is True
    assert sorted(t.table for t in summary.tables) == ["contacts", "lists"]
    assert sum(f.rows for f in summary.files) == 3000
    assert summary.bytes == sum(f.bytes for f in summary.files) > 0
    [lists] = [t for t in summary.tables if t.table == "lists"]
    assert lists.rows == len(mock.lists_ground_truth())
    as_dict = summary.to_dict()
    assert as_dict["run_id"] == summary.run_id and as_dict["rows"] == 3000
    assert SECRET not in repr(summary) and SECRET not in str(as_dict)
    rows = ds.dataset(tmp_path / "lake" / "contacts", format="parquet", partitioning="hive").to_table().to_pylist()
    assert sorted(keys(rows)) == sorted(keys(mock.ground_truth()))
    assert all(f.path.startswith("contacts/extract_date=2026-11-27/") for f in summary.files)


def test_tables_and_filters(mock, tmp_path):
    number = mock.ground_truth()[0]["list_number"]
    summary = trackly_export.export(
        str(tmp_path / "lake"), api_key=SECRET, base_url=mock.base_url, tables=["contacts"],
        list_number=number, active=True, extract_date="2026-12-01",
    )
    assert [t.table for t in summary.tables] == ["contacts"]
    assert summary.rows == len(mock.ground_truth(number, True))
    lists_only = trackly_export.export(tmp_path / "lake2", api_key=SECRET, base_url=mock.base_url, tables="lists")
    assert lists_only.rows == 0 and [t.table for t in lists_only.tables] == ["lists"]


def test_delta_lake_tables(mock, tmp_path):
    summary = trackly_export.export(tmp_path / "lake", api_key=SECRET, base_url=mock.base_url, table_format="delta")
    assert summary.rows == 3000
    assert (tmp_path / "lake" / "contacts" / "_delta_log").is_dir()
    table = deltalake.DeltaTable(str(tmp_path / "lake" / "contacts")).to_pyarrow_table()
    assert sorted(keys(table.select(["phone_number", "list_id"]).to_pylist())) == sorted(keys(mock.ground_truth()))


def test_storage_options_reach_s3(mock):
    endpoint = os.environ["TRACKLY_TEST_S3_ENDPOINT"]  # set by scripts/test.sh: no skip
    bucket = os.environ["TRACKLY_TEST_S3_BUCKET"]
    prefix = f"python/{uuid.uuid4()}"
    summary = trackly_export.export(
        f"s3://{bucket}/{prefix}",
        api_key=SECRET,
        base_url=mock.base_url,
        storage_options={
            "aws_endpoint_url": endpoint,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "aws_region": "us-east-1",
        },
    )
    assert summary.rows == 3000
    import boto3  # moto[server] brings it

    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/contacts/")
    names = [o["Key"] for o in listed.get("Contents", [])]
    assert any(n.endswith(".parquet") for n in names)
    assert any(n.endswith("_SUCCESS") for n in names)
