//! What Parquet encoding costs under each writer setting worth considering, and what it saves or
//! costs in file size: the data for choosing the writer's defaults (issue 12 asks for a cheaper
//! encoder; the price is a product decision, recorded in BENCHMARKS.md).
//!
//! The fixture is the mock's data set (seed 7, 50,000 contacts, 4 lists) decoded into the
//! batches the sink receives. Each variant encodes all of it into one in-memory Parquet file,
//! `ROUNDS` times, and prints CPU-bound wall time per round, file size and size against the
//! default. Wall time is noisy on a shared machine; instruction counts are not, so run one
//! variant under callgrind and subtract the `decode-only` baseline:
//!
//! ```sh
//! cargo bench --bench encode_grid                        # every variant, timed
//! cargo bench --bench encode_grid -- zstd1               # one variant
//! valgrind --tool=callgrind target/release/deps/encode_grid-HASH --once zstd1
//! ```
#![allow(missing_docs)]

use std::time::Instant;

use arrow_array::RecordBatch;
use chrono::{NaiveDate, TimeZone, Utc};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;
use trackly_export::contacts::Pass;
use trackly_export::contacts::{ContactBatcher, DecoderOptions};
use trackly_export::converter::WriterOptions;
use trackly_export::fetcher::Page;
use trackly_export::mock::{Dataset, DatasetConfig};

const SEED: u64 = 7;
const CONTACTS: u64 = 50_000;
const PER_PAGE: u64 = 1000;
const ROUNDS: u32 = 5;
const RUN_ID: &str = "0196f1c2-7a3b-7000-8000-000000000000";

type Variant = (&'static str, &'static str, fn() -> Option<WriterProperties>);

/// Every variant: name, what it changes, and its properties (`None`: decode only).
const VARIANTS: [Variant; 8] = [
    (
        "decode-only",
        "no encoding: the baseline to subtract",
        || None,
    ),
    (
        "default",
        "the writer's defaults (zstd 3, page statistics)",
        || Some(defaults().build()),
    ),
    ("zstd1", "zstd level 1", || {
        Some(
            defaults()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).ok()?))
                .build(),
        )
    }),
    ("snappy", "snappy", || {
        Some(defaults().set_compression(Compression::SNAPPY).build())
    }),
    (
        "chunk-stats",
        "statistics per column chunk, not per page",
        || {
            Some(
                defaults()
                    .set_statistics_enabled(EnabledStatistics::Chunk)
                    .build(),
            )
        },
    ),
    (
        "no-dict-ints",
        "no dictionary for numbers (ints, decimal)",
        || {
            let mut b = defaults();
            for column in [
                "list_id",
                "send_count",
                "click_count",
                "revenue_total",
                "conversion_count",
            ] {
                b = b.set_column_dictionary_enabled(ColumnPath::from(column), false);
            }
            Some(b.build())
        },
    ),
    (
        "zstd1-chunk-stats",
        "zstd level 1 and chunk statistics",
        || {
            Some(
                defaults()
                    .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).ok()?))
                    .set_statistics_enabled(EnabledStatistics::Chunk)
                    .build(),
            )
        },
    ),
    ("plain-only", "no dictionary at all (zstd 3)", || {
        Some(defaults().set_dictionary_enabled(false).build())
    }),
];

/// The writer's own properties (zstd 3, page statistics, dictionaries except on the columns
/// whose values rarely repeat), to change one thing at a time.
fn defaults() -> WriterPropertiesBuilder {
    let date = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap_or_default();
    WriterOptions::default()
        .writer_properties(&trackly_export::contacts::table::CONTACTS, RUN_ID, date)
        .unwrap_or_else(|e| panic!("default writer options are valid: {e}"))
        .into_builder()
}

fn batches() -> Vec<RecordBatch> {
    let data = Dataset::generate(&DatasetConfig {
        seed: SEED,
        contacts: CONTACTS as usize,
        lists: 4,
        ..DatasetConfig::default()
    });
    let started = Utc
        .with_ymd_and_hms(2026, 11, 27, 3, 0, 0)
        .single()
        .unwrap_or_default();
    let mut decoder = ContactBatcher::new(DecoderOptions::new(RUN_ID, started))
        .unwrap_or_else(|e| panic!("default decoder options are valid: {e}"));
    let mut out = Vec::new();
    for number in 1..=CONTACTS / PER_PAGE {
        let body = data.page_body(None, None, number, PER_PAGE);
        let page =
            Page::parse(number, Pass::Main, body).unwrap_or_else(|e| panic!("page {number}: {e}"));
        decoder
            .push_page(&page)
            .unwrap_or_else(|e| panic!("page {number} decodes: {e}"));
        while let Some(batch) = decoder.next_batch() {
            out.push(batch);
        }
    }
    while let Some(batch) = decoder.flush().unwrap_or_else(|e| panic!("flush: {e}")) {
        out.push(batch);
    }
    out
}

fn encode(batches: &[RecordBatch], props: WriterProperties) -> usize {
    let schema = batches[0].schema();
    let mut writer = ArrowWriter::try_new(Vec::with_capacity(8 << 20), schema, Some(props))
        .unwrap_or_else(|e| panic!("cannot create the Parquet writer: {e}"));
    for batch in batches {
        writer
            .write(batch)
            .unwrap_or_else(|e| panic!("cannot encode a batch: {e}"));
    }
    writer
        .into_inner()
        .unwrap_or_else(|e| panic!("cannot close the Parquet writer: {e}"))
        .len()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let once = args.iter().any(|a| a == "--once");
    // `cargo bench` passes `--bench`; anything else that is not a flag names variants.
    let wanted: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let batches = batches();
    let rounds = if once { 1 } else { ROUNDS };
    let mut default_size = None;
    println!("variant             ms/round        bytes  vs default  what");
    for (name, what, props) in VARIANTS {
        if !wanted.is_empty() && !wanted.contains(&name) {
            continue;
        }
        let Some(first) = props() else {
            println!("{name:<18} {:>9} {:>12} {:>11}  {what}", "-", "-", "-");
            continue;
        };
        let started = Instant::now();
        let size = encode(&batches, first);
        for _ in 1..rounds {
            encode(&batches, props().unwrap_or_else(|| unreachable!()));
        }
        let per_round = started.elapsed().as_secs_f64() * 1e3 / f64::from(rounds);
        if name == "default" {
            default_size = Some(size);
        }
        let versus = default_size.map_or("-".to_owned(), |d| {
            format!("{:+.1}%", (size as f64 / d as f64 - 1.0) * 100.0)
        });
        println!("{name:<18} {per_round:>9.1} {size:>12} {versus:>11}  {what}");
    }
}
