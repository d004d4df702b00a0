//! Decoding realistic contacts and writing them through `ParquetSink` to real files (and to a
//! faulty store over memory), then reading them back with the parquet crate's own reader.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use chrono::{NaiveDate, TimeZone, Utc};
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Encoding;
use parquet::file::reader::{FileReader, SerializedFileReader};
use trackly_contacts::schema::col;
use trackly_contacts::{ContactBatcher, DecoderOptions, InvalidPolicy, contacts_schema};
use trackly_converter::{Compression, OutputLocation, ParquetSink, SinkOptions, WriterOptions};

use support::faulty_store::FaultyStore;

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 4, 2).unwrap()
}

/// `rows` realistic contacts decoded into batches of `batch_size`.
fn batches(run_id: &str, seed: u64, rows: u64, batch_size: usize) -> Vec<RecordBatch> {
    let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
    let mut decoder = ContactBatcher::new(
        DecoderOptions::new(run_id, started)
            .with_batch_size(batch_size)
            .with_on_invalid(InvalidPolicy::Fail),
    )
    .unwrap();
    let contacts = support::contacts(seed, 0, rows);
    for (i, chunk) in contacts.chunks(1000).enumerate() {
        decoder
            .push_page(&support::page(i as u64 + 1, chunk))
            .unwrap();
    }
    std::iter::from_fn(|| decoder.flush().unwrap()).collect()
}

fn options(run_id: &str, writer: WriterOptions) -> SinkOptions {
    SinkOptions {
        extract_date: date(),
        run_id: run_id.to_owned(),
        writer,
        query_json: serde_json::json!({"list_number": "+18005551234", "active": true}),
    }
}

async fn export(
    dir: &FsPath,
    run_id: &str,
    rows: u64,
    writer: WriterOptions,
) -> trackly_converter::SinkSummary {
    let location = OutputLocation::parse(dir.to_str().unwrap()).unwrap();
    let mut sink = ParquetSink::create(location, options(run_id, writer))
        .await
        .unwrap();
    for batch in batches(run_id, 7, rows, 500) {
        sink.write(&batch).await.unwrap();
    }
    sink.finish(serde_json::json!({"pages": 3, "retries": 0}))
        .await
        .unwrap()
}

fn date_dir(root: &FsPath) -> PathBuf {
    root.join("contacts/extract_date=2025-04-02")
}

