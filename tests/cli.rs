//! The CLI end to end: the built binary against the real mock server, real files, DuckDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use trackly_export::mock::{Dataset, DatasetConfig, Faults};

#[tokio::test(flavor = "multi_thread")]
async fn demo_writes_a_lake_that_duckdb_reads_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let mut cmd = binary();
    cmd.args(["demo", "--contacts", "3000", "--output"])
        .arg(&lake);
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("read_parquet("), "{}", stdout(&out));
    let dataset = Dataset::generate(&DatasetConfig {
        contacts: 3000,
        ..DatasetConfig::default()
    });
    let mut truth = Vec::new();
    for i in 0..dataset.len() {
        truth.extend_from_slice(dataset.contact_json(i));
        truth.push(b'\n');
    }
    check_lake(&lake, &truth, Some(3000));
    let date_dir = walk(&lake)
        .into_iter()
        .find(|p| p.ends_with("_SUCCESS"))
        .expect("_SUCCESS written");
    assert!(date_dir.parent().unwrap().join("_manifest.json").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn export_with_filters_writes_exactly_the_matching_contacts() {
    let server = mock(4_000, Faults::default()).await;
    let truth_all = server.ground_truth(None, None);
    let first: serde_json::Value =
        serde_json::from_slice(truth_all.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let list = first["list_number"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(
        &server,
        dir.path(),
        &[
            "--list-number",
            &list,
            "--active",
            "true",
            "--per-page",
            "100",
            "--extract-date",
            "2026-01-02",
        ],
    ))
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let truth = server.ground_truth(Some(&list), Some(true));
    check_lake(dir.path(), &truth, None);
    assert!(
        dir.path()
            .join("contacts/extract_date=2026-01-02/_SUCCESS")
            .exists()
    );
    assert_no_secret_in_tree(dir.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2_before_any_request() {
    let server = mock(100, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["--list-number", "18005551234"], "E.164"),
        (vec!["--list-number", "+1800abc"], "E.164"),
        (vec!["--per-page", "0"], "--per-page"),
        (vec!["--per-page", "1001"], "--per-page"),
        (vec!["--active", "yes"], "--active"),
        (vec!["--compression", "lz5"], "--compression"),
        (vec!["--on-invalid", "ignore"], "--on-invalid"),
        (vec!["--extract-date", "2026-13-01"], "--extract-date"),
        (vec!["--concurrency", "0"], "--concurrency"),
        (vec!["--retry-timeout", "0"], "--retry-timeout"),
        (vec!["--retry-timeout", "nan"], "--retry-timeout"),
        (vec!["--request-timeout", "1e300"], "--request-timeout"),
    ] {
        let out = run_async(export(&server, dir.path(), &args)).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).trim().lines().count(),
            1,
            "one line: {}",
            stderr(&out)
        );
    }
    // No API key at all.
    let mut cmd = binary();
    cmd.args(["export", "--base-url", &server.url(), "--output"])
        .arg(dir.path());
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("TRACKLY_API_KEY"), "{}", stderr(&out));
    // No --output: said first, before any other setting's error (as before the settings
    // were defined once).
    let mut cmd = binary();
    cmd.env("TRACKLY_API_KEY", SECRET).args([
        "export",
        "--base-url",
        &server.url(),
        "--active",
        "yes",
    ]);
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--output is required"),
        "{}",
        stderr(&out)
    );
    // Malformed or unsupported URLs.
    for url in [
        "s3://",
        "s3:///prefix",
        "gs://",
        "az:///x",
        "hdfs://bucket/x",
    ] {
        let mut cmd = binary();
        cmd.env("TRACKLY_API_KEY", SECRET).args([
            "export",
            "--base-url",
            &server.url(),
            "--output",
            url,
        ]);
        let out = run_async(cmd).await;
        assert_eq!(code(&out), 2, "{url}: {}", stderr(&out));
    }
    assert_eq!(server.stats().requests, 0, "no request was made");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_exits_3_and_never_prints_the_key() {
    let server = mock(100, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary();
    cmd.env("TRACKLY_API_KEY", "trk_wrong_key_9d8c")
        .args(["-vv", "export", "--base-url", &server.url(), "--output"])
        .arg(dir.path());
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("trk_wrong_key_9d8c"),
        "{}",
        stderr(&out)
    );
    assert!(parquet_files(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_that_never_recovers_exits_4_naming_the_page() {
    let server = mock(
        100,
        Faults {
            p_502: 1.0,
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(&server, dir.path(), &["--max-attempts", "2"])).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("page 1"), "{}", stderr(&out));
    assert!(parquet_files(dir.path()).is_empty());
}

const BAD_PAGE: &str = r#"{"contacts":[{"phone_number":"+14155550001","list_number":"+18005551234","revenue_total":"lots"},{"phone_number":"+14155550002","list_number":"+18005551234","revenue_total":1.5}],"pagination":{"page":1,"per_page":1000,"total":2,"total_pages":1}}"#;

#[tokio::test(flavor = "multi_thread")]
async fn invalid_data_exits_6_or_is_quarantined() {
    let url = fixed_server(BAD_PAGE);
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary();
    // The fixed server serves contacts only.
    cmd.env("TRACKLY_API_KEY", SECRET)
        .env("TRACKLY_TABLES", "contacts")
        .args(["export", "--base-url", &url, "--output"])
        .arg(dir.path());
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("page 1") && err.contains("revenue_total") && err.contains("lots"),
        "{err}"
    );
    assert!(parquet_files(dir.path()).is_empty());

    let mut cmd = binary();
    cmd.env("TRACKLY_API_KEY", SECRET)
        .env("TRACKLY_TABLES", "contacts")
        .args([
            "export",
            "--on-invalid",
            "quarantine",
            "--base-url",
            &url,
            "--output",
        ])
        .arg(dir.path());
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(parquet_files(dir.path()).len(), 1);
    let rejects: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("_rejects")
        })
        .collect();
    assert_eq!(rejects.len(), 1, "{:?}", walk(dir.path()));
    let text = std::fs::read_to_string(&rejects[0]).unwrap();
    assert!(
        text.contains("+14155550001") && text.contains("revenue_total"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_checks_the_key_and_writes_nothing() {
    let server = mock(2_500, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let out = run_async(export(&server, &lake, &["--dry-run"])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("2500 contacts"), "{}", stdout(&out));
    assert!(stdout(&out).contains("3 pages"), "{}", stdout(&out));
    // Page 1 of the contacts, and the lists (the default answer and the deleted ones, read
    // twice as an export reads them, to see them agree).
    assert!(
        stdout(&out).contains("4 lists (deleted ones included) in 2 answers"),
        "{}",
        stdout(&out)
    );
    assert!(!lake.exists(), "dry run created {}", lake.display());
    assert_eq!(server.stats().requests, 1 + 2 * 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_precedence_is_flag_then_env_then_file_then_default() {
    let server = mock(1_000, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "per_page = 100\nconcurrency = 2\n");
    let lake = dir.path().join("lake");
    let per_page = |out: &Output| {
        let text = stdout(out);
        assert!(text.contains("dry run"), "{text}");
        // `10 pages of 100`, or `1 page of 1000`.
        text.replace("pages of ", "page of ")
            .split("page of ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .trim_end_matches(',')
            .to_owned()
    };
    let mut cmd = export(&server, &lake, &["--dry-run"]);
    assert_eq!(per_page(&run_async(cmd).await), "1000", "default");
    cmd = export(&server, &lake, &["--dry-run", "--config", &config]);
    assert_eq!(per_page(&run_async(cmd).await), "100", "file over default");
    cmd = export(&server, &lake, &["--dry-run", "--config", &config]);
    cmd.env("TRACKLY_PER_PAGE", "200");
    assert_eq!(per_page(&run_async(cmd).await), "200", "env over file");
    cmd = export(
        &server,
        &lake,
        &["--dry-run", "--per-page", "300", "--config", &config],
    );
    cmd.env("TRACKLY_PER_PAGE", "200");
    assert_eq!(per_page(&run_async(cmd).await), "300", "flag over env");
    std::fs::write(&config, "per_page = 100\nbogus = 1\n").unwrap();
    cmd = export(&server, &lake, &["--dry-run", "--config", &config]);
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_file_key_takes_only_its_own_type() {
    let server = mock(100, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("trackly.toml");
    let lake = dir.path().join("lake");
    let with = |text: &str| {
        std::fs::write(&config, text).unwrap();
        export(
            &server,
            &lake,
            &["--dry-run", "--config", config.to_str().unwrap()],
        )
    };
    // A number as a string is refused, the error showing where and the value.
    let out = run_async(with("per_page = \"100\"\n")).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not a valid config file: line 1, column 12"),
        "{err}"
    );
    assert!(
        err.contains("invalid type: string \"100\", expected u32"),
        "{err}"
    );
    // An array for any key but `tables` is refused.
    for text in ["per_page = [100]\n", "output = [\"elsewhere\"]\n"] {
        let out = run_async(with(text)).await;
        assert_eq!(code(&out), 2, "{text}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("invalid type: sequence"),
            "{text}: {}",
            stderr(&out)
        );
    }
    // A storage secret written outside `[storage_options]`, or on a line that does not
    // parse, is never quoted back.
    for text in [
        "aws_secret_access_key = \"SECRET-VALUE-123\"\n",
        "[storage_options]\naws_secret_access_key = \"SECRET-VALUE-123\n",
    ] {
        let out = run_async(with(text)).await;
        assert_eq!(code(&out), 2, "{text}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("not a valid config file: line "), "{err}");
        assert!(!err.contains("SECRET-VALUE-123"), "{err}");
    }
    assert!(
        stderr(&run_async(with("aws_secret_access_key = \"SECRET-VALUE-123\"\n")).await)
            .contains("unknown field `aws_secret_access_key`")
    );
    assert_eq!(server.stats().requests, 0, "refused before any request");
    // `tables` takes an array of names.
    let out = run_async(with("tables = [\"lists\"]\n")).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(plan.contains("lists/extract_date="), "{plan}");
    assert!(!plan.contains("contacts/extract_date="), "{plan}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_value_is_said_as_the_flag_then_the_value_from_any_source() {
    let server = mock(100, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(dir.path(), "zstd_level = 30\n");
    for (args, said) in [
        (
            vec!["--zstd-level", "30"],
            "--zstd-level 30 is out of range 1..=22",
        ),
        (
            vec!["--compression", "snappy", "--zstd-level", "30"],
            "--zstd-level 30 is out of range 1..=22",
        ),
        (
            vec!["--config", &config],
            "--zstd-level 30 is out of range 1..=22",
        ),
        (
            vec!["--active", "maybe"],
            "--active \"maybe\" is not one of true, false (omit it for all contacts)",
        ),
        (
            vec!["--request-timeout=-1"],
            "--request-timeout -1 must be a positive number of seconds",
        ),
        (vec!["--batch-size", "0"], "--batch-size must be at least 1"),
    ] {
        let out = run_async(export(&server, dir.path(), &args)).await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with(&format!("error: {said}")),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(server.stats().requests, 0, "refused before any request");
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_is_logged_when_not_a_terminal_and_silent_with_quiet() {
    let server = mock(3_000, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(&server, dir.path(), &["--per-page", "100"])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("progress") && err.contains("pages="), "{err}");
    assert!(err.contains("exported 3000 contacts"), "{err}");

    let mut cmd = export(&server, &dir.path().join("q"), &["--per-page", "100"]);
    cmd.arg("--quiet");
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "quiet prints nothing");

    let cmd = export(
        &server,
        &dir.path().join("j"),
        &["--log-format", "json", "-vv"],
    );
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 0);
    let first = stderr(&out).lines().next().unwrap_or_default().to_owned();
    serde_json::from_str::<serde_json::Value>(&first).expect("JSON log lines");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_exits_130_and_leaves_no_parquet() {
    let server = mock(
        20_000,
        Faults {
            latency: Duration::from_millis(150),
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = export(
        &server,
        dir.path(),
        &[
            "--per-page",
            "100",
            "--concurrency",
            "2",
            "--row-group-rows",
            "1000",
        ],
    );
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    assert!(
        parquet_files(dir.path()).is_empty(),
        "{:?}",
        walk(dir.path())
    );
    assert!(!walk(dir.path()).iter().any(|p| p.ends_with("_SUCCESS")));
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_prints_arrow_and_ddl_that_duckdb_accepts() {
    let out = run(binary().args(["schema"]));
    assert_eq!(code(&out), 0);
    assert!(
        stdout(&out).contains("custom_fields: Map("),
        "{}",
        stdout(&out)
    );
    let out = run(binary().args(["schema", "--format", "spark"]));
    assert!(
        stdout(&out).to_uppercase().contains("MAP<STRING, STRING>"),
        "{}",
        stdout(&out)
    );
    let out = run(binary().args(["schema", "--format", "duckdb"]));
    assert_eq!(code(&out), 0);
    let ddl = stdout(&out);
    let result = duckdb(&format!("{ddl}; SELECT count(*) FROM contacts"));
    assert!(result.contains('0'), "{result}");
}

#[test]
fn the_retry_time_budget_is_a_flag_beside_max_attempts_with_its_default() {
    let out = run(binary().args(["export", "--help"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let help = stdout(&out);
    let flag = help
        .find("--retry-timeout <SECS>")
        .expect("--retry-timeout listed");
    let attempts = help.find("--max-attempts").expect("--max-attempts listed");
    assert!(flag > attempts, "listed after --max-attempts:\n{help}");
    let text = &help[flag..];
    let text = &text[..text.find("\n  -").unwrap_or(text.len())];
    assert!(text.contains("[default: 300]"), "{text}");
    assert!(text.contains("TRACKLY_RETRY_TIMEOUT"), "{text}");
}

/// An API answering `429` with `Retry-After: 86400` on every request.
fn refusing_for_a_day() -> TestServer {
    TestServer::start(|_| Reply::status(429).with_header("retry-after", "86400"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_beyond_the_time_budget_exits_4_saying_what_was_asked_and_allowed() {
    let server = refusing_for_a_day();
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(&server.url(), dir.path(), &[])).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("page 1: gave up after 1 attempt in"), "{err}");
    assert!(
        err.contains(
            "the server asked to wait 86400s (Retry-After) but the page's time budget (retry_timeout) allowed only 300s more"
        ),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1, "no second request");
    assert_no_secret(&out.stderr, "stderr");
    assert_no_secret(&out.stdout, "stdout");

    // The budget is the flag's (or TRACKLY_RETRY_TIMEOUT's).
    let mut cmd = export_to(&server.url(), dir.path(), &[]);
    cmd.env("TRACKLY_RETRY_TIMEOUT", "45");
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("allowed only 45s more"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_time_budget_is_named_as_such_under_a_high_attempt_limit() {
    let server = TestServer::start(|_| Reply::status(500));
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(
        &server.url(),
        dir.path(),
        &["--max-attempts", "1000", "--retry-timeout", "0.5"],
    ))
    .await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the page's time budget (retry_timeout 0.5s) was spent"),
        "{err}"
    );
    assert!(!err.contains("attempt limit"), "{err}");
    // The first retry of the page is told at the default level, with cause and wait.
    assert!(
        err.contains("INFO page 1: HTTP 500: (empty body); retry 2 of 1000 in"),
        "{err}"
    );
    assert_no_secret(&out.stderr, "stderr");
}

/// An API that makes the run wait 7 s (`503` with `Retry-After: 7` on the first request), then
/// serves one page of three contacts.
fn slow_to_start() -> TestServer {
    let first = std::sync::atomic::AtomicBool::new(true);
    let body = page_body(&[contact(0), contact(1), contact(2)], 1, 100, 3, 1);
    TestServer::start(move |req| {
        if first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            Reply::status(503).with_header("retry-after", "7")
        } else if req.page() == 1 {
            Reply::json(body.clone())
        } else {
            Reply::json(page_body(&[], req.page(), 100, 3, 1))
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_wait_is_told_and_progress_keeps_coming_while_nothing_arrives() {
    let server = slow_to_start();
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(&server.url(), dir.path(), &[])).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let wait = err
        .find("INFO page 1: HTTP 503: (empty body); retry 2 of 10 in 7")
        .unwrap_or_else(|| panic!("the wait is told: {err}"));
    assert!(err[wait..].contains("(Retry-After: 7s)"), "{err}");
    // The ticker's line comes while page 1 waits: nothing arrived yet.
    let progress = err
        .find("INFO progress")
        .unwrap_or_else(|| panic!("a progress line while waiting: {err}"));
    assert!(wait < progress, "{err}");
    let line = err[progress..].lines().next().unwrap();
    assert!(line.contains(" pages=0 "), "{line}");
    let idle: u64 = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix("idle_s="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("idle_s in {line}"));
    assert!(idle >= 5, "{line}");
    assert!(err.contains("exported 3 contacts"), "{err}");
    assert_no_secret(&out.stderr, "stderr");
}

/// A log nobody reads any more (stderr a pipe whose reader has exited, as in `… 2>&1 | head`)
/// does not stop the run: it publishes everything and exits 0. Before, the first log line after
/// the reader left panicked (exit 101), with Delta output between the lists' and the contacts'
/// commits.
#[tokio::test(flavor = "multi_thread")]
async fn an_export_whose_stderr_reader_has_gone_publishes_and_exits_0() {
    let server = mock(5_000, Faults::default()).await;
    let truth = server.ground_truth(None, None);
    for (format, log) in [("parquet", "text"), ("delta", "json")] {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join("lake");
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = export(
            &server,
            &lake,
            &["--table-format", format, "--extract-date", "2026-03-04"],
        );
        cmd.args(["--log-format", log, "-v"])
            .stdout(std::process::Stdio::null())
            .stderr(writer);
        let status = tokio::task::spawn_blocking(move || cmd.status().unwrap())
            .await
            .unwrap();
        assert_eq!(status.code(), Some(0), "{format}, {log} log");
        if format == "parquet" {
            check_lake(&lake, &truth, Some(5_000));
        } else {
            for table in ["contacts", "lists"] {
                let commit = lake
                    .join(table)
                    .join("_delta_log/00000000000000000001.json");
                assert!(commit.exists(), "{table} was not committed");
            }
            check_delta(
                lake.join("contacts").to_str().unwrap(),
                &truth,
                &["--expect-count", "5000", "--writes", "1"],
                None,
            );
        }
    }
}

/// Output for a reader that stops early (`trackly-export schema | head -1`) ends quietly with
/// exit 0 instead of a panic.
#[test]
fn schema_into_a_closed_pipe_exits_0() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = binary()
        .args(["schema", "--format", "duckdb"])
        .stdout(writer)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
