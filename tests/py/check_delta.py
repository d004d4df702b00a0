"""Read a Delta table written by trackly-export with delta-rs (the `deltalake` package) and
Polars (`read_delta`), and compare it with the mock's ground truth. Exits non-zero with a
readable diff on any mismatch.

usage:
  check_delta.py check TABLE_URI GROUND_TRUTH.ndjson [--expect-count N] [--writes N]
                 [--date YYYY-MM-DD] [--dates D1,D2,...]
      Every field of every row equals the ground truth, with the right types (Polars and
      delta-rs's schema); with --writes, the history holds exactly N WRITE commits, each of
      another run; with --date, the truth is compared with that date's partition only;
      with --dates, exactly those partitions exist.
  check_delta.py poll TABLE_URI STOP_FILE
      Counts the table's rows (newest snapshot, re-read each time) in a loop until STOP_FILE
      exists; prints {"reads": n, "counts": [...distinct counts...], "versions": [...]}.
  check_delta.py files TABLE_URI
      Prints the data files of the newest snapshot (paths relative to the table), one JSON list.
  check_delta.py count TABLE_URI
      Prints the number of rows (Polars).

With TRACKLY_TEST_STORAGE_OPTIONS (a JSON object) in the environment, those are the
storage_options of any TABLE_URI (s3://, gs://, az://: the options the export was given, as the
conformance suite tests/object_stores.rs passes them). Otherwise an s3:// TABLE_URI uses
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION from the environment
(moto in the tests).
"""
import json
import os
import sys
import time

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

sys.path.insert(0, os.path.dirname(__file__))
from check_lake import read_truth, row_problems  # noqa: E402

# Delta types as delta-rs reports them (schema().to_json()).
EXPECTED_DELTA_TYPES = {
    "phone_number": "string",
    "list_number": "string",
    "list_id": "long",
    "active": "boolean",
    "signup_date": "timestamp",
    "signup_method": "string",
    "carrier": "string",
    "line_type": "string",
    "timezone": "string",
    "is_valid": "boolean",
    "send_count": "long",
    "click_count": "long",
    "revenue_total": "decimal(18,4)",
    "conversion_count": "long",
    "last_sent_at": "timestamp",
    "last_clicked_at": "timestamp",
    "in_workflow": "boolean",
    "_extra": "string",
    "_extracted_at": "timestamp",
    "_run_id": "string",
    "extract_date": "date",
}
EXPECTED_MAP = {"type": "map", "keyType": "string", "valueType": "string", "valueContainsNull": True}


def storage_options(uri):
    if os.environ.get("TRACKLY_TEST_STORAGE_OPTIONS"):
        return json.loads(os.environ["TRACKLY_TEST_STORAGE_OPTIONS"])
    if not uri.startswith("s3://"):
        return None
    opts = {
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", ""),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        "AWS_ALLOW_HTTP": "true",
        "aws_conditional_put": "etag",
    }
    if os.environ.get("AWS_ENDPOINT_URL"):
        opts["AWS_ENDPOINT_URL"] = os.environ["AWS_ENDPOINT_URL"]
    return opts


def table(uri):
    return DeltaTable(uri, storage_options=storage_options(uri))


def arg(name, default=None):
    if name in sys.argv:
        return sys.argv[sys.argv.index(name) + 1]
    return default


