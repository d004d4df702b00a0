//! Money as it really arrives, end to end: `revenue_total` as float artifacts, exponent forms
//! and decimal strings must not fail a run, and must land in DuckDB as the exact value rounded
//! half to even to 4 decimals, which Python's `decimal` computes independently from the text
//! the API sent. Values that are not numbers, or overflow once rounded, still fail the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use trackly_export::mock::{DatasetConfig, Faults};

/// Reads the ground truth NDJSON (argv 2) with the number text kept exact, rounds each
/// `revenue_total` half to even to 4 places with `decimal`, and compares with the lake (argv 1)
/// in DuckDB. Prints one JSON object: counts, the first mismatches, and how many values of each
/// form the truth held.
const ORACLE: &str = r#"
import json, sys
from decimal import Decimal, ROUND_HALF_EVEN
import duckdb

lake, truth_path = sys.argv[1], sys.argv[2]
want = {}
forms = {"strings": 0, "exponents": 0, "negatives": 0, "rounded": 0, "ties": 0}
with open(truth_path, "rb") as f:
    for line in f:
        if not line.strip():
            continue
        raw = json.loads(line, parse_float=str, parse_int=str)
        key = (raw["phone_number"], raw["list_number"])
        text = raw.get("revenue_total")
        if text is None:
            want[key] = None
            continue
        # Numbers come back as their exact text; a decimal string is its own text.
        value = Decimal(text)
        stored = value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
        want[key] = stored
        forms["strings"] += b'"revenue_total":"' in line
        forms["exponents"] += "e" in text.lower()
        forms["negatives"] += value < 0
        forms["rounded"] += stored != value
        forms["ties"] += abs(value.scaleb(4) % 1) == Decimal("0.5")

rows = duckdb.sql(
    f"SELECT phone_number, list_number, revenue_total FROM read_parquet('{lake}')"
).fetchall()
got, dupes = {}, 0
for phone, list_number, revenue in rows:
    dupes += (phone, list_number) in got
    got[(phone, list_number)] = revenue
mismatches = [
    f"{k}: lake {got.get(k, 'missing')!r}, expected {v!r}"
    for k, v in want.items()
    if got.get(k, "missing") != v
]
print(json.dumps({
    "truth": len(want), "rows": len(rows), "dupes": dupes,
    "mismatches": len(mismatches), "first_mismatches": mismatches[:20], "forms": forms,
}))
"#;

/// Runs [`ORACLE`] over the lake under `output` and the NDJSON `truth`; asserts every contact
/// is there once with the expected value, and returns the oracle's report.
fn check_money(output: &Path, truth: &[u8]) -> serde_json::Value {
    let truth_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(truth_file.path(), truth).unwrap();
    let glob = output.join("contacts/**/*.parquet");
    let out = Command::new(python())
        .arg("-c")
        .arg(ORACLE)
        .arg(glob)
        .arg(truth_file.path())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["mismatches"], 0, "{report:#}");
    assert_eq!(report["dupes"], 0, "{report:#}");
    assert_eq!(report["rows"], report["truth"], "{report:#}");
    report
}

/// A valid contact (see [`contact`]) whose `revenue_total` is the JSON text `revenue`.
fn with_revenue(i: usize, revenue: &str) -> String {
    let base = contact(i);
    format!(r#"{},"revenue_total":{revenue}}}"#, &base[..base.len() - 1])
}

/// The forms the unit tests pin down, and a few hundred more as float arithmetic prints them.
fn money_texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "0",
        "-0",
        "-0.0",
        "null",
        "47.5",
        "47.50",
        "4.75e1",
        "4750E-2",
        "4.75E+1",
        "12.5e-1",
        "2.5E-7",
        "0.1e-3",
        "1e2",
        "1e-5",
        "-1e-5",
        "0.00005",
        "0.00015",
        "-0.00015",
        "0.00025",
        "2.50005",
        "47.5000000000001",
        "47.4999999999999",
        "0.30000000000000004",
        "1234567.8899999999",
        "99999999999999.9999",
        "99999999999999.99994",
        "-99999999999999.99985",
        r#""47.50""#,
        r#""-0.5""#,
        r#""1e2""#,
        r#""0""#,
        r#""0.30000000000000004""#,
        r#""-0.00015""#,
        r#""4750E-2""#,
    ]
    .map(str::to_owned)
    .to_vec();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _ in 0..150 {
        // A sum of prices in binary floating point, and a price times a quantity.
        let sum: f64 = (0..1 + next(8)).map(|_| next(100_000) as f64 / 100.0).sum();
        texts.push(format!("{sum}"));
        let product = next(10_000) as f64 / 100.0 * (1 + next(12)) as f64;
        texts.push(format!("{product}"));
        // Sub-cent precision, a tie on the 5th decimal one time in four.
        let digits = if next(4) == 0 {
            format!("{:04}5", next(10_000))
        } else {
            format!("{}", 1 + next(99_999_999))
        };
        texts.push(format!("{}.{digits}", next(1_000_000)));
    }
    texts
}

