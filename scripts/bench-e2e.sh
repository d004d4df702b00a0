#!/usr/bin/env bash
# The end-to-end benchmark (see BENCHMARKS.md). Builds release binaries, then runs
# benches/e2e.py with the test venv's Python (requests, pyarrow for the baseline).
#   scripts/bench-e2e.sh            # everything (about 15 minutes on 2 cores)
#   scripts/bench-e2e.sh --smoke    # tiny sizes, seconds: CI runs this so the bench cannot rot
#   scripts/bench-e2e.sh --only side --contacts 1000000 --repeat 5
#   scripts/bench-e2e.sh --only compression --repeat 3   # 100 Mbit/s link and loopback, ~6 min
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s scripts/requirements-test.txt "$venv/.requirements"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt "$venv/.requirements"
fi
if [[ " $* " == *" --smoke "* ]]; then
  # The smoke run checks the machinery, not speed: debug binaries (already built by the tests).
  cargo build --quiet --bin trackly-export --example fetch_only
  export TRACKLY_BENCH_PROFILE=debug
else
  cargo build --release --quiet --bin trackly-export --example fetch_only
fi
exec "$venv/bin/python" benches/e2e.py "$@"
