"""End-to-end benchmark: trackly-export against the mock API on loopback, side by side with the
fetch-only ceiling and the Python baselines; scaling, latency-bound and rate-limited runs; and
compression on the wire, through a narrow link and on unlimited loopback.

Run it through scripts/bench-e2e.sh (which builds the release binaries). Prints Markdown tables
ready for BENCHMARKS.md. Each measurement runs REPEAT times; the median is reported, with the
peak RSS (max resident set) of the measured process.
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILE = os.environ.get("TRACKLY_BENCH_PROFILE", "release")
# TRACKLY_BENCH_BIN measures another build of the exporter (e.g. one from before a change).
# TRACKLY_BENCH_NO_PYTHON=1 leaves the Python baselines out of the side-by-side run.
BIN = os.environ.get("TRACKLY_BENCH_BIN") or os.path.join(ROOT, f"target/{PROFILE}/trackly-export")
FETCH_ONLY = os.path.join(ROOT, f"target/{PROFILE}/examples/fetch_only")
BASELINE = os.path.join(ROOT, "benches/python_baseline.py")
KEY = "trk_bench_key"


def measure(cmd, env=None):
    """Runs cmd; returns (seconds, peak RSS in MiB, stdout, CPU seconds user + sys).

    Output goes to temporary files, not pipes: a child that writes more than a pipe holds would
    otherwise block forever while we wait for it to exit.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024.0, stdout, usage.ru_utime + usage.ru_stime


def load():
    """The 1-minute load average, printed with every table: other work on the machine skews it."""
    return f"load average {os.getloadavg()[0]:.2f} at start"


class Mock:
    def __init__(self, contacts, *flags):
        self.proc = subprocess.Popen(
            [BIN, "mock-server", "--port", "0", "--contacts", str(contacts), "--api-key", KEY, *flags],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.url = self.proc.stdout.readline().decode().strip()
        if not self.url.startswith("http"):
            sys.exit("mock-server did not print its URL")

    def stats(self):
        req = urllib.request.Request(self.url + "/_mock/stats", headers={"X-Api-Key": KEY})
        return json.loads(urllib.request.urlopen(req).read())

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def export_cmd(url, out, *extra):
    return [BIN, "--quiet", "export", "--base-url", url, "--output", out, *extra]


def env_with_key():
    env = dict(os.environ)
    env["TRACKLY_API_KEY"] = KEY
    return env


def median_run(cmd, repeat, env=None, before=None):
    return median_runs([cmd], repeat, env, before)[0]


def median_runs(cmds, repeat, env=None, before=None):
    """Runs each of cmds repeat times, round-robin (a, b, a, b, ...), so that a machine getting
    busier or a mock warming up during the measurement skews them alike; per command, the
    median seconds and CPU seconds, the highest peak RSS, and the last run's stdout."""
    runs = [[] for _ in cmds]
    for _ in range(repeat):
        for i, cmd in enumerate(cmds):
            if before:
                before()
            runs[i].append(measure(cmd, env))
    return [(statistics.median(r[0] for r in rs), max(r[1] for r in rs), rs[-1][2],
             statistics.median(r[3] for r in rs)) for rs in runs]


def side_by_side(contacts, repeat, concurrency):
    started = load()
    mock = Mock(contacts)
    tmp = tempfile.mkdtemp(prefix="trackly-bench-")
    out = os.path.join(tmp, "lake")
    rows = []
    py_repeat = max(1, min(repeat, 3))
    try:
        # The ceiling, the export and the build compared with it take turns (see median_runs).
        export = export_cmd(mock.url, out, "--concurrency", str(concurrency))
        cmds = [[FETCH_ONLY, mock.url, KEY, str(concurrency)], export]
        compare = os.environ.get("TRACKLY_BENCH_COMPARE_BIN")
        if compare:
            # Another build of the exporter (e.g. before a change), measured in the same run.
            cmds.append([compare, *export[1:]])
        results = median_runs(cmds, repeat, env_with_key(),
                              before=lambda: shutil.rmtree(out, ignore_errors=True))
        info = json.loads(results[0][2])
        json_mb = info["bytes"] / 1e6
        rows.append(("fetch-only ceiling (reqwest, no parsing)", results[0]))
        rows.append((f"trackly-export export (concurrency {concurrency})", results[1]))
        if compare:
            rows.append((f"{os.path.basename(os.path.dirname(os.path.dirname(compare)))} build "
                         f"({compare})", results[2]))
        if not os.environ.get("TRACKLY_BENCH_NO_PYTHON"):
            py = sys.executable
            pq_out = os.path.join(tmp, "baseline.parquet")
            seq = median_run([py, BASELINE, mock.url, KEY, pq_out], py_repeat)
            rows.append(("python requests+pyarrow, sequential", seq))
            thr = median_run([py, BASELINE, mock.url, KEY, pq_out, "--threads", str(concurrency)],
                             py_repeat)
            rows.append((f"python requests+pyarrow, {concurrency} threads", thr))
    finally:
        mock.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n### {contacts:,} contacts, {info['pages']} pages, {json_mb:.0f} MB of JSON; median of {repeat} "
          f"(Python: of {py_repeat}); {started}\n")
    print("| run | seconds | CPU s (user+sys) | contacts/s | MB/s of JSON | peak RSS MiB | export ÷ this |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    export_rate = contacts / rows[1][1][0]
    for name, (secs, rss, _, cpu) in rows:
        rate = contacts / secs
        print(f"| {name} | {secs:.2f} | {cpu:.2f} | {rate:,.0f} | {json_mb / secs:.1f} | {rss:.0f} | {export_rate / rate:.2f}× |")


def scaling(sizes, repeat):
    print(f"\n### Scaling: default settings, median of {repeat}; {load()}\n")
    print("| contacts | seconds | CPU s (user+sys) | contacts/s | peak RSS MiB |")
    print("|---:|---:|---:|---:|---:|")
    for n in sizes:
        mock = Mock(n)
        tmp = tempfile.mkdtemp(prefix="trackly-bench-")
        out = os.path.join(tmp, "lake")
        try:
            secs, rss, _, cpu = median_run(export_cmd(mock.url, out), repeat, env_with_key(),
                                           before=lambda: shutil.rmtree(out, ignore_errors=True))
        finally:
            mock.close()
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"| {n:,} | {secs:.2f} | {cpu:.2f} | {n / secs:,.0f} | {rss:.0f} |")


