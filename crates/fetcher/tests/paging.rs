//! The fetcher against the real mock server on loopback: exact sets under faults and drift.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use trackly_fetcher::{ApiKey, Client, FetchError, FetchStats, Query, RetryConfig};
use trackly_mock::{Drift, DriftKind, Faults, MockServer};

mod support;

use support::fast_retries;

type Key = (String, String);

async fn server(contacts: usize, faults: Faults) -> MockServer {
    support::mock(11, contacts, faults).await
}

fn client(mock: &MockServer, per_page: u32, concurrency: usize) -> Client {
    support::client_builder(mock, per_page, concurrency)
        .with_request_timeout(Duration::from_secs(2))
        .build()
        .expect("valid client")
}

/// Every delivered contact's key, failing on any duplicate.
async fn export(client: &Client, query: Query) -> Result<(Vec<Key>, FetchStats), FetchError> {
    let mut pages = client.contacts(query);
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        for c in page?.contacts().expect("typed view parses") {
            keys.push((c.phone_number, c.list_number));
        }
    }
    Ok((keys, pages.snapshot()))
}

fn truth(mock: &MockServer, list: Option<&str>, active: Option<bool>) -> Vec<Key> {
    let ndjson = mock.ground_truth(list, active);
    ndjson
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_slice(line).expect("ground truth is JSON");
            (
                v["phone_number"].as_str().expect("phone").to_owned(),
                v["list_number"].as_str().expect("list").to_owned(),
            )
        })
        .collect()
}

fn assert_exactly_once(delivered: &[Key], expected: &[Key]) {
    let unique: HashSet<&Key> = delivered.iter().collect();
    assert_eq!(
        unique.len(),
        delivered.len(),
        "a contact was delivered twice"
    );
    let expected: HashSet<&Key> = expected.iter().collect();
    let missing = expected.difference(&unique).count();
    let extra = unique.difference(&expected).count();
    assert_eq!((missing, extra), (0, 0), "missing / unexpected contacts");
}

#[tokio::test]
async fn delivers_every_contact_once_in_server_order() {
    let mock = server(2_345, Faults::default()).await;
    let (keys, stats) = export(&client(&mock, 100, 4), Query::all()).await.unwrap();
    assert_eq!(
        keys,
        truth(&mock, None, None),
        "same contacts in the same order"
    );
    // 24 pages of 100; overlapping windows take a few more, and a tie of 93 contacts at the
    // top (one import) is wider than their overlap: one repair read proves it. Two more
    // requests count the active and the inactive contacts which add up.
    assert_eq!(stats.pages + 2, stats.requests);
    assert!(stats.requests <= 32, "{stats:?}");
    let parts = stats
        .reconciliation
        .as_ref()
        .unwrap()
        .parts
        .clone()
        .unwrap();
    assert!(parts.held, "{parts:?}");
    assert_eq!(parts.active + parts.inactive, 2_345);
    assert_eq!(stats.contacts, 2_345);
    assert_eq!(stats.expected_pages, 24);
    assert_eq!(stats.retries.total(), 0);
    assert!(stats.drift_events.is_empty());
    assert!(stats.wire_bytes > 0);
    // The mock compresses nothing unless told to.
    assert_eq!(stats.body_bytes, stats.wire_bytes);
}

#[tokio::test]
async fn filters_by_list_and_status() {
    let mock = server(3_000, Faults::default()).await;
    let list = mock.ground_truth(None, None);
    let first: serde_json::Value =
        serde_json::from_slice(list.split(|&b| b == b'\n').next().unwrap()).unwrap();
    let list_number = first["list_number"].as_str().unwrap().to_owned();
    let query = Query::all()
        .with_list_number(list_number.parse().unwrap())
        .with_active(false);
    let (keys, _) = export(&client(&mock, 50, 8), query).await.unwrap();
    let expected = truth(&mock, Some(&list_number), Some(false));
    assert!(!expected.is_empty());
    assert_eq!(keys, expected);
    assert!(keys.iter().all(|(_, l)| *l == list_number));
}

#[tokio::test]
async fn an_empty_result_is_one_empty_page() {
    let mock = server(500, Faults::default()).await;
    let query = Query::all().with_list_number("+19995550000".parse().unwrap());
    let (keys, stats) = export(&client(&mock, 1000, 8), query).await.unwrap();
    assert!(keys.is_empty());
    // The page, and the count of its active and inactive contacts (none either).
    assert_eq!(
        (stats.pages, stats.expected_pages, stats.requests),
        (1, 0, 3)
    );
}

