use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, MapArray};
use chrono::TimeZone;

use super::*;
use crate::error::{DecodeError, Result};
use crate::schema::{col, contacts_schema};
use crate::timestamp::naive_seconds_micros;
use crate::{ContactBatcher, Page, Pass};
use arrow_array::RecordBatch;

const BASE: &str = r#""phone_number":"+14155559876","list_number":"+18005551234""#;

fn options(policy: InvalidPolicy) -> DecoderOptions {
    let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
    DecoderOptions::new("run-7", started).with_on_invalid(policy)
}

fn decoder(policy: InvalidPolicy) -> ContactBatcher {
    ContactBatcher::new(options(policy)).unwrap()
}

/// `contacts` as page `number`, in the body the API would send.
fn page_of<'a>(number: u64, contacts: impl IntoIterator<Item = &'a [u8]>) -> Page {
    let mut body = b"{\"contacts\":[".to_vec();
    for (i, contact) in contacts.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(contact);
    }
    body.extend_from_slice(
        br#"],"pagination":{"page":1,"per_page":1000,"total":0,"total_pages":0}}"#,
    );
    Page::parse(number, Pass::Main, bytes::Bytes::from(body)).unwrap()
}

/// Decodes `contacts` as page `number` and hands its rows to `d`.
fn push_contacts<'a>(
    d: &mut ContactBatcher,
    number: u64,
    contacts: impl IntoIterator<Item = &'a [u8]>,
) -> Result<()> {
    d.push_page(&page_of(number, contacts))
}

/// Decodes `{BASE, extra}` and returns the one-row batch.
fn one(extra: &str) -> RecordBatch {
    let json = if extra.is_empty() {
        format!("{{{BASE}}}")
    } else {
        format!("{{{BASE},{extra}}}")
    };
    let mut d = decoder(InvalidPolicy::Fail);
    push_contacts(&mut d, 1, [json.as_bytes()]).unwrap_or_else(|e| panic!("{json}: {e}"));
    let batch = d.flush().unwrap().unwrap();
    assert_eq!(batch.num_rows(), 1);
    batch
}

/// The error for `{BASE, extra}` under Fail, and checks Quarantine keeps the same reject.
fn invalid(extra: &str) -> (String, String, String) {
    let json = format!("{{{BASE},{extra}}}");
    let mut d = decoder(InvalidPolicy::Fail);
    let good = format!("{{{BASE}}}");
    let err = push_contacts(&mut d, 3, [good.as_bytes(), json.as_bytes()]).expect_err(&json);
    let DecodeError::InvalidRecord(reject) = err else {
        panic!("{json}: unexpected {err}");
    };
    let Reject {
        page,
        index,
        field,
        value,
        reason,
        ..
    } = *reject;
    assert_eq!((page, index), (3, 1));
    assert_eq!(d.rows(), 1, "only the valid record is kept");
    assert_eq!(d.flush().unwrap().unwrap().num_rows(), 1);

    let mut q = decoder(InvalidPolicy::Quarantine);
    // At the same place in the body as above: reasons name byte offsets in the body.
    push_contacts(&mut q, 3, [good.as_bytes(), json.as_bytes()]).unwrap();
    let rejects = q.take_rejects();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].page, 3);
    assert_eq!(rejects[0].index, 1);
    assert_eq!(rejects[0].field, field);
    assert_eq!(rejects[0].value, value);
    assert_eq!(rejects[0].reason, reason);
    assert_eq!(rejects[0].raw, json);
    assert_eq!((q.rows(), q.rejects()), (1, 1));
    let batch = q.flush().unwrap().unwrap();
    assert_eq!(batch.num_rows(), 1, "builders hold exactly the valid row");
    batch
        .column(col::CUSTOM_FIELDS)
        .to_data()
        .validate_full()
        .unwrap();
    (field, value, reason)
}

