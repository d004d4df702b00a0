//! Servers that misbehave in ways the mock does not: pagination blocks that lie (`total_pages`
//! far above the data, a silently capped page size) and redirect loops. The run must end with
//! every contact once after a handful of requests, or with an error that says what happened.
//! And the backends of issue 21, each in a few dozen lines: a cap that echoes the asked size,
//! Django's `get_page()` past the end, a search index capped at 10 000 hits, refused page
//! sizes, a sort coarser than the values shown and a `total` that is not a number: exact, or
//! [`FetchError::is_incomplete`], never a short success.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use trackly_fetcher::{ApiKey, Client, FetchError, Query};

mod support;

/// A loopback HTTP server answering `?page=N&per_page=M` with `200` and `body(N, M)`; counts
/// requests.
fn server(body: impl Fn(u64, u64) -> String + Send + Sync + 'static) -> (String, Arc<AtomicU64>) {
    answering(move |page, per_page| (200, body(page, per_page)))
}

/// A loopback HTTP server answering `?page=N&per_page=M` with the JSON body of
/// `answer(N, M) = (status, body)`; counts requests.
fn answering(
    answer: impl Fn(u64, u64) -> (u16, String) + Send + Sync + 'static,
) -> (String, Arc<AtomicU64>) {
    filtering(move |_, page, per_page| answer(page, per_page))
}

/// A loopback HTTP server answering `?active=A&page=N&per_page=M` with the JSON body of
/// `answer(A, N, M) = (status, body)`; counts requests.
fn filtering(
    answer: impl Fn(Option<bool>, u64, u64) -> (u16, String) + Send + Sync + 'static,
) -> (String, Arc<AtomicU64>) {
    raw_server(move |active, page, per_page| {
        let (status, text) = answer(active, page, per_page);
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        )
    })
}

/// A loopback HTTP server answering `?active=A&page=N&per_page=M` with the whole response
/// `answer(A, N, M)`.
fn raw_server(
    answer: impl Fn(Option<bool>, u64, u64) -> String + Send + Sync + 'static,
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
                let active = line
                    .split(['?', '&', ' '])
                    .find_map(|kv| kv.strip_prefix("active="))
                    .map(|v| v == "true");
                count.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(body(active, page, per_page).as_bytes());
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
        let what = format!("{total}/{total_pages}");
        assert_all([exact(delivered(&client(url, Some(100))).await, 250, &what)]);
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
    let error = delivered(&client(url, Some(100)))
        .await
        .expect_err("a short export is an error");
    assert!(error.is_incomplete(), "{error}");
    assert!(
        error
            .to_string()
            .contains("the answers end at position 250, but the total the API reports"),
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
        let what = format!("{total}/{total_pages}");
        assert_all([exact(delivered(&client(url, None)).await, total, &what)]);
    }
}

