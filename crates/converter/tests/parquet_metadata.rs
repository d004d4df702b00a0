//! Golden fixtures of the written Parquet's metadata: the contacts and lists tables written
//! through the sink to a local folder, then each file's footer described per column (physical
//! and logical type, compression, encodings, dictionary page, statistics, bloom filter, page
//! index) and compared with `tests/fixtures/parquet_metadata/<table>.txt`. After a deliberate
//! change of the writer's settings, regenerate the expected files and review their diff:
//!
//! `TRACKLY_REGENERATE_FIXTURES=1 cargo test -p trackly-converter --test parquet_metadata`
#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, TimeZone, Utc};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::{FileReader, SerializedFileReader};
use trackly_contacts::{ContactBatcher, DecoderOptions, InvalidPolicy, ListDecoder};
use trackly_converter::{
    OutputLocation, ParquetSink, SinkOptions, StagedTable, TableFormat, TableSpec,
};

const REGENERATE: &str = "TRACKLY_REGENERATE_FIXTURES";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parquet_metadata")
}

fn options() -> SinkOptions {
    SinkOptions {
        extract_date: NaiveDate::from_ymd_opt(2025, 4, 2).unwrap(),
        run_id: "golden".to_owned(),
        writer: Default::default(),
        query_json: serde_json::Value::Null,
    }
}

fn decoder_options() -> DecoderOptions {
    let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
    DecoderOptions::new("golden", started).with_on_invalid(InvalidPolicy::Quarantine)
}

/// Publishes 500 generated contacts and 40 lists under `dir`, as an export does.
async fn export(dir: &Path) {
    let location = OutputLocation::parse(dir.to_str().unwrap()).unwrap();

    let mut lists = ListDecoder::new(decoder_options());
    let texts: Vec<String> = (1..=40)
        .map(|id| {
            let status = ["active", "paused", "deleted"][id % 3];
            let created = format!("2024-0{}-1{}T08:00:00Z", 1 + id % 9, id % 10);
            format!(
                r#"{{"id":{id},"phone_number":"+1800555{id:04}","brand_name":"Brand {}","list_name":"List {id}","list_type":"infobip","status":"{status}","contact_count":{},"created_at":"{created}","note":"n{id}"}}"#,
                id % 4,
                id * 100
            )
        })
        .collect();
    lists
        .decode_raw("GET /v2/lists, page 1", texts.iter().map(|t| t.as_bytes()))
        .unwrap();
    let batch = lists.finish().unwrap();
    let spec = TableSpec {
        table: &trackly_contacts::table::LISTS,
        query_json: serde_json::Value::Null,
        decode: lists.stats(),
        fetch_stats: serde_json::Value::Null,
    };
    let lists = StagedTable::stage(
        TableFormat::Parquet,
        &location,
        spec,
        &options(),
        Utc::now(),
        &batch,
        &lists.take_rejects(),
    )
    .await
    .unwrap();

    let mut decoder = ContactBatcher::new(decoder_options()).unwrap();
    decoder
        .push_page(&support::page(1, &support::contacts(7, 0, 500)))
        .unwrap();
    let mut sink = ParquetSink::create(location, options()).await.unwrap();
    while let Some(batch) = decoder.flush().unwrap() {
        sink.write(&batch).await.unwrap();
    }
    sink.finish_with(serde_json::Value::Null, vec![lists])
        .await
        .unwrap();
}

/// The footer of a Parquet file, one line per column chunk, without sizes or offsets.
fn describe(metadata: &ParquetMetaData) -> String {
    let mut text = String::new();
    let file = metadata.file_metadata();
    writeln!(text, "rows: {}", file.num_rows()).unwrap();
    writeln!(text, "row groups: {}", metadata.num_row_groups()).unwrap();
    let keys: Vec<&str> = file
        .key_value_metadata()
        .into_iter()
        .flatten()
        .map(|kv| kv.key.as_str())
        .collect();
    writeln!(text, "key-value metadata: {keys:?}").unwrap();
    for (i, group) in metadata.row_groups().iter().enumerate() {
        writeln!(text, "\nrow group {i}: {} rows", group.num_rows()).unwrap();
        for column in group.columns() {
            let descr = column.column_descr();
            let statistics = column.statistics().map_or("none".to_owned(), |s| {
                format!(
                    "min {} max {} nulls {}",
                    s.min_bytes_opt().is_some(),
                    s.max_bytes_opt().is_some(),
                    s.null_count_opt().is_some()
                )
            });
            let encodings: Vec<String> = column.encodings().map(|e| format!("{e:?}")).collect();
            writeln!(
                text,
                "{}: {:?} logical {:?} converted {:?}\n  compression {:?}; encodings [{}]; \
                 dictionary page {}; statistics {statistics}; bloom filter {}; \
                 column index {}; offset index {}",
                column.column_path(),
                descr.physical_type(),
                descr.logical_type_ref(),
                descr.converted_type(),
                column.compression_codec(),
                encodings.join(", "),
                column.dictionary_page_offset().is_some(),
                column.bloom_filter_offset().is_some(),
                column.column_index_offset().is_some(),
                column.offset_index_offset().is_some(),
            )
            .unwrap();
        }
    }
    text
}

#[tokio::test]
async fn the_written_parquet_metadata_matches_its_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    export(dir.path()).await;
    let regenerate = std::env::var_os(REGENERATE).is_some_and(|v| v == "1");
    let mut failures = String::new();
    for table in ["contacts", "lists"] {
        let folder = dir.path().join(format!("{table}/extract_date=2025-04-02"));
        let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no Parquet file in {}", folder.display());
        let mut actual = String::new();
        for file in &files {
            let reader = SerializedFileReader::new(std::fs::File::open(file).unwrap()).unwrap();
            let name = file.file_name().unwrap().to_string_lossy();
            writeln!(actual, "# {name}\n{}", describe(reader.metadata())).unwrap();
        }
        let expected_path = fixtures().join(format!("{table}.txt"));
        if regenerate {
            std::fs::create_dir_all(fixtures()).unwrap();
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            writeln!(
                failures,
                "--- {}\n+++ actual\n{actual}",
                expected_path.display()
            )
            .unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "the written Parquet's metadata changed; if the change is intended, run \
         `{REGENERATE}=1 cargo test -p trackly-converter --test parquet_metadata` and review \
         the diff:\n{failures}"
    );
}
