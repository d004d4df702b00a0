//! The Delta commit (feature `delta`): two writers racing the commit of one date on S3 (moto,
//! as scripts/test.sh starts it), and VACUUM. The tables are read back with delta-rs itself;
//! the end-to-end tests in the root `tests/delta.rs` read them with Python's deltalake and
//! Polars.
#![cfg(feature = "delta")]
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use deltalake_core::DeltaTable;
use deltalake_core::logstore::{StorageConfig, default_logstore};
use futures::TryStreamExt;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use trackly_contacts::{ContactBatcher, DecoderOptions};
use trackly_converter::{OutputLocation, ParquetSink, SinkOptions, TableFormat, WriterOptions};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The moto server scripts/test.sh starts. Without it the test fails: it never passes by
/// skipping.
async fn s3() -> Arc<dyn ObjectStore> {
    let endpoint = std::env::var("TRACKLY_TEST_S3_ENDPOINT")
        .expect("TRACKLY_TEST_S3_ENDPOINT is not set: run scripts/test.sh, which starts moto");
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let bucket = env_or("TRACKLY_TEST_S3_BUCKET", "trackly-test");
    let _ = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await;
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(&endpoint)
            .with_bucket_name(&bucket)
            .with_region(env_or("AWS_REGION", "us-east-1"))
            .with_access_key_id(env_or("AWS_ACCESS_KEY_ID", "testing"))
            .with_secret_access_key(env_or("AWS_SECRET_ACCESS_KEY", "testing"))
            .with_allow_http(true)
            .build()
            .unwrap(),
    )
}

fn batches(run_id: &str, rows: u64) -> Vec<arrow_array::RecordBatch> {
    let started = Utc.with_ymd_and_hms(2026, 11, 27, 3, 0, 0).unwrap();
    let mut decoder =
        ContactBatcher::new(DecoderOptions::new(run_id, started).with_batch_size(1000)).unwrap();
    let records: Vec<String> = (0..rows)
        .map(|i| {
            format!(
                r#"{{"phone_number":"+1415{i:07}","list_number":"+18005551234","send_count":{i}}}"#
            )
        })
        .collect();
    let page = support::page(1, &records);
    decoder.push_page(&page).unwrap();
    std::iter::from_fn(|| decoder.flush().unwrap()).collect()
}

fn options(run_id: &str, date: NaiveDate) -> SinkOptions {
    SinkOptions {
        extract_date: date,
        run_id: run_id.to_owned(),
        writer: WriterOptions::default(),
        query_json: serde_json::json!({}),
    }
}

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
}

/// Writes `rows` contacts as run `run_id` of `day`, ready to commit.
async fn written(location: &OutputLocation, run_id: &str, day: u32, rows: u64) -> ParquetSink {
    let mut sink = ParquetSink::create(location.clone(), options(run_id, date(day)))
        .await
        .unwrap();
    sink.set_table_format(TableFormat::Delta).unwrap();
    for batch in batches(run_id, rows) {
        sink.write(&batch).await.unwrap();
    }
    sink
}

/// The contacts table under `prefix` of `store`, at its newest version, read by delta-rs
/// (`scheme` `file` for a local store, whose listings are not sorted; `memory` names the path
/// of any other).
async fn contacts_table(store: Arc<dyn ObjectStore>, scheme: &str, prefix: &str) -> DeltaTable {
    let table_path = Path::from(format!("{prefix}/contacts"));
    let url = url::Url::parse(&format!("{scheme}:///{table_path}")).unwrap();
    let prefixed: Arc<dyn ObjectStore> = Arc::new(PrefixStore::new(store.clone(), table_path));
    let log_store = default_logstore(prefixed, store, &url, &StorageConfig::default());
    let mut table = DeltaTable::new(log_store);
    table.load().await.unwrap();
    table
}

/// `(path, numRecords)` of every file of the newest snapshot.
async fn active_files(table: &DeltaTable) -> Vec<(String, u64)> {
    let files: Vec<_> = table
        .get_active_add_actions_by_partitions(&[])
        .try_collect()
        .await
        .unwrap();
    files
        .iter()
        .map(|f| {
            let stats: serde_json::Value = serde_json::from_str(&f.stats().unwrap()).unwrap();
            (f.path().to_string(), stats["numRecords"].as_u64().unwrap())
        })
        .collect()
}

