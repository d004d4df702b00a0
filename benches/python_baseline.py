"""The script a data engineer would otherwise write: requests + pyarrow, paging
GET /v2/contacts and writing one Parquet file. Used by scripts/bench-e2e.sh as the baseline.

usage: python_baseline.py BASE_URL API_KEY OUT.parquet [--threads N] [--per-page N]
Prints one JSON line: contacts, seconds.
"""
import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import requests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base_url")
    ap.add_argument("api_key")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--per-page", type=int, default=1000)
    args = ap.parse_args()

    session = requests.Session()
    session.headers["X-Api-Key"] = args.api_key
    url = f"{args.base_url}/v2/contacts"

    def fetch(page):
        for attempt in range(5):
            r = session.get(url, params={"page": page, "per_page": args.per_page}, timeout=60)
            if r.status_code == 200:
                return r.json()
            time.sleep(0.1 * 2 ** attempt)
        r.raise_for_status()

    start = time.perf_counter()
    first = fetch(1)
    pages = first["pagination"]["total_pages"]
    contacts = list(first["contacts"])
    if args.threads == 1:
        for page in range(2, pages + 1):
            contacts.extend(fetch(page)["contacts"])
    else:
        with ThreadPoolExecutor(args.threads) as pool:
            for body in pool.map(fetch, range(2, pages + 1)):
                contacts.extend(body["contacts"])
    # What a typical script does with custom_fields: serialize it, since pyarrow cannot infer a
    # map from dicts with mixed value types.
    for c in contacts:
        c["custom_fields"] = None if c.get("custom_fields") is None else json.dumps(c["custom_fields"])
    table = pa.Table.from_pylist(contacts)
    pq.write_table(table, args.out, compression="zstd")
    elapsed = time.perf_counter() - start
    print(json.dumps({"contacts": len(contacts), "seconds": elapsed}))


if __name__ == "__main__":
    main()
