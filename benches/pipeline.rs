//! The CPU cost of turning `/v2/contacts` pages into Parquet, one core, no network:
//!
//! - `decode_page`: one `per_page=1000` page body → `Page::parse` → `ContactBatcher` → one
//!   `RecordBatch`;
//! - `encode_parquet`: decoded batches → Parquet (zstd, the converter's `WriterProperties`) with
//!   parquet's `ArrowWriter` into a `Vec`;
//! - `pipeline`: page bodies → Parquet bytes (parse, decode, write), what the exporter does per
//!   page minus the network;
//! - `floor_ignored_any`: merely parsing the same bodies with `serde_json` into `IgnoredAny`, the
//!   floor every JSON-to-Parquet tool pays.
//!
//! Fixtures are the mock's data set (`Dataset::generate`, seed 7), rendered exactly as the mock
//! server sends them. Every group reports both `Bytes` (bytes of JSON body, also for the Parquet
//! encoder, so all rows compare as MB/s of input) and `Elements` (contacts).
//!
//! `cargo bench --bench pipeline` (about two minutes); `cargo test --benches` runs each once.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use chrono::{NaiveDate, TimeZone, Utc};
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_main, measurement::WallTime,
};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use serde::de::IgnoredAny;
use trackly_export::contacts::Pass;
use trackly_export::contacts::{ContactBatcher, DecoderOptions};
use trackly_export::converter::WriterOptions;
use trackly_export::fetcher::Page;
use trackly_export::mock::{Dataset, DatasetConfig};

const SEED: u64 = 7;
const PER_PAGE: u64 = 1000;
/// Pages in the multi-page fixtures: two full default batches (8192 rows) and a partial one,
/// enough for the Parquet writer to see realistic column chunks.
const PAGES: u64 = 20;
const RUN_ID: &str = "0196f1c2-7a3b-7000-8000-000000000000";

struct Fixture {
    /// Whole response bodies, as the mock server sends them.
    bodies: Vec<Bytes>,
    /// Contacts over all bodies.
    contacts: u64,
    /// Bytes over all bodies.
    bytes: u64,
    /// The bodies decoded with the default batch size (what the sink receives).
    batches: Vec<RecordBatch>,
    props: WriterProperties,
}

fn fixture() -> Fixture {
    let data = Dataset::generate(&DatasetConfig {
        seed: SEED,
        contacts: (PAGES * PER_PAGE) as usize,
        lists: 4,
        ..DatasetConfig::default()
    });
    let bodies: Vec<Bytes> = (1..=PAGES)
        .map(|page| data.page_body(None, None, page, PER_PAGE))
        .collect();
    let bytes = bodies.iter().map(|b| b.len() as u64).sum();
    let mut decoder = decoder();
    let mut batches = Vec::new();
    for (number, body) in (1..).zip(&bodies) {
        decoder
            .push_page(&parse(number, body))
            .unwrap_or_else(|e| panic!("the mock's page {number} does not decode: {e}"));
        while let Some(batch) = decoder.next_batch() {
            batches.push(batch);
        }
    }
    while let Some(batch) = flush(&mut decoder) {
        batches.push(batch);
    }
    let contacts = batches.iter().map(|b| b.num_rows() as u64).sum();
    assert_eq!(
        contacts,
        PAGES * PER_PAGE,
        "every generated contact decodes"
    );
    Fixture {
        bodies,
        contacts,
        bytes,
        batches,
        props: writer_properties(),
    }
}

fn decoder() -> ContactBatcher {
    let started = Utc
        .with_ymd_and_hms(2026, 11, 27, 3, 0, 0)
        .single()
        .unwrap_or_default();
    ContactBatcher::new(DecoderOptions::new(RUN_ID, started))
        .unwrap_or_else(|e| panic!("default decoder options are valid: {e}"))
}

fn writer_properties() -> WriterProperties {
    let date = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap_or_default();
    WriterOptions::default()
        .writer_properties(&trackly_export::contacts::table::CONTACTS, RUN_ID, date)
        .unwrap_or_else(|e| panic!("default writer options are valid: {e}"))
}

