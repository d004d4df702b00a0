//! The object-store conformance suite: the same end-to-end tests against every backend, each
//! on the emulator scripts/test.sh starts (moto for S3, fake-gcs-server for GCS, Azurite for
//! Azure; see `tests/common/backends.rs`). The binary is given the emulator's storage options
//! as `--storage-option` flags, and deltalake and Polars read the tables back with the same
//! URL and options. A missing emulator fails the tests: they never pass by skipping.
//!
//! Each test is one function taking an [`Emulator`]; the `conformance!` macro runs every one
//! against every backend, as object_store's integration module does. Exports are small (a few
//! hundred contacts) to keep CI's time down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use futures::TryStreamExt;

use common::backends::Emulator;
use common::*;
use trackly_export::mock::{Faults, MockServer};

const CONTACTS: usize = 600;

/// A prefix no other test (or earlier run of the suite) uses.
fn fresh_prefix(test: &str) -> String {
    format!("{test}/{}", uuid::Uuid::now_v7())
}

/// `export` from `server` into `url`, with the emulator's environment and options, then
/// `args`.
fn export_cmd(emulator: &Emulator, server: &MockServer, url: &str, args: &[&str]) -> Command {
    let mut cmd = binary();
    emulator.environment(&mut cmd);
    cmd.env("TRACKLY_API_KEY", SECRET)
        .args(["export", "--base-url", &server.url(), "--output", url])
        .args(emulator.flags())
        .args(args);
    cmd
}

/// [`export_cmd`] run to its end, in small pages and row groups unless `args` say otherwise.
async fn export(emulator: &Emulator, server: &MockServer, url: &str, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    if !args.contains(&"--per-page") {
        all.extend(["--per-page", "200", "--row-group-rows", "500"]);
    }
    run_async(export_cmd(emulator, server, url, &all)).await
}

fn assert_ok(out: &Output, what: &str) {
    assert_eq!(code(out), 0, "{what}: {}", stderr(out));
}

/// The one `error:` line of a failed run, checked to be one line with exit code 5.
fn storage_error(out: &Output, what: &str) -> String {
    assert_no_crash(out, what);
    let text = stderr(out);
    assert_eq!(code(out), 5, "{what}: {text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{what}: one error line: {text}");
    errors[0].to_owned()
}