fn custom_fields(batch: &RecordBatch) -> &MapArray {
    batch.column(col::CUSTOM_FIELDS).as_map()
}

/// The entries of row 0's map, `None` when the map is null.
fn entries(batch: &RecordBatch) -> Option<Vec<(String, Option<String>)>> {
    let map = custom_fields(batch);
    if map.is_null(0) {
        return None;
    }
    let entries = map.value(0);
    let keys = entries.column(0).as_string::<i32>();
    let values = entries.column(1).as_string::<i32>();
    Some(
        (0..entries.len())
            .map(|i| {
                let v = (!values.is_null(i)).then(|| values.value(i).to_owned());
                (keys.value(i).to_owned(), v)
            })
            .collect(),
    )
}

fn kv(pairs: &[(&str, Option<&str>)]) -> Option<Vec<(String, Option<String>)>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
            .collect(),
    )
}

#[test]
fn documented_example_decodes_into_every_column() {
    let json = r#"{
      "phone_number": "+14155559876", "list_number": "+18005551234", "list_id": 42,
      "active": true, "signup_date": "2025-03-15T14:30:00", "signup_method": "api",
      "custom_fields": {"first_name": "Jane", "source": "landing_page_v2"},
      "carrier": "T-Mobile", "line_type": "CELL PHONE", "timezone": "America/Los_Angeles",
      "is_valid": true, "send_count": 12, "click_count": 3, "revenue_total": 47.50,
      "conversion_count": 1, "last_sent_at": "2025-04-01T18:00:00",
      "last_clicked_at": "2025-04-01T18:05:32", "in_workflow": false
    }"#;
    let mut d = decoder(InvalidPolicy::Fail);
    push_contacts(&mut d, 1, [json.as_bytes()]).unwrap();
    let b = d.flush().unwrap().unwrap();
    assert_eq!(b.schema(), contacts_schema());
    let s = |c| b.column(c).as_string::<i32>().value(0).to_owned();
    let i = |c| b.column(c).as_primitive::<Int64Type>().value(0);
    let t = |c| {
        b.column(c)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0)
    };
    let bo = |c| b.column(c).as_boolean().value(0);
    assert_eq!(s(col::PHONE_NUMBER), "+14155559876");
    assert_eq!(s(col::LIST_NUMBER), "+18005551234");
    assert_eq!(i(col::LIST_ID), 42);
    assert!(bo(col::ACTIVE));
    assert_eq!(
        t(col::SIGNUP_DATE),
        Utc.with_ymd_and_hms(2025, 3, 15, 14, 30, 0)
            .unwrap()
            .timestamp_micros()
    );
    assert_eq!(s(col::SIGNUP_METHOD), "api");
    assert_eq!(
        entries(&b),
        kv(&[
            ("first_name", Some("Jane")),
            ("source", Some("landing_page_v2"))
        ])
    );
    assert_eq!(s(col::CARRIER), "T-Mobile");
    assert_eq!(s(col::LINE_TYPE), "CELL PHONE");
    assert_eq!(s(col::TIMEZONE), "America/Los_Angeles");
    assert!(bo(col::IS_VALID));
    assert_eq!(i(col::SEND_COUNT), 12);
    assert_eq!(i(col::CLICK_COUNT), 3);
    let revenue = b
        .column(col::REVENUE_TOTAL)
        .as_primitive::<Decimal128Type>();
    assert_eq!(revenue.value(0), 475_000);
    assert_eq!(revenue.value_as_string(0), "47.5000");
    assert_eq!(i(col::CONVERSION_COUNT), 1);
    assert_eq!(
        t(col::LAST_CLICKED_AT),
        Utc.with_ymd_and_hms(2025, 4, 1, 18, 5, 32)
            .unwrap()
            .timestamp_micros()
    );
    assert!(!bo(col::IN_WORKFLOW));
    assert!(b.column(col::EXTRA).is_null(0));
    assert_eq!(
        t(col::EXTRACTED_AT),
        Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0)
            .unwrap()
            .timestamp_micros()
    );
    assert_eq!(s(col::RUN_ID), "run-7");
    assert_eq!(d.unknown_fields(), 0);
}

