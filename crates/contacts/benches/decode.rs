//! Decoding a page of 1000 realistic contacts into Arrow, against the floor of merely parsing the
//! same bytes with serde_json into `IgnoredAny`: `decode_page` (the single pass over the whole
//! body: envelope, keys, columns) and `body_to_batches` (that plus cutting batches with lineage,
//! as the pipeline does).
//!
//! `cargo bench -p trackly-contacts --bench decode`
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::de::IgnoredAny;
use trackly_contacts::{ContactBatcher, DecoderOptions, InvalidPolicy, Page, Pass, decode_page};

#[path = "../tests/support/mod.rs"]
mod support;

const CONTACTS: u64 = 1000;

fn decode(c: &mut Criterion) {
    let contacts = support::contacts(42, 0, CONTACTS);
    let page = support::page(1, &contacts);
    let bytes: u64 = page.raw_contacts().map(|c| c.len() as u64).sum();
    let body = support::page_body(1, &contacts);
    let started = Utc
        .with_ymd_and_hms(2025, 4, 2, 3, 0, 0)
        .single()
        .unwrap_or_default();

    let mut group = c.benchmark_group("decode_page_1000");
    for throughput in [Throughput::Bytes(bytes), Throughput::Elements(CONTACTS)] {
        let unit = match throughput {
            Throughput::Bytes(_) => "bytes",
            _ => "rows",
        };
        group.throughput(throughput);
        group.bench_function(format!("floor_serde_json_ignored_any/{unit}"), |b| {
            b.iter(|| {
                for raw in page.raw_contacts() {
                    let parsed: IgnoredAny = serde_json::from_slice(black_box(raw)).unwrap();
                    black_box(parsed);
                }
            })
        });
        group.bench_function(format!("decode_page/{unit}"), |b| {
            b.iter(|| {
                let page = decode_page(1, Pass::Main, black_box(&body)).unwrap();
                assert_eq!(page.rows().num_rows(), CONTACTS as usize);
                black_box(page)
            })
        });
        group.bench_function(format!("body_to_batches/{unit}"), |b| {
            // What the pipeline does per page: decode the body, then cut batches with lineage.
            let options = DecoderOptions::new("bench-run", started)
                .with_batch_size(CONTACTS as usize)
                .with_on_invalid(InvalidPolicy::Fail);
            let mut decoder = ContactBatcher::new(options).unwrap();
            let body = bytes::Bytes::from(body.clone());
            b.iter(|| {
                let page = Page::parse(1, Pass::Main, black_box(body.clone())).unwrap();
                decoder.push_page(&page).unwrap();
                black_box(decoder.flush().unwrap())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
