//! Helpers shared by the fetcher's tests against the real mock server on loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use trackly_fetcher::{ApiKey, BackoffConfig, Client, ClientBuilder, RetryConfig};
use trackly_mock::{DatasetConfig, Faults, MockConfig, MockServer};

/// The mock with `contacts` contacts generated from `seed`, on 3 lists, under `faults`.
pub async fn mock(seed: u64, contacts: usize, faults: Faults) -> MockServer {
    mock_with(dataset(seed, contacts), faults).await
}

/// The data set of [`mock`]: `contacts` contacts generated from `seed`, on 3 lists.
pub fn dataset(seed: u64, contacts: usize) -> DatasetConfig {
    DatasetConfig {
        seed,
        contacts,
        lists: 3,
        ..DatasetConfig::default()
    }
}

/// The mock over the data set `dataset` under `faults`.
pub async fn mock_with(dataset: DatasetConfig, faults: Faults) -> MockServer {
    MockServer::start(MockConfig {
        dataset,
        faults,
        ..MockConfig::default()
    })
    .await
    .expect("mock server starts")
}

/// Retries that wait milliseconds, not seconds, so fault tests stay quick.
pub fn fast_retries() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(100),
            base: 2.0,
        },
        max_attempts: 30,
        retry_timeout: Duration::from_secs(60),
    }
}

/// A client of `mock` with the given page size and concurrency, and fast retries.
pub fn client_builder(mock: &MockServer, per_page: u32, concurrency: usize) -> ClientBuilder {
    Client::builder()
        .with_base_url(mock.url())
        .with_api_key(ApiKey::new(mock.api_key()))
        .with_per_page(per_page)
        .with_concurrency(concurrency)
        .with_retry(fast_retries())
}