#[test]
fn missing_optional_fields_are_null() {
    let b = one("");
    for c in 2..=col::EXTRA {
        assert!(b.column(c).is_null(0), "column {c}");
    }
    let b = one(
        r#""list_id":null,"active":null,"signup_date":null,"signup_method":null,"custom_fields":null,"revenue_total":null,"in_workflow":null"#,
    );
    for c in 2..=col::EXTRA {
        assert!(b.column(c).is_null(0), "column {c}");
    }
}

#[test]
fn custom_fields_strings_are_unescaped() {
    let b = one(r#""custom_fields":{"name":"Zoë \"Z\" O'Brien\nline2 \u00e9 😀","plain":"Jane"}"#);
    assert_eq!(
        entries(&b),
        kv(&[
            ("name", Some("Zoë \"Z\" O'Brien\nline2 é 😀")),
            ("plain", Some("Jane"))
        ])
    );
}

#[test]
fn custom_fields_numbers_keep_their_exact_text() {
    let b =
        one(r#""custom_fields":{"a":1,"b":47.50,"c":-0.0,"d":1e10,"e":12345678901234567890123}"#);
    assert_eq!(
        entries(&b),
        kv(&[
            ("a", Some("1")),
            ("b", Some("47.50")),
            ("c", Some("-0.0")),
            ("d", Some("1e10")),
            ("e", Some("12345678901234567890123")),
        ])
    );
}

#[test]
fn custom_fields_booleans_and_nulls() {
    let b = one(r#""custom_fields":{"t":true,"f":false,"n":null}"#);
    assert_eq!(
        entries(&b),
        kv(&[("t", Some("true")), ("f", Some("false")), ("n", None)])
    );
}

#[test]
fn custom_fields_nested_values_become_compact_json() {
    let b = one(
        r#""custom_fields":{ "utm" : { "source" : "fb ad", "n" : [ 1 , 2.50 , "x \" y" ] } , "list":[ ] , "o":{}}"#,
    );
    assert_eq!(
        entries(&b),
        kv(&[
            ("utm", Some(r#"{"source":"fb ad","n":[1,2.50,"x \" y"]}"#)),
            ("list", Some("[]")),
            ("o", Some("{}")),
        ])
    );
}

#[test]
fn custom_fields_empty_object_is_an_empty_map_and_missing_is_null() {
    let b = one(r#""custom_fields":{}"#);
    assert_eq!(entries(&b), Some(vec![]));
    assert_eq!(entries(&one("")), None);
    assert_eq!(entries(&one(r#""custom_fields":null"#)), None);
}

#[test]
fn custom_fields_keys_with_escapes_are_unescaped() {
    let b = one(r#""custom_fields":{"first\u005fname":"a","new\nline":"b"}"#);
    assert_eq!(
        entries(&b),
        kv(&[("first_name", Some("a")), ("new\nline", Some("b"))])
    );
}

#[test]
fn custom_fields_of_another_type_are_invalid() {
    for value in [r#""Jane""#, "[1]", "1", "true"] {
        let (field, v, reason) = invalid(&format!(r#""custom_fields":{value}"#));
        assert_eq!(field, "custom_fields");
        assert_eq!(v, value);
        assert_eq!(reason, "is not an object");
    }
}

#[test]
fn custom_fields_duplicate_keys_are_invalid() {
    let (field, _, reason) = invalid(r#""custom_fields":{"a":1,"b":2,"a":3}"#);
    assert_eq!(field, "custom_fields");
    assert!(reason.contains("\"a\" more than once"), "{reason}");
    // Large objects take the hash-set path.
    let many: Vec<String> = (0..40).map(|i| format!("\"k{i}\":{i}")).collect();
    let ok = one(&format!(r#""custom_fields":{{{}}}"#, many.join(",")));
    assert_eq!(entries(&ok).unwrap().len(), 40);
    let (_, _, reason) = invalid(&format!(
        r#""custom_fields":{{{},"k33":0}}"#,
        many.join(",")
    ));
    assert!(reason.contains("\"k33\" more than once"), "{reason}");
}

#[test]
fn wrong_types_are_invalid() {
    for (extra, field, reason) in [
        (
            r#""list_id":"42""#,
            "list_id",
            "is not an integer that fits i64",
        ),
        (
            r#""send_count":1.0"#,
            "send_count",
            "is not an integer that fits i64",
        ),
        (
            r#""send_count":1e3"#,
            "send_count",
            "is not an integer that fits i64",
        ),
        (
            r#""click_count":99999999999999999999"#,
            "click_count",
            "is not an integer that fits i64",
        ),
        (r#""active":"true""#, "active", "is not a boolean"),
        (r#""in_workflow":1"#, "in_workflow", "is not a boolean"),
        (r#""carrier":42"#, "carrier", "is not a string"),
        (r#""timezone":{"a":1}"#, "timezone", "is not a string"),
        (
            r#""signup_date":1700000000"#,
            "signup_date",
            "is not a timestamp string",
        ),
        (
            r#""revenue_total":"47,50""#,
            "revenue_total",
            "is a string that is not a JSON number",
        ),
        (
            r#""revenue_total":true"#,
            "revenue_total",
            "is not a JSON number",
        ),
        (
            r#""phone_number":14155559876"#,
            "phone_number",
            "appears more than once",
        ),
    ] {
        let (f, value, r) = invalid(extra);
        assert_eq!((f.as_str(), r.as_str()), (field, reason), "{extra}");
        assert_eq!(value, extra.split_once(':').unwrap().1, "{extra}");
    }
}

#[test]
fn wrong_type_of_a_required_field_is_invalid() {
    let mut d = decoder(InvalidPolicy::Fail);
    let err = push_contacts(
        &mut d,
        9,
        [br#"{"phone_number":14155559876,"list_number":"+18005551234"}"#.as_slice()],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("page 9, record 0: field `phone_number` is not a string: 14155559876"),
        "{err}"
    );
}

#[test]
fn bad_timestamps_are_invalid() {
    for value in [
        r#""yesterday""#,
        r#""2025-13-01T00:00:00""#,
        r#""2025-02-30T00:00:00""#,
        r#""2025-03-15T25:00:00""#,
        r#""2025-03-15T14:30:00.123456789""#,
        r#""""#,
    ] {
        let (field, v, reason) = invalid(&format!(r#""last_sent_at":{value}"#));
        assert_eq!(field, "last_sent_at");
        assert_eq!(v, value);
        assert!(
            reason == "is not an ISO-8601 timestamp" || reason.contains("sub-microsecond"),
            "{value}: {reason}"
        );
    }
}

#[test]
fn timestamps_accept_naive_z_offsets_and_fractions() {
    let micros = |text: &str| {
        let b = one(&format!(r#""signup_date":"{text}""#));
        b.column(col::SIGNUP_DATE)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0)
    };
    let base = Utc
        .with_ymd_and_hms(2025, 3, 15, 14, 30, 0)
        .unwrap()
        .timestamp_micros();
    assert_eq!(micros("2025-03-15T14:30:00"), base);
    assert_eq!(micros("2025-03-15 14:30:00"), base);
    assert_eq!(micros("2025-03-15T14:30:00Z"), base);
    assert_eq!(micros("2025-03-15T16:30:00+02:00"), base);
    assert_eq!(micros("2025-03-15T09:30:00-05:00"), base);
    assert_eq!(micros("2025-03-15T14:30:00.5"), base + 500_000);
    assert_eq!(micros("2025-03-15T14:30:00.123456"), base + 123_456);
    assert_eq!(micros("2025-03-15T14:30:00.123456000Z"), base + 123_456);
    assert_eq!(micros("2025-03-15T14:30:00.000001+00:00"), base + 1);
    assert_eq!(micros("2025-03-15T00:00:00"), micros("2025-03-15"));
}

/// The unscaled `revenue_total` of `{BASE, "revenue_total": value}` and whether it was rounded.
fn revenue(value: &str) -> (i128, bool) {
    let json = format!(r#"{{{BASE},"revenue_total":{value}}}"#);
    let mut d = decoder(InvalidPolicy::Fail);
    push_contacts(&mut d, 1, [json.as_bytes()]).unwrap_or_else(|e| panic!("{json}: {e}"));
    let b = d.flush().unwrap().unwrap();
    let column = b
        .column(col::REVENUE_TOTAL)
        .as_primitive::<Decimal128Type>();
    assert!(column.is_valid(0), "{value}");
    (column.value(0), d.rounded_values() == 1)
}

#[test]
fn revenue_that_fits_is_stored_exactly() {
    for (text, unscaled) in [
        ("0", 0),
        ("47.5", 475_000),
        ("47.50", 475_000),
        ("47.5000000", 475_000),
        ("1234567.89", 12_345_678_900),
        ("0.0001", 1),
        ("-3", -30_000),
        ("1e2", 1_000_000),
        ("4.75e1", 475_000),
        ("4750E-2", 475_000),
        ("4.75E+1", 475_000),
        ("99999999999999.9999", 999_999_999_999_999_999),
    ] {
        assert_eq!(revenue(text), (unscaled, false), "{text}");
    }
}

#[test]
fn revenue_beyond_four_decimals_rounds_half_to_even_and_is_counted() {
    for (text, unscaled) in [
        ("0.00005", 0),
        ("0.00015", 2),
        ("-0.00015", -2),
        ("0.00025", 2),
        ("0.000250001", 3),
        ("1e-5", 0),
        ("47.12345", 471_234),
        ("47.12355", 471_236),
        ("47.5000000000001", 475_000),
        ("0.30000000000000004", 3_000),
        ("0.1e-3", 1),
        ("0.15e-3", 2),
        ("99999999999999.99994", 999_999_999_999_999_999),
        ("99999999999999.99985", 999_999_999_999_999_998),
    ] {
        // `0.1e-3` is exactly 0.0001: not rounded.
        let rounded = text != "0.1e-3";
        assert_eq!(revenue(text), (unscaled, rounded), "{text}");
    }
}

#[test]
fn revenue_as_a_decimal_string_is_read_as_its_number() {
    for (text, unscaled, rounded) in [
        (r#""47.50""#, 475_000, false),
        (r#""-0.5""#, -5_000, false),
        (r#""1e2""#, 1_000_000, false),
        (r#""0""#, 0, false),
        (r#""4750E-2""#, 475_000, false),
        (r#""0.30000000000000004""#, 3_000, true),
        (r#""-0.00015""#, -2, true),
    ] {
        assert_eq!(revenue(text), (unscaled, rounded), "{text}");
    }
}

#[test]
fn revenue_negative_zero_is_zero() {
    for text in ["-0", "-0.0", "-0e5", r#""-0.00""#] {
        assert_eq!(revenue(text), (0, false), "{text}");
    }
    assert_eq!(revenue("-0.00001"), (0, true));
    assert_eq!(revenue("-0.00005"), (0, true));
}

#[test]
fn revenue_overflow_is_invalid_also_after_the_carry_of_rounding() {
    for text in [
        "100000000000000",
        "1e14",
        "1e20",
        "99999999999999.99995",
        "-99999999999999.99995",
        r#""99999999999999.99995""#,
    ] {
        let (field, value, reason) = invalid(&format!(r#""revenue_total":{text}"#));
        assert_eq!((field.as_str(), value.as_str()), ("revenue_total", text));
        assert!(reason.contains("more than 14 integer digits"), "{reason}");
    }
}

#[test]
fn revenue_that_is_not_a_number_is_invalid() {
    for (text, reason) in [
        (r#""abc""#, "is a string that is not a JSON number"),
        (r#""""#, "is a string that is not a JSON number"),
        (r#"" 47.50""#, "is a string that is not a JSON number"),
        (r#""47.50 ""#, "is a string that is not a JSON number"),
        (r#""+47.50""#, "is a string that is not a JSON number"),
        (r#""047.50""#, "is a string that is not a JSON number"),
        (r#"".5""#, "is a string that is not a JSON number"),
        (r#""NaN""#, "is a string that is not a JSON number"),
        (r#""\u0034\u0037""#, "is a string that is not a JSON number"),
        ("true", "is not a JSON number"),
        (r#"{"amount":47.5}"#, "is not a JSON number"),
        ("[47.5]", "is not a JSON number"),
    ] {
        let (field, value, r) = invalid(&format!(r#""revenue_total":{text}"#));
        assert_eq!(
            (field.as_str(), value.as_str(), r.as_str()),
            ("revenue_total", text, reason)
        );
    }
}

#[test]
fn rounded_values_count_only_accepted_rows() {
    let rows = [
        format!(r#"{{{BASE},"revenue_total":0.30000000000000004}}"#),
        format!(r#"{{{BASE},"revenue_total":"47.12345"}}"#),
        format!(r#"{{{BASE},"revenue_total":47.50}}"#),
        // Rounded, but rejected for another field: not counted.
        format!(r#"{{{BASE},"revenue_total":1.00001,"list_id":"x"}}"#),
        format!(r#"{{{BASE},"revenue_total":"abc"}}"#),
        format!(r#"{{{BASE},"revenue_total":null}}"#),
    ];
    let mut q = decoder(InvalidPolicy::Quarantine);
    push_contacts(&mut q, 1, rows.iter().map(|r| r.as_bytes())).unwrap();
    assert_eq!((q.rows(), q.rejects(), q.rounded_values()), (4, 2, 2));
    let b = q.flush().unwrap().unwrap();
    let column = b
        .column(col::REVENUE_TOTAL)
        .as_primitive::<Decimal128Type>();
    let values: Vec<Option<String>> = (0..b.num_rows())
        .map(|i| column.is_valid(i).then(|| column.value_as_string(i)))
        .collect();
    assert_eq!(
        values,
        [
            Some("0.3000".to_owned()),
            Some("47.1234".to_owned()),
            Some("47.5000".to_owned()),
            None
        ]
    );
}

#[test]
fn non_standard_tokens_and_raw_control_characters_name_their_field() {
    for token in ["NaN", "Infinity", "-Infinity"] {
        let (field, value, reason) = invalid(&format!(r#""revenue_total":{token},"x":1"#));
        assert_eq!((field.as_str(), value.as_str()), ("revenue_total", token));
        assert!(reason.contains("not valid JSON"), "{reason}");
    }
    let (field, value, _) = invalid("\"signup_method\":\"ap\u{1}i\"");
    assert_eq!(field, "signup_method");
    assert!(
        value.contains("\\u{1}"),
        "control character shown escaped: {value}"
    );
    let (field, _, _) = invalid("\"extra_thing\":NaN");
    assert_eq!(field, "extra_thing", "an undocumented field is named too");
}

#[test]
fn required_fields_missing_or_null_are_invalid() {
    for (json, field, value) in [
        (
            r#"{"list_number":"+18005551234"}"#,
            "phone_number",
            "(missing)",
        ),
        (
            r#"{"phone_number":null,"list_number":"+18005551234"}"#,
            "phone_number",
            "null",
        ),
        (
            r#"{"phone_number":"+14155559876"}"#,
            "list_number",
            "(missing)",
        ),
        (
            r#"{"phone_number":"+14155559876","list_number":null}"#,
            "list_number",
            "null",
        ),
    ] {
        let mut d = decoder(InvalidPolicy::Fail);
        let err = push_contacts(&mut d, 2, [json.as_bytes()]).unwrap_err();
        let DecodeError::InvalidRecord(reject) = err else {
            panic!("{err}");
        };
        let Reject {
            field: f,
            value: v,
            reason,
            ..
        } = *reject;
        assert_eq!(
            (f.as_str(), v.as_str(), reason.as_str()),
            (field, value, "is required")
        );

        let mut q = decoder(InvalidPolicy::Quarantine);
        push_contacts(&mut q, 2, [json.as_bytes()]).unwrap();
        let rejects = q.take_rejects();
        assert_eq!(rejects[0].field, field);
        assert_eq!(rejects[0].raw, json);
        assert!(q.flush().unwrap().is_none());
    }
}

#[test]
fn duplicate_top_level_keys_are_invalid() {
    let (field, value, reason) = invalid(r#""list_id":1,"list_id":2"#);
    assert_eq!((field.as_str(), value.as_str()), ("list_id", "2"));
    assert_eq!(reason, "appears more than once");
    let (field, _, reason) = invalid(r#""new_thing":1,"new_thing":2"#);
    assert_eq!(
        (field.as_str(), reason.as_str()),
        ("new_thing", "appears more than once")
    );
}

#[test]
fn malformed_objects_are_invalid_records() {
    // Objects the envelope can still frame; what it cannot frame fails the page instead.
    let mut q = decoder(InvalidPolicy::Quarantine);
    push_contacts(
        &mut q,
        4,
        [
            b"{,}".as_slice(),
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{\"phone_number\":\"+1\",\"x\":\"\xff\"}",
        ],
    )
    .unwrap();
    let rejects = q.take_rejects();
    let shown: Vec<(&str, &str)> = rejects
        .iter()
        .map(|r| (r.field.as_str(), r.value.as_str()))
        .collect();
    // Broken JSON is blamed on the key it follows, if any.
    assert_eq!(
        shown,
        [
            ("(record)", "{,}"),
            ("a", "}"),
            ("a", "1"),
            ("(record)", "{\"phone_number\":\"+1\",\"x\":\"\u{fffd}\"}")
        ]
    );
    assert!(
        rejects[0]
            .reason
            .starts_with("is not a valid contact object")
    );
    assert!(rejects[1].reason.starts_with("is not valid JSON"));
    assert!(rejects[3].reason.starts_with("is not valid UTF-8"));
    assert_eq!(
        rejects[3].raw,
        "{\"phone_number\":\"+1\",\"x\":\"\u{fffd}\"}"
    );
}

#[test]
fn long_invalid_values_are_cut_in_errors() {
    let long = "x".repeat(5000);
    let (_, value, _) = invalid(&format!(r#""list_id":"{long}""#));
    assert!(value.len() < 260, "{}", value.len());
    assert!(value.ends_with("(5002 bytes in all)"));
}

#[test]
fn unknown_fields_go_to_extra_as_compact_json() {
    let mut d = decoder(InvalidPolicy::Fail);
    let json = format!(
        r#"{{{BASE},"loyalty_tier":"gold","nested" : {{ "a" : [1, 2] }},"list_id":4,"n\"q":null}}"#
    );
    push_contacts(
        &mut d,
        1,
        [json.as_bytes(), format!("{{{BASE}}}").as_bytes()],
    )
    .unwrap();
    let b = d.flush().unwrap().unwrap();
    let extra = b.column(col::EXTRA).as_string::<i32>();
    assert_eq!(
        extra.value(0),
        r#"{"loyalty_tier":"gold","nested":{"a":[1,2]},"n\"q":null}"#
    );
    assert!(extra.is_null(1));
    assert_eq!(d.unknown_fields(), 3);
    let parsed: serde_json::Value = serde_json::from_str(extra.value(0)).unwrap();
    assert_eq!(parsed["nested"]["a"][1], 2);
}

#[test]
fn batches_are_cut_at_batch_size() {
    let mut d = ContactBatcher::new(options(InvalidPolicy::Fail).with_batch_size(4)).unwrap();
    let rows: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"phone_number":"+1415555{i:04}","list_number":"+18005551234"}}"#))
        .collect();
    push_contacts(&mut d, 1, rows[..3].iter().map(|r| r.as_bytes())).unwrap();
    assert!(d.next_batch().is_none());
    push_contacts(&mut d, 2, rows[3..].iter().map(|r| r.as_bytes())).unwrap();
    assert_eq!(d.next_batch().unwrap().num_rows(), 4);
    assert_eq!(d.next_batch().unwrap().num_rows(), 4);
    assert!(d.next_batch().is_none());
    assert_eq!(d.buffered_rows(), 2);
    let last = d.flush().unwrap().unwrap();
    assert_eq!(last.num_rows(), 2);
    assert_eq!(
        last.column(col::PHONE_NUMBER).as_string::<i32>().value(1),
        "+14155550009"
    );
    assert!(d.flush().unwrap().is_none());
    assert_eq!(d.rows(), 10);
}

#[test]
fn flush_returns_queued_full_batches_before_the_partial_one() {
    let mut d = ContactBatcher::new(options(InvalidPolicy::Fail).with_batch_size(2)).unwrap();
    let row = format!("{{{BASE}}}");
    push_contacts(&mut d, 1, std::iter::repeat_n(row.as_bytes(), 5)).unwrap();
    let sizes: Vec<usize> = std::iter::from_fn(|| d.flush().unwrap())
        .map(|b| b.num_rows())
        .collect();
    assert_eq!(sizes, [2, 2, 1]);
}

#[test]
fn zero_batch_size_is_refused() {
    let err = ContactBatcher::new(options(InvalidPolicy::Fail).with_batch_size(0)).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::InvalidOption {
            option: "batch_size",
            ..
        }
    ));
}

#[test]
fn decode_page_numbers_records_from_the_page() {
    let body = format!(
        r#"{{"contacts":[{{{BASE}}},{{{BASE},"list_id":"x"}}],"pagination":{{"page":5,"per_page":2,"total":2,"total_pages":1}}}}"#
    );
    let page = Page::parse(5, Pass::Main, bytes::Bytes::from(body)).unwrap();
    let mut d = decoder(InvalidPolicy::Fail);
    let err = d.push_page(&page).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("page 5, record 1: field `list_id`"),
        "{err}"
    );
}

#[test]
fn timestamp_fast_path_agrees_with_arrow() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut checked = 0;
    for _ in 0..20_000 {
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            next(10_000),
            next(14),
            next(33),
            next(26),
            next(62),
            next(62)
        );
        let fast = naive_seconds_micros(text.as_bytes());
        let arrow = arrow_cast::parse::string_to_datetime(&Utc, &text)
            .ok()
            .map(|d| d.timestamp_micros());
        if let Some(fast) = fast {
            assert_eq!(Some(fast), arrow, "{text}");
            checked += 1;
        }
        // The fast path may decline (leap seconds and the like); it must never accept what
        // arrow refuses, which the assert above covers.
    }
    assert!(checked > 5_000, "{checked}");
    assert_eq!(naive_seconds_micros(b"1970-01-01T00:00:00"), Some(0));
    assert_eq!(
        naive_seconds_micros(b"2024-02-29T00:00:00"),
        Some(1_709_164_800_000_000)
    );
    assert_eq!(naive_seconds_micros(b"2023-02-29T00:00:00"), None);
    assert_eq!(
        naive_seconds_micros(b"0001-01-01T00:00:00"),
        Some(-62_135_596_800_000_000)
    );
}
