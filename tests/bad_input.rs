//! Bad input end to end: command lines the CLI must refuse before any request, and API answers
//! the mock never gives (wrong shapes, lying pagination, wrong types, duplicate keys, enormous
//! values) from a tiny real HTTP server. Never a panic; a clear error or the invalid-record
//! policy; and when data is written, no contact lost or doubled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use trackly_export::mock::Faults;

/// Runs `cmd` like [`run_async`], but kills it if it has not ended after `limit` (a guard
/// against a run that would page forever; the test then fails saying so).
async fn run_guarded(mut cmd: Command, limit: Duration) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > limit {
                child.kill().unwrap();
                let out = child.wait_with_output().unwrap();
                panic!("still running after {limit:?}:\n{}", stderr(&out));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert_no_secret(&out.stdout, "stdout");
        assert_no_secret(&out.stderr, "stderr");
        out
    })
    .await
    .unwrap()
}

const GUARD: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread")]
async fn unwritable_outputs_and_malformed_s3_urls_exit_2_before_any_request() {
    let server = mock(100, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let under_file = file.join("lake");
    let cases: Vec<(String, &str)> = vec![
        (under_file.to_string_lossy().into_owned(), "a-file"),
        ("s3://Bucket_Name/x".into(), "bucket name"),
        ("s3://bucket/a//b".into(), "empty or relative"),
        ("s3://bucket/a/../b".into(), "empty or relative"),
        ("s3://bucket/./b".into(), "empty or relative"),
        ("s3:/bucket/prefix".into(), "s3://"),
        ("S3:bucket".into(), "s3://"),
        ("file:///tmp/x".into(), "unsupported scheme"),
        ("".into(), "empty"),
    ];
    for (output, needle) in cases {
        let mut cmd = binary();
        cmd.current_dir(dir.path())
            .env("TRACKLY_API_KEY", SECRET)
            .args(["export", "--base-url", &server.url(), "--output", &output]);
        let out = run_async(cmd).await;
        assert_no_crash(&out, &output);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{output:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{output:?}: one line: {err}");
        assert!(err.contains(needle), "{output:?}: {err}");
    }
    assert_eq!(server.stats().requests, 0, "no request was made");
    // Nothing was created in the working directory (e.g. a local folder named `s3:`).
    let created: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(created, vec![std::ffi::OsString::from("a-file")]);
}

/// Answers the API cannot fix by retrying: after `--max-attempts 2` the run exits 4 naming
/// page 1, and writes no Parquet. (Pagination counts sent as strings, `null`, or numbers beyond
/// `u64` are not among them: they are read, or read as missing; see
/// `crates/contacts/src/page.rs` and `tests/odd_apis.rs`.)
#[tokio::test(flavor = "multi_thread")]
async fn bodies_that_are_not_the_documented_json_exit_4_naming_the_page() {
    let pagination = r#""pagination":{"page":1,"per_page":100,"total":1,"total_pages":1}"#;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("html", b"<html><body>Hello</body></html>".to_vec()),
        ("empty", Vec::new()),
        ("not utf-8", b"{\"contacts\":[\"\xff\xfe\"]}".to_vec()),
        ("array", b"[]".to_vec()),
        ("null", b"null".to_vec()),
        ("no pagination", br#"{"contacts":[]}"#.to_vec()),
        ("no contacts", format!("{{{pagination}}}").into_bytes()),
        (
            "contacts not an array",
            format!(r#"{{"contacts":{{}},{pagination}}}"#).into_bytes(),
        ),
        (
            "contacts not objects",
            format!(r#"{{"contacts":[1,"a",null],{pagination}}}"#).into_bytes(),
        ),
        (
            "contacts twice",
            format!(r#"{{"contacts":[],"contacts":[],{pagination}}}"#).into_bytes(),
        ),
        (
            "wrong page number",
            br#"{"contacts":[],"pagination":{"page":7,"per_page":100,"total":0,"total_pages":0}}"#
                .to_vec(),
        ),
        (
            "trailing garbage",
            format!(r#"{{"contacts":[],{pagination}}} x"#).into_bytes(),
        ),
    ];
    for (what, body) in bodies {
        let server = TestServer::start(move |_| Reply::json(body.clone()));
        let dir = tempfile::tempdir().unwrap();
        let out = run_guarded(
            export_to(&server.url(), dir.path(), &["--max-attempts", "2"]),
            GUARD,
        )
        .await;
        assert_no_crash(&out, what);
        let err = stderr(&out);
        assert_eq!(code(&out), 4, "{what}: {err}");
        assert!(
            err.contains("page 1") && err.contains("2 attempts"),
            "{what}: {err}"
        );
        assert_eq!(
            server.requests().len(),
            2,
            "{what}: retried once, then gave up"
        );
        assert!(parquet_files(dir.path()).is_empty(), "{what}");
    }
}

/// Exports from `server` and returns the keys written, checking none is doubled.
async fn exported_keys(server: &TestServer, args: &[&str]) -> (Output, Vec<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = if args.contains(&"--per-page") {
        vec![]
    } else {
        vec!["--per-page", "100"]
    };
    all.extend_from_slice(args);
    let out = run_guarded(export_to(&server.url(), dir.path(), &all), GUARD).await;
    assert_no_crash(&out, "export");
    let keys = if code(&out) == 0 {
        lake_keys(dir.path())
    } else {
        assert!(parquet_files(dir.path()).is_empty());
        Vec::new()
    };
    let unique: HashSet<_> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a contact was written twice");
    (out, keys)
}

fn contacts(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(contact).collect()
}

/// The window a request asks for of a listing of contacts `0..len`, served by a server that
/// serves at most `cap` a page: the contacts, the page number and the page size applied.
fn window(req: &Request, cap: usize, len: usize) -> (Vec<String>, u64, u64) {
    window_of(req, cap, &contacts(0..len))
}

/// The window a request asks for of `listing`, at most `cap` a page.
fn window_of(req: &Request, cap: usize, listing: &[String]) -> (Vec<String>, u64, u64) {
    let page = req.page().max(1);
    let per_page = req
        .query("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(cap)
        .clamp(1, cap);
    let start = ((page as usize - 1) * per_page).min(listing.len());
    let end = (start + per_page).min(listing.len());
    (listing[start..end].to_vec(), page, per_page as u64)
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_that_lies_neither_loses_nor_doubles_contacts_nor_pages_forever() {
    // 250 contacts in pages of up to 100; every page claims a different story.
    for (what, total, total_pages) in [
        ("total_pages too small", 250, 1),
        ("total and total_pages too small", 100, 1),
        ("total_pages huge", 250, 1_000_000_000_000_000),
        (
            "total and total_pages huge",
            100_000_000_000_000_000,
            1_000_000_000_000_000,
        ),
        ("total_pages zero", 250, 0),
        ("u64::MAX total_pages", 250, u64::MAX),
    ] {
        let server = TestServer::start(move |req| {
            let (list, page, per_page) = window(req, 100, 250);
            Reply::json(page_body(&list, page, per_page, total, total_pages))
        });
        let (out, keys) = exported_keys(&server, &[]).await;
        let err = stderr(&out);
        if total != 250 {
            // A total that never changes and does not match what was read: loud, nothing
            // published. A total too small is a count that does not add up; one too large
            // leaves the end of the listing unproven.
            assert_eq!(code(&out), 7, "{what}: {err}");
            assert!(
                err.contains("did not change during the run")
                    || err.contains("the end of the listing could not be proven"),
                "{what}: {err}"
            );
            assert!(keys.is_empty(), "{what}: nothing published");
            continue;
        }
        assert_eq!(code(&out), 0, "{what}: {err}");
        assert_eq!(keys.len(), 250, "{what}: every contact, once: {err}");
        assert!(
            server.requests().len() < 20,
            "{what}: {} requests",
            server.requests().len()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_repeating_the_same_page_is_not_read_forever() {
    // Every page, whatever was asked, holds the same 100 contacts (and says so honestly).
    let server = TestServer::start(|req| {
        let page = req.page();
        Reply::json(page_body(&contacts(0..100), page, 100, 100, 1))
    });
    let (out, keys) = exported_keys(&server, &[]).await;
    let err = stderr(&out);
    assert!(
        code(&out) == 4 || (code(&out) == 0 && keys.len() == 100),
        "{err}"
    );
    assert!(
        server.requests().len() < 50,
        "{} requests",
        server.requests().len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_types_and_duplicate_keys_follow_the_invalid_record_policy() {
    let bad = [
        r#"{"phone_number":"+14155559001","list_number":"+18005551234","active":"yes"}"#,
        r#"{"phone_number":"+14155559002","list_number":"+18005551234","send_count":1.5}"#,
        r#"{"phone_number":14155559003,"list_number":"+18005551234"}"#,
        r#"{"phone_number":"+14155559004","list_number":"+18005551234","custom_fields":[1]}"#,
        r#"{"phone_number":"+14155559005","list_number":"+18005551234","signup_date":"yesterday"}"#,
        r#"{"phone_number":"+14155559006","list_number":"+18005551234","revenue_total":1e400}"#,
        r#"{"phone_number":"+14155559007","list_number":"+18005551234","revenue_total":"12,00"}"#,
        r#"{"phone_number":"+14155559008","phone_number":"+14155559999","list_number":"+18005551234"}"#,
        r#"{"phone_number":"+14155559009","list_number":"+18005551234","custom_fields":{"a":"1","a":"2"}}"#,
        r#"{"list_number":"+18005551234"}"#,
        r#"{"phone_number":null,"list_number":"+18005551234"}"#,
        r#"{"phone_number":"+14155559012","list_number":"+18005551234","send_count":99999999999999999999}"#,
    ];
    // 70 good contacts with the bad ones in between, in pages of 50.
    let mut listing = contacts(0..70);
    for (i, b) in bad.iter().enumerate() {
        listing.insert(i * 3 + 1, (*b).to_owned());
    }
    let total = listing.len() as u64;
    let serve = move |req: &Request| {
        let (list, page, per_page) = window_of(req, 100, &listing);
        Reply::json(page_body(
            &list,
            page,
            per_page,
            total,
            total.div_ceil(per_page),
        ))
    };
    let server = TestServer::start(serve.clone());
    let (out, keys) = exported_keys(&server, &["--per-page", "50"]).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 6, "{err}");
    assert!(
        err.contains("page 1, record 1") && err.contains("active") && err.contains("yes"),
        "{err}"
    );
    assert!(keys.is_empty());

    let server = TestServer::start(serve);
    let dir = tempfile::tempdir().unwrap();
    let out = run_guarded(
        export_to(
            &server.url(),
            dir.path(),
            &["--per-page", "50", "--on-invalid", "quarantine"],
        ),
        GUARD,
    )
    .await;
    assert_no_crash(&out, "quarantine");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let keys = lake_keys(dir.path());
    let expected: HashSet<_> = (0..70)
        .map(|i| (format!("+1415555{i:04}"), "+18005551234".to_owned()))
        .collect();
    let got: HashSet<_> = keys.iter().cloned().collect();
    assert_eq!(keys.len(), got.len(), "no contact doubled");
    assert_eq!(got, expected, "exactly the valid contacts");
    let manifest = manifest(dir.path());
    assert_eq!(manifest["rows"], 70);
    assert_eq!(manifest["rejects"]["count"], bad.len(), "{manifest}");
    let rejects = walk(dir.path())
        .into_iter()
        .find(|p| p.to_string_lossy().contains("_rejects-"))
        .expect("a rejects file");
    let text = std::fs::read_to_string(rejects).unwrap();
    assert_eq!(text.lines().count(), bad.len(), "{text}");
    for line in text.lines() {
        let reject: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            reject["field"].is_string() && reject["raw"].is_string(),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn enormous_values_are_written_whole() {
    let big = "é".repeat(5 * 1024 * 1024 / 2); // 5 MiB of UTF-8
    let huge_contact = format!(
        r#"{{"phone_number":"+14155550000","list_number":"+18005551234","custom_fields":{{"big":"{big}"}},"future_field":"{big}"}}"#
    );
    // Nested 100 000 deep: no recursion limit or stack overflow on the way; kept as its text.
    let deep = format!(
        r#"{{"phone_number":"+14155550001","list_number":"+18005551234","custom_fields":{{"deep":{}{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let mut page = vec![huge_contact, deep];
    page.extend(contacts(2..50));
    let body = page_body(&page, 1, 100, 50, 1);
    let server = TestServer::pages(vec![body]);
    let dir = tempfile::tempdir().unwrap();
    let out = run_guarded(export_to(&server.url(), dir.path(), &[]), GUARD).await;
    assert_no_crash(&out, "enormous");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let glob = dir.path().join("contacts/**/*.parquet");
    let result = duckdb(&format!(
        "SELECT count(*), max(strlen(custom_fields['big'])), max(strlen(_extra)), max(strlen(custom_fields['deep'])) FROM read_parquet('{}')",
        glob.display()
    ));
    let expected_extra = big.len() + r#"{"future_field":""}"#.len();
    assert_eq!(
        result.trim(),
        format!("[[50, {}, {expected_extra}, 200000]]", big.len()),
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_serves_fewer_than_the_per_page_it_reports_loses_nothing() {
    // Asked for 1000 a page, the server serves 100 but echoes `per_page: 1000` (a silent cap),
    // with `total_pages` by its real page size.
    let server = TestServer::start(|req| {
        let (list, page, per_page) = window(req, 100, 250);
        let reported = if per_page == 100 { 1000 } else { per_page };
        Reply::json(page_body(&list, page, reported, 250, 3))
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run_guarded(export_to(&server.url(), dir.path(), &[]), GUARD).await;
    assert_no_crash(&out, "silent cap");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let keys = lake_keys(dir.path());
    let unique: HashSet<_> = keys.iter().collect();
    assert_eq!((keys.len(), unique.len()), (250, 250), "{}", stderr(&out));
}
