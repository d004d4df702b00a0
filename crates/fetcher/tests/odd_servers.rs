//! Servers that misbehave in ways the mock does not: pagination blocks that lie (`total_pages`
//! far above the data, a silently capped page size) and redirect loops. The run must end with
//! every contact once after a handful of requests, or with an error that says what happened.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use trackly_fetcher::{ApiKey, Client, Query};

/// A loopback HTTP server answering `?page=N&per_page=M` with `200` and `body(N, M)`; counts
/// requests.
fn server(body: impl Fn(u64, u64) -> String + Send + Sync + 'static) -> (String, Arc<AtomicU64>) {
    raw_server(move |page, per_page| {
        let text = body(page, per_page);
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        )
    })
}

/// A loopback HTTP server answering `?page=N&per_page=M` with the whole response `answer(N, M)`.
fn raw_server(
    answer: impl Fn(u64, u64) -> String + Send + Sync + 'static,
) -> (String, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&requests);
    let body = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (body, count) = (Arc::clone(&body), Arc::clone(&count));
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                while reader.read_line(&mut String::new()).unwrap() > 2 {}
                let param = |name: &str| -> Option<u64> {
                    line.split(['?', '&', ' '])
                        .find_map(|kv| kv.strip_prefix(name))
                        .and_then(|p| p.parse().ok())
                };
                let (page, per_page) = (
                    param("page=").unwrap_or(1),
                    param("per_page=").unwrap_or(50),
                );
                count.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(body(page, per_page).as_bytes());
            });
        }
    });
    (url, requests)
}

/// Contact `i` of a listing sorted newest first: one second older than contact `i - 1`.
fn contact(i: u64) -> String {
    let signup = chrono::DateTime::from_timestamp(1_750_000_000 - i as i64, 0)
        .unwrap()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S");
    format!(
        r#"{{"phone_number":"+1415555{i:04}","list_number":"+18005551234","list_id":1,"active":true,"signup_date":"{signup}"}}"#
    )
}

/// Contacts `start..end`, joined.
fn contacts(start: u64, end: u64) -> String {
    (start..end).map(contact).collect::<Vec<_>>().join(",")
}

/// 250 contacts in pages of up to 100, with the given `total` and `total_pages` on every page.
fn lying(total: u64, total_pages: u64) -> impl Fn(u64, u64) -> String {
    move |page, per_page| {
        let per_page = per_page.min(100);
        let start = ((page - 1) * per_page).min(250);
        format!(
            r#"{{"contacts":[{}],"pagination":{{"page":{page},"per_page":{per_page},"total":{total},"total_pages":{total_pages}}}}}"#,
            contacts(start, (start + per_page).min(250))
        )
    }
}

#[tokio::test]
async fn a_total_pages_far_above_the_data_ends_at_the_first_short_page() {
    for (total, total_pages) in [(250, 1_000_000_000_000_000), (250, u64::MAX), (250, 1)] {
        let (url, requests) = server(lying(total, total_pages));
        let client = Client::builder()
            .with_base_url(url)
            .with_api_key(ApiKey::new("k"))
            .with_per_page(100)
            .with_concurrency(4)
            .build()
            .unwrap();
        let mut pages = client.contacts(Query::all());
        let mut keys = std::collections::HashSet::new();
        let mut delivered = 0;
        while let Some(page) = pages.next().await {
            for c in page.unwrap().contacts().unwrap() {
                keys.insert(c.phone_number);
                delivered += 1;
            }
        }
        assert_eq!((keys.len(), delivered), (250, 250), "{total}/{total_pages}");
        // Pages 1-3, the empty page 4, what was in flight when the end was seen, and a
        // verification read of each of the two boundaries.
        assert!(
            requests.load(Ordering::SeqCst) <= 3 + 1 + 4 + 2,
            "{total}/{total_pages}: {} requests",
            requests.load(Ordering::SeqCst)
        );
    }
}