def latency(pages, latency_ms, concurrencies):
    per_page = 100
    contacts = pages * per_page
    print(f"\n### Latency-bound: mock latency {latency_ms} ms, {pages} pages of {per_page}; {load()}\n")
    print("| concurrency | seconds | requests | ideal (pages × latency ÷ concurrency) | ratio |")
    print("|---:|---:|---:|---:|---:|")
    for c in concurrencies:
        mock = Mock(contacts, "--latency-ms", str(latency_ms))
        tmp = tempfile.mkdtemp(prefix="trackly-bench-")
        try:
            secs, _, _, _ = measure(export_cmd(mock.url, os.path.join(tmp, "lake"), "--per-page",
                                               str(per_page), "--concurrency", str(c)), env_with_key())
            requests = mock.stats().get("requests", 0)
        finally:
            mock.close()
            shutil.rmtree(tmp, ignore_errors=True)
        ideal = pages * latency_ms / 1000 / c
        print(f"| {c} | {secs:.2f} | {requests} | {ideal:.2f} | {secs / ideal:.2f} |")


def rate_limited(pages, rps, concurrency):
    per_page = 100
    started = load()
    mock = Mock(pages * per_page, "--rate-limit", str(rps))
    tmp = tempfile.mkdtemp(prefix="trackly-bench-")
    try:
        secs, _, _, _ = measure(export_cmd(mock.url, os.path.join(tmp, "lake"), "--per-page", str(per_page),
                                           "--concurrency", str(concurrency)), env_with_key())
        stats = mock.stats()
    finally:
        mock.close()
        shutil.rmtree(tmp, ignore_errors=True)
    ideal = pages / rps
    limited = stats.get("rate_limited", 0)
    total = stats.get("requests", 0)
    print(f"\n### Rate-limited: mock limit {rps} req/s, {pages} pages, concurrency {concurrency}; {started}\n")
    print("| seconds | ideal (pages ÷ rate) | ratio | requests | 429s | 429 share |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {secs:.2f} | {ideal:.2f} | {secs / ideal:.2f} | {total} | {limited} | {100 * limited / max(total, 1):.1f}% |")