/// A Parquet export, a second run of the same date that replaces it, and a third of a later
/// date whose retention removes the first date: what each leaves is read back with DuckDB.
async fn parquet_export_rerun_and_retention(emulator: Emulator) {
    let prefix = fresh_prefix("parquet");
    let url = emulator.url(&prefix);
    let first = mock(CONTACTS, Faults::default()).await;
    let out = export(&emulator, &first, &url, &["--extract-date", "2026-05-01"]).await;
    assert_ok(&out, "first run");
    let dir = tempfile::tempdir().unwrap();
    let names = emulator.download(&prefix, dir.path()).await;
    for table in ["contacts", "lists"] {
        assert!(
            names.contains(&format!("{table}/extract_date=2026-05-01/_SUCCESS")),
            "{names:?}"
        );
    }
    assert!(
        names
            .iter()
            .all(|n| !n.contains("_staging") && !n.contains("_trackly-probe")),
        "staging or probe objects left behind: {names:?}"
    );
    check_lake(dir.path(), &first.ground_truth(None, None), Some(CONTACTS));
    check_lists(
        dir.path(),
        &first.lists_ground_truth(),
        &["--join", "--same-run"],
    );
    assert_no_secret_in_tree(dir.path());

    // The same date again, from a smaller data set: only the second run is visible.
    let second = mock(CONTACTS / 2, Faults::default()).await;
    let out = export(&emulator, &second, &url, &["--extract-date", "2026-05-01"]).await;
    assert_ok(&out, "second run");
    let dir = tempfile::tempdir().unwrap();
    emulator.download(&prefix, dir.path()).await;
    check_lake(
        dir.path(),
        &second.ground_truth(None, None),
        Some(CONTACTS / 2),
    );
    assert_eq!(manifest(dir.path())["rows"], CONTACTS / 2);

    // A later date with two days of retention: 2026-05-01 goes, 2026-05-06 stays alone.
    let out = export(
        &emulator,
        &first,
        &url,
        &["--extract-date", "2026-05-06", "--retain-days", "2"],
    )
    .await;
    assert_ok(&out, "third run");
    let names = emulator.list(&prefix).await;
    assert!(
        names.iter().all(|n| !n.contains("extract_date=2026-05-01")),
        "retention left the expired date: {names:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    emulator.download(&prefix, dir.path()).await;
    check_lake(dir.path(), &first.ground_truth(None, None), Some(CONTACTS));
}

/// A Delta export and a second run of the same date, read back by deltalake and Polars with
/// the same URL and storage options the export was given.
async fn delta_export_reads_back_with_deltalake_and_polars(emulator: Emulator) {
    let prefix = fresh_prefix("delta");
    let url = emulator.url(&prefix);
    let args = ["--table-format", "delta", "--extract-date", "2026-05-01"];
    let first = mock(CONTACTS, Faults::default()).await;
    assert_ok(&export(&emulator, &first, &url, &args).await, "first run");
    let second = mock(CONTACTS / 2, Faults::default()).await;
    assert_ok(&export(&emulator, &second, &url, &args).await, "second run");
    let report = check_delta_with(
        &format!("{url}/contacts"),
        &second.ground_truth(None, None),
        &[
            "--expect-count",
            &(CONTACTS / 2).to_string(),
            "--writes",
            "2",
        ],
        |cmd| emulator.python_environment(cmd),
    );
    assert_eq!(report["rows"], CONTACTS / 2, "{report}");
}

/// A missing bucket (container) is one line and exit 5, for `--dry-run` and for an export;
/// `--dry-run` against the real bucket writes its probe and leaves nothing.
async fn missing_bucket_is_one_line_and_dry_run_probes(emulator: Emulator) {
    let server = mock(10, Faults::default()).await;
    let missing = emulator.missing_bucket_url("x");
    for args in [&["--dry-run"][..], &[][..]] {
        let out = export(&emulator, &server, &missing, args).await;
        let line = storage_error(&out, &format!("{args:?} into a missing bucket"));
        assert!(line.contains("does not exist"), "{line}");
        assert!(line.contains("no-such-bucket"), "{line}");
        assert!(
            !line.contains("<?xml"),
            "the raw answer is not the message: {line}"
        );
    }

    let prefix = fresh_prefix("dry-run");
    let out = export(&emulator, &server, &emulator.url(&prefix), &["--dry-run"]).await;
    assert_ok(&out, "dry run");
    assert!(
        stdout(&out).contains("takes writes") || stderr(&out).contains("takes writes"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(emulator.list(&prefix).await, Vec::<String>::new());
}

/// An endpoint where nothing listens is one line and exit 5, in seconds.
async fn unreachable_endpoint_is_one_line(emulator: Emulator) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dead = format!("http://{closed}");
    let mut moved = emulator.clone();
    for (key, value) in &mut moved.options {
        if key == "aws_endpoint" {
            value.clone_from(&dead);
        }
        if key == "google_service_account_key" {
            *value = value.replace(&emulator.endpoint, &dead);
        }
    }
    for (key, value) in &mut moved.env {
        if key == "AZURITE_BLOB_STORAGE_URL" {
            value.clone_from(&dead);
        }
    }
    let server = mock(10, Faults::default()).await;
    let started = std::time::Instant::now();
    let out = export(&moved, &server, &moved.url("x"), &["--dry-run"]).await;
    let line = storage_error(&out, "unreachable endpoint");
    assert!(line.contains("nothing answers at"), "{line}");
    assert!(line.contains(&closed.to_string()), "{line}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// Two Delta runs of one date racing into one table: the commit is a conditional write
/// (put-if-absent of the log entry), so the table ends with exactly one run's rows and a
/// WRITE commit per run that landed.
async fn two_delta_runs_racing_leave_one_run(emulator: Emulator) {
    let prefix = fresh_prefix("race");
    let url = emulator.url(&prefix);
    let args = ["--table-format", "delta", "--extract-date", "2026-05-01"];
    let a = mock(CONTACTS, Faults::default()).await;
    let b = mock(CONTACTS / 2, Faults::default()).await;
    let (out_a, out_b) = tokio::join!(
        export(&emulator, &a, &url, &args),
        export(&emulator, &b, &url, &args)
    );
    assert_no_crash(&out_a, "racer a");
    assert_no_crash(&out_b, "racer b");
    let landed = [code(&out_a) == 0, code(&out_b) == 0];
    assert!(
        landed.iter().any(|l| *l),
        "neither run landed:\n{}\n{}",
        stderr(&out_a),
        stderr(&out_b)
    );
    let mut cmd = check_delta_cmd("count", &format!("{url}/contacts"), &[], None);
    emulator.python_environment(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(
        rows == CONTACTS || rows == CONTACTS / 2,
        "{rows} rows: a mix of two runs, or neither"
    );
}

/// Two Parquet runs of one date racing into one output: both publish, one after the other
/// (the publication lease, a conditional create, lets one publish at a time; the first to
/// publish leaves the other's staging alone, its heartbeat being fresh), so the date ends
/// with exactly one run's files, and that run's manifest: the last to publish. Nothing of
/// either run is left in staging.
async fn two_parquet_runs_racing_leave_one_run(emulator: Emulator) {
    let prefix = fresh_prefix("parquet-race");
    let url = emulator.url(&prefix);
    let args = ["--extract-date", "2026-05-01"];
    let a = mock(CONTACTS, Faults::default()).await;
    let b = mock(CONTACTS / 2, Faults::default()).await;
    let (out_a, out_b) = tokio::join!(
        export(&emulator, &a, &url, &args),
        export(&emulator, &b, &url, &args)
    );
    assert_ok(&out_a, "racer a");
    assert_ok(&out_b, "racer b");
    let dir = tempfile::tempdir().unwrap();
    let names = emulator.download(&prefix, dir.path()).await;
    assert!(
        names.iter().all(|n| !n.ends_with("_publishing")),
        "a lease left behind: {names:?}"
    );
    assert!(
        names.iter().all(|n| !n.contains("_staging")),
        "staging left behind: {names:?}"
    );
    let manifest = manifest(dir.path());
    let run_id = manifest["run_id"].as_str().unwrap().to_owned();
    let parts: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("contacts/") && n.ends_with(".parquet"))
        .collect();
    assert!(
        !parts.is_empty() && parts.iter().all(|n| n.contains(&run_id)),
        "files of another run than the manifest's {run_id}: {parts:?}"
    );
    let winner = if manifest["rows"] == CONTACTS { &a } else { &b };
    let rows = manifest["rows"].as_u64().unwrap() as usize;
    check_lake(dir.path(), &winner.ground_truth(None, None), Some(rows));
}

/// A publication that fails half-way (the move of a new file into the date folder, through
/// the library with a store that fails that one rename) leaves the previous run of the date
/// as it was, alone, and no lease behind.
async fn a_failed_publication_leaves_the_previous_run(emulator: Emulator) {
    use common::faulty_store::FaultyStore;
    use trackly_export::{ApiKey, ClientBuilder, Export, OutputLocation};
    let prefix = fresh_prefix("failed-publish");
    let url = emulator.url(&prefix);
    let first = mock(CONTACTS, Faults::default()).await;
    let out = export(&emulator, &first, &url, &["--extract-date", "2026-05-01"]).await;
    assert_ok(&out, "first run");

    let second = mock(CONTACTS / 2, Faults::default()).await;
    let store = FaultyStore::new(emulator.store());
    store.fail_on(&format!(
        "-> {prefix}/contacts/extract_date=2026-05-01/part-"
    ));
    let client = ClientBuilder::new()
        .with_base_url(second.url())
        .with_api_key(ApiKey::new(SECRET))
        .with_allow_http(true)
        .build()
        .unwrap();
    let result = Export::builder()
        .client(client)
        .location(OutputLocation::from_store(store.clone(), prefix.as_str()))
        .extract_date(chrono::NaiveDate::from_ymd_opt(2026, 5, 1).unwrap())
        .build()
        .unwrap()
        .run()
        .await;
    assert!(store.failed(), "the failure was not injected");
    let err = result.expect_err("the publication failed");
    assert!(err.to_string().contains("injected failure"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let names = emulator.download(&prefix, dir.path()).await;
    assert!(
        names.iter().all(|n| !n.ends_with("_publishing")),
        "a lease left behind: {names:?}"
    );
    assert_eq!(manifest(dir.path())["rows"], CONTACTS, "{names:?}");
    check_lake(dir.path(), &first.ground_truth(None, None), Some(CONTACTS));
    check_lists(
        dir.path(),
        &first.lists_ground_truth(),
        &["--join", "--same-run"],
    );
}

/// `kill -9` once a file of the run is finished (its checkpoint in the store names it), then
/// `--resume`: the date ends with exactly the ground truth and nothing staged is left.
async fn resume_after_kill_9_is_exact(emulator: Emulator) {
    const RESUMED: usize = 60_000;
    let prefix = fresh_prefix("resume");
    let server = slow_mock(RESUMED).await;
    let args = [
        "--extract-date",
        "2026-05-01",
        "--per-page",
        "1000",
        "--concurrency",
        "2",
        "--file-size",
        "1",
        "--row-group-rows",
        "4000",
        "--quiet",
    ];
    kill_once_a_file_is_checkpointed(&emulator, &server, &prefix, &args).await;
    let names = emulator.list(&prefix).await;
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with(".parquet") || n.contains("_staging")),
        "a killed run published a file: {names:?}"
    );

    resume_exactly(&emulator, &server, &prefix, &args, RESUMED).await;
}

/// The mock with `contacts`, 2 ms a page: slow enough that a run can be killed mid-way.
async fn slow_mock(contacts: usize) -> MockServer {
    let faults = Faults {
        latency: std::time::Duration::from_millis(2),
        ..Faults::default()
    };
    mock(contacts, faults).await
}

/// Runs `export` of `server` into `prefix` with `args` and kills it with `kill -9` once its
/// checkpoint names a finished file; returns the contacts' staging prefix.
async fn kill_once_a_file_is_checkpointed(
    emulator: &Emulator,
    server: &MockServer,
    prefix: &str,
    args: &[&str],
) -> String {
    let staging = format!("{prefix}/contacts/_staging");
    kill_9_when(
        export_cmd(emulator, server, &emulator.url(prefix), args),
        async || emulator.checkpointed_files(&staging).await >= 1,
    )
    .await;
    staging
}

/// `--resume` of the run killed by [`kill_once_a_file_is_checkpointed`]: the date then holds
/// exactly the `contacts` of the ground truth, and nothing is left in staging.
async fn resume_exactly(
    emulator: &Emulator,
    server: &MockServer,
    prefix: &str,
    args: &[&str],
    contacts: usize,
) {
    let mut resumed = args.to_vec();
    resumed.push("--resume");
    assert_ok(
        &export(emulator, server, &emulator.url(prefix), &resumed).await,
        "resumed run",
    );
    let dir = tempfile::tempdir().unwrap();
    let names = emulator.download(prefix, dir.path()).await;
    assert!(
        names.iter().all(|n| !n.contains("_staging")),
        "staging left behind: {names:?}"
    );
    check_lake(dir.path(), &server.ground_truth(None, None), Some(contacts));
}

/// A contacts file larger than one upload part ([`UPLOAD_PART_BYTES`], 5 MiB) goes up as a
/// multipart upload (S3), an XML multipart upload (GCS) or blocks (Azure). The staged file is
/// looked at where the upload left it (the run is killed once its checkpoint names the file:
/// a publication's rename is a copy on these stores, and a copy is one object again), then
/// `--resume` publishes it and the date reads back exactly.
///
/// [`UPLOAD_PART_BYTES`]: trackly_export::converter::sink::UPLOAD_PART_BYTES
async fn a_file_over_one_part_goes_up_in_parts(emulator: Emulator) {
    const BIG: usize = 160_000;
    let prefix = fresh_prefix("multipart");
    let server = slow_mock(BIG).await;
    // Uncompressed files closed at 6 MiB: the first is some 105,000 contacts.
    let args = [
        "--extract-date",
        "2026-05-01",
        "--compression",
        "none",
        "--file-size",
        "6",
        "--per-page",
        "1000",
        "--row-group-rows",
        "20000",
        "--quiet",
    ];
    let staging = kill_once_a_file_is_checkpointed(&emulator, &server, &prefix, &args).await;
    let store = emulator.store();
    let staged: Vec<object_store::ObjectMeta> = store
        .list(Some(&object_store::path::Path::from(staging.as_str())))
        .try_filter(|m| {
            futures::future::ready(m.location.as_ref().ends_with(".parquet.inprogress"))
        })
        .try_collect()
        .await
        .unwrap();
    let part_bytes = trackly_export::converter::sink::UPLOAD_PART_BYTES as u64;
    let big: Vec<&object_store::ObjectMeta> =
        staged.iter().filter(|m| m.size > part_bytes).collect();
    assert!(
        !big.is_empty(),
        "no finished file over one part: {staged:?}"
    );
    for file in big {
        let uploaded_in = emulator.upload_parts(&file.location).await;
        assert!(
            uploaded_in >= 2,
            "{} ({} bytes) went up in {uploaded_in} part(s)",
            file.location,
            file.size
        );
    }

    resume_exactly(&emulator, &server, &prefix, &args, BIG).await;
}

/// Delta's retention and VACUUM: a re-run of a date removes the first run's files from the
/// table, a later run's commit expires that date with `retain_days`, and its VACUUM (no
/// retention: every removed file is due) deletes the removed files from the store; the table
/// reads back with the later date alone.
async fn delta_retention_and_vacuum_remove_what_the_log_removed(emulator: Emulator) {
    use trackly_export::{ApiKey, ClientBuilder, Export, LocationOptions, OutputLocation};
    let prefix = fresh_prefix("vacuum");
    let url = emulator.url(&prefix);
    let server = mock(CONTACTS, Faults::default()).await;
    let data_files = async || -> Vec<String> {
        let mut names = emulator.list(&format!("{prefix}/contacts")).await;
        names.retain(|n| n.starts_with("extract_date=") && n.ends_with(".parquet"));
        names
    };
    let run = |date: &str, retain_days: Option<u32>| {
        let client = ClientBuilder::new()
            .with_base_url(server.url())
            .with_api_key(ApiKey::new(SECRET))
            .with_allow_http(true)
            .build()
            .unwrap();
        let location = OutputLocation::parse_with(
            &url,
            LocationOptions::default().with_storage_options(emulator.storage_options()),
        )
        .unwrap();
        Export::builder()
            .client(client)
            .location(location)
            .table_format(trackly_export::TableFormat::Delta)
            .vacuum_retention(Some(std::time::Duration::ZERO))
            .retain_days(retain_days)
            .extract_date(date.parse().unwrap())
            .build()
            .unwrap()
            .run()
    };
    run("2026-05-01", None).await.unwrap();
    let first = data_files().await;
    assert_eq!(first.len(), 1, "{first:?}");
    // The re-run removes the first run's file from the table.
    run("2026-05-01", None).await.unwrap();
    // Five days later with two days kept: 2026-05-01 leaves the table in the run's commit, and
    // its VACUUM deletes what the re-run removed.
    run("2026-05-06", Some(2)).await.unwrap();
    let third = data_files().await;
    assert!(!third.contains(&first[0]), "not vacuumed: {third:?}");
    assert!(
        third
            .iter()
            .any(|n| n.starts_with("extract_date=2026-05-06/")),
        "{third:?}"
    );
    check_delta_with(
        &format!("{url}/contacts"),
        &server.ground_truth(None, None),
        &[
            "--date",
            "2026-05-06",
            "--expect-count",
            &CONTACTS.to_string(),
            "--dates",
            "2026-05-06",
            "--writes",
            "3",
        ],
        |cmd| emulator.python_environment(cmd),
    );
}

/// `--metrics-file` after an export to the store: what it says was written (rows per table,
/// files, bytes) is what the store holds.
async fn metrics_match_what_the_store_holds(emulator: Emulator) {
    let prefix = fresh_prefix("metrics");
    let url = emulator.url(&prefix);
    let server = mock(CONTACTS, Faults::default()).await;
    let textfile = tempfile::tempdir().unwrap();
    let path = textfile.path().join("trackly_export.prom");
    let out = export(
        &emulator,
        &server,
        &url,
        &[
            "--extract-date",
            "2026-05-01",
            "--metrics-file",
            path.to_str().unwrap(),
        ],
    )
    .await;
    assert_ok(&out, "export");
    let m = common::metrics::parse(&path);
    assert_eq!(m.get("trackly_export_exit_code", &[]), 0.0);
    let root = object_store::path::Path::from(prefix.as_str());
    let files: Vec<object_store::ObjectMeta> = emulator
        .store()
        .list(Some(&root))
        .try_filter(|m| futures::future::ready(m.location.as_ref().ends_with(".parquet")))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        m.get("trackly_export_files_written", &[]),
        files.len() as f64
    );
    assert_eq!(
        m.get("trackly_export_bytes_written", &[]),
        files.iter().map(|f| f.size).sum::<u64>() as f64
    );
    assert_eq!(
        m.get("trackly_export_rows_written", &[("table", "contacts")]),
        CONTACTS as f64
    );
    let lists = server
        .lists_ground_truth()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(
        m.get("trackly_export_rows_written", &[("table", "lists")]),
        lists as f64
    );
}

/// `conformance!([backend, ...] [test, ...])`: a module per backend with one `#[tokio::test]`
/// per suite function, each given `Emulator::backend()`: every test runs on every backend.
macro_rules! conformance {
    ([$($backend:ident),*] $tests:tt) => {
        $(conformance!(@backend $backend $tests);)*
    };
    (@backend $backend:ident [$($test:ident),* $(,)?]) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test(Emulator::$backend()).await;
                }
            )*
        }
    };
}

