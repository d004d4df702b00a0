#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (a Python venv with
# pinned duckdb, pyarrow, moto, maturin, pytest), starts moto_server on loopback for the S3
# tests, runs `cargo test --workspace`, the examples, then the Python package's wheel and its
# pytest suite (scripts/test-python.sh), and stops moto_server again whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/.venv"

if [ ! -x "$venv/bin/python" ] || ! cmp -s scripts/requirements-test.txt "$venv/.requirements"; then
  echo "==> creating $venv with scripts/requirements-test.txt"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  cp scripts/requirements-test.txt "$venv/.requirements"
fi

# A free loopback port for moto_server.
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp -t moto.XXXXXX.log)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
cleanup() { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then break; fi
  sleep 0.1
done
echo "==> moto_server on 127.0.0.1:$port (pid $moto_pid)"

export TRACKLY_TEST_PYTHON="$venv/bin/python"
export TRACKLY_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
export TRACKLY_TEST_S3_BUCKET="trackly-test"
export TRACKLY_TEST_MOTO_SERVER="$venv/bin/moto_server"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
"$venv/bin/python" - <<PY
import urllib.request
req = urllib.request.Request("http://127.0.0.1:$port/trackly-test", method="PUT")
urllib.request.urlopen(req)
PY

cargo test --workspace --all-targets "$@"
cargo test --workspace --doc

if [ "$#" -eq 0 ]; then
  # The examples, each against its own embedded mock API (S3 against moto).
  examples=$(mktemp -d -t trackly-examples.XXXXXX)
  cargo run --quiet --example export_to_local -- "$examples/lake"
  cargo run --quiet --example stream_record_batches
  AWS_ENDPOINT_URL="$TRACKLY_TEST_S3_ENDPOINT" cargo run --quiet --example export_to_s3 -- "s3://$TRACKLY_TEST_S3_BUCKET/examples"
  rm -rf "$examples"
  echo "examples: 3 passed, 0 failed"

  # The library as an embedder builds it (`default-features = false`): no CLI crate, no mock,
  # no Delta Lake (delta-rs).
  cargo check --quiet -p trackly-export --lib --no-default-features
  if cargo tree -p trackly-export --no-default-features -e normal --prefix none \
      | grep -Eq '^(clap|clap_complete|indicatif|toml|tracing-subscriber|anyhow|trackly-mock|deltalake-core|buoyant_kernel|buoyant_kernel_engine) '; then
    echo "the library without default features depends on a CLI crate, the mock or delta-rs" >&2
    exit 1
  fi
  echo "library without CLI or delta-rs dependencies: ok"

  # The Python package: its wheel in a fresh venv, the CLI from it with no Rust on PATH, and
  # the pytest suite (against moto for S3, like the Rust tests).
  scripts/test-python.sh
fi