#[tokio::test]
async fn a_redirect_loop_on_the_same_origin_is_called_what_it_is() {
    for location in [Some("/api/v2/contacts?page=1&per_page=1000"), None] {
        let (url, requests) = raw_server(move |_, _, _| match location {
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

/// A client of `url` asking `per_page` contacts a page (the default 1000 when `None`), with
/// retries that wait milliseconds.
fn client(url: String, per_page: Option<u32>) -> Client {
    let builder = Client::builder()
        .with_base_url(url)
        .with_api_key(ApiKey::new("k"))
        .with_concurrency(4)
        .with_retry(support::fast_retries());
    match per_page {
        Some(n) => builder.with_per_page(n),
        None => builder,
    }
    .build()
    .unwrap()
}

/// Every contact's phone number, as delivered (duplicates kept), or the error that ended the
/// stream.
async fn delivered(client: &Client) -> Result<Vec<String>, FetchError> {
    let mut pages = client.contacts(Query::all());
    let mut phones = Vec::new();
    while let Some(page) = pages.next().await {
        phones.extend(
            page?
                .contacts()
                .unwrap()
                .into_iter()
                .map(|c| c.phone_number),
        );
    }
    Ok(phones)
}

/// Exactly contacts `0..n`, each once, or an error that says the export is incomplete: never a
/// short (or doubled) success. `Err` says what went wrong.
fn exact_or_loud(
    result: Result<Vec<String>, FetchError>,
    n: u64,
    what: &str,
) -> Result<(), String> {
    match result {
        Ok(phones) => {
            let unique: std::collections::HashSet<_> = phones.iter().collect();
            let got = (unique.len() as u64, phones.len() as u64);
            if got == (n, n) {
                Ok(())
            } else {
                Err(format!(
                    "{what}: a short or doubled success: {got:?} of {n} (distinct, delivered)"
                ))
            }
        }
        Err(e) if e.is_incomplete() => Ok(()),
        Err(e) => Err(format!("{what}: not a loud incompleteness: {e}")),
    }
}

/// Exactly contacts `0..n`, each once.
fn exact(result: Result<Vec<String>, FetchError>, n: u64, what: &str) -> Result<(), String> {
    match result {
        Ok(phones) => exact_or_loud(Ok(phones), n, what),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// Fails with every variant that went wrong (each variant is run, so one report lists them all).
fn assert_all(outcomes: impl IntoIterator<Item = Result<(), String>>) {
    let failed: Vec<String> = outcomes.into_iter().filter_map(Result::err).collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The `pagination` block `{page, per_page, total, total_pages}`, `total_pages` from `per_page`.
fn pagination(page: u64, per_page: u64, total: u64) -> String {
    format!(
        r#"{{"page":{page},"per_page":{per_page},"total":{total},"total_pages":{}}}"#,
        total.div_ceil(per_page)
    )
}

/// `200` with window `page` of `per_page` over contacts `0..total`, served whole.
fn whole_window(page: u64, per_page: u64, total: u64) -> (u16, String) {
    let start = (page - 1) * per_page;
    let pagination = pagination(page, per_page, total);
    (200, page_of(start, start + per_page, total, &pagination))
}

/// A page of contacts `start..end` (cut to `total`) with `pagination`.
fn page_of(start: u64, end: u64, total: u64, pagination: &str) -> String {
    let (start, end) = (start.min(total), end.min(total));
    format!(
        r#"{{"contacts":[{}],"pagination":{pagination}}}"#,
        contacts(start, end)
    )
}

#[tokio::test]
async fn a_cap_echoing_the_asked_size_while_serving_fewer_is_exact_or_loud() {
    // 3 000 contacts, at most 100 a page (the offset from the capped size), while the
    // pagination block says the asked size and the `total_pages` that size would give.
    let total = 3_000;
    let (url, _) = server(move |page, per_page| {
        let served = per_page.min(100);
        let start = (page - 1) * served;
        page_of(
            start,
            start + served,
            total,
            &pagination(page, per_page, total),
        )
    });
    assert_all([exact(
        delivered(&client(url, None)).await,
        total,
        "echoed cap",
    )]);
}

#[tokio::test]
async fn django_get_page_answering_the_last_page_past_the_end_is_exact() {
    // `Paginator.get_page(n)` for `n` past the end answers the last page, numbered as such.
    let mut outcomes = Vec::new();
    for total in [2_500u64, 2_000] {
        let (url, _) = server(move |page, per_page| {
            let last = total.div_ceil(per_page).max(1);
            let page = page.min(last);
            let start = (page - 1) * per_page;
            page_of(
                start,
                start + per_page,
                total,
                &pagination(page, per_page, total),
            )
        });
        let what = format!("{total} contacts");
        outcomes.push(exact(
            delivered(&client(url, Some(100))).await,
            total,
            &what,
        ));
    }
    assert_all(outcomes);
}

/// A search index over 12 000 contacts (every fourth inactive) that counts and pages only the
/// first 10 000 hits of each search: a window beyond is clamped (`refuse` false) or refused
/// with a 400. With `active`, the search is of that status only (9 000 active, 3 000 inactive:
/// each within the window), so its parts add up to more than the capped whole.
fn search_index(refuse: bool) -> impl Fn(Option<bool>, u64, u64) -> (u16, String) {
    const MAX_WINDOW: u64 = 10_000;
    const CONTACTS: u64 = 12_000;
    let inactive = |i: u64| i % 4 == 3;
    move |active, page, per_page| {
        let start = (page - 1) * per_page;
        if refuse && start + per_page > MAX_WINDOW {
            let error =
                r#"{"error":"Result window is too large","code":"result_window_too_large"}"#;
            return (400, error.to_owned());
        }
        let hits: Vec<u64> = (0..CONTACTS)
            .filter(|&i| active.is_none_or(|a| a != inactive(i)))
            .collect();
        let counted = (hits.len() as u64).min(MAX_WINDOW);
        let end = (start + per_page).min(counted);
        let served: Vec<String> = hits[start.min(end) as usize..end as usize]
            .iter()
            .map(|&i| {
                contact(i).replace(r#""active":true"#, &format!(r#""active":{}"#, !inactive(i)))
            })
            .collect();
        let body = format!(
            r#"{{"contacts":[{}],"pagination":{}}}"#,
            served.join(","),
            pagination(page, per_page, counted)
        );
        (200, body)
    }
}

#[tokio::test]
async fn a_search_index_capped_at_10000_is_never_a_short_success() {
    let mut outcomes = Vec::new();
    for refuse in [true, false] {
        let (url, _) = filtering(search_index(refuse));
        let result = delivered(&client(url, Some(500))).await;
        let what = if refuse { "refused" } else { "clamped" };
        if !refuse {
            // The clamped whole looks like a listing of 10 000; its parts count 12 000.
            let error = result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            if !error
                .contains("counts 9000 active and 3000 inactive contacts, 2000 more than the 10000")
            {
                outcomes.push(Err(format!("clamped: not the parts' failure: {error}")));
            }
        }
        // 12 000 contacts exist and only 10 000 can be read: exact is impossible, only loud.
        outcomes.push(exact_or_loud(result, 12_000, what));
    }
    assert_all(outcomes);
}

#[tokio::test]
async fn parts_the_api_cannot_count_leave_an_exact_run_alone() {
    // 1 234 contacts, all active; the API ignores the `active` filter (serving the whole
    // listing to both parts), or refuses it with a 400.
    let mut outcomes = Vec::new();
    for refuse_filter in [false, true] {
        let (url, requests) = filtering(move |active, page, per_page| {
            if refuse_filter && active.is_some() {
                return (400, r#"{"error":"Unknown parameter 'active'"}"#.to_owned());
            }
            whole_window(page, per_page, 1_234)
        });
        let client = client(url, Some(500));
        let mut pages = client.contacts(Query::all());
        let mut phones = Vec::new();
        let mut failed = None;
        while let Some(page) = pages.next().await {
            match page {
                Ok(page) => {
                    phones.extend(page.contacts().unwrap().into_iter().map(|c| c.phone_number))
                }
                Err(e) => failed = Some(e),
            }
        }
        let what = if refuse_filter {
            "refused filter"
        } else {
            "ignored filter"
        };
        outcomes.push(exact(failed.map_or(Ok(phones), Err), 1_234, what));
        let parts = pages.snapshot().reconciliation.and_then(|r| r.parts);
        let skipped = parts
            .as_ref()
            .and_then(|c| c.skipped.clone())
            .unwrap_or_default();
        let expected = if refuse_filter {
            "refused the active filter"
        } else {
            "ignores the active filter"
        };
        if !skipped.contains(expected) {
            outcomes.push(Err(format!("{what}: parts {parts:?}")));
        }
        // Three windows of the listing, two reads of its parts (and their retries at a served size
        // when refused).
        let n = requests.load(Ordering::SeqCst);
        if n > 3 + 4 {
            outcomes.push(Err(format!("{what}: {n} requests")));
        }
    }
    assert_all(outcomes);
}

#[tokio::test]
async fn page_sizes_the_api_refuses_are_replaced_by_one_it_accepts() {
    let mut outcomes = Vec::new();
    for accepted in [
        &[10u64, 25, 50, 100][..],
        &(1..=500).collect::<Vec<_>>()[..],
    ] {
        let accepted = accepted.to_vec();
        let max = accepted.iter().max().copied().unwrap_or(0);
        let (url, _) = answering(move |page, per_page| {
            if !accepted.contains(&per_page) {
                let error =
                    r#"{"error":"Invalid value for 'per_page'","code":"invalid_parameter"}"#;
                return (400, error.to_owned());
            }
            whole_window(page, per_page, 1_234)
        });
        let what = format!("at most {max}");
        outcomes.push(exact(delivered(&client(url, None)).await, 1_234, &what));
    }
    assert_all(outcomes);
}

/// Contact `i` of a listing of bursts of five a second, with microseconds, ordered by the second
/// only: inside a second the fractions come in an arbitrary (but fixed) order.
fn coarse_contact(i: u64) -> String {
    let second = 1_750_000_000 - (i / 5) as i64;
    // A fixed permutation of the five fractions inside the second.
    let micros = [700_001, 100_002, 900_003, 300_004, 500_005][(i % 5) as usize];
    let signup = chrono::DateTime::from_timestamp(second, micros * 1_000)
        .unwrap()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f");
    format!(
        r#"{{"phone_number":"+1415555{i:04}","list_number":"+18005551234","list_id":1,"active":true,"signup_date":"{signup}"}}"#
    )
}

#[tokio::test]
async fn a_sort_by_the_second_with_fractions_shown_is_exact() {
    let total = 2_000;
    let (url, _) = server(move |page, per_page| {
        let start = ((page - 1) * per_page).min(total);
        let end = (start + per_page).min(total);
        let listed: Vec<String> = (start..end).map(coarse_contact).collect();
        format!(
            r#"{{"contacts":[{}],"pagination":{}}}"#,
            listed.join(","),
            pagination(page, per_page, total)
        )
    });
    let result = delivered(&client(url, Some(100))).await;
    assert_all([exact(result, total, "sorted by the second")]);
}

#[tokio::test]
async fn a_missing_null_or_string_total_does_not_fail_a_provable_run() {
    let mut outcomes = Vec::new();
    for (what, total_fields) in [
        ("missing", ""),
        ("null", r#","total":null,"total_pages":null"#),
        ("a string", r#","total":"1234","total_pages":13"#),
    ] {
        let (url, _) = server(move |page, per_page| {
            let start = (page - 1) * per_page;
            let block = format!(r#"{{"page":{page},"per_page":{per_page}{total_fields}}}"#);
            page_of(start, start + per_page, 1_234, &block)
        });
        outcomes.push(exact(delivered(&client(url, Some(100))).await, 1_234, what));
    }
    assert_all(outcomes);
}
