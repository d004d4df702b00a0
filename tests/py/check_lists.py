"""Compare the lists table of a lake written by trackly-export with the mock's lists ground truth,
and join it with the contacts, with DuckDB. Exits non-zero with a readable diff on any mismatch.

usage: check_lists.py LAKE_DIR LISTS_TRUTH.ndjson [--join] [--counts] [--same-run]
  --join      every contact row joins exactly one list on contacts.list_id = lists.id (and
              its list_number is that list's phone_number), in DuckDB;
  --counts    each list's contact_count equals its active contacts in the lake (the contacts
              export was not filtered);
  --same-run  both tables' rows carry one and the same _run_id and _extracted_at.
Prints one JSON line with what it checked.
"""
import json
import sys
from datetime import datetime, timezone

import duckdb

EXPECTED_TYPES = {
    "id": "BIGINT",
    "phone_number": "VARCHAR",
    "brand_name": "VARCHAR",
    "list_name": "VARCHAR",
    "list_type": "VARCHAR",
    "status": "VARCHAR",
    "contact_count": "BIGINT",
    "created_at": "TIMESTAMP WITH TIME ZONE",
    "_extra": "VARCHAR",
    "_extracted_at": "TIMESTAMP WITH TIME ZONE",
    "_run_id": "VARCHAR",
}
TEXT = ["phone_number", "brand_name", "list_name", "list_type", "status"]


def instant(text):
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def main():
    lake, truth_path = sys.argv[1], sys.argv[2]
    flags = set(sys.argv[3:])
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    lists = f"read_parquet('{lake}/lists/**/*.parquet', hive_partitioning=true)"
    contacts = f"read_parquet('{lake}/contacts/**/*.parquet', hive_partitioning=true)"

    types = {name: typ for name, typ, *_ in con.execute(f"DESCRIBE SELECT * FROM {lists}").fetchall()}
    for name, want in EXPECTED_TYPES.items():
        if types.get(name) != want:
            sys.exit(f"lists column {name}: DuckDB type {types.get(name)!r}, expected {want!r}")
    if "extract_date" not in types:
        sys.exit("hive partition column extract_date missing from the lists table")

    truth = {}
    with open(truth_path, "rb") as f:
        for line in f:
            if line.strip():
                item = json.loads(line)
                truth[item["id"]] = item

    cols = ["id", "contact_count", "created_at", "_extra"] + TEXT
    rows = con.execute(f"SELECT {', '.join(cols)} FROM {lists}").fetchall()
    problems = []
    seen = set()
    for row in rows:
        r = dict(zip(cols, row))
        if r["id"] in seen:
            problems.append(f"list {r['id']} written twice")
            continue
        seen.add(r["id"])
        want = truth.get(r["id"])
        if want is None:
            problems.append(f"list {r['id']} is not in the ground truth")
            continue
        for col in TEXT + ["contact_count"]:
            if r[col] != want[col]:
                problems.append(f"list {r['id']} {col}: {r[col]!r} != {want[col]!r}")
        if r["created_at"] != instant(want["created_at"]):
            problems.append(f"list {r['id']} created_at: {r['created_at']!r} != {want['created_at']!r}")
        if r["_extra"] is not None:
            problems.append(f"list {r['id']} _extra: {r['_extra']!r}")
    missing = sorted(set(truth) - seen)
    if missing:
        problems.append(f"{len(missing)} lists missing, e.g. {missing[:3]}")

    report = {"lists": len(rows), "deleted": sum(1 for t in truth.values() if t["status"] == "deleted")}
    if "--join" in flags:
        total, joined, mismatched = con.execute(
            f"""SELECT count(*), count(l.id), count(*) FILTER (WHERE l.phone_number <> c.list_number)
                FROM {contacts} c LEFT JOIN {lists} l
                  ON c.list_id = l.id AND c.extract_date = l.extract_date"""
        ).fetchone()
        if joined != total:
            problems.append(f"{total - joined} of {total} contacts join no list")
        if mismatched:
            problems.append(f"{mismatched} contacts join a list with another phone_number")
        report["contacts_joined"] = joined
    if "--counts" in flags:
        wrong = con.execute(
            f"""SELECT l.id, l.contact_count, count(c.phone_number) FILTER (WHERE c.active) AS active
                FROM {lists} l LEFT JOIN {contacts} c ON c.list_id = l.id
                GROUP BY ALL HAVING l.contact_count <> active"""
        ).fetchall()
        if wrong:
            problems.append(f"contact_count differs from the active contacts: {wrong[:3]}")
    if "--same-run" in flags:
        runs = con.execute(
            f"""SELECT DISTINCT _run_id, _extracted_at FROM (
                  SELECT _run_id, _extracted_at FROM {lists}
                  UNION ALL SELECT _run_id, _extracted_at FROM {contacts})"""
        ).fetchall()
        if len(runs) != 1:
            problems.append(f"the tables carry {len(runs)} runs: {runs[:3]}")
    if problems:
        sys.exit("lists table differs:\n" + "\n".join(problems[:20]))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