/// Every file below `root`, relative, sorted.
fn tree(root: &FsPath) -> Vec<String> {
    fn walk(dir: &FsPath, root: &FsPath, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn read_all(path: &FsPath) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn round_trip_keeps_schema_rows_and_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let writer = WriterOptions {
        row_group_rows: 1000,
        bloom_filter_phone: true,
        ..WriterOptions::default()
    };
    let summary = export(dir.path(), "run-a", 2500, writer).await;
    assert_eq!(summary.rows, 2500);
    assert_eq!(summary.files.len(), 1);
    let file = date_dir(dir.path()).join("part-00000-run-a.parquet");
    assert_eq!(
        summary.files[0].path,
        "contacts/extract_date=2025-04-02/part-00000-run-a.parquet"
    );
    assert_eq!(
        summary.files[0].bytes,
        std::fs::metadata(&file).unwrap().len()
    );

    // Arrow schema restored exactly, map names included.
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(builder.schema().fields(), contacts_schema().fields());
    let metadata = builder.metadata().clone();
    let row_groups: Vec<i64> = metadata
        .row_groups()
        .iter()
        .map(|rg| rg.num_rows())
        .collect();
    assert_eq!(row_groups, [1000, 1000, 500]);
    for rg in metadata.row_groups() {
        for chunk in rg.columns() {
            let name = chunk.column_path().string();
            assert!(
                chunk.column_index_offset().is_some(),
                "column index of {name}"
            );
            assert!(
                chunk.offset_index_offset().is_some(),
                "offset index of {name}"
            );
        }
    }

    // The Parquet schema is a MAP with key_value / key / value.
    let descr = metadata.file_metadata().schema_descr();
    let paths: Vec<String> = (0..descr.num_columns())
        .map(|i| descr.column(i).path().string())
        .collect();
    assert!(
        paths.contains(&"custom_fields.key_value.key".to_owned()),
        "{paths:?}"
    );
    assert!(paths.contains(&"custom_fields.key_value.value".to_owned()));
    let map_group = descr.root_schema().get_fields()[col::CUSTOM_FIELDS].clone();
    assert_eq!(
        map_group.get_basic_info().converted_type(),
        parquet::basic::ConvertedType::MAP
    );

    // Dictionary off for phone_number, on for list_number; page statistics everywhere.
    let rg = metadata.row_group(0);
    let chunk = |name: &str| {
        rg.columns()
            .iter()
            .find(|c| c.column_path().string() == name)
            .unwrap()
            .clone()
    };
    let is_dict = |e: &Encoding| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY);
    assert!(!chunk("phone_number").encodings().any(|e| is_dict(&e)));
    assert!(chunk("list_number").encodings().any(|e| is_dict(&e)));
    assert!(chunk("phone_number").statistics().is_some());
    assert!(chunk("phone_number").bloom_filter_offset().is_some());
    assert_eq!(
        chunk("phone_number").compression(),
        parquet::basic::Compression::ZSTD(Default::default())
    );

    // Values survive: compare with a fresh decode, batch by batch.
    let read: Vec<RecordBatch> =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
            .unwrap()
            .with_batch_size(500)
            .build()
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let expected = batches("run-a", 7, 2500, 500);
    assert_eq!(read.len(), expected.len());
    for (got, want) in read.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    let kv = SerializedFileReader::new(std::fs::File::open(&file).unwrap())
        .unwrap()
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap();
    assert!(
        kv.iter()
            .any(|k| k.key == "trackly.run_id" && k.value.as_deref() == Some("run-a"))
    );
}

#[tokio::test]
async fn files_rotate_at_the_target_size_and_staging_is_gone_after_finish() {
    let dir = tempfile::tempdir().unwrap();
    let writer = WriterOptions {
        target_file_bytes: 1,
        compression: Compression::Snappy,
        ..WriterOptions::default()
    };
    let summary = export(dir.path(), "run-b", 2000, writer).await;
    assert_eq!(summary.files.len(), 4, "one file per 500-row batch");
    assert!(summary.files.iter().all(|f| f.rows == 500));
    assert_eq!(
        tree(dir.path()),
        [
            "contacts/extract_date=2025-04-02/_SUCCESS",
            "contacts/extract_date=2025-04-02/_manifest.json",
            "contacts/extract_date=2025-04-02/part-00000-run-b.parquet",
            "contacts/extract_date=2025-04-02/part-00001-run-b.parquet",
            "contacts/extract_date=2025-04-02/part-00002-run-b.parquet",
            "contacts/extract_date=2025-04-02/part-00003-run-b.parquet",
        ]
    );
    assert!(!dir.path().join("contacts/_staging").exists());
    let total: usize = (0..4)
        .map(|i| {
            let file = date_dir(dir.path()).join(format!("part-{i:05}-run-b.parquet"));
            read_all(&file).iter().map(|b| b.num_rows()).sum::<usize>()
        })
        .sum();
    assert_eq!(total, 2000);
}

