//! `--metrics-file` end to end: the built binary against the mock server, and the file read by
//! the Prometheus client's own parser (`tests/py/check_metrics.py`) after a success, a failure
//! and a retrying run, and after a configuration error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use common::metrics::parse;
use common::*;
use trackly_export::mock::Faults;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A folder for the metrics file alone (as node_exporter's textfile directory), and the path.
fn textfile_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trackly_export.prom");
    (dir, path)
}

/// The only file in the metrics folder is the metrics file: no temporary left behind.
fn assert_alone(dir: &Path) {
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["trackly_export.prom".to_owned()]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_successful_run_writes_metrics_the_prometheus_parser_reads_and_that_match_the_lake() {
    let server = mock(2_500, Faults::default()).await;
    let lake = tempfile::tempdir().unwrap();
    let (textfile, path) = textfile_dir();
    let before = unix_now();
    let out = run_async(export(
        &server,
        lake.path(),
        &[
            "--per-page",
            "500",
            "--metrics-file",
            path.to_str().unwrap(),
        ],
    ))
    .await;
    let after = unix_now();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_alone(textfile.path());
    let m = parse(&path);

    assert_eq!(m.get("trackly_export_exit_code", &[]), 0.0);
    let last_run = m.get("trackly_export_last_run_timestamp_seconds", &[]);
    assert!(
        before - 1.0 <= last_run && last_run <= after + 1.0,
        "{last_run}"
    );
    assert_eq!(
        m.get("trackly_export_last_success_timestamp_seconds", &[]),
        last_run
    );
    let duration = m.get("trackly_export_duration_seconds", &[]);
    assert!(
        duration > 0.0 && duration <= after - before + 1.0,
        "{duration}"
    );

    // What was published, against the lake itself.
    let parquet = parquet_files(lake.path());
    let lists_rows = server
        .lists_ground_truth()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(
        m.get("trackly_export_rows_written", &[("table", "contacts")]),
        2_500.0
    );
    assert_eq!(
        m.get("trackly_export_rows_written", &[("table", "lists")]),
        lists_rows as f64
    );
    assert_eq!(
        m.get("trackly_export_files_written", &[]),
        parquet.len() as f64
    );
    let bytes: u64 = parquet
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(m.get("trackly_export_bytes_written", &[]), bytes as f64);
    assert_eq!(m.get("trackly_export_rejects_total", &[]), 0.0);
    assert_eq!(m.get("trackly_export_drift_events_total", &[]), 0.0);

    // Every response the server sent, by status; no retry.
    let served: BTreeMap<String, f64> = server
        .stats()
        .by_status
        .iter()
        .map(|(s, n)| (s.to_string(), *n as f64))
        .collect();
    assert_eq!(m.by("trackly_export_http_requests_total", "status"), served);
    let retries = m.by("trackly_export_retries_total", "cause");
    assert_eq!(
        retries.keys().collect::<Vec<_>>(),
        [
            "connection",
            "invalid_body",
            "rate_limited",
            "server_error",
            "timeout"
        ]
    );
    assert!(retries.values().all(|n| *n == 0.0), "{retries:?}");

    assert_eq!(m.types["trackly_export_http_requests"], "counter");
    assert_eq!(m.types["trackly_export_retries"], "counter");
    assert_eq!(m.types["trackly_export_rows_written"], "gauge");
    assert_eq!(
        m.types["trackly_export_last_success_timestamp_seconds"],
        "gauge"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_tells_its_exit_code_and_keeps_the_time_of_the_last_success() {
    let server = mock(300, Faults::default()).await;
    let lake = tempfile::tempdir().unwrap();
    let (textfile, path) = textfile_dir();
    let metrics = path.to_str().unwrap();
    let out = run_async(export(&server, lake.path(), &["--metrics-file", metrics])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let success = parse(&path);
    let last_success = success.get("trackly_export_last_success_timestamp_seconds", &[]);

    let wrong_key = "trk_wrong_key_7b1e";
    let mut cmd = export(&server, lake.path(), &["--metrics-file", metrics]);
    cmd.env("TRACKLY_API_KEY", wrong_key);
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_alone(textfile.path());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(wrong_key),
        "the key is in the metrics:\n{text}"
    );
    let m = parse(&path);

    assert_eq!(m.get("trackly_export_exit_code", &[]), 3.0);
    assert_eq!(
        m.get("trackly_export_last_success_timestamp_seconds", &[]),
        last_success,
        "a failure does not move the last success"
    );
    assert!(m.get("trackly_export_last_run_timestamp_seconds", &[]) >= last_success);
    // Nothing published; the refusal counted by its status.
    for table in ["contacts", "lists"] {
        assert_eq!(
            m.get("trackly_export_rows_written", &[("table", table)]),
            0.0
        );
    }
    assert_eq!(m.get("trackly_export_files_written", &[]), 0.0);
    assert_eq!(m.get("trackly_export_bytes_written", &[]), 0.0);
    assert!(m.get("trackly_export_http_requests_total", &[("status", "401")]) >= 1.0);
    assert_eq!(
        m.find("trackly_export_http_requests_total", &[("status", "200")]),
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retrying_run_counts_every_retry_by_cause_and_every_response_by_status() {
    let server = mock(
        3_000,
        Faults {
            p_500: 0.2,
            fault_seed: 11,
            ..Faults::default()
        },
    )
    .await;
    let lake = tempfile::tempdir().unwrap();
    let (_textfile, path) = textfile_dir();
    let out = run_async(export(
        &server,
        lake.path(),
        &[
            "--per-page",
            "100",
            "--metrics-file",
            path.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let m = parse(&path);

    let stats = server.stats();
    let served_500 = stats.by_status.get(&500).copied().unwrap_or(0);
    assert!(served_500 > 0, "the seed must inject some 500s");
    let served: BTreeMap<String, f64> = stats
        .by_status
        .iter()
        .map(|(s, n)| (s.to_string(), *n as f64))
        .collect();
    assert_eq!(m.by("trackly_export_http_requests_total", "status"), served);
    assert_eq!(
        m.get("trackly_export_retries_total", &[("cause", "server_error")]),
        served_500 as f64
    );
    for cause in ["rate_limited", "timeout", "connection", "invalid_body"] {
        assert_eq!(
            m.get("trackly_export_retries_total", &[("cause", cause)]),
            0.0,
            "{cause}"
        );
    }
    assert_eq!(m.get("trackly_export_exit_code", &[]), 0.0);
    assert_eq!(
        m.get("trackly_export_rows_written", &[("table", "contacts")]),
        3_000.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_error_is_written_to_the_metrics_file_named_by_env_or_config_file() {
    let lake = tempfile::tempdir().unwrap();

    // The path from TRACKLY_METRICS_FILE; the error (exit 2) before any request.
    let (_env_dir, from_env) = textfile_dir();
    let mut cmd = binary();
    cmd.env("TRACKLY_API_KEY", SECRET)
        .env("TRACKLY_METRICS_FILE", &from_env)
        .args(["export", "--concurrency", "0", "--output"])
        .arg(lake.path());
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let m = parse(&from_env);
    assert_eq!(m.get("trackly_export_exit_code", &[]), 2.0);
    assert_eq!(
        m.get("trackly_export_last_success_timestamp_seconds", &[]),
        0.0,
        "no success yet"
    );
    assert!(
        m.by("trackly_export_http_requests_total", "status")
            .is_empty()
    );

    // The path from the config file, whose other setting is the error.
    let (_file_dir, from_file) = textfile_dir();
    let config = lake.path().with_extension("toml");
    std::fs::write(
        &config,
        format!(
            "metrics_file = {:?}\nper_page = 5000\n",
            from_file.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut cmd = binary();
    cmd.env("TRACKLY_API_KEY", SECRET)
        .args(["export", "--output"])
        .arg(lake.path())
        .arg("--config")
        .arg(&config);
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("--per-page 5000"), "{}", stderr(&out));
    assert_eq!(parse(&from_file).get("trackly_export_exit_code", &[]), 2.0);

    // A folder that does not exist is itself a configuration error, found before exporting.
    let missing = lake.path().join("no/such/dir/trackly.prom");
    let mut cmd = binary();
    cmd.env("TRACKLY_API_KEY", SECRET)
        .args(["export", "--output"])
        .arg(lake.path())
        .arg("--metrics-file")
        .arg(&missing);
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--metrics-file") && stderr(&out).contains("does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(parquet_files(lake.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_leaves_the_metrics_of_the_last_run_alone() {
    let server = mock(100, Faults::default()).await;
    let lake = tempfile::tempdir().unwrap();
    let (_textfile, path) = textfile_dir();
    let out = run_async(export(
        &server,
        lake.path(),
        &["--dry-run", "--metrics-file", path.to_str().unwrap()],
    ))
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!path.exists(), "a dry run is not a run of the export");
}
