//! The API key never leaks: not on stdout or stderr (any verbosity, text or JSON logs), not in
//! any file of the output tree (manifest and staging included), not in errors or `Debug`
//! output; and it is sent only to the configured origin (redirects elsewhere are refused).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use trackly_export::mock::{DatasetConfig, Faults, MockConfig, MockServer};
use trackly_export::{
    ApiKey, Client, ClientBuilder, Export, ExportError, OutputLocation, Query, RetryConfig,
};

fn assert_clean(text: &str, what: &str) {
    assert_no_secret(text.as_bytes(), what);
}

#[tokio::test(flavor = "multi_thread")]
async fn successful_runs_at_every_verbosity_never_show_the_key() {
    let server = mock(1_500, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let key_file = secrets.path().join("key");
    std::fs::write(&key_file, format!("{SECRET}\n")).unwrap();
    for (name, args) in [
        ("text", vec!["-vv"]),
        ("json", vec!["-vv", "--log-format", "json"]),
        ("quiet", vec!["--quiet"]),
        ("default", vec![]),
    ] {
        let lake = dir.path().join(name);
        let mut cmd = export(&server, &lake, &["--per-page", "500"]);
        cmd.args(&args);
        // `run` checks stdout and stderr.
        let out = run_async(cmd).await;
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
        assert_no_secret_in_tree(&lake);
        assert!(!parquet_files(&lake).is_empty());
    }
    // The key from a file, and from the command line (which warns, without echoing it).
    let mut cmd = binary();
    cmd.args(["-vv", "export", "--base-url", &server.url(), "--output"])
        .arg(dir.path().join("file"))
        .arg("--api-key-file")
        .arg(&key_file);
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut cmd = binary();
    cmd.args(["-vv", "export", "--base-url", &server.url(), "--output"])
        .arg(dir.path().join("flag"))
        .args(["--api-key", SECRET]);
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("--api-key"), "{}", stderr(&out));
    assert_no_secret_in_tree(dir.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_key_and_retried_failures_never_show_the_key() {
    // The server expects another key: ours is answered 401.
    let other = MockServer::start(MockConfig {
        dataset: DatasetConfig {
            contacts: 100,
            ..DatasetConfig::default()
        },
        api_key: "trk_live_other_key".into(),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for format in ["text", "json"] {
        let mut cmd = export(&other, &dir.path().join(format), &[]);
        cmd.args(["-vv", "--log-format", format]);
        let out = run_async(cmd).await;
        assert_eq!(code(&out), 3, "{}", stderr(&out));
    }

    // Every retryable fault, logged at debug level with its message. One request in five
    // fails: enough for every kind to show, while ten failures in a row on one page (the
    // retry limit) stay out of reach (at two in five, a run once lost page 19 that way).
    let faulty = mock(
        2_000,
        Faults {
            p_500: 0.05,
            p_502: 0.05,
            p_truncate: 0.05,
            p_reset: 0.05,
            rate_limit_rps: Some(30),
            fault_seed: 11,
            ..Faults::default()
        },
    )
    .await;
    for format in ["text", "json"] {
        let lake = dir.path().join(format!("faulty-{format}"));
        let mut cmd = export(&faulty, &lake, &["--per-page", "100"]);
        cmd.args(["-vv", "--log-format", format]);
        let out = run_async(cmd).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert!(stderr(&out).contains("retrying page"), "{}", stderr(&out));
    }
    // Retries exhausted: the final error message.
    let broken = mock(
        100,
        Faults {
            p_503: 1.0,
            ..Faults::default()
        },
    )
    .await;
    let mut cmd = export(
        &broken,
        &dir.path().join("broken"),
        &["--max-attempts", "2"],
    );
    cmd.arg("-vv");
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert_no_secret_in_tree(dir.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_run_leaves_the_key_nowhere() {
    let server = mock(
        20_000,
        Faults {
            latency: Duration::from_millis(60),
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    // Uncompressed 1 MiB files: the first is staged well before the end of the run.
    let mut cmd = export(
        &server,
        dir.path(),
        &[
            "-vv",
            "--per-page",
            "200",
            "--concurrency",
            "1",
            "--compression",
            "none",
            "--row-group-rows",
            "500",
            "--file-size",
            "1",
        ],
    );
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run has staged data, then kill -9 it.
    let staging = dir.path().join("contacts/_staging");
    while walk(&staging).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "ended before staging");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), None, "killed by a signal");
    assert_no_secret(&out.stdout, "stdout");
    assert_no_secret(&out.stderr, "stderr");
    assert!(!walk(dir.path()).is_empty());
    assert_no_secret_in_tree(dir.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_and_error_output_of_library_values_never_show_the_key() {
    let builder = ClientBuilder::new()
        .with_api_key(ApiKey::new(SECRET))
        .with_base_url("http://127.0.0.1:9/api")
        .with_retry(RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        });
    assert_clean(&format!("{builder:?} {builder:#?}"), "ClientBuilder");
    assert_clean(&format!("{:?}", ApiKey::new(SECRET)), "ApiKey");
    let client = builder.clone().build().unwrap();
    assert_clean(&format!("{client:?} {client:#?}"), "Client");

    // A key with a character not allowed in a header: the error does not echo it.
    let bad = format!("{SECRET}\nX-Other: 1");
    let err = Client::builder()
        .with_api_key(ApiKey::new(bad))
        .build()
        .unwrap_err();
    assert_clean(&format!("{err} {err:?}"), "InvalidConfig");

    // Errors of real runs: connection refused, 401, and the export facade's error and summary.
    let err = client.first_page(&Query::all()).await.unwrap_err();
    assert_clean(&format!("{err} {err:?}"), "RetriesExhausted");
    let other = MockServer::start(MockConfig {
        api_key: "trk_live_other_key".into(),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let wrong = builder.clone().with_base_url(other.url()).build().unwrap();
    let err = wrong.first_page(&Query::all()).await.unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert_clean(&format!("{err} {err:?}"), "Unauthorized");
    let dir = tempfile::tempdir().unwrap();
    let location = OutputLocation::parse(dir.path().to_str().unwrap()).unwrap();
    assert_clean(&format!("{location:?}"), "OutputLocation");
    let err: ExportError = Export::builder()
        .client(wrong)
        .location(location.clone())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_clean(&format!("{err} {err:?} {:?}", err.kind()), "ExportError");

    let server = mock(300, Faults::default()).await;
    let good = builder.with_base_url(server.url()).build().unwrap();
    let summary = Export::builder()
        .client(good.clone())
        .location(location)
        .on_progress(|p| assert_clean(&format!("{p:?}"), "ExportProgress"))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_clean(&format!("{summary:?}"), "RunSummary");
    assert_clean(
        &serde_json::to_string(&summary).unwrap(),
        "RunSummary as JSON",
    );
    let mut pages = good.contacts(Query::all());
    use futures::StreamExt;
    while let Some(page) = pages.next().await {
        assert_clean(&format!("{:?}", page.unwrap()), "Page");
    }
    assert_clean(&format!("{:?}", pages.snapshot()), "FetchStats");
    assert_no_secret_in_tree(dir.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_is_never_sent_to_another_origin_on_a_redirect() {
    // The would-be thief: records every request, answers like the API.
    let elsewhere =
        TestServer::start(|req| Reply::json(page_body(&[contact(1)], req.page(), 1000, 1, 1)));
    let thief = elsewhere.addr();
    for status in [301, 302, 303, 307, 308] {
        for host in [
            format!("127.0.0.1:{}", thief.port()),
            format!("localhost:{}", thief.port()),
        ] {
            let api = TestServer::start(move |req| {
                Reply::status(status)
                    .with_header("location", &format!("http://{host}{}", req.target))
            });
            let dir = tempfile::tempdir().unwrap();
            let out = run_async(export_to(&api.url(), dir.path(), &["-vv"])).await;
            let err = stderr(&out);
            assert_eq!(code(&out), 4, "{status}: {err}");
            assert!(
                err.lines()
                    .last()
                    .unwrap()
                    .contains("another origin; the API key is not sent there"),
                "{status}: {err}"
            );
            assert_eq!(api.requests().len(), 1, "{status}: not retried");
            assert!(parquet_files(dir.path()).is_empty());
        }
    }
    // Same host, other port, other host name: all other origins; nothing ever arrived there.
    let received = elsewhere.requests();
    assert!(
        received.iter().all(|r| r.header("x-api-key").is_none()),
        "the key was sent to another origin: {received:?}"
    );
    assert!(received.is_empty(), "{received:?}");

    // A redirect to the same origin is followed, with the key.
    let same = TestServer::start(|req| {
        if req.target.starts_with("/api/") {
            Reply::status(307).with_header("location", &req.target.replacen("/api/", "/v9/", 1))
        } else {
            assert_eq!(req.header("x-api-key"), Some(SECRET));
            Reply::json(page_body(&[contact(1)], req.page(), 1000, 1, 1))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(&same.url(), dir.path(), &[])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(parquet_files(dir.path()).len(), 1);
}
