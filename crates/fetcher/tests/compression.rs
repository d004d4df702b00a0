//! Compression on the wire: the client asks for compressed bodies, decodes every coding the
//! mock sends as the chunks arrive, counts wire and decoded bytes apart, and retries a
//! compressed body that arrives cut or damaged like any other invalid body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use trackly_fetcher::{ApiKey, Client, ClientBuilder, FetchError, FetchStats, Query};
use trackly_mock::{ContentCoding, DatasetConfig, Faults, MockConfig, MockServer};

mod support;

type Key = (String, String);

/// The mock with `contacts` contacts, answering in `compression` when asked.
async fn mock(contacts: usize, compression: Vec<ContentCoding>, faults: Faults) -> MockServer {
    MockServer::start(MockConfig {
        dataset: DatasetConfig {
            seed: 23,
            contacts,
            lists: 3,
            ..DatasetConfig::default()
        },
        faults,
        compression,
        ..MockConfig::default()
    })
    .await
    .expect("mock server starts")
}

fn client(mock: &MockServer) -> ClientBuilder {
    support::client_builder(mock, 200, 4).with_request_timeout(Duration::from_secs(5))
}

/// Every contact's key, in delivery order, and the statistics.
async fn export(client: &Client) -> Result<(Vec<Key>, FetchStats), FetchError> {
    let mut pages = client.contacts(Query::all());
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        for c in page?.contacts().expect("typed view parses") {
            keys.push((c.phone_number, c.list_number));
        }
    }
    Ok((keys, pages.snapshot()))
}

