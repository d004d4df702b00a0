//! `--retain-days`, end to end: after a successful run, each exported table's date folders
//! older than N days before the run's extract date are removed, on local disk and on S3
//! (moto); nothing this tool did not write is ever touched, a table not exported is not
//! looked at, and a failed or dry run removes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use trackly_export::mock::{Faults, MockServer};

/// The dates exported before the run with retention, and what a run of [`RUN`] with
/// `--retain-days 2` (cutoff 2026-11-20) does to them.
const EXPIRED: [&str; 2] = ["2026-11-17", "2026-11-19"];
const KEPT: [&str; 1] = ["2026-11-20"];
const RUN: &str = "2026-11-22";

/// Objects under the output that this tool did not write: none may disappear.
const FOREIGN: [(&str, &str); 7] = [
    ("contacts/notes.txt", "my notes"),
    // A date folder without a manifest.
    (
        "contacts/extract_date=2020-01-01/part-00000-x.parquet",
        "not ours",
    ),
    // A date folder whose manifest is someone else's.
    (
        "contacts/extract_date=2019-06-01/_manifest.json",
        r#"{"format":"another-tool/v3","table":"contacts","extract_date":"2019-06-01"}"#,
    ),
    ("contacts/extract_date=2019-06-01/data.csv", "a,b\n1,2\n"),
    // A date folder whose name is not a date.
    ("contacts/extract_date=last-year/part-00000-y.parquet", "?"),
    // Another run's staging (no checkpoint: not ours to clean up either).
    (
        "contacts/_staging/0190aaaa-other-run/part-00000-0190aaaa-other-run.parquet.inprogress",
        "in progress",
    ),
    // A manifest of ours in the wrong table's folder.
    (
        "lists/extract_date=2020-02-02/_manifest.json",
        r#"{"format":"trackly-export/contacts-manifest/v1","table":"contacts","extract_date":"2020-02-02"}"#,
    ),
];

