//! Property tests of contact decoding: arbitrary bytes and arbitrary JSON where contacts should
//! be never panic `Page::parse` and `ContactBatcher::push_page` under either policy; under
//! quarantine every contact of a page becomes exactly one row or one reject, and the batches
//! hold exactly the rows.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Map, Value};
use trackly_contacts::{ContactBatcher, DecodeError, DecoderOptions, InvalidPolicy, Page, Pass};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        // Values that are almost right for some column.
        prop_oneof![
            Just("2024-02-29T23:59:59.999999Z"),
            Just("2024-13-01T00:00:00"),
            Just("+14155550000"),
            Just("12.3456"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A contact-shaped object: documented (and a few unknown) fields with arbitrary values.
fn contact_like() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        prop::sample::select(trackly_contacts::fields::FIELDS.map(|f| f.name).to_vec())
            .prop_map(str::to_owned),
        ".{0,8}",
    ];
    prop::collection::vec((field, json_value()), 0..12).prop_map(|fields| {
        // Built as text so that duplicate keys survive.
        let parts: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v))
            .collect();
        format!("{{{}}}", parts.join(",")).into_bytes()
    })
}

fn decoder(policy: InvalidPolicy) -> ContactBatcher {
    let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
    ContactBatcher::new(
        DecoderOptions::new("run-prop", started)
            .with_batch_size(3)
            .with_on_invalid(policy),
    )
    .unwrap()
}

/// `records` where the contacts of a page go.
fn page(records: &[Vec<u8>]) -> Option<Page> {
    let body = [
        b"{\"contacts\":[".as_slice(),
        &records.join(&b","[..]),
        br#"],"pagination":{"page":1,"per_page":10,"total":0,"total_pages":0}}"#,
    ]
    .concat();
    // Bytes that break the envelope fail the page (for the fetcher to retry), never panic.
    Page::parse(1, Pass::Main, Bytes::from(body)).ok()
}

fn check(records: &[Vec<u8>]) {
    let Some(page) = page(records) else {
        return;
    };
    let contacts = page.decoded().len();
    // Fail: either every contact fits, or the error is the invalid-record one.
    let mut fail = decoder(InvalidPolicy::Fail);
    match fail.push_page(&page) {
        Ok(()) => assert_eq!(fail.rows(), contacts as u64),
        Err(DecodeError::InvalidRecord(reject)) => {
            assert_eq!(reject.page, 1);
            assert!(reject.index < contacts);
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
    while fail.flush().unwrap().is_some() {}

    // Quarantine: each contact is a row or a reject, and the batches hold exactly the rows.
    let mut quarantine = decoder(InvalidPolicy::Quarantine);
    quarantine.push_page(&page).unwrap();
    let rejects = quarantine.take_rejects();
    assert_eq!(quarantine.rows() + rejects.len() as u64, contacts as u64);
    let mut rows = 0;
    while let Some(batch) = quarantine.flush().unwrap() {
        rows += batch.num_rows() as u64;
    }
    assert_eq!(rows, quarantine.rows());
    for reject in rejects {
        let range = page.decoded().ranges()[reject.index].clone();
        assert_eq!(
            reject.raw.as_bytes(),
            String::from_utf8_lossy(&page.body()[range]).as_bytes()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn arbitrary_bytes_never_panic(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..96), 0..6)
    ) {
        check(&records);
    }

    #[test]
    fn arbitrary_json_never_panics(values in prop::collection::vec(json_value(), 0..6)) {
        let records: Vec<Vec<u8>> = values.iter().map(|v| serde_json::to_vec(v).unwrap()).collect();
        check(&records);
    }

    #[test]
    fn contact_shaped_json_never_panics(records in prop::collection::vec(contact_like(), 0..8)) {
        check(&records);
    }
}
