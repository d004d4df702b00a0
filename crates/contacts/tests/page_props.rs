//! Property tests of page decoding: whatever bytes or JSON the API sends, `Page::parse` returns
//! a page or an error, never panics, and a page it accepts is self-consistent; so does
//! `decode_page`.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use trackly_contacts::{Page, Pass};

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
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Something like a page: the right keys, with values that may or may not fit.
fn page_like() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        json_value(),
    ];
    let pagination = prop_oneof![
        (number.clone(), number.clone(), number.clone(), number).prop_map(|(a, b, c, d)| {
            json!({"page": a, "per_page": b, "total": c, "total_pages": d})
        }),
        json_value(),
    ];
    let contact = prop_oneof![
        json_value(),
        (".{0,16}", ".{0,16}", json_value()).prop_map(|(p, l, extra)| {
            json!({"phone_number": p, "list_number": l, "custom_fields": extra})
        }),
    ];
    (
        prop::collection::vec(contact, 0..8),
        pagination,
        any::<bool>(),
    )
        .prop_map(|(contacts, pagination, with_contacts)| {
            let mut page = Map::new();
            if with_contacts {
                page.insert("contacts".into(), Value::Array(contacts));
            }
            page.insert("pagination".into(), pagination);
            Value::Object(page)
        })
}

fn check(body: Vec<u8>) {
    // The single-pass decoder never panics either, and accepts what the serde path accepts.
    let decoded = trackly_contacts::decode_page(1, Pass::Main, &body);
    if let Ok(page) = &decoded {
        assert_eq!(page.keys().len(), page.row_of().len());
        assert_eq!(page.rows().num_rows() + page.invalid().len(), page.len());
    }
    let body = Bytes::from(body);
    if let Ok(page) = Page::parse(1, Pass::Main, body.clone()) {
        assert!(decoded.is_ok(), "{:?}", decoded.err());
        // Every recorded contact is an object's text cut out of the body; when the body is
        // valid JSON, each is a valid JSON object. (Damage inside a contact is the decoder's
        // to report, record by record.)
        let valid = serde_json::from_slice::<Value>(&body).is_ok();
        for raw in page.raw_contacts() {
            assert!(raw.starts_with(b"{") && raw.ends_with(b"}"), "{raw:?}");
            if valid {
                let value: Value = serde_json::from_slice(raw).unwrap();
                assert!(value.is_object());
            }
        }
        let _ = page.contacts();
    }
}

/// A body the property below once drew: one byte in place of a contact's opening quote turned
/// the rest of the page inside out, and the structural scan took `{...},[...],[...]` for one
/// contact ending at a `]` (now a mismatched bracket, so the page is refused).
#[test]
fn a_lost_quote_never_makes_one_contact_of_several() {
    let body = include_bytes!("fixtures/page_props/quote_lost.json");
    check(body.to_vec());
    assert!(Page::parse(1, Pass::Main, Bytes::from_static(body)).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check(body);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        check(serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn page_shaped_json_never_panics(value in page_like()) {
        check(serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn cut_or_corrupted_pages_never_panic(
        value in page_like(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut text = serde_json::to_vec(&value).unwrap();
        let mut corrupted = text.clone();
        let i = flip.index(corrupted.len());
        corrupted[i] = byte;
        check(corrupted);
        text.truncate(cut.index(text.len()));
        check(text);
    }
}
