//! The API's documented error contract, end to end through the CLI: what the API said reaches
//! the user (its `code`, else its text), with the documented exit codes; and API keys as people
//! paste them.

mod common;

use common::*;
use trackly_export::mock::Faults;

/// The last line of stderr: the error the user reads.
fn error_line(out: &std::process::Output) -> String {
    stderr(out).lines().last().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_exits_3_naming_the_code_and_where_the_key_came_from() {
    let server = mock(50, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = export(&server, dir.path(), &[]);
    cmd.env("TRACKLY_API_KEY", "trk_0123456789abcdefghijklmnopqrstuv");
    let out = run_async(cmd).await;
    let line = error_line(&out);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        line.contains("HTTP 401 invalid_api_key: Invalid API key"),
        "{line}"
    );
    assert!(line.contains("API key from TRACKLY_API_KEY"), "{line}");
    assert!(!line.contains("trk_0123456789"), "the key leaked: {line}");
    assert!(parquet_files(dir.path()).is_empty());

    // As a JSON log event: the exit code and the API's code and text as fields.
    let mut cmd = export(&server, dir.path(), &["--log-format", "json"]);
    cmd.env("TRACKLY_API_KEY", "trk_0123456789abcdefghijklmnopqrstuv");
    let out = run_async(cmd).await;
    let event: serde_json::Value = serde_json::from_str(&error_line(&out)).unwrap();
    assert_eq!(event["level"], "ERROR", "{event}");
    assert_eq!(event["exit_code"], 3, "{event}");
    assert_eq!(event["api_code"], "invalid_api_key", "{event}");
    assert_eq!(event["api_error"], "Invalid API key", "{event}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_account_exits_3_with_the_api_text_when_there_is_no_code() {
    let server = mock(
        50,
        Faults {
            suspended: true,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(&server, dir.path(), &[])).await;
    let line = error_line(&out);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(line.contains("HTTP 403 Account is suspended"), "{line}");
    // The dry run spends its one request on the same answer.
    let out = run_async(export(&server, dir.path(), &["--dry-run"])).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(error_line(&out).contains("Account is suspended"));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_documented_error_body_reaches_the_user() {
    // (status, body, exit code, what the error line must say)
    let cases: [(u16, &str, i32, &str); 5] = [
        (
            401,
            r#"{"error": "API key required", "code": "missing_api_key"}"#,
            3,
            "HTTP 401 missing_api_key: API key required",
        ),
        (
            400,
            r#"{"error": "Invalid value for 'per_page'", "code": "invalid_parameter", "message": "must be at most 1000"}"#,
            4,
            "HTTP 400 at ",
        ),
        (
            404,
            r#"{"error": "Not found", "code": "not_found"}"#,
            4,
            "not_found: Not found",
        ),
        (
            500,
            r#"{"error": "An unexpected server error occurred.", "code": "internal_error"}"#,
            4,
            "last error: HTTP 500 internal_error: An unexpected server error occurred.",
        ),
        (
            429,
            r#"{"error": "Rate limit exceeded", "code": "rate_limited"}"#,
            4,
            "last error: HTTP 429 rate_limited: Rate limit exceeded",
        ),
    ];
    for (status, body, exit, says) in cases {
        let server = TestServer::start(move |_| Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        });
        let dir = tempfile::tempdir().unwrap();
        let out = run_async(export_to(
            &server.url(),
            dir.path(),
            &["--max-attempts", "2", "--retry-timeout", "5"],
        ))
        .await;
        let line = error_line(&out);
        assert_eq!(code(&out), exit, "{status}: {}", stderr(&out));
        assert!(line.contains(says), "{status}: {line}");
        if status == 400 {
            assert!(
                line.contains(
                    "invalid_parameter: Invalid value for 'per_page' — must be at most 1000"
                ),
                "{line}"
            );
        }
        assert!(parquet_files(dir.path()).is_empty(), "{status}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_with_whitespace_around_them_work_from_env_flag_and_file() {
    let server = mock(30, Faults::default()).await;
    let padded = format!("  {SECRET} \n");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("\n  {SECRET}  \r\n\n")).unwrap();
    let key_file = file.path().to_str().unwrap().to_owned();
    for how in ["env", "flag", "file"] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = match how {
            "flag" => export(&server, dir.path(), &["--api-key", &padded]),
            "file" => export(&server, dir.path(), &["--api-key-file", &key_file]),
            _ => export(&server, dir.path(), &[]),
        };
        if how == "env" {
            cmd.env("TRACKLY_API_KEY", &padded);
        } else {
            cmd.env_remove("TRACKLY_API_KEY");
        }
        let out = run_async(cmd).await;
        assert_eq!(code(&out), 0, "{how}: {}", stderr(&out));
        assert_eq!(lake_keys(dir.path()).len(), 30, "{how}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_with_whitespace_inside_is_a_usage_error_that_does_not_show_the_key() {
    let server = mock(30, Faults::default()).await;
    let (head, tail) = SECRET.split_at(9);
    let spaced = format!("{head} {tail}");
    let two_lines = format!("{SECRET}\ntrk_other");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &two_lines).unwrap();
    let key_file = file.path().to_str().unwrap().to_owned();
    for (how, says) in [
        (
            "env",
            "TRACKLY_API_KEY: the API key has a space inside it (character 10 of",
        ),
        (
            "file",
            "the API key has a line break inside it (character 25 of",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = if how == "file" {
            export(&server, dir.path(), &["--api-key-file", &key_file])
        } else {
            export(&server, dir.path(), &[])
        };
        if how == "env" {
            cmd.env("TRACKLY_API_KEY", &spaced);
        } else {
            cmd.env_remove("TRACKLY_API_KEY");
        }
        let out = run_async(cmd).await;
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(code(&out), 2, "{how}: {text}");
        assert!(error_line(&out).contains(says), "{how}: {text}");
        for part in [head, tail, "trk_other"] {
            assert!(!text.contains(part), "{how}: the key leaked: {text}");
        }
    }
    // Nothing was asked of the API.
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_the_other_documented_host_names_the_base_url_to_use() {
    let target = TestServer::start(|_| Reply::status(500));
    let port = target.addr().port();
    let api = TestServer::start(move |req| {
        Reply::status(301).with_header(
            "location",
            &format!("http://localhost:{port}{}", req.target),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(&api.url(), dir.path(), &[])).await;
    let line = error_line(&out);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        line.contains(&format!(
            "redirected to http://localhost:{port}/api/v2/contacts?"
        )),
        "{line}"
    );
    assert!(
        line.contains(&format!("--base-url http://localhost:{port}/api")),
        "{line}"
    );
    assert!(target.requests().is_empty(), "the key must not follow");
}

#[tokio::test(flavor = "multi_thread")]
async fn retried_error_answers_are_counted_by_what_the_api_said_in_the_manifest() {
    let server = mock(
        3_000,
        Faults {
            p_500: 0.2,
            fault_seed: 11,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(&server, dir.path(), &["--per-page", "100"])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let served_500 = server.stats().by_status.get(&500).copied().unwrap_or(0);
    assert!(served_500 > 0, "the seed must inject some 500s");
    let manifest = manifest(dir.path());
    let counted = &manifest["fetch_stats"]["api_errors"];
    assert_eq!(counted["500 internal_error"], served_500, "{counted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_to_a_plain_http_port_says_so_at_once_with_exit_2() {
    let server = mock(50, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let https = server.url().replacen("http://", "https://", 1);
    let mut cmd = export_to(&https, dir.path(), &[]);
    cmd.env("TRACKLY_API_KEY", SECRET);
    let started = std::time::Instant::now();
    let out = run_async(cmd).await;
    let line = error_line(&out);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(line.contains("answers plain HTTP, not https"), "{line}");
    assert!(!stderr(&out).contains("retrying"), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_starts_with_a_byte_order_mark_is_read() {
    let contacts: Vec<String> = (0..3).map(contact).collect();
    let body = format!("\u{feff}{}", page_body(&contacts, 1, 100, 3, 1));
    let server = TestServer::pages(vec![body]);
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(&server.url(), dir.path(), &["--per-page", "100"])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(manifest(dir.path())["rows"], 3);
}