def check(uri, truth_path):
    problems = []
    dt = table(uri)
    schema = json.loads(dt.schema().to_json())
    types = {f["name"]: f["type"] for f in schema["fields"]}
    for name, want in EXPECTED_DELTA_TYPES.items():
        if types.get(name) != want:
            problems.append(f"column {name}: Delta type {types.get(name)!r}, expected {want!r}")
    if types.get("custom_fields") != EXPECTED_MAP:
        problems.append(f"custom_fields: Delta type {types.get('custom_fields')!r}")
    if dt.metadata().partition_columns != ["extract_date"]:
        problems.append(f"partition columns {dt.metadata().partition_columns}")

    # Every add action carries statistics.
    adds = pa.table(dt.get_add_actions(flatten=True))
    if "num_records" not in adds.column_names or adds["num_records"].null_count > 0:
        problems.append(f"add actions without numRecords: {adds.column_names}")
    for col in ("min.phone_number", "max.phone_number", "min.signup_date", "null_count.carrier"):
        if col not in adds.column_names or adds[col].null_count > 0:
            problems.append(f"add actions without statistic {col}: {adds.column_names}")

    writes = arg("--writes")
    if writes is not None:
        history = [h for h in dt.history() if h.get("operation") == "WRITE"]
        if len(history) != int(writes):
            problems.append(f"{len(history)} WRITE commits in the history, expected {writes}")
        runs = [h.get("trackly", {}).get("run_id") for h in history]
        if len(set(runs)) != len(runs) or None in runs:
            problems.append(f"WRITE commits do not each name another run: {runs}")

    df = pl.read_delta(uri, storage_options=storage_options(uri))
    pl_types = dict(zip(df.columns, [str(t) for t in df.dtypes]))
    want_pl = {
        "phone_number": "String",
        "list_id": "Int64",
        "signup_date": "Datetime(time_unit='us', time_zone='UTC')",
        "revenue_total": "Decimal(precision=18, scale=4)",
        "extract_date": "Date",
        "active": "Boolean",
    }
    for name, want in want_pl.items():
        if pl_types.get(name) != want:
            problems.append(f"column {name}: Polars type {pl_types.get(name)!r}, expected {want!r}")
    dates = arg("--dates")
    present = sorted(str(d) for d in df["extract_date"].unique().to_list())
    if dates is not None and present != sorted(dates.split(",")):
        problems.append(f"partitions {present}, expected {dates}")
    date = arg("--date")
    if date is not None:
        df = df.filter(pl.col("extract_date").cast(pl.Utf8) == date)

    truth = read_truth(truth_path)

    seen = set()
    for r in df.iter_rows(named=True):
        key = (r["phone_number"], r["list_number"])
        if key in seen:
            problems.append(f"{key} read twice")
            continue
        seen.add(key)
        if key not in truth:
            problems.append(f"{key} is not in the ground truth")
            continue
        raw, typed = truth[key]
        if isinstance(r["custom_fields"], list):
            # Polars reads a Delta map as a list of {key, value} structs.
            r["custom_fields"] = {e["key"]: e["value"] for e in r["custom_fields"]}
        problems.extend(row_problems(key, r, raw, typed))
        if len(problems) > 20:
            break
    missing = [k for k in truth if k not in seen]
    if missing:
        problems.append(f"{len(missing)} contacts missing, e.g. {missing[:3]}")
    expect = arg("--expect-count")
    if expect is not None and df.height != int(expect):
        problems.append(f"{df.height} rows, expected {expect}")
    if problems:
        sys.exit("delta table differs from the ground truth:\n" + "\n".join(problems[:20]))
    print(json.dumps({"rows": df.height, "contacts": len(truth), "version": dt.version(),
                      "files": adds.num_rows}))


def poll(uri, stop_file):
    counts, versions, reads = set(), set(), 0
    while not os.path.exists(stop_file):
        try:
            dt = table(uri)
        except Exception:  # no table yet
            time.sleep(0.05)
            continue
        # Polars reads the snapshot delta-rs resolved: files of exactly one version.
        n = pl.read_delta(dt, columns=["phone_number"]).height
        counts.add(n)
        versions.add(dt.version())
        reads += 1
    print(json.dumps({"reads": reads, "counts": sorted(counts), "versions": sorted(versions)}))


def files(uri):
    print(json.dumps(sorted(table(uri).file_uris())))


def count(uri):
    print(pl.read_delta(uri, storage_options=storage_options(uri)).height)


def main():
    mode = sys.argv[1]
    if mode == "check":
        check(sys.argv[2], sys.argv[3])
    elif mode == "poll":
        poll(sys.argv[2], sys.argv[3])
    elif mode == "files":
        files(sys.argv[2])
    elif mode == "count":
        count(sys.argv[2])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