fn truth(mock: &MockServer) -> Vec<Key> {
    mock.ground_truth(None, None)
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            (
                v["phone_number"].as_str().unwrap().to_owned(),
                v["list_number"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_coding_round_trips_and_costs_fewer_bytes_on_the_wire() {
    for coding in ContentCoding::ALL {
        let server = mock(1_500, vec![coding], Faults::default()).await;
        let (keys, stats) = export(&client(&server).build().unwrap()).await.unwrap();
        assert_eq!(
            keys,
            truth(&server),
            "{coding}: the same contacts, in order"
        );
        // Every answer came in the coding, and counted as such.
        assert_eq!(
            stats.responses_by_encoding.get(coding.token()),
            Some(&stats.requests),
            "{coding}: {:?}",
            stats.responses_by_encoding
        );
        assert_eq!(stats.responses_by_encoding.len(), 1);
        // JSON compresses several times over; the mock sent exactly what arrived.
        assert!(
            stats.wire_bytes * 3 < stats.body_bytes,
            "{coding}: {} bytes on the wire for {} decoded",
            stats.wire_bytes,
            stats.body_bytes
        );
        assert_eq!(stats.wire_bytes, server.stats().bytes_served, "{coding}");
        assert!(stats.compression_ratio().unwrap() > 3.0);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn the_same_export_uncompressed_has_the_same_decoded_bytes() {
    let server = mock(1_000, ContentCoding::ALL.to_vec(), Faults::default()).await;
    let (compressed_keys, compressed) = export(&client(&server).build().unwrap()).await.unwrap();
    let (plain_keys, plain) = export(
        &client(&server)
            .with_http_compression(false)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(compressed_keys, plain_keys);
    // The client prefers brotli; the mock offers it.
    assert_eq!(
        compressed.responses_by_encoding.keys().collect::<Vec<_>>(),
        ["br"]
    );
    assert_eq!(
        plain.responses_by_encoding.keys().collect::<Vec<_>>(),
        ["identity"]
    );
    assert_eq!(plain.wire_bytes, plain.body_bytes);
    assert_eq!(compressed.body_bytes, plain.body_bytes, "the same JSON");
    assert!(compressed.wire_bytes * 3 < plain.wire_bytes);
}

#[tokio::test]
async fn cut_and_dropped_compressed_bodies_are_retried_until_whole() {
    for coding in ContentCoding::ALL {
        let faults = Faults {
            p_truncate: 0.25,
            p_reset: 0.15,
            fault_seed: 9,
            ..Faults::default()
        };
        let server = mock(2_000, vec![coding], faults).await;
        let (keys, stats) = export(&client(&server).build().unwrap()).await.unwrap();
        assert_eq!(keys, truth(&server), "{coding}");
        let mock_stats = server.stats();
        assert!(
            mock_stats.truncated > 0 && mock_stats.resets > 0,
            "{coding}: faults fired"
        );
        // A cut compressed stream is an invalid body; a dropped connection a connection error.
        assert_eq!(stats.retries.invalid_body, mock_stats.truncated, "{coding}");
        assert_eq!(stats.retries.connection, mock_stats.resets, "{coding}");
        // Failed attempts count on the wire too: every byte the mock sent arrived.
        assert_eq!(stats.wire_bytes, mock_stats.bytes_served, "{coding}");
        server.shutdown().await;
    }
}

/// One request as the raw server saw it: its `Accept-Encoding` header, if any.
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// A loopback HTTP server answering every request with `head` (status line and headers, no
/// `content-length`) and `body`; records each request's `Accept-Encoding`.
fn raw_server(head: &'static str, body: Vec<u8>) -> (String, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let body = Arc::new(body);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (log, body) = (Arc::clone(&log), Arc::clone(&body));
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut accept = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) <= 2 {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("accept-encoding")
                    {
                        accept = Some(value.trim().to_owned());
                    }
                }
                log.lock().unwrap().push(accept);
                let head = format!(
                    "{head}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    (url, seen)
}

fn one_page() -> Vec<u8> {
    br#"{"contacts":[{"phone_number":"+14155550001","list_number":"+18005551234","active":true,"signup_date":"2025-01-01T00:00:00"}],"pagination":{"page":1,"per_page":1000,"total":1,"total_pages":1}}"#.to_vec()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// What the client says when page 1 from `url` fails.
async fn first_page_error(url: &str) -> String {
    let client = raw_client(url).build().unwrap();
    client
        .first_page(&Query::all())
        .await
        .unwrap_err()
        .to_string()
}

fn raw_client(url: &str) -> ClientBuilder {
    Client::builder()
        .with_base_url(url)
        .with_api_key(ApiKey::new("trk_test"))
        .with_retry(trackly_fetcher::RetryConfig {
            max_attempts: 2,
            ..support::fast_retries()
        })
}

#[tokio::test]
async fn compression_off_asks_for_identity_yet_decodes_what_comes_compressed() {
    let page = one_page();
    let (url, seen) = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip",
        gzip(&page),
    );
    let on = raw_client(&url).build().unwrap();
    let first = on.first_page(&Query::all()).await.unwrap();
    assert_eq!(first.pagination().total, Some(1));
    let off = raw_client(&url)
        .with_http_compression(false)
        .build()
        .unwrap();
    // A server may compress unasked (some proxies do): the body is decoded all the same.
    let first = off.first_page(&Query::all()).await.unwrap();
    assert_eq!(first.contacts().unwrap().len(), 1);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            Some("br, zstd;q=0.9, gzip;q=0.8".to_owned()),
            Some("identity".to_owned())
        ]
    );
}

#[tokio::test]
async fn an_unsupported_coding_is_named_in_the_error() {
    let (url, seen) = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: compress",
        b"\x1f\x9d\x90{".to_vec(),
    );
    let text = first_page_error(&url).await;
    assert!(text.contains("Content-Encoding \"compress\""), "{text}");
    assert_eq!(seen.lock().unwrap().len(), 2, "retried as an invalid body");
}

#[tokio::test]
async fn a_damaged_compressed_body_is_an_invalid_body_saying_which_coding() {
    let mut body = gzip(&one_page());
    let at = body.len() / 2;
    body[at] ^= 0xff;
    body[at + 1] ^= 0xff;
    let (url, _) = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip",
        body,
    );
    let text = first_page_error(&url).await;
    assert!(text.contains("gzip body is corrupt"), "{text}");
}
