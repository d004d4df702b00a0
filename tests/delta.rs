//! `--table-format delta` end to end: the tables read back with delta-rs (Python `deltalake`)
//! and Polars exactly as the mock's ground truth, one WRITE commit per run, a re-run of a date
//! replacing it atomically while a reader polls, a `kill -9` leaving the previous version and
//! `--resume` committing once, and the same on S3 (moto).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use trackly_export::mock::{Faults, MockServer};

fn args(date: &str) -> Vec<String> {
    [
        "--table-format",
        "delta",
        "--per-page",
        "1000",
        "--file-size",
        "1",
        "--row-group-rows",
        "4000",
        "--extract-date",
        date,
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn export_delta(server: &MockServer, lake: &Path, date: &str, extra: &[&str]) {
    let mut cmd = export(server, lake, &[]);
    cmd.args(args(date)).args(extra);
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

fn table(lake: &Path, name: &str) -> String {
    lake.join(name).to_str().unwrap().to_owned()
}

/// Rows of a Delta table (any format the checker reads), by Polars.
fn lists_rows(table: &str, s3: Option<&str>) -> u64 {
    let out = check_delta_cmd("count", table, &[], s3).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delta_table_reads_back_exactly_and_a_rerun_replaces_its_date_atomically() {
    let server = mock(40_000, Faults::default()).await;
    let truth = server.ground_truth(None, None);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    export_delta(&server, &lake, "2026-11-27", &[]).await;
    let contacts = table(&lake, "contacts");
    let report = check_delta(
        &contacts,
        &truth,
        &["--expect-count", "40000", "--writes", "1"],
        None,
    );
    assert!(
        report["files"].as_u64().unwrap() > 1,
        "several files: {report}"
    );
    let lists = lists_rows(&table(&lake, "lists"), None);
    assert!(lists > 0);
    // No Hive markers in a Delta table, and nothing left in staging.
    assert!(walk(&lake).iter().all(|p| !p.ends_with("_SUCCESS")));
    assert!(walk(&lake.join("contacts/_staging")).is_empty());

    // Another date, then a re-run of the first while a reader polls the table throughout.
    export_delta(&server, &lake, "2026-11-28", &[]).await;
    let stop = dir.path().join("stop");
    let poller = check_delta_cmd("poll", &contacts, &[stop.to_str().unwrap()], None)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader has read the table at least once before the re-run starts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    export_delta(&server, &lake, "2026-11-27", &[]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(&stop, b"").unwrap();
    let polled = tokio::task::spawn_blocking(move || poller.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(polled.status.success());
    let polled: serde_json::Value = serde_json::from_slice(&polled.stdout).unwrap();
    assert!(polled["reads"].as_u64().unwrap() >= 2, "{polled}");
    assert_eq!(polled["counts"], serde_json::json!([80_000]), "{polled}");
    assert!(
        polled["versions"].as_array().unwrap().len() >= 2,
        "the reader saw the re-run's commit: {polled}"
    );
    check_delta(
        &contacts,
        &truth,
        &[
            "--expect-count",
            "40000",
            "--date",
            "2026-11-27",
            "--dates",
            "2026-11-27,2026-11-28",
            "--writes",
            "3",
        ],
        None,
    );
    assert_eq!(
        lists_rows(&table(&lake, "lists"), None),
        2 * lists,
        "two dates of lists"
    );
}

fn log_versions(lake: &Path) -> usize {
    walk(&lake.join("contacts/_delta_log"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_leaves_the_previous_version_and_resume_commits_exactly_once() {
    // A little latency so the kill lands mid-run in a debug build.
    let server = mock(
        60_000,
        Faults {
            latency: Duration::from_millis(2),
            ..Faults::default()
        },
    )
    .await;
    let truth = server.ground_truth(None, None);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let contacts = table(&lake, "contacts");
    export_delta(&server, &lake, "2026-11-27", &[]).await;
    let versions = log_versions(&lake);

    let mut cmd = export(&server, &lake, &[]);
    cmd.args(args("2026-11-27"));
    kill_9_when(cmd, async || checkpointed_files(&lake) >= 1).await;
    assert_eq!(
        log_versions(&lake),
        versions,
        "the killed run committed nothing"
    );
    // The table is still exactly the first run's.
    check_delta(
        &contacts,
        &truth,
        &["--expect-count", "60000", "--writes", "1"],
        None,
    );

    export_delta(&server, &lake, "2026-11-27", &["--resume"]).await;
    check_delta(
        &contacts,
        &truth,
        &["--expect-count", "60000", "--writes", "2"],
        None,
    );
    assert!(walk(&lake.join("contacts/_staging")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delta_export_to_s3_reads_back_exactly() {
    let endpoint = std::env::var("TRACKLY_TEST_S3_ENDPOINT")
        .expect("TRACKLY_TEST_S3_ENDPOINT is not set: run scripts/test.sh, which starts moto");
    let bucket = env_or("TRACKLY_TEST_S3_BUCKET", "trackly-test");
    let server = mock(8_000, Faults::default()).await;
    let truth = server.ground_truth(None, None);
    let prefix = format!("delta-e2e-{}", chrono::Utc::now().timestamp_micros());
    let output = format!("s3://{bucket}/{prefix}");
    for date in ["2026-11-27", "2026-11-27"] {
        let args = args(date);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = export_to(&server.url(), Path::new(&output), &args);
        // Both tables: the lists table is checked too.
        cmd.env_remove("TRACKLY_TABLES");
        with_s3_env(&mut cmd, &endpoint);
        let out = run_async(cmd).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    check_delta(
        &format!("{output}/contacts"),
        &truth,
        &["--expect-count", "8000", "--writes", "2"],
        Some(&endpoint),
    );
    assert!(lists_rows(&format!("{output}/lists"), Some(&endpoint)) > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn retain_days_expires_old_dates_in_the_runs_one_commit() {
    let server = mock(2_000, Faults::default()).await;
    let truth = server.ground_truth(None, None);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    for date in ["2026-11-20", "2026-11-25"] {
        export_delta(&server, &lake, date, &[]).await;
    }
    // 2026-11-27 with two days kept: 2026-11-25 stays, 2026-11-20 leaves the table in the
    // same commit that adds 2026-11-27.
    export_delta(&server, &lake, "2026-11-27", &["--retain-days", "2"]).await;
    check_delta(
        &table(&lake, "contacts"),
        &truth,
        &[
            "--date",
            "2026-11-27",
            "--expect-count",
            "2000",
            "--dates",
            "2026-11-25,2026-11-27",
            "--writes",
            "3",
        ],
        None,
    );
}

#[test]
fn an_unknown_table_format_is_a_usage_error_naming_the_formats() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(binary()
        .env("TRACKLY_API_KEY", SECRET)
        .args(["export", "--output"])
        .arg(dir.path())
        .args(["--table-format", "iceberg"]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("iceberg") && err.contains("parquet, delta"),
        "{err}"
    );
}
