//! Golden fixtures: pages as the API (or a damaged proxy) sent them, and what decoding them
//! gives, checked in under `tests/fixtures/golden/` (see its README).
//!
//! For each `*.pages.ndjson` (one page body per line), `*.expected.ndjson` holds, per page: the
//! envelope's verdict and pagination; per contact its place in the body, its key, and either
//! its row (as arrow-json writes it) or its reject (field, value, reason); then what the batcher
//! makes of the page under either policy. After a deliberate change of behaviour,
//! regenerate the expected files and review their diff:
//!
//! `TRACKLY_REGENERATE_FIXTURES=1 cargo test -p trackly-contacts --test golden`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use trackly_contacts::{ContactBatcher, DecoderOptions, InvalidPolicy, Page, Pass, decode_page};

const REGENERATE: &str = "TRACKLY_REGENERATE_FIXTURES";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

/// The bodies of a `*.pages.ndjson` file: `{"name", "body"}` (text) or `{"name", "body_bytes"}`
/// (bytes that are not UTF-8).
fn read_pages(path: &Path) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let name = v["name"].as_str().unwrap().to_owned();
            let body = match (&v["body"], &v["body_bytes"]) {
                (Value::String(s), _) => s.clone().into_bytes(),
                (_, Value::Array(bytes)) => bytes
                    .iter()
                    .map(|b| u8::try_from(b.as_u64().unwrap()).unwrap())
                    .collect(),
                _ => panic!("{}: a page needs `body` or `body_bytes`", path.display()),
            };
            (name, body)
        })
        .collect()
}

/// Each row of `rows` as the text of one compact JSON object (nulls left out, map entries in
/// their order), as arrow-json writes it
/// (timestamps with the offset `+00:00`: arrow-json knows "UTC" only with chrono-tz;
/// decimals as their text).
fn row_objects(rows: &RecordBatch) -> Vec<String> {
    let columns: Vec<ArrayRef> = rows
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Timestamp(..) => Arc::new(
                c.as_primitive::<TimestampMicrosecondType>()
                    .clone()
                    .with_timezone("+00:00"),
            ) as ArrayRef,
            // As text, which a JSON number read back as f64 would not keep exactly.
            DataType::Decimal128(..) => {
                let text = ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).unwrap();
                Arc::new(StringArray::from_iter(
                    (0..c.len()).map(|i| c.is_valid(i).then(|| text.value(i).to_string())),
                ))
            }
            _ => c.clone(),
        })
        .collect();
    let fields: Vec<Field> = rows
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
        .collect();
    let rows = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let mut out = Vec::new();
    let mut writer = arrow_json::LineDelimitedWriter::new(&mut out);
    writer.write(&rows).unwrap();
    writer.finish().unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn batcher(policy: InvalidPolicy) -> ContactBatcher {
    let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
    ContactBatcher::new(
        DecoderOptions::new("run-golden", started)
            .with_batch_size(3)
            .with_on_invalid(policy),
    )
    .unwrap()
}

/// What decoding one page gives, as lines of the expected file.
fn describe(name: &str, body: &[u8]) -> Vec<String> {
    let decoded = match decode_page(1, Pass::Main, body) {
        Ok(decoded) => decoded,
        Err(e) => return vec![json!({"page": name, "envelope": e.to_string()}).to_string()],
    };
    let mut lines = vec![
        json!({
            "page": name,
            "envelope": "ok",
            "pagination": decoded.pagination(),
        })
        .to_string(),
    ];
    let rows = row_objects(decoded.rows());
    let mut invalid = decoded.invalid().iter();
    for (index, (&row, key)) in decoded.row_of().iter().zip(decoded.keys()).enumerate() {
        let at = &decoded.ranges()[index];
        let mut line = json!({
            "page": name,
            "index": index,
            "at": [at.start, at.end],
            "key": format!("{:016x}", key.hash),
            "signup": key.signup,
        });
        if row == trackly_contacts::NO_ROW {
            let reject = invalid
                .next()
                .expect("one invalid per contact without a row");
            assert_eq!(reject.index, index, "{name}");
            assert_eq!(
                reject.raw,
                String::from_utf8_lossy(&body[at.clone()]),
                "{name}: a reject keeps its contact's text"
            );
            line["reject"] = json!({
                "field": reject.field,
                "value": reject.value,
                "reason": reject.reason,
            });
        } else {
            if decoded.rounded_rows().contains(&row) {
                line["rounded"] = json!(true);
            }
            if let Some((_, n)) = decoded.unknown_fields().iter().find(|(r, _)| *r == row) {
                line["unknown_fields"] = json!(n);
            }
            // The row last, as written (a `Value` would sort the keys of `custom_fields`).
            let mut text = line.to_string();
            text.pop();
            lines.push(format!("{text},\"row\":{}}}", rows[row as usize]));
            continue;
        }
        lines.push(line.to_string());
    }
    assert!(
        invalid.next().is_none(),
        "{name}: an invalid contact has a row"
    );
    lines.push(assembled(name, body, decoded.rows()).to_string());
    lines
}

