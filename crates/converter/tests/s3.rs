//! Against a real S3-compatible server (moto, MinIO): runs only when `TRACKLY_TEST_S3_ENDPOINT`
//! is set (bucket from `TRACKLY_TEST_S3_BUCKET`, default `trackly-test`, created if missing).
//! Credentials and region come from the usual `AWS_*` variables, defaulting to moto's `testing`.
//! When `AWS_ENDPOINT_URL` is also set, `OutputLocation::parse("s3://...")` is exercised too.
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use trackly_contacts::{ContactBatcher, DecoderOptions};
use trackly_converter::{Compression, OutputLocation, ParquetSink, SinkOptions, WriterOptions};

struct Server {
    endpoint: String,
    bucket: String,
}

/// The S3-compatible server scripts/test.sh starts (moto). Without it the test fails: it never
/// passes by skipping.
fn server() -> Server {
    let endpoint = std::env::var("TRACKLY_TEST_S3_ENDPOINT")
        .expect("TRACKLY_TEST_S3_ENDPOINT is not set: run scripts/test.sh, which starts moto");
    let bucket = std::env::var("TRACKLY_TEST_S3_BUCKET").unwrap_or_else(|_| "trackly-test".into());
    Server {
        endpoint: endpoint.trim_end_matches('/').to_owned(),
        bucket,
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn store(server: &Server) -> Arc<dyn ObjectStore> {
    // moto accepts an unsigned CreateBucket; an existing bucket answers 409, which is fine.
    let _ = reqwest::Client::new()
        .put(format!("{}/{}", server.endpoint, server.bucket))
        .send()
        .await;
    let s3 = AmazonS3Builder::new()
        .with_endpoint(&server.endpoint)
        .with_bucket_name(&server.bucket)
        .with_region(env_or("AWS_REGION", "us-east-1"))
        .with_access_key_id(env_or("AWS_ACCESS_KEY_ID", "testing"))
        .with_secret_access_key(env_or("AWS_SECRET_ACCESS_KEY", "testing"))
        .with_allow_http(true)
        .build()
        .unwrap();
    Arc::new(s3)
}

/// Contacts with 512 random hex characters each, so that files do not compress below 10 MiB.
fn big_batches(run_id: &str, rows: u64) -> Vec<arrow_array::RecordBatch> {
    let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
    let mut decoder =
        ContactBatcher::new(DecoderOptions::new(run_id, started).with_batch_size(4096)).unwrap();
    let mut rng = support::Rng::new(99);
    let records: Vec<String> = (0..rows)
        .map(|i| {
            let blob: String = (0..32).map(|_| format!("{:016x}", rng.next())).collect();
            format!(
                r#"{{"phone_number":"+1415{i:07}","list_number":"+18005551234","custom_fields":{{"blob":"{blob}"}}}}"#
            )
        })
        .collect();
    let page = support::page(1, &records);
    decoder.push_page(&page).unwrap();
    std::iter::from_fn(|| decoder.flush().unwrap()).collect()
}

fn options(run_id: &str) -> SinkOptions {
    SinkOptions {
        extract_date: NaiveDate::from_ymd_opt(2025, 4, 2).unwrap(),
        run_id: run_id.to_owned(),
        writer: WriterOptions {
            compression: Compression::None,
            row_group_rows: 8192,
            ..WriterOptions::default()
        },
        query_json: serde_json::json!({}),
    }
}

async fn list(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    let mut paths: Vec<String> = store
        .list(Some(&Path::from(prefix)))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    paths.sort();
    paths
}

/// Keys with an incomplete multipart upload under `prefix`, if the server lists them unsigned.
async fn pending_uploads(server: &Server, prefix: &str) -> Option<usize> {
    let url = format!(
        "{}/{}?uploads&prefix={prefix}",
        server.endpoint, server.bucket
    );
    let response = reqwest::get(url).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = response.text().await.ok()?;
    Some(body.matches("<Upload>").count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_export_over_10_mib_uses_multipart_publishes_and_aborts_cleanly() {
    let server = server();
    let store = store(&server).await;
    let prefix = format!("it-{}", Utc::now().timestamp_micros());

    // A run larger than one upload part: BufWriter switches to a multipart upload.
    let location = OutputLocation::from_store(store.clone(), prefix.as_str());
    let mut sink = ParquetSink::create(location, options("s3-run"))
        .await
        .unwrap();
    for batch in big_batches("s3-run", 24_000) {
        sink.write(&batch).await.unwrap();
    }
    let summary = sink.finish(serde_json::json!({"pages": 24})).await.unwrap();
    assert_eq!(summary.rows, 24_000);
    assert!(summary.bytes > 10 * 1024 * 1024, "{} bytes", summary.bytes);

    let date = format!("{prefix}/contacts/extract_date=2025-04-02");
    assert_eq!(
        list(store.as_ref(), &format!("{prefix}/contacts")).await,
        [
            format!("{date}/_SUCCESS"),
            format!("{date}/_manifest.json"),
            format!("{date}/part-00000-s3-run.parquet"),
        ]
    );
    let bytes = store
        .get(&Path::from(format!("{date}/part-00000-s3-run.parquet")))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, summary.files[0].bytes);
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(reader.map(|b| b.unwrap().num_rows()).sum::<usize>(), 24_000);

    // An aborted run mid-upload leaves no staging object and no pending multipart upload.
    let location = OutputLocation::from_store(store.clone(), prefix.as_str());
    let mut sink = ParquetSink::create(location, options("s3-aborted"))
        .await
        .unwrap();
    // Enough flushed row groups to pass one upload part, so a multipart upload is under way.
    for batch in big_batches("s3-aborted", 40_000) {
        sink.write(&batch).await.unwrap();
    }
    let staging = format!("{prefix}/contacts/_staging");
    if let Some(pending) = pending_uploads(&server, &staging).await {
        assert_eq!(pending, 1, "a multipart upload is in progress before abort");
    }
    sink.abort().await.unwrap();
    assert!(
        list(store.as_ref(), &format!("{prefix}/contacts/_staging"))
            .await
            .is_empty()
    );
    assert_eq!(
        list(store.as_ref(), &date).await.len(),
        3,
        "the published run is untouched"
    );
    if let Some(pending) = pending_uploads(&server, &staging).await {
        assert_eq!(pending, 0, "multipart upload aborted");
    }

    // The environment-configured path, when the test environment provides it.
    if std::env::var("AWS_ENDPOINT_URL").is_ok() || std::env::var("AWS_ENDPOINT").is_ok() {
        let url = format!("s3://{}/{prefix}-env", server.bucket);
        let location = OutputLocation::parse(&url).unwrap();
        let mut sink = ParquetSink::create(location, options("s3-env"))
            .await
            .unwrap();
        for batch in big_batches("s3-env", 1_000) {
            sink.write(&batch).await.unwrap();
        }
        let summary = sink.finish(serde_json::json!({})).await.unwrap();
        assert_eq!(summary.rows, 1_000);
        assert_eq!(
            summary.files[0].path,
            format!("{prefix}-env/contacts/extract_date=2025-04-02/part-00000-s3-env.parquet")
        );
    } else {
        eprintln!("AWS_ENDPOINT_URL not set: OutputLocation::parse(\"s3://...\") not exercised");
    }
}