#[tokio::test(flavor = "multi_thread")]
async fn every_form_of_money_is_stored_rounded_half_to_even_to_four_places() {
    let texts = money_texts();
    let contacts: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| with_revenue(i, t))
        .collect();
    let n = contacts.len() as u64;
    assert!(n < 1000, "one page");
    let server = TestServer::pages(vec![page_body(&contacts, 1, 1000, n, 1)]);
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(&server.url(), dir.path(), &[])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let truth = contacts.join("\n");
    let report = check_money(dir.path(), truth.as_bytes());
    println!("{report}");
    assert_eq!(report["truth"], n);
    let forms = &report["forms"];
    for form in ["strings", "exponents", "negatives", "rounded", "ties"] {
        assert!(forms[form].as_u64().unwrap() >= 5, "{form}: {report:#}");
    }
    assert_eq!(manifest(dir.path())["rows"], n);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mock_s_money_forms_land_exactly_rounded_half_to_even() {
    let server = mock_with(
        DatasetConfig {
            money_forms: true,
            ..dataset(6_000)
        },
        Faults::default(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(&server, dir.path(), &[])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let report = check_money(dir.path(), &server.ground_truth(None, None));
    println!("{report}");
    assert_eq!(report["truth"], 6_000);
    let forms = &report["forms"];
    for form in ["strings", "exponents", "negatives", "rounded", "ties"] {
        assert!(forms[form].as_u64().unwrap() >= 50, "{form}: {report:#}");
    }
    let manifest = manifest(dir.path());
    assert_eq!(manifest["rows"], 6_000);
    assert_eq!(
        manifest["decode"]["rounded_values"], forms["rounded"],
        "the manifest counts every rounded value: {manifest}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn money_that_is_not_a_number_or_overflows_once_rounded_still_fails_the_run() {
    let contacts = vec![
        with_revenue(0, "47.5000000000001"),
        with_revenue(1, r#""abc""#),
        with_revenue(2, r#""47.50""#),
        with_revenue(3, "99999999999999.99995"),
        with_revenue(4, "true"),
        with_revenue(5, r#"" 47.50""#),
    ];
    let body = page_body(&contacts, 1, 1000, 6, 1);
    let server = TestServer::pages(vec![body.clone()]);
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(&server.url(), dir.path(), &[])).await;
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("page 1, record 1")
            && err.contains("revenue_total")
            && err.contains("\"abc\""),
        "{err}"
    );
    assert!(parquet_files(dir.path()).is_empty());

    let server = TestServer::pages(vec![body]);
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(
        &server.url(),
        dir.path(),
        &["--on-invalid", "quarantine"],
    ))
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let manifest = manifest(dir.path());
    assert_eq!(manifest["rows"], 2, "{manifest}");
    assert_eq!(manifest["rejects"]["count"], 4, "{manifest}");
    let rejects = walk(dir.path())
        .into_iter()
        .find(|p| p.to_string_lossy().contains("_rejects"))
        .unwrap();
    let reasons: Vec<(u64, String, String)> = std::fs::read_to_string(rejects)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["field"], "revenue_total", "{v}");
            (
                v["index"].as_u64().unwrap(),
                v["value"].as_str().unwrap().to_owned(),
                v["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let indexes: Vec<u64> = reasons.iter().map(|r| r.0).collect();
    assert_eq!(indexes, [1, 3, 4, 5], "{reasons:?}");
    assert!(
        reasons[1].2.contains("more than 14 integer digits"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1].1, "99999999999999.99995");
}
