"""The README's Python examples, run as written against the installed wheel.

Each ```python block of the README's "Python" section is found by what it does and run in a
fresh namespace. The key and the base URL come from the environment (TRACKLY_API_KEY,
TRACKLY_BASE_URL), pointed at the in-process mock, as a job's would be pointed at the API. The
export example is run with its location and storage options replaced by moto's (the one change:
`s3://my-lake/trackly` on an internal MinIO is not reachable from here). The Airflow DAG is only
compiled: Airflow is not installed in the test venv (it would pull in a web framework and a
database driver for one syntax check).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

from trackly_export.mock import MockServer

README = Path(__file__).resolve().parents[3] / "README.md"


def python_blocks() -> list[str]:
    text = README.read_text()
    start = text.index("\n## Python\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


def block(containing: str) -> str:
    found = [b for b in python_blocks() if containing in b]
    assert len(found) == 1, f"{len(found)} README Python blocks contain {containing!r}"
    return found[0]


@pytest.fixture
def api_env(monkeypatch):
    with MockServer(2_000, seed=3) as server:
        monkeypatch.setenv("TRACKLY_API_KEY", server.api_key)
        monkeypatch.setenv("TRACKLY_BASE_URL", server.base_url)
        yield server


def test_the_readme_has_the_examples_these_tests_run():
    assert len(python_blocks()) == 4


def test_the_stream_example_runs_as_written(api_env):
    namespace: dict = {}
    exec(compile(block("read_contacts(active=True)"), "README.md (stream)", "exec"), namespace)
    lists = namespace["lists"]
    assert lists.num_rows > 0
    assert namespace["df"].columns  # the Polars frame has the export's columns


def test_the_export_example_runs_with_moto_as_the_location(api_env):
    endpoint = os.environ["TRACKLY_TEST_S3_ENDPOINT"]  # set by scripts/test.sh: no skip
    bucket = os.environ["TRACKLY_TEST_S3_BUCKET"]
    code = block('table_format="delta"')
    location = f"s3://{bucket}/readme/{uuid.uuid4()}"
    assert '"s3://my-lake/trackly"' in code
    code = code.replace('"s3://my-lake/trackly"', repr(location))
    options = re.search(r"storage_options=(\{.*?\}),", code)
    assert options, "the export example sets storage_options"
    ours = {
        "aws_region": "us-east-1",
        "aws_endpoint_url": endpoint,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    code = code.replace(options.group(1), repr(ours))
    namespace: dict = {}
    exec(compile(code, "README.md (export)", "exec"), namespace)
    summary = namespace["summary"]
    assert summary.rows == 2_000
    assert summary.extract_date.isoformat() == "2026-11-27"
    assert {t.table for t in summary.tables} == {"contacts", "lists"}


def test_the_mock_example_runs_as_written():
    exec(compile(block("from trackly_export.mock import MockServer"), "README.md (mock)", "exec"), {})


def test_the_airflow_example_compiles():
    compile(block("from airflow.decorators import dag, task"), "README.md (Airflow)", "exec")
