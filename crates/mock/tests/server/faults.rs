//! Every fault kind, observed from a real client.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use trackly_mock::{Dataset, DatasetConfig, Faults};

use crate::{get, start};

fn page_one(contacts: usize) -> bytes::Bytes {
    Dataset::generate(&DatasetConfig {
        seed: 11,
        contacts,
        lists: 3,
        ..DatasetConfig::default()
    })
    .page_body(None, None, 1, 50)
}

#[tokio::test]
async fn a_tight_rate_limit_answers_429_with_retry_after() {
    let server = start(
        100,
        Faults {
            rate_limit_rps: Some(2),
            ..Faults::default()
        },
    )
    .await;
    let mut limited = 0;
    for _ in 0..8 {
        let a = get(&server, "/v2/contacts").await;
        if a.status == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
            let retry: u64 = a.header("retry-after").unwrap().parse().unwrap();
            assert!(retry >= 1);
            assert_eq!(a.header("content-type"), Some("application/json"));
            assert_eq!(a.error().0, "rate_limited");
            assert!(a.json()["error"].is_string());
        } else {
            assert_eq!(a.status, StatusCode::OK);
        }
    }
    // The bucket holds 2 and refills at 2/s: 8 quick requests cannot all pass.
    assert!(limited >= 1, "{limited}");
    assert_eq!(server.stats().rate_limited, limited);
    assert_eq!(server.stats().by_status.get(&429).copied(), Some(limited));
}

#[tokio::test]
async fn status_faults_answer_500_json_502_html_and_503_with_retry_after() {
    let server = start(
        50,
        Faults {
            p_500: 1.0,
            ..Faults::default()
        },
    )
    .await;
    let a = get(&server, "/v2/contacts").await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.error().0, "internal_error");

    server.set_faults(Faults {
        p_502: 1.0,
        ..Faults::default()
    });
    let a = get(&server, "/v2/contacts").await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY);
    assert_eq!(a.header("content-type"), Some("text/html"));
    let html = String::from_utf8_lossy(&a.body);
    assert!(html.contains("<title>502 Bad Gateway</title>") && html.contains("nginx"));
    assert!(serde_json::from_slice::<serde_json::Value>(&a.body).is_err());

    server.set_faults(Faults {
        p_503: 1.0,
        ..Faults::default()
    });
    let a = get(&server, "/v2/contacts").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(a.error().0, "service_unavailable");

    // Faults never touch the harness endpoints.
    assert_eq!(get(&server, "/_mock/stats").await.status, StatusCode::OK);
    let stats = server.stats();
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.pages_served, 0);
}

#[tokio::test]
async fn a_truncated_body_has_a_matching_length_but_is_invalid_json() {
    let server = start(
        200,
        Faults {
            p_truncate: 1.0,
            ..Faults::default()
        },
    )
    .await;
    let full = page_one(200);
    for _ in 0..5 {
        let a = get(&server, "/v2/contacts").await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(
            a.header("content-length"),
            Some(a.body.len().to_string().as_str())
        );
        assert!(!a.body.is_empty() && a.body.len() < full.len());
        assert!(full.starts_with(&a.body));
        assert!(serde_json::from_slice::<serde_json::Value>(&a.body).is_err());
    }
    let stats = server.stats();
    assert_eq!((stats.truncated, stats.pages_served), (5, 0));
}

#[tokio::test]
async fn a_reset_announces_the_full_length_and_fails_the_body_read() {
    let server = start(
        200,
        Faults {
            p_reset: 1.0,
            ..Faults::default()
        },
    )
    .await;
    let full_len = page_one(200).len();
    for _ in 0..3 {
        let response = crate::client()
            .get(format!("{}/v2/contacts", server.url()))
            .header("X-Api-Key", server.api_key())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.content_length(), Some(full_len as u64));
        assert!(response.bytes().await.is_err());
    }
    assert_eq!(server.stats().resets, 3);
}

#[tokio::test]
async fn a_slow_body_takes_at_least_slow_body_and_arrives_whole() {
    let slow = Duration::from_millis(300);
    let server = start(
        200,
        Faults {
            p_slow: 1.0,
            slow_body: slow,
            ..Faults::default()
        },
    )
    .await;
    let started = Instant::now();
    let a = get(&server, "/v2/contacts").await;
    assert!(started.elapsed() >= slow, "{:?}", started.elapsed());
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body, page_one(200));
    let stats = server.stats();
    assert_eq!((stats.slow, stats.pages_served), (1, 1));
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let latency = Duration::from_millis(150);
    let server = start(
        20,
        Faults {
            latency,
            latency_jitter: Duration::from_millis(20),
            ..Faults::default()
        },
    )
    .await;
    for path in ["/v2/contacts", "/v2/contacts?page=0"] {
        let started = Instant::now();
        get(&server, path).await;
        assert!(
            started.elapsed() >= latency,
            "{path}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn faults_are_reproducible_from_the_fault_seed() {
    let faults = Faults {
        p_500: 0.3,
        p_503: 0.2,
        fault_seed: 42,
        ..Faults::default()
    };
    let server = start(20, faults.clone()).await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        server.set_faults(faults.clone());
        let mut statuses = Vec::new();
        for _ in 0..30 {
            statuses.push(
                get(&server, "/v2/contacts?per_page=5")
                    .await
                    .status
                    .as_u16(),
            );
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    for status in [200, 500, 503] {
        assert!(runs[0].contains(&status), "{status} in {:?}", runs[0]);
    }
}
