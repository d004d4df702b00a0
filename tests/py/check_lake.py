"""Compare a Parquet lake written by trackly-export with the mock's ground truth, with DuckDB
(and pyarrow for the schema). Exits non-zero with a readable diff on any mismatch.

usage: check_lake.py LAKE_GLOB GROUND_TRUTH.ndjson [--expect-count N] [--allow-extra]
(--allow-extra: rows whose key is not in the ground truth are allowed, each once; used when the
listing drifted and only the contacts present throughout are required.)
Prints one JSON line with what it checked.
"""
import json
import sys
from datetime import datetime, timezone
from decimal import Decimal

import duckdb
import pyarrow.parquet as pq

EXPECTED_TYPES = {
    "phone_number": "VARCHAR",
    "list_number": "VARCHAR",
    "list_id": "BIGINT",
    "active": "BOOLEAN",
    "signup_date": "TIMESTAMP WITH TIME ZONE",
    "signup_method": "VARCHAR",
    "custom_fields": "MAP(VARCHAR, VARCHAR)",
    "carrier": "VARCHAR",
    "line_type": "VARCHAR",
    "timezone": "VARCHAR",
    "is_valid": "BOOLEAN",
    "send_count": "BIGINT",
    "click_count": "BIGINT",
    "revenue_total": "DECIMAL(18,4)",
    "conversion_count": "BIGINT",
    "last_sent_at": "TIMESTAMP WITH TIME ZONE",
    "last_clicked_at": "TIMESTAMP WITH TIME ZONE",
    "in_workflow": "BOOLEAN",
    "_extra": "VARCHAR",
    "_extracted_at": "TIMESTAMP WITH TIME ZONE",
    "_run_id": "VARCHAR",
}
SCALARS = ["list_id", "active", "signup_method", "carrier", "line_type", "timezone", "is_valid",
           "send_count", "click_count", "conversion_count", "in_workflow"]
TIMESTAMPS = ["signup_date", "last_sent_at", "last_clicked_at"]


def ts_micros(value):
    if value is None:
        return None
    if isinstance(value, str):
        text = value.replace("Z", "+00:00")
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
    else:
        dt = value
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def expected_map(raw_fields):
    """custom_fields as the converter must write it, from the raw (number-text-preserving) JSON."""
    if raw_fields is None:
        return None
    out = {}
    for key, value in raw_fields.items():
        if value is None:
            out[key] = None
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (dict, list)):
            out[key] = ("json", value)
        else:
            out[key] = value  # strings, and numbers kept as their source text (parse_*=str)
    return out


def same_map(expected, actual):
    if expected is None or actual is None:
        return expected is None and actual is None
    if list(expected.keys()) != list(actual.keys()):
        return False
    for key, want in expected.items():
        got = actual[key]
        if isinstance(want, tuple):
            if got is None or json.loads(got, parse_float=str, parse_int=str) != want[1]:
                return False
        elif want != got:
            return False
    return True


def read_truth(path):
    """The mock's ground truth by key: (raw, typed) per contact, raw keeping every number as its
    source text."""
    truth = {}
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            raw = json.loads(line, parse_float=str, parse_int=str)
            typed = json.loads(line)
            key = (typed["phone_number"], typed["list_number"])
            if key in truth:
                sys.exit(f"ground truth has {key} twice")
            truth[key] = (raw, typed)
    return truth


def row_problems(key, r, raw, typed):
    """Every field of row r (a dict by column name, custom_fields a dict) that differs from the
    ground truth's contact, as readable lines."""
    problems = []
    for col in SCALARS:
        if typed.get(col) != r[col]:
            problems.append(f"{key} {col}: {r[col]!r} != {typed.get(col)!r}")
    for col in TIMESTAMPS:
        if ts_micros(typed.get(col)) != ts_micros(r[col]):
            problems.append(f"{key} {col}: {r[col]!r} != {typed.get(col)!r}")
    want_rev = None if typed.get("revenue_total") is None else Decimal(str(raw["revenue_total"]))
    if want_rev != r["revenue_total"]:
        problems.append(f"{key} revenue_total: {r['revenue_total']!r} != {want_rev!r}")
    if not same_map(expected_map(raw.get("custom_fields")), r["custom_fields"]):
        problems.append(f"{key} custom_fields: {r['custom_fields']!r} != {raw.get('custom_fields')!r}")
    if r["_extra"] is not None:
        problems.append(f"{key} _extra: {r['_extra']!r}")
    return problems


def main():
    lake, truth_path = sys.argv[1], sys.argv[2]
    expect_count = None
    if "--expect-count" in sys.argv:
        expect_count = int(sys.argv[sys.argv.index("--expect-count") + 1])
    allow_extra = "--allow-extra" in sys.argv

    con = duckdb.connect()
    rel = f"read_parquet('{lake}', hive_partitioning=true)"
    types = {name: typ for name, typ, *_ in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()}
    for name, want in EXPECTED_TYPES.items():
        if types.get(name) != want:
            sys.exit(f"column {name}: DuckDB type {types.get(name)!r}, expected {want!r}")
    if "extract_date" not in types:
        sys.exit("hive partition column extract_date missing")

    # The map type as pyarrow sees it, in the first file.
    first_file = con.execute(f"SELECT filename FROM read_parquet('{lake}', filename=true) LIMIT 1").fetchone()
    if first_file:
        field = pq.read_schema(first_file[0]).field("custom_fields")
        if not str(field.type).startswith("map<string, string"):
            sys.exit(f"pyarrow sees custom_fields as {field.type}, expected a map<string, string>")

    # custom_fields['source'] works as a map lookup.
    con.execute(f"SELECT count(custom_fields['source']) FROM {rel}").fetchone()

    truth = read_truth(truth_path)

    cols = ", ".join(["phone_number", "list_number", "custom_fields", "revenue_total", "_extra"] + SCALARS + TIMESTAMPS)
    rows = con.execute(f"SELECT {cols} FROM {rel}").fetchall()
    names = [d[0] for d in con.description]
    seen = set()
    problems = []
    for row in rows:
        r = dict(zip(names, row))
        key = (r["phone_number"], r["list_number"])
        if key in seen:
            problems.append(f"{key} written twice")
            continue
        seen.add(key)
        if key not in truth:
            if allow_extra:
                continue
            problems.append(f"{key} is not in the ground truth")
            continue
        raw, typed = truth[key]
        problems.extend(row_problems(key, r, raw, typed))
        if len(problems) > 20:
            break
    missing = [k for k in truth if k not in seen]
    if missing:
        problems.append(f"{len(missing)} contacts missing, e.g. {missing[:3]}")
    if expect_count is not None and len(rows) != expect_count:
        problems.append(f"{len(rows)} rows, expected {expect_count}")
    if problems:
        sys.exit("lake differs from the ground truth:\n" + "\n".join(problems[:20]))
    print(json.dumps({"rows": len(rows), "contacts": len(truth), "columns": len(types)}))


if __name__ == "__main__":
    main()