#[tokio::test]
async fn manifest_describes_the_run_and_success_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let summary = export(dir.path(), "run-c", 1200, WriterOptions::default()).await;
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(date_dir(dir.path()).join("_manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["format"], "trackly-export/contacts-manifest/v1");
    assert_eq!(manifest["run_id"], "run-c");
    assert_eq!(manifest["extract_date"], "2025-04-02");
    assert_eq!(manifest["query"]["list_number"], "+18005551234");
    assert_eq!(manifest["fetch_stats"]["pages"], 3);
    assert_eq!(manifest["rows"], 1200);
    assert_eq!(manifest["bytes"], summary.bytes);
    assert_eq!(manifest["files"][0]["rows"], 1200);
    assert_eq!(manifest["files"][0]["path"], summary.files[0].path);
    assert_eq!(manifest["rejects"]["count"], 0);
    assert!(manifest["rejects"]["file"].is_null());
    assert_eq!(manifest["writer"]["compression"], "zstd(3)");
    assert_eq!(manifest["writer"]["row_group_rows"], 131072);
    assert_eq!(manifest["schema"].as_array().unwrap().len(), 21);
    assert_eq!(manifest["schema"][6]["name"], "custom_fields");
    assert!(manifest["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(manifest["finished_at"].as_str().unwrap() >= manifest["started_at"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(date_dir(dir.path()).join("_SUCCESS"))
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn a_rerun_replaces_the_date() {
    let dir = tempfile::tempdir().unwrap();
    let small = WriterOptions {
        target_file_bytes: 1,
        ..WriterOptions::default()
    };
    export(dir.path(), "run-old", 1500, small.clone()).await;
    // A file of another date must survive.
    let other = dir.path().join("contacts/extract_date=2025-04-01");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("part-00000-x.parquet"), b"keep").unwrap();

    let summary = export(dir.path(), "run-new", 700, small).await;
    assert_eq!(summary.files.len(), 2);
    let names: Vec<String> = tree(&date_dir(dir.path()));
    assert_eq!(
        names,
        [
            "_SUCCESS",
            "_manifest.json",
            "part-00000-run-new.parquet",
            "part-00001-run-new.parquet"
        ]
    );
    assert!(other.join("part-00000-x.parquet").exists());
    assert!(
        !dir.path().join("contacts/_staging").exists(),
        "the replaced files were moved aside, then deleted: {:?}",
        tree(dir.path())
    );
}

#[tokio::test]
async fn an_empty_run_publishes_one_schema_only_file() {
    let dir = tempfile::tempdir().unwrap();
    let location = OutputLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let sink = ParquetSink::create(location, options("run-e", WriterOptions::default()))
        .await
        .unwrap();
    let summary = sink.finish(serde_json::Value::Null).await.unwrap();
    assert_eq!(summary.rows, 0);
    assert_eq!(summary.files.len(), 1);
    let file = date_dir(dir.path()).join("part-00000-run-e.parquet");
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap()).unwrap();
    assert_eq!(builder.schema().fields(), contacts_schema().fields());
}

#[tokio::test]
async fn abort_leaves_no_parquet_and_no_staging() {
    let dir = tempfile::tempdir().unwrap();
    export(dir.path(), "run-good", 600, WriterOptions::default()).await;
    let before = tree(dir.path());

    let location = OutputLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let writer = WriterOptions {
        target_file_bytes: 1,
        ..WriterOptions::default()
    };
    let mut sink = ParquetSink::create(location, options("run-bad", writer))
        .await
        .unwrap();
    for batch in batches("run-bad", 9, 1500, 500) {
        sink.write(&batch).await.unwrap();
    }
    sink.write_rejects(&[]).await.unwrap();
    assert!(
        tree(dir.path())
            .iter()
            .any(|p| p.contains("_staging/run-bad/")),
        "staged while running"
    );
    sink.abort().await.unwrap();
    assert_eq!(tree(dir.path()), before, "the earlier run is untouched");
    assert!(!dir.path().join("contacts/_staging").exists());
}

#[tokio::test]
async fn quarantined_rejects_are_published_as_ndjson() {
    let dir = tempfile::tempdir().unwrap();
    let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
    let mut decoder = ContactBatcher::new(
        DecoderOptions::new("run-q", started).with_on_invalid(InvalidPolicy::Quarantine),
    )
    .unwrap();
    let good = support::contacts(1, 0, 3);
    let bad =
        r#"{"phone_number":"+14155550000","list_number":"+18005551234","revenue_total":"1,23"}"#;
    let records = [good[0].clone(), bad.to_owned(), good[1].clone()];
    decoder.push_page(&support::page(4, &records)).unwrap();

    let location = OutputLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let mut sink = ParquetSink::create(location, options("run-q", WriterOptions::default()))
        .await
        .unwrap();
    sink.write_rejects(&decoder.take_rejects()).await.unwrap();
    sink.write(&decoder.flush().unwrap().unwrap())
        .await
        .unwrap();
    let summary = sink.finish(serde_json::json!({})).await.unwrap();
    assert_eq!((summary.rows, summary.rejects), (2, 1));

    let text = std::fs::read_to_string(date_dir(dir.path()).join("_rejects-run-q.ndjson")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["page"], 4);
    assert_eq!(lines[0]["index"], 1);
    assert_eq!(lines[0]["field"], "revenue_total");
    assert_eq!(lines[0]["raw"], bad);
    assert!(
        lines[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a JSON number")
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(date_dir(dir.path()).join("_manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["rejects"]["count"], 1);
    assert_eq!(
        manifest["rejects"]["file"],
        "contacts/extract_date=2025-04-02/_rejects-run-q.ndjson"
    );
    let rows = read_all(&date_dir(dir.path()).join("part-00000-run-q.parquet"));
    assert_eq!(
        rows[0].column(col::PHONE_NUMBER).as_string::<i32>().len(),
        2
    );
}

#[tokio::test]
async fn publication_order_ends_with_manifest_then_success() {
    let store = FaultyStore::in_memory();
    let location = OutputLocation::from_store(store.clone(), "lake");
    let writer = WriterOptions {
        target_file_bytes: 1,
        ..WriterOptions::default()
    };
    // An older run's file and marker in the same date.
    let old = object_store::path::Path::from(
        "lake/contacts/extract_date=2025-04-02/part-00000-old.parquet",
    );
    store.put(&old, "x".into()).await.unwrap();
    store
        .put(
            &"lake/contacts/extract_date=2025-04-02/_SUCCESS".into(),
            "".into(),
        )
        .await
        .unwrap();
    let mut sink = ParquetSink::create(location, options("r1", writer))
        .await
        .unwrap();
    for batch in batches("r1", 3, 1000, 500) {
        sink.write(&batch).await.unwrap();
    }
    sink.finish(serde_json::json!({})).await.unwrap();

    let log = store.log();
    let set_up = format!("put {old}");
    let dated: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .filter(|e| (e.contains("extract_date=") || e.contains("/_retired/")) && *e != set_up)
        .filter(|e| !e.ends_with("/_publishing"))
        .collect();
    let d = "lake/contacts/extract_date=2025-04-02";
    // The publication lease is taken before the first move and removed after the last marker.
    let at = |entry: &str| {
        log.iter()
            .position(|e| e == entry)
            .unwrap_or_else(|| panic!("no {entry}: {log:#?}"))
    };
    let lease = at(&format!("put {d}/_publishing"));
    assert!(
        lease < at("rename lake/contacts/_staging/_retired/r1/_SUCCESS"),
        "{log:#?}"
    );
    assert!(
        at(&format!("delete {d}/_publishing"))
            > log
                .iter()
                .rposition(|e| *e == format!("put {d}/_SUCCESS"))
                .unwrap(),
        "{log:#?}"
    );
    // The faulty store logs a rename under its target.
    let retired = "lake/contacts/_staging/_retired/r1";
    assert_eq!(
        dated,
        [
            format!("put {d}/_SUCCESS").as_str(), // set up above
            format!("rename {retired}/_SUCCESS").as_str(),
            format!("rename {retired}/part-00000-old.parquet").as_str(),
            format!("rename {d}/part-00000-r1.parquet").as_str(),
            format!("rename {d}/part-00001-r1.parquet").as_str(),
            format!("put {d}/_manifest.json").as_str(),
            format!("put {d}/_SUCCESS").as_str(),
            format!("delete {retired}/_SUCCESS").as_str(),
            format!("delete {retired}/part-00000-old.parquet").as_str(),
        ]
    );
    // After the set-up, the run writes its heartbeat, then its first file, all in staging.
    assert_eq!(
        log[2], "put lake/contacts/_staging/r1/_heartbeat",
        "{log:#?}"
    );
    assert!(
        log[3].contains("_staging/r1/part-00000-r1.parquet.inprogress"),
        "{log:#?}"
    );
}

#[tokio::test]
async fn a_failed_publication_removes_the_runs_files_and_keeps_the_old_ones() {
    let store = FaultyStore::in_memory();
    let location = OutputLocation::from_store(store.clone(), "lake");
    let old = object_store::path::Path::from(
        "lake/contacts/extract_date=2025-04-02/part-00000-old.parquet",
    );
    store.put(&old, "x".into()).await.unwrap();
    let writer = WriterOptions {
        target_file_bytes: 1,
        ..WriterOptions::default()
    };
    let mut sink = ParquetSink::create(location, options("r2", writer))
        .await
        .unwrap();
    for batch in batches("r2", 3, 1500, 500) {
        sink.write(&batch).await.unwrap();
    }
    store.fail_on("-> lake/contacts/extract_date=2025-04-02/part-00002-r2.parquet");
    let err = sink.finish(serde_json::json!({})).await.unwrap_err();
    assert!(err.to_string().contains("part-00002-r2.parquet"), "{err}");

    use futures::TryStreamExt;
    let left: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(left, [old.to_string()], "only the older run's file is left");
}

#[tokio::test]
async fn sink_accepts_any_object_store_via_from_store() {
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let location = OutputLocation::from_store(store.clone(), "x/y");
    let mut sink = ParquetSink::create(location, options("r3", WriterOptions::default()))
        .await
        .unwrap();
    for batch in batches("r3", 5, 300, 100) {
        sink.write(&batch).await.unwrap();
    }
    let summary = sink.finish(serde_json::json!({})).await.unwrap();
    assert_eq!(
        summary.manifest_path,
        "x/y/contacts/extract_date=2025-04-02/_manifest.json"
    );
    let bytes = store
        .get(&summary.files[0].path.as_str().into())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), 300);
}

// Rollback of a failed publication, with faults injected around a real local file system.

use std::collections::BTreeSet;

use object_store::local::LocalFileSystem;
use object_store::path::Path;
use support::faulty_store::Rename;
use trackly_converter::ConvertError;

const DATE: &str = "contacts/extract_date=2025-04-02";

/// Publishes `rows` contacts as run `run_id`, one file per 500 rows.
async fn publish(
    location: OutputLocation,
    run_id: &str,
    rows: u64,
) -> trackly_converter::Result<trackly_converter::SinkSummary> {
    let writer = WriterOptions {
        target_file_bytes: 1,
        ..WriterOptions::default()
    };
    let mut sink = ParquetSink::create(location, options(run_id, writer)).await?;
    for batch in batches(run_id, 11, rows, 500) {
        sink.write(&batch).await?;
    }
    sink.finish(serde_json::json!({})).await
}

/// A lake under `root` whose date holds a complete run `run-old` (three files, a rejects file,
/// `_manifest.json`, `_SUCCESS`) and a file that is no run's; and a faulty store around it.
async fn lake_with_previous_run(root: &FsPath, rename: Rename) -> Arc<FaultyStore> {
    let plain = OutputLocation::parse(root.to_str().unwrap()).unwrap();
    publish(plain, "run-old", 1500).await.unwrap();
    std::fs::write(
        date_dir(root).join("_rejects-run-old.ndjson"),
        "{\"page\":1}\n",
    )
    .unwrap();
    std::fs::write(date_dir(root).join("README.txt"), "not a run's").unwrap();
    let local = LocalFileSystem::new_with_prefix(root)
        .unwrap()
        .with_automatic_cleanup(true);
    FaultyStore::with_rename(Arc::new(local), rename)
}

fn faulty_location(store: &Arc<FaultyStore>) -> OutputLocation {
    OutputLocation::from_store(store.clone(), Path::default())
}

/// Name and a digest of the bytes of every file in `dir`, sorted by name.
fn contents(dir: &FsPath) -> Vec<(String, u64)> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    tree(dir)
        .into_iter()
        .map(|name| {
            let mut hasher = DefaultHasher::new();
            std::fs::read(dir.join(&name)).unwrap().hash(&mut hasher);
            (name, hasher.finish())
        })
        .collect()
}

fn date_contents(root: &FsPath) -> Vec<(String, u64)> {
    contents(&date_dir(root))
}

/// The run ids of the `part-*.parquet` files in the date folder.
fn runs_in_date(root: &FsPath) -> BTreeSet<String> {
    tree(&date_dir(root))
        .iter()
        .filter_map(|name| name.strip_prefix("part-")?.strip_suffix(".parquet"))
        .map(|rest| rest[6..].to_owned())
        .collect()
}

/// Asserts that `err` is the storage error of the step that failed, on `path`, with the
/// injected failure as its source.
fn assert_failed_on(err: &ConvertError, path: &str) {
    match err {
        ConvertError::Storage { path: p, source } => {
            assert_eq!(p, path, "{err}");
            assert!(source.to_string().contains("injected failure"), "{source}");
        }
        other => panic!("not a storage error: {other:?}"),
    }
}

#[tokio::test]
async fn a_previous_file_that_cannot_be_moved_aside_leaves_the_previous_run_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = lake_with_previous_run(dir.path(), Rename::Native).await;
    let before = date_contents(dir.path());
    store.fail_always(&format!("rename {DATE}/part-00001-run-old.parquet"));

    let err = publish(faulty_location(&store), "run-new", 1200)
        .await
        .unwrap_err();

    assert_failed_on(&err, &format!("{DATE}/part-00001-run-old.parquet"));
    assert_eq!(date_contents(dir.path()), before, "the date is as it was");
    assert!(
        tree(dir.path()).iter().all(|p| !p.contains("run-new")),
        "nothing of the failed run is left: {:?}",
        tree(dir.path())
    );
}

#[tokio::test]
async fn a_previous_file_that_cannot_be_deleted_after_its_copy_leaves_the_previous_run_intact() {
    // As on S3: the file is copied aside, then deleting the original fails (an object lock, a
    // missing permission), so for a moment both copies exist.
    let dir = tempfile::tempdir().unwrap();
    let store = lake_with_previous_run(dir.path(), Rename::CopyThenDelete).await;
    let before = date_contents(dir.path());
    store.fail_always(&format!("delete {DATE}/part-00002-run-old.parquet"));

    let err = publish(faulty_location(&store), "run-new", 1200)
        .await
        .unwrap_err();

    assert_failed_on(&err, &format!("{DATE}/part-00002-run-old.parquet"));
    assert_eq!(date_contents(dir.path()), before, "the date is as it was");
    assert_eq!(runs_in_date(dir.path()), BTreeSet::from(["run-old".into()]));
    assert!(
        tree(dir.path()).iter().all(|p| !p.contains("_staging")),
        "no retired copy or staging is left: {:?}",
        tree(dir.path())
    );
}

#[tokio::test]
async fn a_failed_manifest_write_removes_the_new_files_and_restores_the_previous_run() {
    for rename in [Rename::Native, Rename::CopyThenDelete] {
        let dir = tempfile::tempdir().unwrap();
        let store = lake_with_previous_run(dir.path(), rename).await;
        let before = date_contents(dir.path());
        // By now the previous run's files have all been moved aside and the new ones moved in.
        store.fail_always(&format!("put {DATE}/_manifest.json"));

        let err = publish(faulty_location(&store), "run-new", 1200)
            .await
            .unwrap_err();

        assert_failed_on(&err, &format!("{DATE}/_manifest.json"));
        assert_eq!(
            date_contents(dir.path()),
            before,
            "{rename:?}: the previous run's files, manifest and _SUCCESS are back, unchanged"
        );
        assert!(
            tree(dir.path()).iter().all(|p| !p.contains("run-new")),
            "{rename:?}: {:?}",
            tree(dir.path())
        );
    }
}

#[tokio::test]
async fn a_failed_success_marker_write_rolls_back_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = lake_with_previous_run(dir.path(), Rename::Native).await;
    let before = date_contents(dir.path());
    // Only the new marker is written with `put`; the previous one is moved aside and back.
    store.fail_always(&format!("put {DATE}/_SUCCESS"));

    let err = publish(faulty_location(&store), "run-new", 700)
        .await
        .unwrap_err();

    assert_failed_on(&err, &format!("{DATE}/_SUCCESS"));
    assert_eq!(date_contents(dir.path()), before);
}

#[tokio::test]
async fn a_rollback_operation_that_fails_briefly_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let store = lake_with_previous_run(dir.path(), Rename::Native).await;
    let before = date_contents(dir.path());
    store.fail_always(&format!("put {DATE}/_manifest.json"));
    store.fail_times(&format!("delete {DATE}/part-00000-run-new.parquet"), 2);
    store.fail_times("rename contacts/_staging/_retired/run-new/_SUCCESS", 2);

    let err = publish(faulty_location(&store), "run-new", 1200)
        .await
        .unwrap_err();

    assert_failed_on(&err, &format!("{DATE}/_manifest.json"));
    assert_eq!(date_contents(dir.path()), before);
}

