//! The lists table beside the contacts: staged in full, published in the same step (both
//! tables or neither), each table's folder left alone when the run does not export it.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use chrono::{NaiveDate, TimeZone, Utc};
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use trackly_contacts::{
    ContactBatcher, DecodeStats, DecoderOptions, InvalidPolicy, ListDecoder, lists_schema,
};
use trackly_converter::{
    OutputLocation, ParquetSink, SinkOptions, StagedTable, TableFormat, TableSpec, WriterOptions,
};

use support::faulty_store::FaultyStore;
use support::store::{json, objects};

const CONTACTS: &str = "lake/contacts/extract_date=2025-04-02";
const LISTS: &str = "lake/lists/extract_date=2025-04-02";

fn options(run_id: &str) -> SinkOptions {
    SinkOptions {
        extract_date: NaiveDate::from_ymd_opt(2025, 4, 2).unwrap(),
        run_id: run_id.to_owned(),
        writer: WriterOptions::default(),
        query_json: serde_json::json!({"list_number": null, "active": null}),
    }
}

fn decoder_options(run_id: &str) -> DecoderOptions {
    let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
    DecoderOptions::new(run_id, started).with_on_invalid(InvalidPolicy::Quarantine)
}

/// A contacts sink of run `run_id` with `rows` contacts written.
async fn contacts(location: &OutputLocation, run_id: &str, rows: u64) -> ParquetSink {
    let mut decoder = ContactBatcher::new(decoder_options(run_id)).unwrap();
    let contacts = support::contacts(3, 0, rows);
    decoder.push_page(&support::page(1, &contacts)).unwrap();
    let mut sink = ParquetSink::create(location.clone(), options(run_id))
        .await
        .unwrap();
    while let Some(batch) = decoder.flush().unwrap() {
        sink.write(&batch).await.unwrap();
    }
    sink
}

