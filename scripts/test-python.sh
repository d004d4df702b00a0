#!/usr/bin/env bash
# The Python package, as a user gets it: builds the wheel with maturin, installs it into a fresh
# venv (no source tree on sys.path), and runs crates/python/tests with pytest from there. The CLI
# tests run `trackly-export` with a PATH that holds no cargo or rustc.
#
# usage: scripts/test-python.sh [PYTEST_ARGS...]
# TRACKLY_WHEEL_PROFILE: the cargo profile of the wheel (default `dev`, which reuses the build
# cache of `cargo test`; `release` for the wheel a user gets, as in BENCHMARKS.md).
# Needs .venv from scripts/test.sh (maturin, pytest, pyarrow, polars, duckdb, deltalake) and,
# for the S3 test, TRACKLY_TEST_S3_ENDPOINT/_BUCKET (scripts/test.sh starts moto for it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools="$root/.venv"
profile="${TRACKLY_WHEEL_PROFILE:-dev}"

wheels=$(mktemp -d -t trackly-wheel.XXXXXX)
venv=$(mktemp -d -t trackly-wheel-venv.XXXXXX)
trap 'rm -rf "$wheels" "$venv"' EXIT

echo "==> maturin build --profile $profile"
start=$(date +%s)
"$tools/bin/maturin" build --quiet -m crates/python/Cargo.toml --profile "$profile" --out "$wheels"
wheel=$(ls "$wheels"/trackly_export-*.whl)
echo "==> built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB) in $(( $(date +%s) - start )) s"

# A fresh venv with the wheel alone; the test tools (pytest, pyarrow, Polars, DuckDB, deltalake,
# boto3) come from .venv through a .pth file placed after the venv's own site-packages, which
# saves installing them again on every run. .venv holds nothing of this package.
python3 -m venv "$venv"
start=$(date +%s)
"$venv/bin/pip" install --quiet --disable-pip-version-check "$wheel"
echo "==> pip install of the wheel: $(( $(date +%s) - start )) s"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
"$tools/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))' >"$site/zz-trackly-test-tools.pth"

# From a folder outside the tree, so that `import trackly_export` finds the installed wheel.
cd "$venv"
"$venv/bin/python" -m pytest -p no:cacheprovider -v "$root/crates/python/tests" "$@"