#[tokio::test]
async fn when_the_new_files_cannot_be_removed_the_previous_run_stays_aside_and_unmixed() {
    let dir = tempfile::tempdir().unwrap();
    let store = lake_with_previous_run(dir.path(), Rename::Native).await;
    let before = date_contents(dir.path());
    store.fail_always(&format!("put {DATE}/_manifest.json"));
    store.fail_always(&format!("delete {DATE}/part-00001-run-new.parquet"));

    let err = publish(faulty_location(&store), "run-new", 1500)
        .await
        .unwrap_err();

    // The error is the failed step's, not the rollback's.
    assert_failed_on(&err, &format!("{DATE}/_manifest.json"));
    // Newest first: part 2 was removed, part 1 could not be, so part 0 stays with it.
    assert_eq!(
        tree(&date_dir(dir.path())),
        [
            "README.txt",
            "part-00000-run-new.parquet",
            "part-00001-run-new.parquet"
        ],
        "one run's files only, and no _SUCCESS"
    );
    // The previous run is whole, aside, for an operator to move back.
    let retired = contents(&dir.path().join("contacts/_staging/_retired/run-new"));
    let previous: Vec<_> = before
        .into_iter()
        .filter(|(n, _)| n != "README.txt")
        .collect();
    assert_eq!(retired, previous);
}