def cpu_seconds(pid):
    """CPU seconds (user + sys) a running process has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wire_stats(out):
    """fetch_stats of the run's _manifest.json: (bytes on the wire, decoded bytes)."""
    path = glob.glob(os.path.join(out, "contacts", "*", "_manifest.json"))[0]
    with open(path) as f:
        stats = json.load(f)["fetch_stats"]
    return stats["wire_bytes"], stats["body_bytes"]


def compression(contacts, repeat, concurrency, links, codings):
    """The same export with and without compression on the wire, through a link of limited
    bandwidth (the mock's --bandwidth, shared by all connections) and on unlimited loopback.
    Each compressed mock is warmed up by one unmeasured export first: it compresses every page
    once and keeps it, so the measured runs time the exporter, not the mock's compressor."""
    started = load()
    print(f"\n### Compression on the wire: {contacts:,} contacts, concurrency {concurrency}, "
          f"median of {repeat}; {started}\n")
    print("| link | coding | MB on the wire | MB of JSON | ratio | seconds | exporter CPU s (user+sys) "
          "| mock CPU s per run | contacts/s | peak RSS MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for link in links:
        for coding in codings:
            flags = []
            if coding != "identity":
                flags += ["--compress", coding]
            if link != "unlimited":
                flags += ["--bandwidth", link]
            mock = Mock(contacts, *flags)
            tmp = tempfile.mkdtemp(prefix="trackly-bench-")
            out = os.path.join(tmp, "lake")
            extra = ["--concurrency", str(concurrency)]
            if coding == "identity":
                extra.append("--no-http-compression")
            cmd = export_cmd(mock.url, out, *extra)
            clean = lambda: shutil.rmtree(out, ignore_errors=True)
            try:
                if coding != "identity":
                    clean()
                    measure(cmd, env_with_key())
                mock_before = cpu_seconds(mock.proc.pid)
                secs, rss, _, cpu = median_run(cmd, repeat, env_with_key(), before=clean)
                mock_cpu = (cpu_seconds(mock.proc.pid) - mock_before) / repeat
                wire, body = wire_stats(out)
            finally:
                mock.close()
                shutil.rmtree(tmp, ignore_errors=True)
            print(f"| {link} | {coding} | {wire / 1e6:.1f} | {body / 1e6:.1f} | {body / max(wire, 1):.1f}x "
                  f"| {secs:.2f} | {cpu:.2f} | {mock_cpu:.2f} | {contacts / secs:,.0f} | {rss:.0f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one run each (CI)")
    ap.add_argument("--only", choices=["side", "scaling", "latency", "rate", "compression"],
                    action="append")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--sizes", default="200000,2000000,5000000",
                    help="scaling: the run sizes (the issue's flat-memory target spans these)")
    ap.add_argument("--links", default="100mbit,unlimited",
                    help="compression: mock --bandwidth values, or unlimited")
    ap.add_argument("--codings", default="zstd,br,gzip,identity",
                    help="compression: the mock's --compress coding per run, or identity")
    args = ap.parse_args()
    # Tables appear as they are measured, also when stdout is a file.
    sys.stdout.reconfigure(line_buffering=True)
    only = set(args.only or ["side", "scaling", "latency", "rate", "compression"])
    print(f"machine: {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}")
    if args.smoke:
        side_by_side(20_000, 1, args.concurrency)
        scaling([10_000, 20_000], 1)
        latency(20, 20, [1, 8])
        rate_limited(40, 20, 8)
        compression(20_000, 1, args.concurrency, ["100mbit", "unlimited"], ["zstd", "identity"])
        return
    if "side" in only:
        side_by_side(args.contacts, args.repeat, args.concurrency)
    if "scaling" in only:
        scaling([int(n) for n in args.sizes.split(",")], args.repeat)
    if "latency" in only:
        latency(500, 100, [1, 8, 32, 64])
    if "rate" in only:
        rate_limited(400, 20, args.concurrency)
    if "compression" in only:
        compression(args.contacts, args.repeat, args.concurrency, args.links.split(","),
                    args.codings.split(","))


if __name__ == "__main__":
    main()