#[tokio::test]
async fn a_single_page_needs_a_single_read_of_the_listing() {
    let mock = server(700, Faults::default()).await;
    let (keys, stats) = export(&client(&mock, 1000, 8), Query::all()).await.unwrap();
    assert_eq!(keys.len(), 700);
    // One read of the listing, and the count of its parts: one contact of the active and one of the
    // inactive, for their totals.
    assert_eq!(stats.requests, 3);
    let parts = stats.reconciliation.unwrap().parts.unwrap();
    assert!(parts.held && parts.rounds == 0, "{parts:?}");
    // Filtered by status, a listing has no parts to count.
    let (keys, stats) = export(&client(&mock, 1000, 8), Query::all().with_active(false))
        .await
        .unwrap();
    assert!(!keys.is_empty());
    assert_eq!(stats.requests, 1);
    assert_eq!(stats.reconciliation.unwrap().parts, None);
}

#[tokio::test]
async fn a_rejected_key_fails_at_once_without_retries() {
    let mock = server(100, Faults::default()).await;
    let client = Client::builder()
        .with_base_url(mock.url())
        .with_api_key(ApiKey::new("trk_wrong_key_0042"))
        .build()
        .unwrap();
    let err = export(&client, Query::all()).await.unwrap_err();
    assert!(err.is_auth(), "{err}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains("trk_wrong_key_0042"), "{text}");
    assert_eq!(mock.stats().requests, 1);
}

#[tokio::test]
async fn every_fault_kind_mixed_still_delivers_the_exact_set() {
    let faults = Faults {
        p_500: 0.08,
        p_502: 0.06,
        p_503: 0.06,
        p_truncate: 0.05,
        p_reset: 0.05,
        p_slow: 0.02,
        slow_body: Duration::from_secs(4),
        latency: Duration::from_millis(1),
        latency_jitter: Duration::from_millis(3),
        fault_seed: 3,
        ..Faults::default()
    };
    let mock = server(12_000, faults).await;
    let (keys, stats) = export(&client(&mock, 250, 8), Query::all()).await.unwrap();
    assert_exactly_once(&keys, &truth(&mock, None, None));
    let r = &stats.retries;
    assert!(
        r.server_error > 0 && r.invalid_body > 0 && r.connection + r.timeout > 0,
        "{r:?}"
    );
}

#[tokio::test]
async fn a_rate_limit_is_honoured_and_the_set_is_exact() {
    let faults = Faults {
        rate_limit_rps: Some(50),
        ..Faults::default()
    };
    let mock = server(6_000, faults).await;
    let (keys, stats) = export(&client(&mock, 25, 16), Query::all()).await.unwrap();
    assert_exactly_once(&keys, &truth(&mock, None, None));
    assert!(stats.retries.rate_limited > 0, "{stats:?}");
    // The adaptive limit stops the storm: most requests are answered, not refused.
    assert!(stats.retries.rate_limited * 3 < stats.requests, "{stats:?}");
}

#[tokio::test]
async fn an_api_that_never_recovers_fails_naming_the_page_and_attempts() {
    let mock = server(3_000, Faults::default()).await;
    let client = Client::builder()
        .with_base_url(mock.url())
        .with_api_key(ApiKey::new(mock.api_key()))
        .with_per_page(1000)
        .with_retry(RetryConfig {
            max_attempts: 3,
            ..fast_retries()
        })
        .build()
        .unwrap();
    let mut pages = client.contacts(Query::all());
    let first = pages.next().await.unwrap().unwrap();
    assert_eq!(first.number(), 1);
    mock.set_faults(Faults {
        p_502: 1.0,
        ..Faults::default()
    });
    let mut error = None;
    while let Some(page) = pages.next().await {
        if let Err(e) = page {
            error = Some(e);
            break;
        }
    }
    let error = error.expect("the run fails");
    let text = error.to_string();
    assert!(
        matches!(error, FetchError::RetriesExhausted { attempts: 3, .. }),
        "{text}"
    );
    // The last failure keeps its type, as the error's source.
    let last = std::error::Error::source(&error).expect("the last failure is the source");
    assert!(
        matches!(
            last.downcast_ref::<trackly_fetcher::AttemptError>(),
            Some(trackly_fetcher::AttemptError::Status { status: 502, .. })
        ),
        "{last:?}"
    );
    assert!(
        text.contains("page 2") && text.contains("502") && text.contains("/v2/contacts?"),
        "{text}"
    );
}

#[tokio::test]
async fn slow_bodies_past_the_timeout_are_retried() {
    let faults = Faults {
        p_slow: 0.3,
        slow_body: Duration::from_secs(5),
        fault_seed: 9,
        ..Faults::default()
    };
    let mock = server(2_000, faults).await;
    let client = Client::builder()
        .with_base_url(mock.url())
        .with_api_key(ApiKey::new(mock.api_key()))
        .with_per_page(50)
        .with_retry(fast_retries())
        .with_request_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let (keys, stats) = export(&client, Query::all()).await.unwrap();
    assert_exactly_once(&keys, &truth(&mock, None, None));
    assert!(stats.retries.timeout > 0, "{stats:?}");
}

/// Contacts present from the start to the end of the run must each arrive exactly once.
async fn drift_case(drift: Vec<Drift>, concurrency: usize) -> FetchStats {
    let faults = Faults {
        drift,
        latency: Duration::from_millis(2),
        ..Faults::default()
    };
    let mock = server(20_000, faults).await;
    let before: HashSet<Key> = truth(&mock, None, None).into_iter().collect();
    let (keys, stats) = export(&client(&mock, 500, concurrency), Query::all())
        .await
        .unwrap();
    let after: HashSet<Key> = truth(&mock, None, None).into_iter().collect();
    let unique: HashSet<&Key> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "a contact was delivered twice");
    let survivors: Vec<&Key> = before.intersection(&after).collect();
    let missing: Vec<&&Key> = survivors.iter().filter(|k| !unique.contains(**k)).collect();
    assert!(
        missing.is_empty(),
        "{} survivors missing: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // Nothing invented: every contact delivered existed at some point.
    assert!(keys.iter().all(|k| before.contains(k) || after.contains(k)));
    stats
}

#[tokio::test]
async fn inserts_during_the_run_cause_no_duplicates_and_no_loss() {
    let stats = drift_case(
        vec![
            Drift {
                after_request: 3,
                kind: DriftKind::Insert(700),
            },
            Drift {
                after_request: 15,
                kind: DriftKind::Insert(120),
            },
            Drift {
                after_request: 30,
                kind: DriftKind::Insert(5),
            },
        ],
        4,
    )
    .await;
    assert!(!stats.drift_events.is_empty(), "{stats:?}");
    assert!(stats.duplicates_dropped > 0, "{stats:?}");
}

#[tokio::test]
async fn deletes_during_the_run_skip_nothing() {
    let stats = drift_case(
        vec![
            Drift {
                after_request: 2,
                kind: DriftKind::Delete(300),
            },
            Drift {
                after_request: 12,
                kind: DriftKind::Delete(900),
            },
            Drift {
                after_request: 33,
                kind: DriftKind::Delete(40),
            },
        ],
        4,
    )
    .await;
    // Deletions above made windows skip contacts; repairs found them.
    assert!(
        stats.drift_events.iter().any(|e| e.contacts_recovered > 0),
        "{stats:?}"
    );
}

#[tokio::test]
async fn mixed_drift_at_high_concurrency_is_exact() {
    drift_case(
        vec![
            Drift {
                after_request: 5,
                kind: DriftKind::Insert(250),
            },
            Drift {
                after_request: 9,
                kind: DriftKind::Delete(600),
            },
            Drift {
                after_request: 20,
                kind: DriftKind::Delete(10),
            },
            Drift {
                after_request: 26,
                kind: DriftKind::Insert(1500),
            },
        ],
        16,
    )
    .await;
}

/// A run stopped after main page 40 of 100 resumes where its proof stood: the first request
/// of the resumed run is the frontier's page, not page 1 and not a page stepped back from 40,
/// and the two runs together deliver every contact exactly once.
#[tokio::test]
async fn a_resumed_run_starts_at_the_page_of_its_frontier() {
    let mock = server(10_050, Faults::default()).await;
    let client = client(&mock, 100, 4);
    let mut pages = client.contacts(Query::all());
    let (mut written, mut frontier) = (Vec::new(), None);
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        if page.pass() == trackly_contacts::Pass::Main && page.number() == 40 {
            break;
        }
        frontier = page.frontier();
        for c in page.contacts().unwrap() {
            written.push((c.phone_number, c.list_number));
        }
    }
    drop(pages);
    let frontier = frontier.expect("the proof has a frontier by page 40");
    assert!(
        (20..40).contains(&frontier.page),
        "the proof keeps up with the main pass: {frontier:?}"
    );
    let from = trackly_fetcher::ResumeFrom {
        point: trackly_fetcher::ResumePoint {
            page: 40,
            total: 10_050,
            frontier: Some(frontier),
        },
        delivered: written.clone(),
    };
    let mut resumed = client.contacts_with_stats(
        Query::all(),
        Some(from),
        trackly_fetcher::StatsHandle::default(),
    );
    while let Some(page) = resumed.next().await {
        for c in page.unwrap().contacts().unwrap() {
            written.push((c.phone_number, c.list_number));
        }
    }
    let stats = resumed.snapshot();
    assert_exactly_once(&written, &truth(&mock, None, None));
    // Windows from the frontier's page to the end (overlapping windows of at most 100 take
    // up to a fifth more), nothing before.
    let pages = 101 - frontier.page + 1;
    let main = stats.pages - stats.verification_reads - stats.extra_pages;
    assert!(
        main >= pages && main <= pages * 6 / 5 + 1,
        "{main} windows for {pages} pages: {stats:?}"
    );
}
