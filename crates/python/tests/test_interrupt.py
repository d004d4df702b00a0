"""Ctrl-C and the GIL: a read or an export waits with the GIL released and stops on SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import pyarrow as pa

import trackly_export
from conftest import SECRET, wait_for
from trackly_export.mock import MockServer


def start(script: str, mock: MockServer, tmp_path) -> subprocess.Popen:
    code = textwrap.dedent(script).replace("BASE_URL", mock.base_url).replace("SECRET", SECRET)
    code = code.replace("OUT", str(tmp_path / "lake"))
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def interrupt_once_reading(proc: subprocess.Popen, mock: MockServer, ready: bool = False) -> tuple[str, str, float]:
    """SIGINT once the script has made requests (and, with `ready`, printed its first line)."""
    wait_for(lambda: mock.stats().get("requests", 0) >= 4, what="the first requests")
    if ready:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "reading"
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    return stdout, stderr, time.monotonic() - sent


def test_ctrl_c_stops_a_pyarrow_read(tmp_path):
    # pyarrow reads the stream with the GIL released; Ctrl-C ends the stream (pyarrow raises
    # its ArrowInvalid, naming trackly_export.Interrupted) and Python's KeyboardInterrupt
    # follows at once, from the handler that ran with ours.
    with MockServer(50_000, api_key=SECRET, latency_ms=300) as mock:
        proc = start(
            """
            import time, pyarrow as pa, trackly_export
            s = trackly_export.read_contacts("SECRET", base_url="BASE_URL", per_page=100, concurrency=2, batch_size=100)
            print("reading", flush=True)
            rows = 0
            try:
                try:
                    for batch in pa.RecordBatchReader.from_stream(s):
                        rows += batch.num_rows
                except pa.ArrowException as e:
                    print("ArrowException:", e, flush=True)
                    time.sleep(5)
            except KeyboardInterrupt:
                print("KeyboardInterrupt after", rows, "rows", flush=True)
            """,
            mock,
            tmp_path,
        )
        stdout, stderr, took = interrupt_once_reading(proc, mock, ready=True)
    assert took < 10, (stdout, stderr)
    assert "KeyboardInterrupt after" in stdout, (stdout, stderr)
    assert int(stdout.split("KeyboardInterrupt after")[1].split()[0]) < 50_000
    if "ArrowException" in stdout:
        assert "trackly_export.Interrupted (exit code 130)" in stdout, stdout
    assert SECRET not in stdout + stderr


def test_ctrl_c_stops_an_export_and_raises_interrupted(tmp_path):
    with MockServer(50_000, api_key=SECRET, latency_ms=300) as mock:
        proc = start(
            """
            import trackly_export
            try:
                trackly_export.export("OUT", api_key="SECRET", base_url="BASE_URL", per_page=100, concurrency=2)
            except trackly_export.Interrupted as e:
                print("Interrupted", e.exit_code, type(e.__cause__).__name__)
            """,
            mock,
            tmp_path,
        )
        stdout, stderr, took = interrupt_once_reading(proc, mock)
    assert proc.returncode == 0, stderr
    assert stdout.split() == ["Interrupted", "130", "KeyboardInterrupt"], (stdout, stderr)
    assert took < 10
    assert not list((tmp_path / "lake").rglob("_SUCCESS"))


def test_ctrl_c_while_waiting_for_the_first_batch_raises_keyboard_interrupt(tmp_path):
    with MockServer(1000, api_key=SECRET, latency_ms=20_000) as mock:
        proc = start(
            """
            import trackly_export
            try:
                trackly_export.read_contacts("SECRET", base_url="BASE_URL")
            except KeyboardInterrupt:
                print("KeyboardInterrupt")
            """,
            mock,
            tmp_path,
        )
        wait_for(lambda: mock.stats().get("requests", 0) >= 1, what="the first request")
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert stdout.strip() == "KeyboardInterrupt", stderr


def test_other_threads_run_while_a_read_waits():
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    with MockServer(2000, api_key=SECRET, latency_ms=500) as mock:
        thread = threading.Thread(target=count)
        thread.start()
        try:
            started = time.monotonic()
            stream = trackly_export.read_contacts(SECRET, base_url=mock.base_url, per_page=1000, concurrency=1)
            table = pa.RecordBatchReader.from_stream(stream).read_all()
            took = time.monotonic() - started
        finally:
            stop.set()
            thread.join()
    assert table.num_rows == 2000
    assert took >= 1.0
    # The counting thread ran all along (at 1 ms sleeps, up to ~1000/s; a held GIL would leave
    # it a few ticks between the waits).
    assert ticks > 50 * took, (ticks, took)