async fn writes(table: &DeltaTable) -> Vec<serde_json::Value> {
    let history: Vec<_> = table.history(None).try_collect().await.unwrap();
    history
        .into_iter()
        .filter(|c| c.operation.as_deref() == Some("WRITE"))
        .map(|c| c.info.get("trackly").cloned().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_racing_one_date_on_s3_leave_exactly_one_run() {
    let store = s3().await;
    let prefix = format!("delta-race-{}", Utc::now().timestamp_micros());
    let location = OutputLocation::from_store(store.clone(), prefix.as_str());
    // A first run creates the table, so both racers read the same version and race for the
    // next one.
    let first = written(&location, "run-0", 27, 1_500).await;
    first.finish(serde_json::json!({})).await.unwrap();

    for round in 0..3 {
        let a = written(&location, &format!("run-{round}-a"), 27, 2_000).await;
        let b = written(&location, &format!("run-{round}-b"), 27, 2_000).await;
        let (ra, rb) = tokio::join!(
            a.finish(serde_json::json!({})),
            b.finish(serde_json::json!({}))
        );
        // Both land (the loser plans its commit again on the winner's snapshot), or one
        // fails cleanly; never both lost, never both in the snapshot.
        let ok = [ra.is_ok(), rb.is_ok()];
        assert!(ok.iter().any(|o| *o), "round {round}: {ra:?} {rb:?}");

        let table = contacts_table(store.clone(), "memory", &prefix).await;
        let files = active_files(&table).await;
        let runs: HashSet<&str> = files
            .iter()
            .map(|(path, _)| path.rsplit_once("-run-").map_or("", |(_, run)| run))
            .collect();
        assert_eq!(
            runs.len(),
            1,
            "round {round}: files of several runs: {files:?}"
        );
        assert_eq!(
            files.iter().map(|(_, n)| n).sum::<u64>(),
            2_000,
            "round {round}: {files:?}"
        );
        let landed = ok.iter().filter(|o| **o).count();
        assert_eq!(
            writes(&table).await.len(),
            1 + 2 * round + landed,
            "round {round}: one WRITE per run that landed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_removes_only_files_removed_longer_ago_than_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let location = OutputLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let part = |day: u32, run: &str| {
        dir.path()
            .join(format!("contacts/extract_date=2026-11-{day}"))
            .join(format!("part-00000-{run}.parquet"))
    };

    written(&location, "a", 27, 100)
        .await
        .finish(serde_json::json!({}))
        .await
        .unwrap();
    // Replaces a's date; a's file was removed a moment ago, so a day's retention keeps it.
    let mut b = written(&location, "b", 27, 100).await;
    b.set_vacuum_retention(Some(Duration::from_secs(24 * 3600)));
    b.finish(serde_json::json!({})).await.unwrap();
    assert!(
        part(27, "a").exists(),
        "removed too recently to be vacuumed"
    );
    // A file outside the log (a killed run's) is not VACUUM's business in lite mode.
    std::fs::copy(part(27, "b"), part(27, "stray")).unwrap();

    // Another date, with no retention at all: a's file goes, nothing the snapshot uses does.
    let mut c = written(&location, "c", 28, 100).await;
    c.set_vacuum_retention(Some(Duration::ZERO));
    c.finish(serde_json::json!({})).await.unwrap();
    assert!(!part(27, "a").exists(), "a's removed file was vacuumed");
    assert!(part(27, "b").exists());
    assert!(part(28, "c").exists());
    assert!(part(27, "stray").exists());

    let store: Arc<dyn ObjectStore> = Arc::new(object_store::local::LocalFileSystem::new());
    let root = dir.path().canonicalize().unwrap();
    let prefix = root.to_str().unwrap().trim_start_matches('/').to_owned();
    let table = contacts_table(store, "file", &prefix).await;
    let mut files: Vec<String> = active_files(&table)
        .await
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "extract_date=2026-11-27/part-00000-b.parquet",
            "extract_date=2026-11-28/part-00000-c.parquet"
        ]
    );
    assert_eq!(writes(&table).await.len(), 3, "one WRITE per run");
}
