//! API faults end to end: the built binary against the mock with every fault kind alone and
//! all at once, and with the listing changing during the run. Each run must land exactly the
//! ground truth (DuckDB) and account for every retry in `_manifest.json` and the summary line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use trackly_export::mock::{Drift, DriftKind, Faults, MockStats};

const CONTACTS: usize = 3_000;

/// Exports the mock's whole data set under `faults` and checks the lake is exactly the ground
/// truth and the statistics add up: every request either delivered a page or was retried.
/// Returns the manifest's fetch statistics and the mock's counters.
/// `request_timeout` is short only where slow bodies must time out: elsewhere a loaded CI
/// machine must not turn an answer into a timeout and upset the per-cause counts.
async fn exact_under(
    faults: Faults,
    per_page: &str,
    request_timeout: &str,
) -> (serde_json::Value, MockStats) {
    let server = mock(CONTACTS, faults).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(
        &server,
        dir.path(),
        &[
            "--per-page",
            per_page,
            "--concurrency",
            "8",
            "--request-timeout",
            request_timeout,
            "--extract-date",
            "2026-03-04",
        ],
    ))
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    check_lake(dir.path(), &server.ground_truth(None, None), Some(CONTACTS));
    let stats = manifest(dir.path())["fetch_stats"].clone();
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    let retries = &stats["retries"];
    let total: u64 = [
        "rate_limited",
        "server_error",
        "timeout",
        "connection",
        "invalid_body",
    ]
    .iter()
    .map(|k| n(&retries[k]))
    .sum();
    assert_eq!(
        n(&stats["requests"]),
        n(&stats["pages"]) + n(&stats["list_pages"]) + n(&stats["undelivered_reads"]) + total,
        "every request delivered a page, was retried, or counted the listing's parts: {stats}"
    );
    assert!(
        stderr(&out).contains(&format!("{total} retries")),
        "the summary counts the retries ({total}): {}",
        stderr(&out)
    );
    assert_eq!(n(&stats["contacts"]), CONTACTS as u64, "{stats}");
    assert_no_secret_in_tree(dir.path());
    (stats, server.stats())
}

