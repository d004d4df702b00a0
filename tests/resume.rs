//! `--resume` after `kill -9` at several points of a run, and a fresh run after a crash: the
//! lake ends up with exactly the ground truth, and no stray `.parquet` is ever visible.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use trackly_export::mock::{Faults, MockServer};

const CONTACTS: usize = 200_000;

fn args() -> Vec<&'static str> {
    vec![
        "--per-page",
        "1000",
        "--concurrency",
        "2",
        "--file-size",
        "1",
        "--row-group-rows",
        "4000",
        "--extract-date",
        "2026-02-03",
        "--quiet",
    ]
}

/// The `progress` of the newest checkpoint (for messages).
fn checkpoint_progress(lake: &Path) -> serde_json::Value {
    checkpoints(lake)
        .pop()
        .map(|c| c["progress"].clone())
        .unwrap_or_default()
}

/// Starts an export and kills it with SIGKILL once `ready` holds (or it has run 60 s).
async fn crash_when(server: &MockServer, lake: &Path, ready: impl Fn(&Path) -> bool) {
    kill_9_when(export(server, lake, &args()), async || ready(lake)).await;
    assert!(
        parquet_files(lake).is_empty(),
        "a crashed run left a visible .parquet"
    );
}

async fn finish(server: &MockServer, lake: &Path, resume: bool) -> String {
    let mut cmd = export(server, lake, &args());
    if resume {
        cmd.arg("--resume");
    }
    let out = tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let manifest = lake.join("contacts/extract_date=2026-02-03/_manifest.json");
    let manifest = std::fs::read_to_string(manifest).unwrap();
    // The lists are fetched again in full and published with the contacts, under the run id
    // of the run that resumed (the interrupted one's).
    let lists = lake.join("lists/extract_date=2026-02-03/_manifest.json");
    let lists: serde_json::Value = serde_json::from_slice(&std::fs::read(lists).unwrap()).unwrap();
    let contacts: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(lists["run_id"], contacts["run_id"]);
    assert_eq!(lists["tables"], contacts["tables"]);
    manifest
}

async fn server() -> MockServer {
    // A little latency so the crash points are reachable in a debug build.
    mock(
        CONTACTS,
        Faults {
            latency: Duration::from_millis(2),
            ..Faults::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_after_kill_9_at_several_points_is_exact() {
    let server = server().await;
    let truth = server.ground_truth(None, None);
    for (name, files) in [
        ("before any file was finished", 0),
        ("mid-file", 1),
        ("late", 3),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        crash_when(&server, &lake, |lake| {
            if files == 0 {
                lake.join("contacts/_staging").exists()
            } else {
                checkpointed_files(lake) >= files
            }
        })
        .await;
        let kept = checkpointed_files(&lake);
        let progress = checkpoint_progress(&lake);
        let manifest = finish(&server, &lake, true).await;
        if kept > 0 {
            // Pages already in finished files are not fetched again (the resumed run's main
            // pass starts near where the interrupted one stopped; verification reads of the
            // boundaries come on top).
            let stats =
                &serde_json::from_str::<serde_json::Value>(&manifest).unwrap()["fetch_stats"];
            let main_pages =
                stats["pages"].as_u64().unwrap() - stats["verification_reads"].as_u64().unwrap();
            assert!(
                main_pages < (CONTACTS / 1000) as u64,
                "{name}: fetched {main_pages} pages again; the checkpoint's progress was \
                 {progress}; the resumed run's fetch stats: {stats}"
            );
        }
        check_lake(&lake, &truth, Some(CONTACTS));
        assert!(manifest.contains("\"rows\": 200000"), "{name}: {manifest}");
        assert!(
            !lake.join("contacts/_staging").exists()
                || walk(&lake.join("contacts/_staging")).is_empty(),
            "{name}: staging left behind: {:?}",
            walk(&lake.join("contacts/_staging"))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_run_after_a_crash_is_exact_and_cleans_up_once_the_crashed_run_is_stale() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    crash_when(&server, &lake, |lake| checkpointed_files(lake) >= 2).await;
    let crashed = walk(&lake.join("contacts/_staging"));
    finish(&server, &lake, false).await;
    check_lake(&lake, &server.ground_truth(None, None), Some(CONTACTS));
    // Killed seconds ago, the crashed run cannot be told from one still exporting: its
    // staging stays, hidden, for a later run (or --resume).
    assert_eq!(walk(&lake.join("contacts/_staging")), crashed);
    // Only this run's files are in the date folder.
    let runs: std::collections::HashSet<String> = parquet_files(&lake)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy()[11..].to_owned())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");

    // Once its heartbeat has been silent for STALE_STAGING, the next run removes it.
    let silent = trackly_export::converter::heartbeat::STALE_STAGING + Duration::from_secs(60);
    for file in &crashed {
        let file = std::fs::File::options().write(true).open(file).unwrap();
        file.set_modified(std::time::SystemTime::now() - silent)
            .unwrap();
    }
    finish(&server, &lake, false).await;
    assert!(
        walk(&lake.join("contacts/_staging")).is_empty(),
        "the stale run's staging was not removed"
    );
    check_lake(&lake, &server.ground_truth(None, None), Some(CONTACTS));
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_with_nothing_to_resume_starts_afresh() {
    let server = mock(5_000, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    finish(&server, &lake, true).await;
    check_lake(&lake, &server.ground_truth(None, None), Some(5_000));
}
