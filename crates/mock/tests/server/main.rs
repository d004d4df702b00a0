//! `trackly-mock` against real HTTP clients on loopback: documented behaviour, data realism,
//! every fault kind, drift and counters.
#![allow(clippy::unwrap_used)]

mod api;
mod dataset;
mod drift;
mod faults;
mod lists;
mod odd_apis;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use trackly_mock::{DatasetConfig, Faults, MockConfig, MockServer};

/// A server over `contacts` contacts on 3 lists (seed 11).
pub(crate) async fn start(contacts: usize, faults: Faults) -> MockServer {
    start_with(
        DatasetConfig {
            seed: 11,
            contacts,
            lists: 3,
            ..DatasetConfig::default()
        },
        faults,
    )
    .await
}

/// A server over the data set `dataset`.
pub(crate) async fn start_with(dataset: DatasetConfig, faults: Faults) -> MockServer {
    MockServer::start(MockConfig {
        dataset,
        faults,
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

/// A fully read answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        json(&self.body)
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `code` of a documented JSON error body, and the parameter its `error` text names
    /// (`Invalid value for 'page'`).
    pub(crate) fn error(&self) -> (String, Option<String>) {
        let v = self.json();
        let text = v["error"].as_str().unwrap_or_default();
        let parameter = text
            .strip_prefix("Invalid value for '")
            .and_then(|rest| rest.split_once('\''))
            .map(|(name, _)| name.to_owned());
        (v["code"].as_str().unwrap_or_default().to_owned(), parameter)
    }
}

pub(crate) fn json(bytes: &[u8]) -> Value {
    match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(bytes)),
    }
}

thread_local! {
    // Building a client costs tens of milliseconds; each test runs on its own thread and
    // runtime, and a client's pool must not outlive its runtime, so one client per thread.
    static CLIENT: reqwest::Client = reqwest::Client::new();
}

/// This test's HTTP client.
pub(crate) fn client() -> reqwest::Client {
    CLIENT.with(Clone::clone)
}

/// `GET {url}{path}` with the server's key.
pub(crate) async fn get(server: &MockServer, path: &str) -> Answer {
    get_with_key(server, path, Some(server.api_key())).await
}

pub(crate) async fn get_with_key(server: &MockServer, path: &str, key: Option<&str>) -> Answer {
    let mut request = client().get(format!("{}{path}", server.url()));
    if let Some(key) = key {
        request = request.header("X-Api-Key", key);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap(),
    }
}

/// The non-empty lines of an NDJSON body.
pub(crate) fn lines(ndjson: &[u8]) -> Vec<&[u8]> {
    ndjson
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// The page body the server must send for `contacts` (the JSON texts) and the pagination.
pub(crate) fn expected_page(contacts: &[&[u8]], page: u64, per_page: u64, total: u64) -> Vec<u8> {
    let mut out = b"{\"contacts\":[".to_vec();
    out.extend_from_slice(&contacts.join(&b","[..]));
    out.extend_from_slice(
        format!(
            "],\"pagination\":{{\"page\":{page},\"per_page\":{per_page},\"total\":{total},\"total_pages\":{}}}}}",
            total.div_ceil(per_page)
        )
        .as_bytes(),
    );
    out
}