conformance!([s3, gcs, azure] [
    parquet_export_rerun_and_retention,
    resume_after_kill_9_is_exact,
    a_failed_publication_leaves_the_previous_run,
    delta_export_reads_back_with_deltalake_and_polars,
    missing_bucket_is_one_line_and_dry_run_probes,
    unreachable_endpoint_is_one_line,
    two_parquet_runs_racing_leave_one_run,
    two_delta_runs_racing_leave_one_run,
    a_file_over_one_part_goes_up_in_parts,
    delta_retention_and_vacuum_remove_what_the_log_removed,
    metrics_match_what_the_store_holds,
]);

/// A closed loopback port, as a URL: where a credential source is pointed so that no test
/// reaches a real metadata service.
fn closed_url() -> String {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_without_credentials_names_the_sources_tried() {
    let mut emulator = Emulator::s3();
    emulator
        .options
        .retain(|(k, _)| k != "aws_access_key_id" && k != "aws_secret_access_key");
    // The instance metadata service is the last source object_store tries: here a closed port
    // on loopback instead of 169.254.169.254.
    let metadata = closed_url();
    emulator
        .options
        .push(("aws_metadata_endpoint".into(), metadata.clone()));
    let server = mock(10, Faults::default()).await;
    let out = export(&emulator, &server, &emulator.url("x"), &["--dry-run"]).await;
    let line = storage_error(&out, "no credentials");
    assert!(line.contains("no S3 credentials were found"), "{line}");
    assert!(line.contains("AWS_ACCESS_KEY_ID"), "{line}");
    assert!(line.contains("instance metadata"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_with_a_wrong_key_says_it_was_refused_and_never_prints_it() {
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=";
    let wrong = Emulator::azure_by_account(&[("azure_storage_account_key", wrong_key)]);
    let server = mock(10, Faults::default()).await;
    let mut cmd = binary();
    wrong.environment(&mut cmd);
    cmd.env("TRACKLY_API_KEY", SECRET)
        .args(["-vv", "export", "--base-url", &server.url(), "--dry-run"])
        .args(["--output", &wrong.url("x")])
        .args(wrong.flags());
    let out = run_async(cmd).await;
    let line = storage_error(&out, "wrong key");
    assert!(line.contains("refused"), "{line}");
    assert!(line.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{line}");
    for text in [stdout(&out), stderr(&out)] {
        assert!(!text.contains(wrong_key), "the key was printed: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_without_credentials_names_the_sources_tried() {
    // The managed identity endpoint, the last source: a closed port on loopback.
    let bare = Emulator::azure_by_account(&[("azure_msi_endpoint", &closed_url())]);
    let server = mock(10, Faults::default()).await;
    let out = export(&bare, &server, &bare.url("x"), &["--dry-run"]).await;
    let line = storage_error(&out, "no credentials");
    assert!(
        line.contains("no Azure Blob Storage credentials were found"),
        "{line}"
    );
    assert!(line.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{line}");
}

/// Azurite's account has no hierarchical namespace: an `abfss://…@account.dfs.core.windows.net`
/// URL (the ADLS Gen2 form) still writes it, since every request goes through the Blob API,
/// which serves flat and hierarchical-namespace accounts alike; the export reads back exactly.
#[tokio::test(flavor = "multi_thread")]
async fn azure_an_abfss_url_writes_an_account_without_hierarchical_namespace() {
    let emulator = Emulator::azure();
    let prefix = fresh_prefix("abfss");
    let url = format!(
        "abfss://{}@devstoreaccount1.dfs.core.windows.net/{prefix}",
        common::backends::BUCKET
    );
    let server = mock(CONTACTS, Faults::default()).await;
    assert_ok(
        &export(&emulator, &server, &url, &["--extract-date", "2026-05-01"]).await,
        "abfss export",
    );
    let dir = tempfile::tempdir().unwrap();
    emulator.download(&prefix, dir.path()).await;
    check_lake(dir.path(), &server.ground_truth(None, None), Some(CONTACTS));
}

/// An endpoint setting that names the Data Lake (dfs) host, where object_store's Blob API
/// requests do not belong, is one line saying which endpoint to use (exit 2: nothing was
/// sent).
#[tokio::test(flavor = "multi_thread")]
async fn azure_a_data_lake_endpoint_is_one_line_naming_the_blob_endpoint() {
    let emulator =
        Emulator::azure_by_account(&[("azure_storage_account_key", common::backends::AZURITE_KEY)]);
    let mut moved = emulator.clone();
    for (key, value) in &mut moved.options {
        if key == "azure_storage_endpoint" {
            *value = "https://devstoreaccount1.dfs.core.windows.net".to_owned();
        }
    }
    let server = mock(10, Faults::default()).await;
    let out = export(&moved, &server, &moved.url("x"), &["--dry-run"]).await;
    assert_no_crash(&out, "dfs endpoint");
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let text = stderr(&out);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(errors[0].contains("Data Lake (dfs) endpoint"), "{text}");
    assert!(errors[0].contains("blob.core.windows.net"), "{text}");
    assert!(
        !text.contains(common::backends::AZURITE_KEY),
        "the key was printed"
    );
}
