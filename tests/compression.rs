//! Compression on the wire end to end: the built binary against a mock that answers in zstd,
//! brotli or gzip when asked, with and without `--no-http-compression`. Both lakes must hold
//! exactly the ground truth (DuckDB) and the same rows, and `_manifest.json` must tell the bytes
//! on the wire from the bytes they decoded to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use trackly_export::mock::{ContentCoding, DatasetConfig, Faults, MockConfig, MockServer};

const CONTACTS: usize = 6_000;

/// The mock, offering every coding it speaks; `bandwidth` in bytes per second.
async fn compressing_mock(faults: Faults, bandwidth: Option<u64>) -> MockServer {
    MockServer::start(MockConfig {
        dataset: DatasetConfig {
            seed: 5,
            contacts: CONTACTS,
            lists: 3,
            ..DatasetConfig::default()
        },
        api_key: SECRET.to_owned(),
        faults,
        compression: ContentCoding::ALL.to_vec(),
        bandwidth,
        ..MockConfig::default()
    })
    .await
    .expect("mock starts")
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a count"))
}

/// Rows of lake `a` that lake `b` lacks (as a multiset, every column but the run's lineage).
fn rows_only_in(a: &Path, b: &Path) -> String {
    let lake = |p: &Path| {
        format!(
            "SELECT * EXCLUDE (_extracted_at, _run_id) FROM read_parquet('{}')",
            p.join("contacts/**/*.parquet").display()
        )
    };
    duckdb(&format!(
        "SELECT count(*) FROM ({} EXCEPT ALL {})",
        lake(a),
        lake(b)
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_and_uncompressed_exports_hold_the_same_rows() {
    let server = compressing_mock(Faults::default(), None).await;
    let truth = server.ground_truth(None, None);
    let dir = tempfile::tempdir().unwrap();
    let (compressed, plain) = (dir.path().join("compressed"), dir.path().join("plain"));
    let args = ["--per-page", "500", "--extract-date", "2026-03-04"];

    let out = run_async(export(&server, &compressed, &args)).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let summary = stderr(&out);
    assert!(summary.contains("x compressed)"), "{summary}");

    // Off through its environment variable, as a nightly job would set it.
    let mut cmd = export(&server, &plain, &args);
    cmd.env("TRACKLY_NO_HTTP_COMPRESSION", "true");
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("compressed)"), "{}", stderr(&out));

    check_lake(&compressed, &truth, Some(CONTACTS));
    check_lake(&plain, &truth, Some(CONTACTS));
    assert_eq!(rows_only_in(&compressed, &plain).trim(), "[[0]]");
    assert_eq!(rows_only_in(&plain, &compressed).trim(), "[[0]]");

    let zipped = manifest(&compressed)["fetch_stats"].clone();
    let unzipped = manifest(&plain)["fetch_stats"].clone();
    // The client prefers brotli, and the mock offers it: every answer came in it.
    assert_eq!(
        zipped["responses_by_encoding"],
        serde_json::json!({ "br": n(&zipped["requests"]) })
    );
    assert_eq!(
        unzipped["responses_by_encoding"],
        serde_json::json!({ "identity": n(&unzipped["requests"]) })
    );
    assert_eq!(n(&unzipped["wire_bytes"]), n(&unzipped["body_bytes"]));
    // The same requests, so the same JSON, at a fraction of the bytes on the wire.
    assert_eq!(n(&zipped["body_bytes"]), n(&unzipped["body_bytes"]));
    assert!(
        n(&zipped["wire_bytes"]) * 4 < n(&zipped["body_bytes"]),
        "{zipped}"
    );
    // The mock sent exactly what both runs counted on the wire (the lists' answers included).
    assert_eq!(
        server.stats().bytes_served,
        n(&zipped["wire_bytes"]) + n(&unzipped["wire_bytes"])
    );
    assert_no_secret_in_tree(dir.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_compressed_bodies_through_a_narrow_link_still_give_the_exact_set() {
    let faults = Faults {
        p_truncate: 0.15,
        p_reset: 0.1,
        fault_seed: 4,
        ..Faults::default()
    };
    // 20 MB/s: about 0.1 s of transfer for the whole compressed data set, yet every body
    // is paced through one shared link.
    let server = compressing_mock(faults, Some(20_000_000)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(
        &server,
        dir.path(),
        &[
            "--per-page",
            "250",
            "--concurrency",
            "8",
            "--extract-date",
            "2026-03-04",
        ],
    ))
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    check_lake(dir.path(), &server.ground_truth(None, None), Some(CONTACTS));
    let stats = manifest(dir.path())["fetch_stats"].clone();
    let mock = server.stats();
    assert!(mock.truncated > 0 && mock.resets > 0, "{mock:?}");
    // A cut brotli stream is an invalid body; a dropped connection a connection error.
    assert_eq!(n(&stats["retries"]["invalid_body"]), mock.truncated);
    assert_eq!(n(&stats["retries"]["connection"]), mock.resets);
    assert!(n(&stats["wire_bytes"]) <= mock.bytes_served);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_config_file_can_turn_compression_off() {
    let server = compressing_mock(Faults::default(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "http_compression = false\nper_page = 1000\n");
    let lake = dir.path().join("lake");
    let out = run_async(export(&server, &lake, &["--config", &config])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = manifest(&lake)["fetch_stats"].clone();
    assert_eq!(
        stats["responses_by_encoding"],
        serde_json::json!({ "identity": n(&stats["requests"]) })
    );
}
