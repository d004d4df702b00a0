//! Cost of rendering a `/v2/contacts` page body (`Dataset::page_body`) with `per_page=1000`.
//!
//! Run with `cargo bench -p trackly-mock`. Throughput is reported in bytes of body; pages per
//! second is 1 / time per iteration.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use trackly_mock::{Dataset, DatasetConfig};

const CONTACTS: usize = 100_000;
const PER_PAGE: u64 = 1000;

fn page_body(c: &mut Criterion) {
    let data = Dataset::generate(&DatasetConfig {
        seed: 7,
        contacts: CONTACTS,
        lists: 4,
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
            }))
        })
    });
    group.finish();
}

mod harness {
    // `criterion_group!` generates an undocumented `pub fn`.
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::page_body, super::generate);
}
criterion_main!(harness::benches);
