//! The documented API: shape, auth, routing, filters, sort order, pagination, parameters.

use reqwest::StatusCode;
use trackly_mock::Faults;

use crate::{expected_page, get, get_with_key, json, lines, start};

const FIELDS: [&str; 18] = [
    "phone_number",
    "list_number",
    "list_id",
    "active",
    "signup_date",
    "signup_method",
    "custom_fields",
    "carrier",
    "line_type",
    "timezone",
    "is_valid",
    "send_count",
    "click_count",
    "revenue_total",
    "conversion_count",
    "last_sent_at",
    "last_clicked_at",
    "in_workflow",
];

#[tokio::test]
async fn default_page_has_the_documented_shape_fields_and_content_type() {
    let server = start(1_234, Faults::default()).await;
    let a = get(&server, "/v2/contacts").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(
        a.header("content-length"),
        Some(a.body.len().to_string().as_str())
    );
    let v = a.json();
    assert_eq!(v.as_object().map(|o| o.len()), Some(2));
    assert_eq!(
        v["pagination"],
        serde_json::json!({"page": 1, "per_page": 50, "total": 1234, "total_pages": 25})
    );
    let contacts = v["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 50);
    let text = String::from_utf8_lossy(&a.body);
    for c in contacts {
        assert_eq!(c.as_object().map(|o| o.len()), Some(FIELDS.len()));
    }
    // The documented field order, in the text of the first contact.
    let first = &text[..text.find("},{\"phone_number\"").unwrap()];
    let positions: Vec<usize> = FIELDS
        .iter()
        .map(|f| first.find(&format!("\"{f}\":")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{first}");
}

#[tokio::test]
async fn a_missing_or_wrong_key_is_401_with_the_documented_body() {
    let server = start(10, Faults::default()).await;
    const MISSING: &str = r#"{"error":"API key required","code":"missing_api_key"}"#;
    const INVALID: &str = r#"{"error":"Invalid API key","code":"invalid_api_key"}"#;
    for (key, body) in [
        (None, MISSING),
        (Some("trk_wrong"), INVALID),
        (Some(""), INVALID),
    ] {
        let a = get_with_key(&server, "/v2/contacts", key).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(&a.body[..], body.as_bytes());
    }
    for path in ["/_mock/stats", "/_mock/ground_truth"] {
        let a = get_with_key(&server, path, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let server = start(10, Faults::default()).await;
    for path in [
        "/v2/contact",
        "/v2/contacts/",
        "/v1/contacts",
        "/../v2/contacts",
    ] {
        let a = get(&server, path).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(a.error().0, "not_found");
    }
    let client = crate::client();
    let url = format!("{}/v2/contacts", server.url());
    for method in [
        reqwest::Method::POST,
        reqwest::Method::DELETE,
        reqwest::Method::PUT,
    ] {
        let r = client
            .request(method.clone(), &url)
            .header("X-Api-Key", server.api_key())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(r.headers().get("allow").unwrap(), "GET");
        assert_eq!(
            json(&r.bytes().await.unwrap())["code"],
            "method_not_allowed"
        );
    }
}

#[tokio::test]
async fn list_and_active_filters_select_exactly_the_ground_truth() {
    let server = start(3_000, Faults::default()).await;
    let list = "+18885551234";
    for (active, query) in [
        (Some(true), "&active=true"),
        (Some(false), "&active=false"),
        (None, ""),
    ] {
        let truth = server.ground_truth(Some(list), active);
        let expected = lines(&truth);
        assert!(!expected.is_empty());
        let a = get(
            &server,
            &format!("/v2/contacts?list_number=%2B18885551234{query}&per_page=1000"),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
        let total = expected.len() as u64;
        let page: Vec<&[u8]> = expected.iter().take(1000).copied().collect();
        assert_eq!(&a.body[..], &expected_page(&page, 1, 1000, total)[..]);
        for c in a.json()["contacts"].as_array().unwrap() {
            assert_eq!(c["list_number"], list);
            if let Some(active) = active {
                assert_eq!(c["active"], active);
            }
        }
    }
    // Active alone.
    let a = get(&server, "/v2/contacts?active=false&per_page=1").await;
    let inactive = lines(&server.ground_truth(None, Some(false))).len();
    assert_eq!(a.json()["pagination"]["total"], inactive);
}

#[tokio::test]
async fn a_raw_plus_decodes_to_a_space_and_matches_nothing() {
    let server = start(500, Faults::default()).await;
    let encoded = get(&server, "/v2/contacts?list_number=%2B18005551234").await;
    assert!(encoded.json()["pagination"]["total"].as_u64().unwrap() > 0);
    for query in [
        "list_number=+18005551234",
        "list_number=18005551234",
        "list_number=%2B19995550000",
    ] {
        let a = get(&server, &format!("/v2/contacts?{query}")).await;
        assert_eq!(a.status, StatusCode::OK, "{query}");
        assert_eq!(
            &a.body[..],
            br#"{"contacts":[],"pagination":{"page":1,"per_page":50,"total":0,"total_pages":0}}"#,
            "{query}"
        );
    }
}

#[tokio::test]
async fn pages_concatenate_to_the_ground_truth_with_a_partial_last_page() {
    let server = start(1_234, Faults::default()).await;
    let truth = server.ground_truth(None, None);
    let all = lines(&truth);
    assert_eq!(all.len(), 1_234);
    for page in 1..=13u64 {
        let a = get(&server, &format!("/v2/contacts?page={page}&per_page=100")).await;
        let from = (page as usize - 1) * 100;
        let chunk = &all[from..(from + 100).min(all.len())];
        assert_eq!(chunk.len(), if page == 13 { 34 } else { 100 });
        assert_eq!(&a.body[..], &expected_page(chunk, page, 100, 1_234)[..]);
    }
    // Beyond the last page: empty contacts, the real pagination block.
    let a = get(&server, "/v2/contacts?page=14&per_page=100").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(&a.body[..], &expected_page(&[], 14, 100, 1_234)[..]);
    let a = get(
        &server,
        "/v2/contacts?page=9223372036854775807&per_page=1000",
    )
    .await;
    assert_eq!(a.json()["contacts"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn contacts_come_newest_first_and_ties_are_stable() {
    let server = start(2_000, Faults::default()).await;
    let truth = server.ground_truth(None, None);
    let dates: Vec<String> = lines(&truth)
        .iter()
        .map(|l| json(l)["signup_date"].as_str().unwrap().to_owned())
        .collect();
    let seconds: Vec<&str> = dates.iter().map(|d| &d[..19]).collect();
    assert!(seconds.windows(2).all(|w| w[0] >= w[1]));
    let shared = seconds.windows(2).filter(|w| w[0] == w[1]).count();
    assert!(shared > 50, "bulk imports share seconds: {shared}");
    // Same request, same bytes, on every page that crosses ties.
    for page in 1..=4 {
        let path = format!("/v2/contacts?page={page}&per_page=500");
        assert_eq!(
            get(&server, &path).await.body,
            get(&server, &path).await.body
        );
    }
}

#[tokio::test]
async fn out_of_range_parameters_behave_as_documented() {
    let server = start(120, Faults::default()).await;
    // Clamped, not rejected.
    let a = get(&server, "/v2/contacts?per_page=5000").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["pagination"]["per_page"], 1000);
    assert_eq!(a.json()["contacts"].as_array().map(Vec::len), Some(120));
    // Rejected, naming the parameter.
    for (query, parameter) in [
        ("per_page=0", "per_page"),
        ("per_page=-5", "per_page"),
        ("per_page=abc", "per_page"),
        ("per_page=", "per_page"),
        ("per_page=2.5", "per_page"),
        ("per_page=99999999999999999999", "per_page"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page=", "page"),
        ("active=yes", "active"),
        ("active=TRUE", "active"),
        ("active=1", "active"),
        ("list_number=abc", "list_number"),
        ("list_number=%2B1-800-555-1234", "list_number"),
        ("list_number=", "list_number"),
    ] {
        let a = get(&server, &format!("/v2/contacts?{query}")).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(a.header("content-type"), Some("application/json"));
        let (code, param) = a.error();
        assert_eq!(code, "invalid_parameter", "{query}");
        assert_eq!(param.as_deref(), Some(parameter), "{query}");
        let message = a.json()["message"].as_str().unwrap().to_owned();
        assert!(!message.is_empty(), "{query}");
    }
    // Beyond the last page.
    let a = get(&server, "/v2/contacts?page=3&per_page=100").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.json()["pagination"],
        serde_json::json!({"page": 3, "per_page": 100, "total": 120, "total_pages": 2})
    );
    assert_eq!(a.json()["contacts"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn an_empty_data_set_has_zero_total_pages() {
    let server = start(0, Faults::default()).await;
    let a = get(&server, "/v2/contacts").await;
    assert_eq!(
        &a.body[..],
        br#"{"contacts":[],"pagination":{"page":1,"per_page":50,"total":0,"total_pages":0}}"#
    );
}

#[tokio::test]
async fn mock_endpoints_serve_ground_truth_and_stats() {
    let server = start(800, Faults::default()).await;
    let a = get(
        &server,
        "/_mock/ground_truth?list_number=%2B18005551234&active=true",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some("application/x-ndjson"));
    assert_eq!(
        &a.body[..],
        &server.ground_truth(Some("+18005551234"), Some(true))[..]
    );
    let a = get(&server, "/_mock/ground_truth").await;
    assert_eq!(lines(&a.body).len(), 800);
    let a = get(&server, "/_mock/ground_truth?active=maybe").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    get(&server, "/v2/contacts").await;
    let a = get(&server, "/_mock/stats").await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["requests"], 1);
    assert_eq!(v["by_status"]["200"], 1);
    assert_eq!(v["pages_served"], 1);
    assert_eq!(v["contacts_served"], 50);
    // `/_mock/*` requests are not counted.
    assert_eq!(server.stats().requests, 1);
}

#[tokio::test]
async fn counters_add_up() {
    let server = start(300, Faults::default()).await;
    let mut bytes = 0;
    for path in [
        "/v2/contacts?per_page=100",
        "/v2/contacts?per_page=100&page=3",
        "/v2/contacts?per_page=100&page=4",
        "/v2/contacts?page=0",
        "/nope",
    ] {
        bytes += get(&server, path).await.body.len() as u64;
    }
    bytes += get_with_key(&server, "/v2/contacts", None).await.body.len() as u64;
    let stats = server.stats();
    assert_eq!(stats.requests, 6);
    assert_eq!(
        stats.by_status.into_iter().collect::<Vec<_>>(),
        vec![(200, 3), (400, 1), (401, 1), (404, 1)]
    );
    assert_eq!(stats.pages_served, 3);
    assert_eq!(stats.contacts_served, 200);
    assert_eq!(stats.bytes_served, bytes);
    assert_eq!(
        (
            stats.truncated,
            stats.resets,
            stats.slow,
            stats.rate_limited,
            stats.drift_events
        ),
        (0, 0, 0, 0, 0)
    );
}

#[tokio::test]
async fn shutdown_stops_accepting() {
    let server = start(10, Faults::default()).await;
    let url = format!("{}/v2/contacts", server.url());
    server.shutdown().await;
    assert!(crate::client().get(url).send().await.is_err());
}
