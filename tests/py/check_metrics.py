"""Parse a --metrics-file with the Prometheus client's own parser, as node_exporter's textfile
collector would read it, and check its shape. Exits non-zero with a reason on any problem.

usage: check_metrics.py METRICS_FILE [SECRET]
  Checks: the file parses (prometheus_client.parser.text_string_to_metric_families); every
  family has a # HELP text and a # TYPE (no untyped samples); no family appears twice; the
  metrics every run writes are there; SECRET, when given, is nowhere in the file; the file
  ends with a line feed.
Prints one JSON object: {"types": {family: type}, "samples": [[name, {label: value}, value]]}.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

# Sample names every run writes, whatever its outcome.
REQUIRED = [
    "trackly_export_last_run_timestamp_seconds",
    "trackly_export_last_success_timestamp_seconds",
    "trackly_export_exit_code",
    "trackly_export_duration_seconds",
    "trackly_export_bytes_written",
    "trackly_export_files_written",
    "trackly_export_retries_total",
    "trackly_export_drift_events_total",
    "trackly_export_rejects_total",
]
# Families that are declared even when they have no sample (no response at all).
DECLARED = ["trackly_export_http_requests", "trackly_export_rows_written"]


def fail(reason):
    print(f"check_metrics: {reason}", file=sys.stderr)
    sys.exit(1)


def main():
    path = sys.argv[1]
    secret = sys.argv[2] if len(sys.argv) > 2 else None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if secret and secret in text:
        fail("the API key is in the metrics file")
    if not text.endswith("\n"):
        fail("the file does not end with a line feed")
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError (and others) on malformed text
        fail(f"the Prometheus parser refused the file: {e!r}\n{text}")

    types = {}
    samples = []
    for family in families:
        if family.name in types:
            fail(f"family {family.name} appears twice")
        if family.type in ("untyped", "unknown"):
            fail(f"family {family.name} has no # TYPE")
        if not family.documentation:
            fail(f"family {family.name} has no # HELP")
        if not family.name.startswith("trackly_export_"):
            fail(f"family {family.name} is not under trackly_export_")
        types[family.name] = family.type
        for s in family.samples:
            samples.append([s.name, dict(s.labels), s.value])

    names = {s[0] for s in samples}
    missing = [n for n in REQUIRED if n not in names]
    missing += [f for f in DECLARED if f not in types]
    if missing:
        fail(f"missing metrics: {missing}\n{text}")
    print(json.dumps({"types": types, "samples": samples}))


if __name__ == "__main__":
    main()
