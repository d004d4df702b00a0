//! Retention at the publication: removals come only after the run's `_SUCCESS`, each expired
//! folder loses its `_SUCCESS` first and its manifest last, and a removal that fails is
//! reported (in the summary and the re-written manifest) without failing the run, then
//! finished by the next run with retention.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use chrono::{NaiveDate, Utc};
use trackly_contacts::{ContactBatcher, DecoderOptions};
use trackly_converter::{
    OutputLocation, ParquetSink, Retention, SinkOptions, SinkSummary, WriterOptions,
};

use support::faulty_store::FaultyStore;
use support::store::{json, objects};

/// Publishes ten contacts as run `run_id` of `date`, with `retention`.
async fn publish(
    location: &OutputLocation,
    date: &str,
    run_id: &str,
    retention: Option<Retention>,
) -> SinkSummary {
    let options = SinkOptions {
        extract_date: date.parse::<NaiveDate>().unwrap(),
        run_id: run_id.to_owned(),
        writer: WriterOptions::default(),
        query_json: serde_json::json!({}),
    };
    let mut decoder = ContactBatcher::new(DecoderOptions::new(run_id, Utc::now())).unwrap();
    decoder
        .push_page(&support::page(1, &support::contacts(3, 0, 10)))
        .unwrap();
    let mut sink = ParquetSink::create(location.clone(), options)
        .await
        .unwrap();
    while let Some(batch) = decoder.flush().unwrap() {
        sink.write(&batch).await.unwrap();
    }
    sink.set_retention(retention);
    sink.finish(serde_json::json!({})).await.unwrap()
}

const OLD: &str = "lake/contacts/extract_date=2025-04-01";
const NEW: &str = "lake/contacts/extract_date=2025-04-05";

#[tokio::test]
async fn expired_folders_go_after_the_runs_success_success_first_manifest_last() {
    let store = FaultyStore::in_memory();
    let location = OutputLocation::from_store(store.clone(), "lake");
    publish(&location, "2025-04-01", "r1", None).await;
    let before = store.log().len();
    let summary = publish(&location, "2025-04-05", "r2", Retention::days(2).ok()).await;

    let log = store.log()[before..].to_vec();
    let at = |entry: &str| {
        log.iter()
            .position(|e| e.starts_with(entry))
            .unwrap_or_else(|| panic!("no {entry} in {log:#?}"))
    };
    let published = at(&format!("put {NEW}/_SUCCESS"));
    let success = at(&format!("delete {OLD}/_SUCCESS"));
    let part = at(&format!("delete {OLD}/part-00000-r1.parquet"));
    let manifest = at(&format!("delete {OLD}/_manifest.json"));
    assert!(
        published < success && success < part && part < manifest,
        "{log:#?}"
    );
    assert_eq!(objects(store.as_ref(), OLD).await, Vec::<String>::new());

    let report = summary.retention.unwrap();
    assert_eq!(report.removed, vec![OLD.to_owned()]);
    assert_eq!(report.cutoff, "2025-04-03");
    let written = json(store.as_ref(), &format!("{NEW}/_manifest.json")).await;
    assert_eq!(written["retention"]["removed"], serde_json::json!([OLD]));
}

#[tokio::test]
async fn a_failed_removal_does_not_fail_the_run_is_reported_and_is_retried() {
    let store = FaultyStore::in_memory();
    let location = OutputLocation::from_store(store.clone(), "lake");
    publish(&location, "2025-04-01", "r1", None).await;
    store.fail_on(&format!("delete {OLD}/part-"));
    let summary = publish(&location, "2025-04-05", "r2", Retention::days(2).ok()).await;

    let report = summary.retention.unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].path, OLD);
    assert!(
        report.failed[0].error.contains("injected failure"),
        "{report:?}"
    );
    // The manifest was written again to say so.
    let written = json(store.as_ref(), &format!("{NEW}/_manifest.json")).await;
    assert_eq!(written["retention"]["removed"], serde_json::json!([]));
    assert_eq!(written["retention"]["failed"][0]["path"], OLD);
    // Half-deleted: no `_SUCCESS`, its manifest still there.
    let left = objects(store.as_ref(), OLD).await;
    assert!(!left.contains(&format!("{OLD}/_SUCCESS")), "{left:?}");
    assert!(left.contains(&format!("{OLD}/_manifest.json")), "{left:?}");

    // The next run with retention finishes the job.
    let summary = publish(&location, "2025-04-06", "r3", Retention::days(2).ok()).await;
    assert_eq!(summary.retention.unwrap().removed, vec![OLD.to_owned()]);
    assert_eq!(objects(store.as_ref(), OLD).await, Vec::<String>::new());
    assert!(!objects(store.as_ref(), NEW).await.is_empty());
}
