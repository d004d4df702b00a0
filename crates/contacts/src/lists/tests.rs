#![allow(clippy::unwrap_used)]

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use chrono::{TimeZone, Utc};

use super::*;
use crate::schema::{contacts_schema, duckdb_ddl_of, spark_ddl_of};
use crate::{DecodeError, DecoderOptions, InvalidPolicy};

const ACME: &[u8] = br#"{"id": 42, "phone_number": "+12025551234", "brand_name": "Acme Co", "list_name": "Acme Promo List", "list_type": "infobip", "status": "active", "contact_count": 15230, "created_at": "2025-03-15T14:30:00Z"}"#;

fn decoder(policy: InvalidPolicy) -> ListDecoder {
    let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
    ListDecoder::new(DecoderOptions::new("run-7", started).with_on_invalid(policy))
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let column = batch.column_by_name(name).unwrap().as_string::<i32>();
    (0..column.len())
        .map(|i| column.is_valid(i).then(|| column.value(i).to_owned()))
        .collect()
}

fn ints(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let column = batch
        .column_by_name(name)
        .unwrap()
        .as_primitive::<Int64Type>();
    (0..column.len())
        .map(|i| column.is_valid(i).then(|| column.value(i)))
        .collect()
}

/// The `InvalidList` error of decoding `list` alone under `Fail`.
fn invalid(list: &str) -> (String, String, String) {
    let err = decoder(InvalidPolicy::Fail)
        .decode_raw("GET /v2/lists, page 1", [list.as_bytes()])
        .unwrap_err();
    match err {
        DecodeError::InvalidList(reject) => (reject.field, reject.value, reject.reason),
        other => panic!("{other}"),
    }
}

#[test]
fn schema_has_the_documented_columns_the_extra_and_the_contacts_lineage() {
    let schema = lists_schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "id",
            "phone_number",
            "brand_name",
            "list_name",
            "list_type",
            "status",
            "contact_count",
            "created_at",
            "_extra",
            "_extracted_at",
            "_run_id"
        ]
    );
    assert!(!schema.field(0).is_nullable());
    assert!(schema.fields()[1..9].iter().all(|f| f.is_nullable()));
    let contacts = contacts_schema();
    let n = contacts.fields().len();
    assert_eq!(&schema.fields()[9..], &contacts.fields()[n - 2..]);
    assert_eq!(
        schema.field_with_name("created_at").unwrap().data_type(),
        contacts.field_with_name("signup_date").unwrap().data_type()
    );
}

#[test]
fn ddl_gives_bigint_ids_and_utc_timestamps() {
    let duck = duckdb_ddl_of(&lists_schema(), "lists");
    assert!(duck.starts_with("CREATE TABLE lists ("), "{duck}");
    assert!(duck.contains("\"id\" BIGINT NOT NULL,"), "{duck}");
    assert!(duck.contains("\"contact_count\" BIGINT,"), "{duck}");
    assert!(
        duck.contains("\"created_at\" TIMESTAMP WITH TIME ZONE,"),
        "{duck}"
    );
    assert!(!duck.contains("unsupported"));
    let spark = spark_ddl_of(&lists_schema(), "lists");
    assert!(spark.contains("`created_at` TIMESTAMP,"), "{spark}");
    assert!(spark.contains("`_run_id` STRING NOT NULL"), "{spark}");
    assert!(spark.ends_with("USING PARQUET"));
}

#[test]
fn the_documented_example_decodes_exactly() {
    let mut d = decoder(InvalidPolicy::Fail);
    d.decode_raw("GET /v2/lists, page 1", [ACME]).unwrap();
    let batch = d.finish().unwrap();
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(batch.schema(), lists_schema());
    assert_eq!(ints(&batch, "id"), [Some(42)]);
    assert_eq!(ints(&batch, "contact_count"), [Some(15230)]);
    assert_eq!(
        strings(&batch, "list_name"),
        [Some("Acme Promo List".into())]
    );
    assert_eq!(strings(&batch, "_extra"), [None]);
    assert_eq!(strings(&batch, "_run_id"), [Some("run-7".into())]);
    let created = batch
        .column_by_name("created_at")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(
        created.value(0),
        Utc.with_ymd_and_hms(2025, 3, 15, 14, 30, 0)
            .unwrap()
            .timestamp_micros()
    );
    assert_eq!(d.stats(), crate::DecodeStats::default());
}

#[test]
fn a_list_met_again_replaces_the_earlier_row_and_rows_come_in_id_order() {
    let mut d = decoder(InvalidPolicy::Fail);
    d.decode_raw(
        "GET /v2/lists, page 1",
        [
            &br#"{"id": 57, "status": "active"}"#[..],
            br#"{"id": 42, "status": "active", "contact_count": 3}"#,
        ],
    )
    .unwrap();
    d.decode_raw(
        "GET /v2/lists?status=deleted, page 1",
        [
            &br#"{"id": 42, "status": "deleted", "contact_count": 0}"#[..],
            br#"{"id": 12, "status": "deleted"}"#,
        ],
    )
    .unwrap();
    assert_eq!(d.lists(), 3);
    let batch = d.finish().unwrap();
    assert_eq!(ints(&batch, "id"), [Some(12), Some(42), Some(57)]);
    assert_eq!(
        strings(&batch, "status"),
        [
            Some("deleted".into()),
            Some("deleted".into()),
            Some("active".into())
        ]
    );
    assert_eq!(ints(&batch, "contact_count"), [None, Some(0), None]);
    assert_eq!(d.stats().replaced, 1);
    assert_eq!(
        d.finish().unwrap().num_rows(),
        0,
        "finish empties the decoder"
    );
}