#[tokio::test]
async fn when_a_previous_file_cannot_be_moved_back_no_success_marker_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let store = lake_with_previous_run(dir.path(), Rename::Native).await;
    store.fail_always(&format!("put {DATE}/_manifest.json"));
    store.fail_always("rename contacts/_staging/_retired/run-new/part-00001-run-old.parquet");

    let err = publish(faulty_location(&store), "run-new", 1200)
        .await
        .unwrap_err();

    assert_failed_on(&err, &format!("{DATE}/_manifest.json"));
    assert_eq!(
        tree(&date_dir(dir.path())),
        [
            "README.txt",
            "_manifest.json",
            "_rejects-run-old.ndjson",
            "part-00000-run-old.parquet",
            "part-00002-run-old.parquet"
        ],
        "the rest of the previous run is back, without _SUCCESS"
    );
    assert_eq!(
        tree(&dir.path().join("contacts/_staging/_retired/run-new")),
        ["_SUCCESS", "part-00001-run-old.parquet"]
    );
}

#[tokio::test]
async fn replaced_files_that_cannot_be_deleted_do_not_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = lake_with_previous_run(dir.path(), Rename::Native).await;
    store.fail_always("delete contacts/_staging/_retired/");

    let summary = publish(faulty_location(&store), "run-new", 700)
        .await
        .unwrap();

    assert_eq!(summary.files.len(), 2);
    assert_eq!(
        tree(&date_dir(dir.path())),
        [
            "README.txt",
            "_SUCCESS",
            "_manifest.json",
            "part-00000-run-new.parquet",
            "part-00001-run-new.parquet"
        ]
    );
    // Left hidden where no reader looks.
    assert_eq!(
        tree(&dir.path().join("contacts/_staging/_retired/run-new")).len(),
        6
    );
}

