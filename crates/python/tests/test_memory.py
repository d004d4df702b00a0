"""Bounded memory: the peak RSS of a process reading a 1M-contact stream through pyarrow, batch
by batch, stays near that of a 100k one (the mock runs in a process of its own: the CLI's
`mock-server`). The numbers are printed for BENCHMARKS.md."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from conftest import SECRET

READER = textwrap.dedent(
    """
    import resource, sys, time, pyarrow as pa, trackly_export
    started = time.monotonic()
    stream = trackly_export.read_contacts(sys.argv[1], base_url=sys.argv[2])
    rows = 0
    for batch in pa.RecordBatchReader.from_stream(stream):
        rows += batch.num_rows
    took = time.monotonic() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(rows, f"{peak_mib:.1f}", f"{took:.2f}")
    """
)

BIG = int(os.environ.get("TRACKLY_TEST_STREAM_CONTACTS", "1000000"))


def read_through_mock(cli: str, env: dict[str, str], contacts: int) -> tuple[int, float, float]:
    server = subprocess.Popen(
        [cli, "mock-server", "--port", "0", "--contacts", str(contacts), "--api-key", SECRET],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        out = subprocess.run(
            [sys.executable, "-c", READER, SECRET, url], env=env, capture_output=True, text=True, timeout=1800
        )
        assert out.returncode == 0, out.stderr
        rows, peak, took = out.stdout.split()
        return int(rows), float(peak), float(took)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_big_stream_reads_in_bounded_memory(cli, no_rust_env):
    small_rows, small_peak, small_took = read_through_mock(cli, no_rust_env, BIG // 10)
    rows, peak, took = read_through_mock(cli, no_rust_env, BIG)
    print(
        f"\nstream via pyarrow: {small_rows} contacts: peak RSS {small_peak:.1f} MiB, {small_took:.2f} s; "
        f"{rows} contacts: peak RSS {peak:.1f} MiB, {took:.2f} s ({rows / took:.0f} contacts/s)"
    )
    assert small_rows == BIG // 10 and rows == BIG
    # Ten times the contacts, not ten times the memory: within 64 MiB of the small read.
    assert peak < small_peak + 64, (small_peak, peak)
    assert peak < 400, peak