/// Lists `ids` of run `run_id`, plus one invalid list, staged.
async fn lists(location: &OutputLocation, run_id: &str, ids: &[i64]) -> StagedTable {
    let mut decoder = ListDecoder::new(decoder_options(run_id));
    let texts: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"id":{id},"phone_number":"+1800555{id:04}","status":"active"}}"#))
        .chain([r#"{"id":"nope"}"#.to_owned()])
        .collect();
    decoder
        .decode_raw("GET /v2/lists, page 1", texts.iter().map(|t| t.as_bytes()))
        .unwrap();
    let batch = decoder.finish().unwrap();
    let spec = TableSpec {
        table: &trackly_contacts::table::LISTS,
        query_json: serde_json::json!({"status": [null, "deleted"]}),
        decode: decoder.stats(),
        fetch_stats: serde_json::json!({"requests": 2}),
    };
    StagedTable::stage(
        TableFormat::Parquet,
        location,
        spec,
        &options(run_id),
        Utc::now(),
        &batch,
        &decoder.take_rejects(),
    )
    .await
    .unwrap()
}

async fn publish_both(location: &OutputLocation, run_id: &str) {
    let table = lists(location, run_id, &[42, 57]).await;
    contacts(location, run_id, 300)
        .await
        .finish_with(serde_json::json!({"requests": 3}), vec![table])
        .await
        .unwrap();
}

fn rows(bytes: Bytes) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn both_tables_publish_in_one_step_and_every_success_marker_comes_last() {
    let store = FaultyStore::in_memory();
    let location = OutputLocation::from_store(store.clone(), "lake");
    publish_both(&location, "r0").await;
    let before = store.log().len();
    publish_both(&location, "r1").await;

    let log = store.log()[before..].to_vec();
    let dated: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .filter(|e| e.contains("extract_date=") && !e.starts_with("delete"))
        .filter(|e| !e.ends_with("/_publishing"))
        .collect();
    assert_eq!(
        dated,
        [
            format!("rename {LISTS}/part-00000-r1.parquet").as_str(),
            format!("rename {LISTS}/_rejects-r1.ndjson").as_str(),
            format!("rename {CONTACTS}/part-00000-r1.parquet").as_str(),
            format!("put {LISTS}/_manifest.json").as_str(),
            format!("put {CONTACTS}/_manifest.json").as_str(),
            format!("put {LISTS}/_SUCCESS").as_str(),
            format!("put {CONTACTS}/_SUCCESS").as_str(),
        ],
        "{log:#?}"
    );
    // The previous run of both tables left first: both markers, then both manifests.
    let retired: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .filter(|e| e.contains("/_retired/r1/") && e.starts_with("rename"))
        .collect();
    assert_eq!(
        &retired[..4],
        [
            "rename lake/lists/_staging/_retired/r1/_SUCCESS",
            "rename lake/contacts/_staging/_retired/r1/_SUCCESS",
            "rename lake/lists/_staging/_retired/r1/_manifest.json",
            "rename lake/contacts/_staging/_retired/r1/_manifest.json",
        ],
        "{log:#?}"
    );

    let store: &dyn ObjectStore = store.as_ref();
    assert_eq!(
        objects(store, "lake/lists").await,
        [
            format!("{LISTS}/_SUCCESS"),
            format!("{LISTS}/_manifest.json"),
            format!("{LISTS}/_rejects-r1.ndjson"),
            format!("{LISTS}/part-00000-r1.parquet"),
        ],
        "nothing staged or retired is left"
    );
    let lists = json(store, &format!("{LISTS}/_manifest.json")).await;
    let contacts = json(store, &format!("{CONTACTS}/_manifest.json")).await;
    assert_eq!(
        lists["format"],
        trackly_contacts::table::LISTS.manifest_format
    );
    assert_eq!(
        (&lists["table"], &lists["rows"]),
        (&"lists".into(), &2.into())
    );
    assert_eq!(lists["rejects"]["count"], 1);
    assert_eq!(lists["run_id"], contacts["run_id"]);
    assert_eq!(
        lists["tables"], contacts["tables"],
        "both name the whole run"
    );
    let tables = contacts["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 2);
    assert_eq!(
        (&tables[0]["name"], &tables[0]["path"], &tables[0]["rows"]),
        (&"lists".into(), &LISTS.into(), &2.into())
    );
    assert_eq!(
        (&tables[1]["name"], &tables[1]["rows"]),
        (&"contacts".into(), &300.into())
    );
    assert_eq!(
        tables[0]["files"][0]["path"],
        format!("{LISTS}/part-00000-r1.parquet")
    );
    assert_eq!(lists["schema"][0]["name"], "id");
    assert_eq!(lists["fetch_stats"]["requests"], 2);
    assert_eq!(contacts["fetch_stats"]["requests"], 3);

    let file = store
        .get(&format!("{LISTS}/part-00000-r1.parquet").into())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let batches = rows(file);
    assert_eq!(batches[0].schema().fields(), lists_schema().fields());
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
}

#[tokio::test]
async fn a_failure_on_the_last_step_rolls_back_both_tables() {
    let store = FaultyStore::in_memory();
    let location = OutputLocation::from_store(store.clone(), "lake");
    publish_both(&location, "r0").await;
    let dyn_store: &dyn ObjectStore = store.as_ref();
    let before = (
        objects(dyn_store, "lake/contacts").await,
        objects(dyn_store, "lake/lists").await,
    );

    let table = lists(&location, "r1", &[42, 57, 72]).await;
    let sink = contacts(&location, "r1", 500).await;
    store.fail_on(&format!("put {CONTACTS}/_SUCCESS"));
    let err = sink
        .finish_with(serde_json::json!({}), vec![table])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("_SUCCESS"), "{err}");
    let after = (
        objects(dyn_store, "lake/contacts").await,
        objects(dyn_store, "lake/lists").await,
    );
    assert_eq!(
        after, before,
        "both tables hold the previous run, nothing staged"
    );
    let lists = json(dyn_store, &format!("{LISTS}/_manifest.json")).await;
    assert_eq!(lists["run_id"], "r0");
}

#[tokio::test]
async fn one_table_alone_leaves_the_other_untouched() {
    let store = FaultyStore::in_memory();
    let location = OutputLocation::from_store(store.clone(), "lake");
    publish_both(&location, "r0").await;
    let dyn_store: &dyn ObjectStore = store.as_ref();
    let contacts_before = objects(dyn_store, "lake/contacts").await;

    // Lists alone.
    let summary = lists(&location, "r1", &[1, 2, 3])
        .await
        .publish()
        .await
        .unwrap();
    assert_eq!(summary.rows, 3);
    assert_eq!(summary.manifest_path, format!("{LISTS}/_manifest.json"));
    assert_eq!(objects(dyn_store, "lake/contacts").await, contacts_before);
    let manifest = json(dyn_store, &format!("{LISTS}/_manifest.json")).await;
    assert_eq!(manifest["run_id"], "r1");
    assert_eq!(manifest["tables"].as_array().unwrap().len(), 1);
    let lists_now = objects(dyn_store, "lake/lists").await;

    // Contacts alone.
    contacts(&location, "r2", 100)
        .await
        .finish(serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(objects(dyn_store, "lake/lists").await, lists_now);
    let manifest = json(dyn_store, &format!("{CONTACTS}/_manifest.json")).await;
    assert_eq!(manifest["run_id"], "r2");
    assert_eq!(manifest["tables"][0]["name"], "contacts");
}

#[tokio::test]
async fn an_empty_lists_table_is_one_file_with_the_schema_and_no_rows() {
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let location = OutputLocation::from_store(store.clone(), "lake");
    let mut decoder = ListDecoder::new(decoder_options("r1"));
    let batch = decoder.finish().unwrap();
    let spec = TableSpec {
        table: &trackly_contacts::table::LISTS,
        query_json: serde_json::Value::Null,
        decode: DecodeStats::default(),
        fetch_stats: serde_json::Value::Null,
    };
    let staged = StagedTable::stage(
        TableFormat::Parquet,
        &location,
        spec,
        &options("r1"),
        Utc::now(),
        &batch,
        &Vec::<serde_json::Value>::new(),
    )
    .await
    .unwrap();
    let summary = staged.publish().await.unwrap();
    assert_eq!((summary.rows, summary.files.len()), (0, 1));
    let bytes = store
        .get(&summary.files[0].path.as_str().into())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    assert_eq!(reader.schema().fields(), lists_schema().fields());
}

#[tokio::test]
async fn a_failed_staging_leaves_nothing_behind() {
    let store = FaultyStore::in_memory();
    let location = OutputLocation::from_store(store.clone(), "lake");
    store.fail_on("_rejects-r1.ndjson.inprogress");
    let mut decoder = ListDecoder::new(decoder_options("r1"));
    decoder
        .decode_raw("GET /v2/lists, page 1", [&br#"{"id": []}"#[..]])
        .unwrap();
    let batch = decoder.finish().unwrap();
    let spec = TableSpec {
        table: &trackly_contacts::table::LISTS,
        query_json: serde_json::Value::Null,
        decode: DecodeStats::default(),
        fetch_stats: serde_json::Value::Null,
    };
    let err = StagedTable::stage(
        TableFormat::Parquet,
        &location,
        spec,
        &options("r1"),
        Utc::now(),
        &batch,
        &decoder.take_rejects(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("_rejects-r1"), "{err}");
    let dyn_store: &dyn ObjectStore = store.as_ref();
    assert!(objects(dyn_store, "lake").await.is_empty());
}

/// Every file under `dir`, with its content, relative to `dir`.
fn tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                found.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn lists_staged_fine_and_a_contacts_commit_that_fails_on_disk_change_neither_table() {
    let dir = tempfile::tempdir().unwrap();
    let location = OutputLocation::parse(dir.path().to_str().unwrap()).unwrap();
    publish_both(&location, "r0").await;

    let table = lists(&location, "r1", &[42, 57, 72]).await;
    let sink = contacts(&location, "r1", 500).await;
    // A real failure of the local disk, even for root: the contacts' retired folder cannot
    // be created because a file has its name, so the contacts' previous run cannot be moved
    // aside, after the lists' has been.
    std::fs::create_dir_all(dir.path().join("contacts/_staging")).unwrap();
    std::fs::write(dir.path().join("contacts/_staging/_retired"), b"in the way").unwrap();
    let before = tree(dir.path());
    let err = sink
        .finish_with(serde_json::json!({}), vec![table])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("contacts"), "{err}");
    assert_eq!(
        tree(dir.path()),
        before
            .into_iter()
            .filter(|(name, _)| !name.contains("_staging/r1/"))
            .collect::<Vec<_>>(),
        "both tables hold the previous run, byte for byte; nothing of r1 is left"
    );
    let manifest = |table: &str| {
        let path = dir
            .path()
            .join(format!("{table}/extract_date=2025-04-02/_manifest.json"));
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(path).unwrap()).unwrap()
    };
    assert_eq!(manifest("lists")["run_id"], "r0");
    assert_eq!(manifest("contacts")["run_id"], "r0");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_staged_table_of_a_run_whose_heartbeat_beats_survives_another_publication_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let location = OutputLocation::parse(dir.path().to_str().unwrap()).unwrap();
    // Run a has staged its lists and waits to publish (its contacts sink beats); its lists'
    // staging looks old, as it would after a long wait for the lease.
    let a_contacts = contacts(&location, "a", 100).await;
    let a_lists = lists(&location, "a", &[1, 2]).await;
    let staged = dir.path().join("lists/_staging/a");
    let old = std::time::SystemTime::now()
        - trackly_converter::heartbeat::STALE_STAGING
        - std::time::Duration::from_secs(60);
    for (name, _) in tree(&staged) {
        let file = std::fs::File::options()
            .write(true)
            .open(staged.join(name))
            .unwrap();
        file.set_modified(old).unwrap();
    }
    // Run b publishes the lists of the date alone.
    lists(&location, "b", &[3]).await.publish().await.unwrap();
    assert!(
        !tree(&staged).is_empty(),
        "a live run's staged lists were removed"
    );
    // Run a then publishes both tables.
    a_contacts
        .finish_with(serde_json::json!({}), vec![a_lists])
        .await
        .unwrap();
    assert!(!staged.exists());
}
