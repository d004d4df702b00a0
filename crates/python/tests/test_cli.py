"""The `trackly-export` command from the wheel, run with no Rust on PATH: subcommands, exit
codes, signals, and the key never printed."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from conftest import SECRET, keys, run, wait_for
from trackly_export.mock import MockServer


def lake_rows(lake: Path, table: str = "contacts"):
    dataset = ds.dataset(lake / table, format="parquet", partitioning="hive")
    return dataset.to_table().to_pylist()


def test_demo_writes_a_lake(cli, no_rust_env, tmp_path):
    out = run([cli, "demo", "--contacts", "3000", "--output", str(tmp_path / "lake")], no_rust_env)
    assert out.returncode == 0, out.stderr
    assert "Query it with DuckDB" in out.stdout
    assert len(lake_rows(tmp_path / "lake")) == 3000
    assert list((tmp_path / "lake" / "contacts").rglob("_SUCCESS"))


def test_export_matches_the_ground_truth(cli, no_rust_env, tmp_path):
    with MockServer(4000, seed=3, api_key=SECRET) as mock:
        env = dict(no_rust_env, TRACKLY_API_KEY=SECRET, TRACKLY_BASE_URL=mock.base_url)
        out = run([cli, "export", "-o", str(tmp_path / "lake"), "--per-page", "500"], env)
        assert out.returncode == 0, out.stderr
        rows = lake_rows(tmp_path / "lake")
        assert sorted(keys(rows)) == sorted(keys(mock.ground_truth()))
        assert len(lake_rows(tmp_path / "lake", "lists")) == len(mock.lists_ground_truth())
        assert SECRET not in out.stdout + out.stderr
        assert "exported 4000 contacts" in out.stderr


def test_schema_prints_to_stdout(cli, no_rust_env):
    out = run([cli, "schema", "--format", "duckdb", "--table", "contacts"], no_rust_env)
    assert out.returncode == 0, out.stderr
    assert "CREATE TABLE contacts" in out.stdout


def test_usage_errors_exit_2(cli, no_rust_env):
    out = run([cli, "export", "--no-such-flag"], no_rust_env)
    assert out.returncode == 2
    assert "--no-such-flag" in out.stderr
    missing_key = run([cli, "export", "-o", "/tmp/never-written"], no_rust_env)
    assert missing_key.returncode == 2, missing_key.stderr


def export_exit(cli, env, mock, out_dir, *extra) -> subprocess.CompletedProcess:
    env = dict(env, TRACKLY_BASE_URL=mock.base_url)
    return run([cli, "export", "-o", str(out_dir), *extra], env)


def test_a_refused_key_exits_3_without_printing_it(cli, no_rust_env, tmp_path):
    with MockServer(100, api_key="trk_other") as mock:
        out = export_exit(cli, dict(no_rust_env, TRACKLY_API_KEY=SECRET), mock, tmp_path / "lake")
    assert out.returncode == 3, out.stderr
    assert "Invalid API key" in out.stderr
    assert SECRET not in out.stdout + out.stderr
    json_out = None
    with MockServer(100, api_key="trk_other") as mock:
        json_out = export_exit(
            cli, dict(no_rust_env, TRACKLY_API_KEY=SECRET), mock, tmp_path / "lake", "--log-format", "json"
        )
    assert json_out.returncode == 3
    assert '"api_code":"invalid_api_key"' in json_out.stderr
    assert SECRET not in json_out.stdout + json_out.stderr


def test_api_failures_exit_4_with_the_api_code(cli, no_rust_env, tmp_path):
    with MockServer(100, api_key=SECRET, p_500=1.0) as mock:
        out = export_exit(
            cli, dict(no_rust_env, TRACKLY_API_KEY=SECRET), mock, tmp_path / "lake",
            "--max-attempts", "1", "--log-format", "json",
        )
    assert out.returncode == 4, out.stderr
    assert '"api_code":"internal_error"' in out.stderr


def test_storage_failures_exit_5(cli, no_rust_env, tmp_path):
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "contacts").write_text("a file where the table's folder goes")
    with MockServer(100, api_key=SECRET) as mock:
        out = export_exit(cli, dict(no_rust_env, TRACKLY_API_KEY=SECRET), mock, lake)
    assert out.returncode == 5, out.stderr


def test_invalid_data_exits_6(cli, no_rust_env, tmp_path):
    with MockServer(100, api_key=SECRET, damaged=[(10, "nan")]) as mock:
        out = export_exit(cli, dict(no_rust_env, TRACKLY_API_KEY=SECRET), mock, tmp_path / "lake")
    assert out.returncode == 6, out.stderr


def test_an_unprovable_export_exits_7(cli, no_rust_env, tmp_path):
    with MockServer(300, api_key=SECRET, lists=9, lists_churn=True, lists_per_page=2) as mock:
        out = export_exit(cli, dict(no_rust_env, TRACKLY_API_KEY=SECRET), mock, tmp_path / "lake")
    assert out.returncode == 7, out.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_an_export_with_130_and_publishes_nothing(cli, no_rust_env, tmp_path, signum):
    lake = tmp_path / "lake"
    with MockServer(20_000, api_key=SECRET, latency_ms=300) as mock:
        env = dict(no_rust_env, TRACKLY_API_KEY=SECRET, TRACKLY_BASE_URL=mock.base_url)
        proc = subprocess.Popen(
            [cli, "export", "-o", str(lake), "--per-page", "100", "--concurrency", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Once pages are being requested, the export is running (the handlers are installed).
        wait_for(lambda: mock.stats().get("requests", 0) >= 4, what="the export's first requests")
        started = time.monotonic()
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr
        assert time.monotonic() - started < 15
        assert "interrupted" in stderr
        assert not list(lake.rglob("_SUCCESS"))