/// A sink of run `run_id` over the lake at `root` that has written `rows` contacts and
/// checkpointed them, as a run still exporting has.
async fn live_run(root: &FsPath, run_id: &str, rows: u64) -> ParquetSink {
    let location = OutputLocation::parse(root.to_str().unwrap()).unwrap();
    let writer = WriterOptions {
        target_file_bytes: 1,
        ..WriterOptions::default()
    };
    let mut sink = ParquetSink::create(location, options(run_id, writer))
        .await
        .unwrap();
    for batch in batches(run_id, 3, rows, 500) {
        sink.write(&batch).await.unwrap();
    }
    let point = trackly_contacts::ResumePoint {
        page: 2,
        ..Default::default()
    };
    sink.checkpoint(point).await.unwrap();
    sink
}

/// Sets the modification time of every file under `dir` back by `age`.
fn age_files(dir: &FsPath, age: std::time::Duration) {
    for name in tree(dir) {
        let file = std::fs::File::options()
            .write(true)
            .open(dir.join(name))
            .unwrap();
        file.set_modified(std::time::SystemTime::now() - age)
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_older_runs_staging_outlives_another_runs_publication_and_then_publishes() {
    let dir = tempfile::tempdir().unwrap();
    // The older run is still exporting (its heartbeat beats) when a newer run of the date
    // publishes: the newer run's clean-up must leave its staging alone.
    let older = live_run(dir.path(), "run-a", 1000).await;
    export(dir.path(), "run-b", 600, WriterOptions::default()).await;
    assert_eq!(
        runs_in_date(dir.path()),
        BTreeSet::from(["run-b".to_owned()])
    );
    assert!(
        tree(&dir.path().join("contacts/_staging/run-a"))
            .iter()
            .any(|name| name.ends_with(".parquet.inprogress")),
        "the live run's staged files were removed"
    );
    // It then publishes over the newer run: the last run to publish a date replaces it whole.
    let summary = older.finish(serde_json::json!({})).await.unwrap();
    assert_eq!(summary.rows, 1000);
    assert_eq!(
        runs_in_date(dir.path()),
        BTreeSet::from(["run-a".to_owned()])
    );
    assert!(!dir.path().join("contacts/_staging").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_runs_staging_is_removed_once_its_heartbeat_is_stale_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("contacts/_staging/run-a");
    // A run killed mid-export: its sink is dropped, its heartbeat stops.
    drop(live_run(dir.path(), "run-a", 1000).await);
    assert!(tree(&staging).iter().any(|n| n == "_heartbeat"));

    // Killed a moment ago, it cannot be told from a live run: a newer run leaves it.
    export(dir.path(), "run-b", 600, WriterOptions::default()).await;
    assert!(
        !tree(&staging).is_empty(),
        "a run dead for seconds was taken for abandoned"
    );

    // Silent for longer than STALE_STAGING: the next publication of the date removes it.
    age_files(
        &staging,
        trackly_converter::heartbeat::STALE_STAGING + std::time::Duration::from_secs(60),
    );
    export(dir.path(), "run-c", 600, WriterOptions::default()).await;
    assert!(!staging.exists(), "{:?}", tree(dir.path()));
    assert_eq!(
        runs_in_date(dir.path()),
        BTreeSet::from(["run-c".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_whose_staging_another_run_removed_fails_clearly_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    export(dir.path(), "run-0", 600, WriterOptions::default()).await;
    let before = date_contents(dir.path());
    let sink = live_run(dir.path(), "run-a", 1000).await;
    // What another run's clean-up does to a staging it took for abandoned.
    for name in tree(&dir.path().join("contacts/_staging/run-a")) {
        if name.ends_with(".parquet.inprogress") {
            std::fs::remove_file(dir.path().join("contacts/_staging/run-a").join(name)).unwrap();
        }
    }
    let err = sink.finish(serde_json::json!({})).await.unwrap_err();
    assert!(matches!(err, ConvertError::StagingLost { .. }), "{err:?}");
    assert!(
        err.to_string().contains("another run of this date"),
        "{err}"
    );
    assert_eq!(
        date_contents(dir.path()),
        before,
        "the date holds what it held"
    );
}