fn write_foreign(root: &Path) {
    for (path, body) in FOREIGN {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
}

async fn export_ok(server: &MockServer, output: &Path, args: &[&str]) -> String {
    let out = run_async(export(server, output, args)).await;
    assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
    stderr(&out)
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_removes_only_this_tools_expired_date_folders_of_every_table() {
    let server = mock(300, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    for date in EXPIRED.iter().chain(&KEPT) {
        export_ok(&server, out, &["--extract-date", date]).await;
    }
    write_foreign(out);

    let log = export_ok(&server, out, &["--extract-date", RUN, "--retain-days", "2"]).await;

    for table in ["contacts", "lists"] {
        for date in EXPIRED {
            let folder = out.join(format!("{table}/extract_date={date}"));
            assert!(
                !folder.exists(),
                "{} survived: {:?}",
                folder.display(),
                walk(&folder)
            );
        }
        for date in KEPT.iter().chain([&RUN]) {
            let folder = out.join(format!("{table}/extract_date={date}"));
            assert!(folder.join("_SUCCESS").exists(), "{}", folder.display());
            assert_eq!(
                parquet_files(&folder).len(),
                1,
                "{}: {:?}",
                folder.display(),
                walk(&folder)
            );
        }
    }
    for (path, body) in FOREIGN {
        assert_eq!(
            std::fs::read_to_string(out.join(path)).ok().as_deref(),
            Some(body),
            "{path} was touched"
        );
    }

    // The manifests of the run say what was removed, and what was left alone and why.
    for table in ["contacts", "lists"] {
        let manifest = read_json(&out.join(format!("{table}/extract_date={RUN}/_manifest.json")));
        let retention = &manifest["retention"];
        assert_eq!(retention["retain_days"], 2, "{manifest:#}");
        assert_eq!(retention["cutoff"], "2026-11-20");
        let removed: Vec<String> = EXPIRED
            .iter()
            .map(|d| format!("{table}/extract_date={d}"))
            .collect();
        assert_eq!(retention["removed"], serde_json::json!(removed));
        assert!(retention.get("failed").is_none(), "{retention:#}");
        let left_alone: Vec<&str> = retention["left_alone"]
            .as_array()
            .map(|a| a.iter().filter_map(|l| l["path"].as_str()).collect())
            .unwrap_or_default();
        let expected: &[&str] = if table == "contacts" {
            &[
                "contacts/extract_date=2019-06-01",
                "contacts/extract_date=2020-01-01",
                "contacts/extract_date=last-year",
            ]
        } else {
            &["lists/extract_date=2020-02-02"]
        };
        assert_eq!(left_alone, expected, "{retention:#}");
    }
    // Runs without the flag record nothing.
    let before = read_json(&out.join("contacts/extract_date=2026-11-20/_manifest.json"));
    assert!(before.get("retention").is_none(), "{before:#}");

    // The summary says it, and the foreign folders are named in warnings.
    assert!(
        log.contains("removed 4 partitions older than 2026-11-20"),
        "{log}"
    );
    assert!(
        log.contains("4 folders not written by this tool left alone"),
        "{log}"
    );
    assert!(log.contains("extract_date=2019-06-01"), "{log}");

    // A second run of the same date finds nothing more to remove.
    let log = export_ok(&server, out, &["--extract-date", RUN, "--retain-days", "2"]).await;
    assert!(
        log.contains("removed 0 partitions older than 2026-11-20"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_leaves_a_table_the_run_does_not_export_alone() {
    let server = mock(100, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    export_ok(&server, out, &["--extract-date", "2026-11-01"]).await;

    // From the environment, as a nightly job would set it.
    let mut cmd = export(
        &server,
        out,
        &["--extract-date", RUN, "--tables", "contacts"],
    );
    cmd.env("TRACKLY_RETAIN_DAYS", "7");
    let run = run_async(cmd).await;
    assert_eq!(code(&run), 0, "{}", stderr(&run));

    assert!(!out.join("contacts/extract_date=2026-11-01").exists());
    assert!(
        out.join("lists/extract_date=2026-11-01/_SUCCESS").exists(),
        "{:?}",
        walk(out)
    );
    let manifest = read_json(&out.join(format!("contacts/extract_date={RUN}/_manifest.json")));
    assert_eq!(
        manifest["retention"]["removed"],
        serde_json::json!(["contacts/extract_date=2026-11-01"])
    );
    assert_eq!(manifest["retention"]["cutoff"], "2026-11-15");
    assert!(
        stderr(&run).contains("removed 1 partition older than 2026-11-15"),
        "{}",
        stderr(&run)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_and_dry_runs_remove_nothing() {
    let server = mock(100, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    export_ok(&server, out, &["--extract-date", "2026-11-01"]).await;
    let before = walk(out);

    // A refused key fails the run: nothing is published, so nothing is removed.
    let mut cmd = export(&server, out, &["--extract-date", RUN, "--retain-days", "1"]);
    cmd.env("TRACKLY_API_KEY", "trk_wrong_key_123");
    let failed = run_async(cmd).await;
    assert_eq!(code(&failed), 3, "{}", stderr(&failed));
    assert_eq!(walk(out), before);

    let dry = run_async(export(
        &server,
        out,
        &["--extract-date", RUN, "--retain-days", "1", "--dry-run"],
    ))
    .await;
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    assert!(
        stdout(&dry).contains("folders before 2026-11-21 to be removed (--retain-days 1)"),
        "{}",
        stdout(&dry)
    );
    assert_eq!(walk(out), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn retain_days_must_be_at_least_one_from_any_source() {
    let server = mock(10, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lake");

    let flag = run_async(export(&server, &out, &["--retain-days", "0"])).await;
    assert_eq!(code(&flag), 2, "{}", stderr(&flag));
    assert!(
        stderr(&flag).contains("--retain-days must be at least 1"),
        "{}",
        stderr(&flag)
    );

    let config = config_file(dir.path(), "retain_days = 0\n");
    let file = run_async(export(&server, &out, &["--config", &config])).await;
    assert_eq!(code(&file), 2, "{}", stderr(&file));
    assert!(
        stderr(&file).contains("--retain-days must be at least 1"),
        "{}",
        stderr(&file)
    );

    let text = run_async(export(&server, &out, &["--retain-days", "a week"])).await;
    assert_eq!(code(&text), 2, "{}", stderr(&text));
    assert!(!out.join("contacts").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn retain_days_zero_says_to_omit_it_to_keep_everything() {
    let server = mock(10, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "retain_days = 0\n");
    for args in [["--retain-days", "0"], ["--config", &config]] {
        let out = run_async(export(&server, &dir.path().join("lake"), &args)).await;
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("; omit it to keep everything"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_on_s3_removes_only_this_tools_expired_date_folders() {
    let endpoint = std::env::var("TRACKLY_TEST_S3_ENDPOINT")
        .expect("TRACKLY_TEST_S3_ENDPOINT is not set: run scripts/test.sh, which starts moto");
    let bucket = env_or("TRACKLY_TEST_S3_BUCKET", "trackly-test");
    let store = s3(&endpoint, &bucket);
    let server = mock(300, Faults::default()).await;
    let prefix = format!("retention-test/{}", uuid::Uuid::now_v7());
    let output = format!("s3://{bucket}/{prefix}");
    let run = |date: &str, extra: &[&str]| {
        let mut cmd = binary();
        cmd.env("TRACKLY_API_KEY", SECRET)
            .args([
                "export",
                "--base-url",
                &server.url(),
                "--output",
                &output,
                "--extract-date",
                date,
            ])
            .args(extra);
        with_s3_env(&mut cmd, &endpoint);
        cmd
    };
    for date in EXPIRED.iter().chain(&KEPT) {
        let out = run_async(run(date, &[])).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    for (path, body) in FOREIGN {
        let path = object_store::path::Path::from(format!("{prefix}/{path}"));
        store
            .put(&path, PutPayload::from(body.as_bytes().to_vec()))
            .await
            .unwrap();
    }

    let out = run_async(run(RUN, &["--retain-days", "2"])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("removed 4 partitions older than 2026-11-20"),
        "{}",
        stderr(&out)
    );

    let root = object_store::path::Path::from(prefix.as_str());
    let mut names: Vec<String> = store
        .list(Some(&root))
        .map_ok(|meta| {
            meta.location
                .prefix_match(&root)
                .unwrap()
                .map(|p| p.as_ref().to_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .try_collect()
        .await
        .unwrap();
    names.sort();
    for table in ["contacts", "lists"] {
        for date in EXPIRED {
            let folder = format!("{table}/extract_date={date}/");
            assert!(
                !names.iter().any(|n| n.starts_with(&folder)),
                "{folder} survived: {names:?}"
            );
        }
        for date in KEPT.iter().chain([&RUN]) {
            let success = format!("{table}/extract_date={date}/_SUCCESS");
            assert!(names.contains(&success), "{success} missing: {names:?}");
        }
    }
    for (path, _) in FOREIGN {
        assert!(
            names.iter().any(|n| n == path),
            "{path} was removed: {names:?}"
        );
    }

    let manifest_path =
        object_store::path::Path::from(format!("{prefix}/lists/extract_date={RUN}/_manifest.json"));
    let manifest: serde_json::Value = serde_json::from_slice(
        &store
            .get(&manifest_path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let removed: Vec<String> = EXPIRED
        .iter()
        .map(|d| format!("{prefix}/lists/extract_date={d}"))
        .collect();
    assert_eq!(manifest["retention"]["removed"], serde_json::json!(removed));
}

#[test]
fn export_help_shows_retain_days_under_output_with_its_variable() {
    let out = run(binary().args(["export", "--help"]));
    assert_eq!(code(&out), 0);
    let help = stdout(&out);
    let heading = help.find("\nOutput and Parquet:\n").expect("the heading");
    let next = help.find("\nReliability:\n").expect("the next heading");
    let flag = help.find("--retain-days <N>").expect("the flag");
    assert!(heading < flag && flag < next, "{help}");
    assert!(help.contains("TRACKLY_RETAIN_DAYS"), "{help}");
}