/// The page through the batcher: batch sizes and counters under Quarantine (whose
/// batches must hold exactly the page's rows), and the error under Fail.
fn assembled(name: &str, body: &[u8], rows: &RecordBatch) -> Value {
    let page = Page::parse(1, Pass::Main, Bytes::copy_from_slice(body)).unwrap();
    let mut quarantine = batcher(InvalidPolicy::Quarantine);
    quarantine.push_page(&page).unwrap();
    let mut batch_rows = Vec::new();
    let mut columns: Vec<Vec<_>> = vec![Vec::new(); rows.num_columns()];
    while let Some(batch) = quarantine.flush().unwrap() {
        batch_rows.push(batch.num_rows());
        for (c, column) in columns.iter_mut().enumerate() {
            column.push(batch.column(c).clone());
        }
    }
    if !batch_rows.is_empty() {
        let concatenated: Vec<_> = columns
            .iter()
            .map(|parts| {
                let parts: Vec<_> = parts.iter().map(|a| a.as_ref()).collect();
                arrow_select::concat::concat(&parts).unwrap()
            })
            .collect();
        assert_eq!(
            &RecordBatch::try_new(rows.schema(), concatenated).unwrap(),
            rows,
            "{name}: the batches hold exactly the page's rows"
        );
    }
    let rejects = quarantine.take_rejects();
    assert_eq!(rejects.len(), page.decoded().invalid().len(), "{name}");
    let mut fail = batcher(InvalidPolicy::Fail);
    let error = fail.push_page(&page).err().map(|e| e.to_string());
    json!({
        "page": name,
        "batch_rows": batch_rows,
        "rejects": rejects.len(),
        "stats": quarantine.stats(),
        "fail": error,
    })
}

#[test]
fn pages_decode_as_their_golden_files_say() {
    let regenerate = std::env::var_os(REGENERATE).is_some_and(|v| v == "1");
    let mut sets: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".pages.ndjson"))
        .collect();
    sets.sort();
    assert!(!sets.is_empty(), "no fixtures in {}", fixtures().display());
    let mut failures = String::new();
    for pages in &sets {
        let expected_path = PathBuf::from(
            pages
                .to_string_lossy()
                .replace(".pages.ndjson", ".expected.ndjson"),
        );
        let mut actual = String::new();
        for (name, body) in read_pages(pages) {
            for line in describe(&name, &body) {
                writeln!(actual, "{line}").unwrap();
            }
        }
        if regenerate {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let (mut e, mut a) = (expected.lines(), actual.lines());
        for n in 1.. {
            match (e.next(), a.next()) {
                (None, None) => break,
                (exp, act) if exp == act => {}
                (exp, act) => {
                    writeln!(
                        failures,
                        "{}:{n}\n  expected: {}\n  actual:   {}",
                        expected_path.display(),
                        exp.unwrap_or("(end of file)"),
                        act.unwrap_or("(end of file)")
                    )
                    .unwrap();
                    break;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "decoding differs from the golden files (first difference per file below); if the \
         change is intended, run `{REGENERATE}=1 cargo test -p trackly-contacts --test golden` \
         and review the diff:\n{failures}"
    );
}
