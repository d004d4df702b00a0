//! The library as an ETL job embeds it: every public future and stream can be spawned on a
//! multi-threaded runtime (they are `Send + 'static`), and the types its signatures use are
//! reachable through the facade alone.

mod common;

use common::*;
use futures::StreamExt;
use trackly_export::mock::Faults;
use trackly_export::{
    ApiKey, Client, DecoderOptions, Export, OutputLocation, Query, RunSummary, record_batches,
};

/// Fails to compile unless `T` can move to another thread and outlive its creator.
fn assert_spawnable<T: Send + 'static>(value: T) -> T {
    value
}

/// A mock answering every request after `latency_ms`, so a run lasts long enough to stop.
async fn slow_mock(contacts: usize, latency_ms: u64) -> trackly_export::mock::MockServer {
    let faults = Faults {
        latency: std::time::Duration::from_millis(latency_ms),
        ..Faults::default()
    };
    mock(contacts, faults).await
}

fn client(server: &trackly_export::mock::MockServer) -> Client {
    Client::builder()
        .with_base_url(server.url())
        .with_api_key(ApiKey::new(SECRET))
        .build()
        .expect("the client builds")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_export_runs_on_a_spawned_task() {
    let server = mock(2_000, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let export = Export::builder()
        .client(client(&server))
        .location(OutputLocation::parse(dir.path().to_str().unwrap()).unwrap())
        .build()
        .unwrap();
    let task: tokio::task::JoinHandle<Result<RunSummary, _>> =
        tokio::spawn(assert_spawnable(export.run()));
    let summary = task.await.unwrap().unwrap();
    assert_eq!(summary.rows, 2_000);
    assert_eq!(lake_keys(dir.path()).len(), 2_000);
    // The manifest reads back as the facade's type.
    let path = walk(dir.path())
        .into_iter()
        .find(|p| p.ends_with("_manifest.json"))
        .unwrap();
    let manifest: trackly_export::Manifest =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(manifest.run_id, summary.run_id);
    assert_eq!(manifest.rows, 2_000);
    assert_eq!(manifest.files, summary.files);
    assert_eq!(manifest.writer, trackly_export::WriterOptions::default());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spawned_export_stops_when_its_shutdown_future_completes() {
    // 400 ms a request: the run cannot finish before it is stopped 200 ms in.
    let server = slow_mock(5_000, 400).await;
    let dir = tempfile::tempdir().unwrap();
    let export = Export::builder()
        .client(client(&server))
        .location(OutputLocation::parse(dir.path().to_str().unwrap()).unwrap())
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(assert_spawnable(export.run_until(async move {
        let _ = stopped.await;
    })));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), trackly_export::ErrorKind::Interrupted, "{err}");
    assert!(parquet_files(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_and_pages_stream_on_spawned_tasks() {
    let server = mock(1_500, Faults::default()).await;
    let client = client(&server);
    let options = DecoderOptions::new("run-1", chrono::Utc::now());
    let batches = assert_spawnable(record_batches(&client, Query::all(), options).unwrap());
    let rows = tokio::spawn(async move {
        batches
            .map(|batch| batch.unwrap().num_rows())
            .fold(0, |sum, n| async move { sum + n })
            .await
    });
    let pages = assert_spawnable(client.contacts(Query::all()));
    let contacts = tokio::spawn(async move {
        pages
            .map(|page| page.unwrap().len())
            .fold(0, |sum, n| async move { sum + n })
            .await
    });
    let lists = {
        let client = client.clone();
        tokio::spawn(async move {
            let stats = trackly_export::fetcher::StatsHandle::default();
            client.lists(&stats).await.unwrap().len()
        })
    };
    assert_eq!(rows.await.unwrap(), 1_500);
    assert_eq!(contacts.await.unwrap(), 1_500);
    assert!(lists.await.unwrap() >= 2);
}

/// The types in the facade's signatures come from the facade: an embedder needs no
/// `arrow-array`, `arrow-schema`, `object_store` or `chrono` dependency of its own, and so
/// can never pick a second, incompatible version of them.
#[test]
fn the_types_of_the_facade_are_reachable_through_it() {
    use trackly_export::arrow_array::RecordBatch;
    use trackly_export::arrow_schema::SchemaRef;
    use trackly_export::chrono::NaiveDate;
    use trackly_export::object_store::ObjectStore;
    use trackly_export::object_store::memory::InMemory;
    use trackly_export::{FileInfo, Manifest};

    let schema: SchemaRef = trackly_export::contacts_schema();
    let empty = RecordBatch::new_empty(schema);
    assert_eq!(empty.num_rows(), 0);
    let store: std::sync::Arc<dyn ObjectStore> = std::sync::Arc::new(InMemory::new());
    let _location = OutputLocation::from_store(store, "lake");
    let _date = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let file = FileInfo {
        path: "contacts/extract_date=2026-11-27/part-00000-x.parquet".into(),
        rows: 1,
        bytes: 2,
    };
    assert_eq!(file.rows, 1);
    use trackly_export::Compression;
    for (text, codec) in [
        ("zstd(7)", Compression::Zstd(7)),
        ("zstd", Compression::Zstd(3)),
        ("snappy", Compression::Snappy),
        ("none", Compression::None),
    ] {
        assert_eq!(text.parse::<Compression>().unwrap(), codec);
    }
    assert!("gzip".parse::<Compression>().is_err());
    // A manifest can be read back as a type.
    let _ = |text: &str| -> serde_json::Result<Manifest> { serde_json::from_str(text) };
}

/// `build()` finds what makes no export, typed, before anything runs.
#[tokio::test(flavor = "multi_thread")]
async fn build_reports_configuration_errors_as_types() {
    use trackly_export::{ConfigError, ErrorKind, ExportError, WriterOptions};
    let server = mock(10, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let location = || OutputLocation::parse(dir.path().to_str().unwrap()).unwrap();
    // A builder with a client and a location, and what `build()` says of it.
    let full = || {
        Export::builder()
            .client(client(&server))
            .location(location())
    };
    let config_error = |builder: trackly_export::ExportBuilder| -> ConfigError {
        match builder.build().err().unwrap() {
            ExportError::Config(e) => {
                assert_eq!(ExportError::Config(e.clone()).kind(), ErrorKind::Config);
                e
            }
            other => panic!("not a configuration error: {other}"),
        }
    };

    let err = config_error(Export::builder().location(location()));
    assert!(matches!(err, ConfigError::MissingClient), "{err}");
    let err = config_error(Export::builder().client(client(&server)));
    assert!(matches!(err, ConfigError::MissingLocation), "{err}");
    let err = config_error(full().batch_size(0));
    assert!(matches!(err, ConfigError::ZeroBatchSize), "{err}");
    let err = config_error(full().writer(WriterOptions {
        row_group_rows: 0,
        ..WriterOptions::default()
    }));
    assert!(
        matches!(
            &err,
            ConfigError::InvalidOption {
                option: "row_group_rows",
                ..
            }
        ),
        "{err}"
    );
    let err = config_error(full().retain_days(Some(0)));
    assert!(
        matches!(
            &err,
            ConfigError::InvalidOption {
                option: "retain_days",
                ..
            }
        ),
        "{err}"
    );
    // Nothing was asked of the API, nothing written.
    assert_eq!(server.stats().requests, 0);
    assert!(walk(dir.path()).is_empty());
}

/// A cancelled run leaves its finished files in staging for `resume`; a caller that will not
/// resume discards them, and nothing published is touched.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_runs_staging_can_be_discarded() {
    use trackly_export::{ParquetSink, WriterOptions};
    let server = slow_mock(20_000, 20).await;
    let dir = tempfile::tempdir().unwrap();
    let location = OutputLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    // A file per batch of 500 rows, so finished files pile up in staging quickly.
    let export = Export::builder()
        .client(client(&server))
        .location(location.clone())
        .extract_date(date)
        .batch_size(500)
        .writer(WriterOptions {
            target_file_bytes: 1,
            ..WriterOptions::default()
        })
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(export.run_until(async move {
        let _ = stopped.await;
    }));
    let staging = dir.path().join("contacts/_staging");
    let started = std::time::Instant::now();
    while parquet_like(&staging) < 2 && started.elapsed() < std::time::Duration::from_secs(20) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), trackly_export::ErrorKind::Interrupted, "{err}");
    assert!(
        parquet_like(&staging) >= 2,
        "finished files stay for resume"
    );

    // Another date's discard touches nothing; this date's removes the run.
    let other = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    assert_eq!(
        ParquetSink::discard_interrupted(&location, other)
            .await
            .unwrap(),
        0
    );
    assert!(parquet_like(&staging) >= 2);
    assert_eq!(
        ParquetSink::discard_interrupted(&location, date)
            .await
            .unwrap(),
        1
    );
    assert_eq!(walk(dir.path()), Vec::<std::path::PathBuf>::new());
}

/// Files under `dir` that are (staged) Parquet parts.
fn parquet_like(dir: &std::path::Path) -> usize {
    walk(dir)
        .iter()
        .filter(|p| p.to_string_lossy().contains(".parquet"))
        .count()
}