fn count(stats: &serde_json::Value, cause: &str) -> u64 {
    stats["retries"][cause].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_percent_5xx_is_retried_to_the_exact_set() {
    let (stats, mock) = exact_under(
        Faults {
            p_500: 0.1,
            p_503: 0.1,
            fault_seed: 1,
            ..Faults::default()
        },
        "100",
        "60",
    )
    .await;
    let served_5xx: u64 = mock
        .by_status
        .iter()
        .filter(|(s, _)| **s >= 500)
        .map(|(_, n)| n)
        .sum();
    assert!(served_5xx > 0, "{mock:?}");
    assert_eq!(count(&stats, "server_error"), served_5xx, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn html_502_bodies_are_retried_to_the_exact_set() {
    let (stats, mock) = exact_under(
        Faults {
            p_502: 0.25,
            fault_seed: 2,
            ..Faults::default()
        },
        "100",
        "60",
    )
    .await;
    let served = mock.by_status.get(&502).copied().unwrap_or(0);
    assert!(served > 0, "{mock:?}");
    assert_eq!(count(&stats, "server_error"), served, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_bodies_are_retried_to_the_exact_set() {
    let (stats, mock) = exact_under(
        Faults {
            p_truncate: 0.25,
            fault_seed: 3,
            ..Faults::default()
        },
        "100",
        "60",
    )
    .await;
    assert!(mock.truncated > 0, "{mock:?}");
    // A cut JSON document never parses: each truncated body is one invalid-body retry.
    assert_eq!(count(&stats, "invalid_body"), mock.truncated, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_resets_are_retried_to_the_exact_set() {
    let (stats, mock) = exact_under(
        Faults {
            p_reset: 0.25,
            fault_seed: 4,
            ..Faults::default()
        },
        "100",
        "60",
    )
    .await;
    assert!(mock.resets > 0, "{mock:?}");
    assert!(
        count(&stats, "connection") >= mock.resets,
        "{stats} {mock:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_bodies_beyond_the_request_timeout_are_retried_to_the_exact_set() {
    let (stats, mock) = exact_under(
        Faults {
            p_slow: 0.2,
            slow_body: Duration::from_secs(4),
            fault_seed: 5,
            ..Faults::default()
        },
        "100",
        "1",
    )
    .await;
    assert!(mock.slow > 0, "{mock:?}");
    // Every slow body outlives `--request-timeout 1`.
    assert!(count(&stats, "timeout") >= mock.slow, "{stats} {mock:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_with_retry_after_is_honoured_to_the_exact_set() {
    let (stats, mock) = exact_under(
        Faults {
            rate_limit_rps: Some(20),
            fault_seed: 6,
            ..Faults::default()
        },
        "50",
        "60",
    )
    .await;
    assert!(mock.rate_limited > 0, "{mock:?}");
    assert_eq!(count(&stats, "rate_limited"), mock.rate_limited, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fault_at_once_still_gives_the_exact_set() {
    let (stats, mock) = exact_under(
        Faults {
            p_500: 0.05,
            p_502: 0.05,
            p_503: 0.05,
            p_truncate: 0.05,
            p_reset: 0.05,
            p_slow: 0.05,
            slow_body: Duration::from_secs(4),
            rate_limit_rps: Some(20),
            latency_jitter: Duration::from_millis(20),
            fault_seed: 7,
            ..Faults::default()
        },
        "50",
        "1",
    )
    .await;
    let faults = mock.by_status.iter().filter(|(s, _)| **s >= 429).count();
    assert!(
        faults > 0 && mock.truncated + mock.resets + mock.slow > 0,
        "{mock:?}"
    );
    assert!(count(&stats, "server_error") > 0, "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_during_the_run_keeps_every_contact_present_throughout_exactly_once() {
    let drift = vec![
        Drift {
            after_request: 3,
            kind: DriftKind::Insert(150),
        },
        Drift {
            after_request: 9,
            kind: DriftKind::Delete(120),
        },
        Drift {
            after_request: 16,
            kind: DriftKind::Insert(40),
        },
        Drift {
            after_request: 24,
            kind: DriftKind::Delete(35),
        },
    ];
    let server = mock(
        CONTACTS,
        Faults {
            drift,
            fault_seed: 8,
            ..Faults::default()
        },
    )
    .await;
    let before = server.ground_truth(None, None);
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(
        &server,
        dir.path(),
        &["--per-page", "100", "--concurrency", "4"],
    ))
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(server.stats().drift_events, 4, "every change happened");
    let after = server.ground_truth(None, None);

    // Present throughout: in the listing before and after the run (values never change).
    let before_keys: HashSet<_> = truth_keys(&before).into_iter().collect();
    let after_keys: HashSet<_> = truth_keys(&after).into_iter().collect();
    let throughout = present_throughout(&before, &after);
    assert_eq!(after_keys.len(), CONTACTS + 150 - 120 + 40 - 35);
    assert!(throughout.len() < after.len());
    // Each of them exactly once with its exact values; anything else at most once...
    check_lake_with(dir.path(), &throughout, None, true);
    // ... and nothing else than contacts that existed at some point of the run: those of
    // the listing before or after it, or one of the 190 inserted (and maybe deleted again).
    let other = lake_keys(dir.path())
        .iter()
        .filter(|k| !before_keys.contains(k) && !after_keys.contains(k))
        .count();
    assert!(other <= 190, "{other} contacts that never existed");
    let stats = manifest(dir.path())["fetch_stats"].clone();
    let events = stats["drift_events"].as_array().unwrap();
    assert!(
        !events.is_empty(),
        "the manifest records the drift: {stats}"
    );
    // Each event: a place where the listing moved (two windows in a row disagree on the
    // total, or repair reads found contacts the windows had skipped).
    assert!(
        events.iter().all(|e| e["total_before"] != e["total_after"]
            || (e["contacts_recovered"].as_u64() > Some(0)
                && e["pages_reread"].as_u64() > Some(0))),
        "{stats}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["contacts_recovered"].as_u64() > Some(0)),
        "deletions made windows skip contacts, and the repair reads found them: {stats}"
    );
    assert!(
        stderr(&out).contains(&match events.len() {
            1 => "1 drift event,".to_owned(),
            n => format!("{n} drift events,"),
        }),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_that_never_recovers_stops_within_its_retry_budget_naming_the_page() {
    for (what, faults) in [
        (
            "500",
            Faults {
                p_500: 1.0,
                ..Faults::default()
            },
        ),
        (
            "reset",
            Faults {
                p_reset: 1.0,
                ..Faults::default()
            },
        ),
    ] {
        let server = mock(500, faults).await;
        let dir = tempfile::tempdir().unwrap();
        let out = run_async(export(&server, dir.path(), &["--max-attempts", "3"])).await;
        assert_eq!(code(&out), 4, "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("page 1") && err.contains("3 attempts") && err.contains("/v2/contacts"),
            "{what}: {err}"
        );
        let stats = server.stats();
        assert_eq!(
            stats.requests - stats.lists_served,
            3,
            "{what}: exactly the retry budget was spent on the contacts (the lists are not faulted)"
        );
        assert!(parquet_files(dir.path()).is_empty(), "{what}");
    }
}
