#!/usr/bin/env bash
# The Python package's numbers in BENCHMARKS.md ("Issue 22"): the release wheel's build time and
# size, `pip install` time, and 1M active-or-not contacts read from a `mock-server` process three
# ways, each with wall time and peak RSS (GNU time): the stream through pyarrow (Python), the
# Rust stream (`examples/stream_record_batches`), and the CLI from the wheel (`export`, contacts
# only, Parquet on local disk).
#
# usage: [RUNS=N] scripts/bench-python.sh [CONTACTS]   (default 1000000 contacts, 1 run of each;
#        needs .venv from scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
contacts="${1:-1000000}"
work=$(mktemp -d -t trackly-bench-python.XXXXXX)
mock_pid=
cleanup() { [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
target="${CARGO_TARGET_DIR:-$root/target}"

start=$(date +%s)
.venv/bin/maturin build --quiet --release -m crates/python/Cargo.toml --out "$work/dist"
wheel=$(ls "$work"/dist/trackly_export-*.whl)
echo "wheel: $(basename "$wheel"), $(stat -c %s "$wheel") bytes, built in $(( $(date +%s) - start )) s"
unzip -l "$wheel" | awk '/_native/ {print "  extension module:", $1, "bytes"}'

python3 -m venv "$work/venv"
start=$(date +%s.%N)
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "$wheel"
echo "pip install: $(echo "$(date +%s.%N) - $start" | bc) s"
site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))' >"$site/zz-tools.pth"

"$work/venv/bin/trackly-export" mock-server --port 0 --contacts "$contacts" >"$work/url" 2>/dev/null &
mock_pid=$!
for _ in $(seq 1 600); do [ -s "$work/url" ] && break; sleep 0.1; done
url=$(head -1 "$work/url")
export TRACKLY_BASE_URL="$url" TRACKLY_API_KEY=trk_test_key
echo "mock-server: $contacts contacts at $url"

measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r seconds kib <"$work/time"
  printf '%-34s %8.2f s  %7.1f MiB peak RSS  (%s)\n' "$name" "$seconds" "$(echo "$kib / 1024" | bc -l)" "$(head -1 "$work/out" | cut -c1-60)"
}

reader='
import sys, pyarrow as pa, trackly_export
rows = 0
for batch in pa.RecordBatchReader.from_stream(trackly_export.read_contacts(active=True)):
    rows += batch.num_rows
print(rows, "active contacts")
'
for run in $(seq 1 "${RUNS:-1}"); do
  measure "python stream (pyarrow) #$run" "$work/venv/bin/python" -c "$reader"
  measure "python stream, MALLOC_ARENA_MAX=1 #$run" env MALLOC_ARENA_MAX=1 "$work/venv/bin/python" -c "$reader"
  rm -rf "$work/lake"
  measure "cli export from the wheel #$run" "$work/venv/bin/trackly-export" export -o "$work/lake" --tables contacts --active true --quiet
done
# The Rust stream last: its example builds the root package's dev-dependencies in release.
cargo build --quiet --release --example stream_record_batches
for run in $(seq 1 "${RUNS:-1}"); do
  measure "rust stream (example) #$run" "$target/release/examples/stream_record_batches"
done
