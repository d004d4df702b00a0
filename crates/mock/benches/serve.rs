//! Cost of serving a `/v2/contacts` page with `per_page=1000`: rendering the body
//! (`Dataset::page_body`), the full HTTP round trip on loopback, and generating a data set.
//!
//! Run with `cargo bench -p trackly-mock`. Throughput is reported in bytes of body (elements for
//! generation); pages per second is 1 / time per iteration.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use trackly_mock::{Dataset, DatasetConfig, MockConfig, MockServer};

const CONTACTS: usize = 100_000;
const PER_PAGE: u64 = 1000;

fn page_body(c: &mut Criterion) {
    let data = Dataset::generate(&DatasetConfig {
        seed: 7,
        contacts: CONTACTS,
        lists: 4,
        ..DatasetConfig::default()
    });
    let pages = CONTACTS as u64 / PER_PAGE;
    let list = data.list_numbers().into_iter().next();

    let mut group = c.benchmark_group("page_body");
    let bytes = data.page_body(None, None, 1, PER_PAGE).len() as u64;
    group.throughput(Throughput::Bytes(bytes));
    let mut page = 0;
    group.bench_function("unfiltered_per_page_1000", |b| {
        b.iter(|| {
            page = page % pages + 1;
            black_box(data.page_body(None, None, black_box(page), PER_PAGE))
        })
    });

    let filtered_pages = 10;
    let bytes = data
        .page_body(list.as_deref(), Some(true), 1, PER_PAGE)
        .len() as u64;
    group.throughput(Throughput::Bytes(bytes));
    let mut page = 0;
    group.bench_function("list_and_active_per_page_1000", |b| {
        b.iter(|| {
            page = page % filtered_pages + 1;
            black_box(data.page_body(list.as_deref(), Some(true), black_box(page), PER_PAGE))
        })
    });
    group.finish();
}

/// The same page over HTTP on loopback (server and reqwest client sharing one worker thread):
/// what a client sees, minus JSON parsing.
fn http_page(c: &mut Criterion) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => panic!("cannot build a tokio runtime: {err}"),
    };
    let server = match runtime.block_on(MockServer::start(MockConfig {
        dataset: DatasetConfig {
            seed: 7,
            contacts: CONTACTS,
            lists: 4,
            ..DatasetConfig::default()
        },
        ..MockConfig::default()
    })) {
        Ok(server) => server,
        Err(err) => panic!("cannot start the mock server: {err}"),
    };
    let client = reqwest::Client::new();
    let pages = CONTACTS as u64 / PER_PAGE;
    let urls: Vec<String> = (1..=pages)
        .map(|p| format!("{}/v2/contacts?page={p}&per_page={PER_PAGE}", server.url()))
        .collect();
    let first = runtime.block_on(async {
        let response = client
            .get(&urls[0])
            .header("X-Api-Key", server.api_key())
            .send()
            .await?;
        response.bytes().await
    });
    let bytes = match first {
        Ok(body) => body.len() as u64,
        Err(err) => panic!("the mock server does not answer: {err}"),
    };

    let mut group = c.benchmark_group("http");
    group.throughput(Throughput::Bytes(bytes));
    let mut page = 0;
    group.bench_function("unfiltered_per_page_1000", |b| {
        b.to_async(&runtime).iter(|| {
            page = (page + 1) % urls.len();
            let request = client
                .get(&urls[page])
                .header("X-Api-Key", server.api_key());
            async move {
                match request.send().await {
                    Ok(response) => black_box(response.bytes().await.map(|b| b.len()).ok()),
                    Err(_) => None,
                }
            }
        })
    });
    group.finish();
    runtime.block_on(server.shutdown());
}

fn generate(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate");
    group.sample_size(10);
    group.throughput(Throughput::Elements(CONTACTS as u64));
    group.bench_function("100k_contacts", |b| {
        b.iter(|| {
            Dataset::generate(black_box(&DatasetConfig {
                seed: 7,
                contacts: CONTACTS,
                lists: 4,
                ..DatasetConfig::default()
            }))
        })
    });
    group.finish();
}

mod harness {
    // `criterion_group!` generates an undocumented `pub fn`.
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::page_body, super::http_page, super::generate);
}
criterion_main!(harness::benches);