#[tokio::test]
async fn a_total_above_the_data_fails_loudly_instead_of_exporting_short() {
    let (url, _) = server(lying(100_000_000_000_000_000, 1_000_000_000_000_000));
    let client = Client::builder()
        .with_base_url(url)
        .with_api_key(ApiKey::new("k"))
        .with_per_page(100)
        .build()
        .unwrap();
    let mut pages = client.contacts(Query::all());
    let mut error = None;
    while let Some(page) = pages.next().await {
        if let Err(e) = page {
            error = Some(e);
        }
    }
    let error = error.expect("a short export is an error");
    assert!(error.is_incomplete(), "{error}");
    assert!(
        error
            .to_string()
            .contains("99999999999999750 unaccounted for"),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_capping_the_page_size_silently_loses_nothing() {
    // Asked for more than 100 a page, it serves 100 and echoes `per_page: 1000`.
    for (total, total_pages) in [(250, 3), (3_000, 30), (250, 1)] {
        let (url, _) = server(move |page, per_page| {
            let served = per_page.min(100);
            let start = ((page - 1) * served).min(total);
            let reported = if per_page > 100 { 1000 } else { per_page };
            format!(
                r#"{{"contacts":[{}],"pagination":{{"page":{page},"per_page":{reported},"total":{total},"total_pages":{total_pages}}}}}"#,
                contacts(start, (start + served).min(total))
            )
        });
        let client = Client::builder()
            .with_base_url(url)
            .with_api_key(ApiKey::new("k"))
            .with_concurrency(4)
            .build()
            .unwrap();
        let mut pages = client.contacts(Query::all());
        let mut keys = std::collections::HashSet::new();
        let mut delivered = 0;
        while let Some(page) = pages.next().await {
            for c in page.unwrap().contacts().unwrap() {
                keys.insert(c.phone_number);
                delivered += 1;
            }
        }
        assert_eq!(
            (keys.len() as u64, delivered),
            (total, total),
            "{total}/{total_pages}"
        );
    }
}

#[tokio::test]
async fn a_redirect_loop_on_the_same_origin_is_called_what_it_is() {
    for location in [Some("/api/v2/contacts?page=1&per_page=1000"), None] {
        let (url, requests) = raw_server(move |_, _| match location {
            Some(to) => format!(
                "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            ),
            None => "HTTP/1.1 302 Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into(),
        });
        let client = Client::builder()
            .with_base_url(url)
            .with_api_key(ApiKey::new("k"))
            .build()
            .unwrap();
        let err = client
            .first_page(&Query::all())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HTTP 302") && err.contains("cannot be followed"),
            "{location:?}: {err}"
        );
        assert!(!err.contains("another origin"), "{err}");
        // Followed up to the redirect limit, never retried.
        let expected = if location.is_some() { 5 } else { 1 };
        assert_eq!(requests.load(Ordering::SeqCst), expected, "{location:?}");
    }
}

#[tokio::test]
async fn a_server_ignoring_the_page_parameter_is_reported_not_paged_forever() {
    // Every page number gets page 1's contacts, with the page number echoed and a huge plan.
    let (url, requests) = server(|page, _| {
        format!(
            r#"{{"contacts":[{}],"pagination":{{"page":{page},"per_page":100,"total":100000000,"total_pages":1000000}}}}"#,
            contacts(0, 100)
        )
    });
    let client = Client::builder()
        .with_base_url(url)
        .with_api_key(ApiKey::new("k"))
        .with_per_page(100)
        .with_concurrency(2)
        .build()
        .unwrap();
    let mut pages = client.contacts(Query::all());
    let mut error = None;
    while let Some(page) = pages.next().await {
        if let Err(e) = page {
            error = Some(e);
            break;
        }
    }
    let error = error.expect("the run fails").to_string();
    assert!(error.contains("page parameter"), "{error}");
    assert!(requests.load(Ordering::SeqCst) < 10);
}