fn parse(number: u64, body: &Bytes) -> Page {
    Page::parse(number, Pass::Main, body.clone()).unwrap_or_else(|e| panic!("page {number}: {e}"))
}

fn flush(decoder: &mut ContactBatcher) -> Option<RecordBatch> {
    decoder
        .flush()
        .unwrap_or_else(|e| panic!("flush cannot fail on valid rows: {e}"))
}

fn writer(schema: SchemaRef, props: &WriterProperties) -> ArrowWriter<Vec<u8>> {
    ArrowWriter::try_new(Vec::with_capacity(4 << 20), schema, Some(props.clone()))
        .unwrap_or_else(|e| panic!("cannot create the Parquet writer: {e}"))
}

fn write(writer: &mut ArrowWriter<Vec<u8>>, batch: &RecordBatch) {
    writer
        .write(batch)
        .unwrap_or_else(|e| panic!("cannot encode a batch: {e}"));
}

fn close(writer: ArrowWriter<Vec<u8>>) -> Vec<u8> {
    writer
        .into_inner()
        .unwrap_or_else(|e| panic!("cannot close the Parquet writer: {e}"))
}

/// Runs `f` once per throughput unit, so criterion prints both MB/s and contacts/s.
fn both_units(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    bytes: u64,
    contacts: u64,
    mut f: impl FnMut(),
) {
    for (unit, throughput) in [
        ("bytes", Throughput::Bytes(bytes)),
        ("contacts", Throughput::Elements(contacts)),
    ] {
        group.throughput(throughput);
        group.bench_function(format!("{name}/{unit}"), |b| b.iter(&mut f));
    }
}

fn pipeline_benches(c: &mut Criterion) {
    let fx = fixture();
    let schema = fx.batches[0].schema();

    let mut group = c.benchmark_group("pipeline");
    // Flat sampling: the same iteration count in every sample, so a 100 ms iteration still
    // finishes in the measurement time (the whole bench takes about a minute).
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));

    // (a) One page → one RecordBatch.
    let first = &fx.bodies[0];
    let mut one = decoder();
    both_units(
        &mut group,
        "decode_page",
        first.len() as u64,
        PER_PAGE,
        || {
            let page = parse(1, black_box(first));
            one.push_page(&page)
                .unwrap_or_else(|e| panic!("decode: {e}"));
            black_box(flush(&mut one));
        },
    );

    // (b) Decoded batches → Parquet bytes (zstd).
    both_units(&mut group, "encode_parquet", fx.bytes, fx.contacts, || {
        let mut writer = writer(schema.clone(), &fx.props);
        for batch in &fx.batches {
            write(&mut writer, batch);
        }
        black_box(close(writer));
    });

    // (c) Page bodies → Parquet bytes: parse, decode, write each batch as soon as it is full.
    both_units(
        &mut group,
        "pages_to_parquet",
        fx.bytes,
        fx.contacts,
        || {
            let mut decoder = decoder();
            let mut writer = writer(schema.clone(), &fx.props);
            for (number, body) in (1..).zip(&fx.bodies) {
                let page = parse(number, black_box(body));
                decoder
                    .push_page(&page)
                    .unwrap_or_else(|e| panic!("decode: {e}"));
                while let Some(batch) = decoder.next_batch() {
                    write(&mut writer, &batch);
                }
            }
            while let Some(batch) = flush(&mut decoder) {
                write(&mut writer, &batch);
            }
            black_box(close(writer));
        },
    );

    // (d) The floor: parse the same bodies into nothing.
    both_units(
        &mut group,
        "floor_ignored_any",
        fx.bytes,
        fx.contacts,
        || {
            for body in &fx.bodies {
                let parsed: IgnoredAny = serde_json::from_slice(black_box(body))
                    .unwrap_or_else(|e| panic!("the mock's body is JSON: {e}"));
                black_box(parsed);
            }
        },
    );
    group.finish();
}

mod harness {
    // `criterion_group!` generates an undocumented `pub fn`.
    #![allow(missing_docs)]
    criterion::criterion_group!(benches, super::pipeline_benches);
}
criterion_main!(harness::benches);