#[test]
fn types_are_strict() {
    for (list, field, reason) in [
        (r#"{"id": "42"}"#, "id", "is not an integer that fits i64"),
        (r#"{"id": 42.0}"#, "id", "is not an integer that fits i64"),
        (
            r#"{"id": 9223372036854775808}"#,
            "id",
            "is not an integer that fits i64",
        ),
        (
            r#"{"id": 1, "contact_count": 1e3}"#,
            "contact_count",
            "is not an integer that fits i64",
        ),
        (
            r#"{"id": 1, "phone_number": 12025551234}"#,
            "phone_number",
            "is not a string",
        ),
        (
            r#"{"id": 1, "status": ["active"]}"#,
            "status",
            "is not a string",
        ),
        (
            r#"{"id": 1, "created_at": "yesterday"}"#,
            "created_at",
            "is not an ISO-8601 timestamp",
        ),
        (
            r#"{"id": 1, "created_at": 1742049000}"#,
            "created_at",
            "is not a timestamp string",
        ),
        (
            r#"{"id": 1, "status": "active", "status": "deleted"}"#,
            "status",
            "appears more than once",
        ),
        (
            r#"{"id": 1, "x": 1, "x": 2}"#,
            "x",
            "appears more than once",
        ),
    ] {
        let (got_field, _, got_reason) = invalid(list);
        assert_eq!(
            (got_field.as_str(), got_reason.as_str()),
            (field, reason),
            "{list}"
        );
    }
    assert_eq!(
        invalid(r#"{"phone_number": "+18005551234"}"#),
        ("id".into(), "(missing)".into(), "is required".into())
    );
    assert_eq!(invalid(r#"{"id": null}"#).1, "null");
    let (field, value, reason) = invalid(r#"{"id": NaN}"#);
    assert_eq!(field, "(record)");
    assert!(
        value.contains("NaN") && reason.contains("not a valid list object"),
        "{reason}"
    );
}

#[test]
fn the_error_names_the_answer_the_position_the_field_and_the_value() {
    let mut d = decoder(InvalidPolicy::Fail);
    let err = d
        .decode_raw(
            "GET /v2/lists?status=deleted, page 2",
            [ACME, br#"{"id": 7, "contact_count": "many"}"#],
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"GET /v2/lists?status=deleted, page 2, list 1: field `contact_count` is not an integer that fits i64: "many""#
    );
    assert!(err.is_invalid_data());
    assert_eq!(d.rejects(), 1);
}

#[test]
fn under_quarantine_invalid_lists_are_kept_verbatim_and_the_rest_lands() {
    let mut d = decoder(InvalidPolicy::Quarantine);
    let bad = br#"{"id": 7, "created_at": "2025-13-01T00:00:00Z"}"#;
    d.decode_raw("GET /v2/lists, page 1", [&bad[..], ACME])
        .unwrap();
    let rejects = d.take_rejects();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].request, "GET /v2/lists, page 1");
    assert_eq!(rejects[0].index, 0);
    assert_eq!(rejects[0].field, "created_at");
    assert_eq!(rejects[0].raw.as_bytes(), bad);
    assert_eq!(d.finish().unwrap().num_rows(), 1);
}

#[test]
fn undocumented_values_and_fields_are_kept_and_counted() {
    let mut d = decoder(InvalidPolicy::Fail);
    d.decode_raw(
        "GET /v2/lists, page 1",
        [
            &br#"{"id": 1, "list_type": "bandwidth", "status": "archived", "region": "us-east", "tags": [ "a", "b" ]}"#[..],
            br#"{"id": 2, "list_type": "bandwidth"}"#,
        ],
    )
    .unwrap();
    let batch = d.finish().unwrap();
    assert_eq!(
        strings(&batch, "list_type"),
        [Some("bandwidth".into()), Some("bandwidth".into())]
    );
    assert_eq!(
        strings(&batch, "_extra"),
        [
            Some(r#"{"region":"us-east","tags":["a","b"]}"#.into()),
            None
        ]
    );
    let stats = d.stats();
    assert_eq!((stats.unknown_values, stats.unknown_fields), (3, 2));
}

#[test]
fn timestamps_with_an_offset_or_none_are_instants() {
    let mut d = decoder(InvalidPolicy::Fail);
    d.decode_raw(
        "GET /v2/lists, page 1",
        [
            &br#"{"id": 1, "created_at": "2025-03-15T14:30:00Z"}"#[..],
            br#"{"id": 2, "created_at": "2025-03-15T16:30:00+02:00"}"#,
            br#"{"id": 3, "created_at": "2025-03-15T14:30:00"}"#,
            br#"{"id": 4, "created_at": "2025-03-15T14:30:00.123456Z"}"#,
        ],
    )
    .unwrap();
    let batch = d.finish().unwrap();
    let created = batch
        .column_by_name("created_at")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    let at = Utc
        .with_ymd_and_hms(2025, 3, 15, 14, 30, 0)
        .unwrap()
        .timestamp_micros();
    assert_eq!(created.values().to_vec(), [at, at, at, at + 123_456]);
}
