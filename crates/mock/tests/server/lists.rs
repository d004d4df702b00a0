//! `GET /v2/lists`: the documented shape, the `status` filter, auth, optional paging, and
//! consistency with the contacts the same server serves.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::Value;
use trackly_mock::{DatasetConfig, DriftKind, Faults, MockConfig, MockServer};

use crate::{get, get_with_key, json, lines, start};

async fn paged(per_page: u32) -> MockServer {
    MockServer::start(MockConfig {
        dataset: DatasetConfig {
            seed: 11,
            contacts: 400,
            lists: 9,
            ..DatasetConfig::default()
        },
        lists_per_page: Some(per_page),
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

fn lists(answer: &Value) -> Vec<Value> {
    answer["lists"].as_array().unwrap().clone()
}

#[tokio::test]
async fn default_and_deleted_answers_together_are_the_ground_truth() {
    let server = start(2_000, Faults::default()).await;
    let default = get(&server, "/v2/lists").await;
    assert_eq!(default.status, StatusCode::OK);
    assert_eq!(default.header("content-type"), Some("application/json"));
    let v = default.json();
    assert_eq!(v.as_object().unwrap().len(), 1, "no pagination block: {v}");
    let mut all = lists(&v);
    assert_eq!(all.len(), 3, "deleted lists are left out by default");
    let deleted = lists(&get(&server, "/v2/lists?status=deleted").await.json());
    assert!(!deleted.is_empty() && deleted.iter().all(|l| l["status"] == "deleted"));
    all.extend(deleted);
    all.sort_by_key(|l| l["id"].as_i64());
    let truth: Vec<Value> = lines(&server.lists_ground_truth())
        .into_iter()
        .map(json)
        .collect();
    assert_eq!(all, truth);
    let stats = server.stats();
    assert_eq!((stats.lists_served, stats.requests), (2, 2));
    assert_eq!(stats.pages_served, 0, "lists are not contacts pages");
}

#[tokio::test]
async fn list_ids_numbers_and_counts_agree_with_the_contacts_after_drift() {
    let server = start(
        1_500,
        Faults {
            drift: vec![trackly_mock::Drift {
                after_request: 0,
                kind: DriftKind::Delete(300),
            }],
            ..Faults::default()
        },
    )
    .await;
    let mut active: HashMap<(i64, String), u64> = HashMap::new();
    let truth = server.ground_truth(None, None);
    for line in lines(&truth) {
        let c = json(line);
        let key = (
            c["list_id"].as_i64().unwrap(),
            c["list_number"].as_str().unwrap().to_owned(),
        );
        *active.entry(key).or_default() += u64::from(c["active"] == true);
    }
    let served = lists(&get(&server, "/v2/lists").await.json());
    assert_eq!(served.len(), active.len());
    for list in served {
        let key = (
            list["id"].as_i64().unwrap(),
            list["phone_number"].as_str().unwrap().to_owned(),
        );
        assert_eq!(list["contact_count"].as_u64(), active.get(&key).copied());
    }
}

#[tokio::test]
async fn keys_statuses_and_parameters_are_checked() {
    let server = start(100, Faults::default()).await;
    let a = get_with_key(&server, "/v2/lists", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = get_with_key(&server, "/v2/lists", Some("trk_wrong")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = get(&server, "/v2/lists?status=archived").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error().0, "invalid_parameter");
    assert_eq!(a.error().1.as_deref(), Some("status"));
    for status in ["active", "paused", "suspended", "deleted"] {
        let v = get(&server, &format!("/v2/lists?status={status}"))
            .await
            .json();
        assert!(lists(&v).iter().all(|l| l["status"] == status), "{v}");
    }
    // Unpaged: page and per_page are ignored.
    let v = get(&server, "/v2/lists?page=5&per_page=1").await.json();
    assert_eq!(lists(&v).len(), 3);
}

#[tokio::test]
async fn with_lists_per_page_answers_are_paged_with_a_pagination_block() {
    let server = paged(4).await;
    let mut seen = Vec::new();
    for page in 1..=3 {
        let v = get(&server, &format!("/v2/lists?page={page}&per_page=100"))
            .await
            .json();
        assert_eq!(
            v["pagination"],
            serde_json::json!({"page": page, "per_page": 4, "total": 9, "total_pages": 3}),
        );
        seen.extend(lists(&v));
    }
    assert_eq!(seen.len(), 9);
    let past = get(&server, "/v2/lists?page=4").await.json();
    assert!(lists(&past).is_empty());
    // per_page below the server's page size is honoured; above 100 is clamped.
    let v = get(&server, "/v2/lists?status=deleted&per_page=1")
        .await
        .json();
    assert_eq!(v["pagination"]["per_page"], 1);
    assert_eq!(v["pagination"]["total"], 3);
    let wide = paged(1_000).await;
    let v = get(&wide, "/v2/lists?per_page=5000").await.json();
    assert_eq!(v["pagination"]["per_page"], 100);
}

#[tokio::test]
async fn one_list_is_served_by_id_and_an_unknown_id_is_not_found() {
    let server = start(2_000, Faults::default()).await;
    let truth: Vec<Value> = lines(&server.lists_ground_truth())
        .into_iter()
        .map(json)
        .collect();
    for list in &truth {
        let one = get(&server, &format!("/v2/lists/{}", list["id"])).await;
        assert_eq!(one.status, StatusCode::OK);
        assert_eq!(&one.json(), list);
    }
    let missing = get(&server, "/v2/lists/999999").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error().0, "not_found");
    let a = get_with_key(&server, &format!("/v2/lists/{}", truth[0]["id"]), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn with_lists_churn_the_biggest_list_flips_on_every_listing() {
    let server = MockServer::start(MockConfig {
        dataset: DatasetConfig {
            seed: 11,
            contacts: 400,
            lists: 9,
            ..DatasetConfig::default()
        },
        lists_churn: true,
        ..MockConfig::default()
    })
    .await
    .unwrap();
    let biggest = json(lines(&server.lists_ground_truth())[0]);
    let id = &biggest["id"];
    let holds = |v: &Value| lists(v).iter().any(|l| &l["id"] == id);
    // Request 1 flips it to deleted, request 2 back: neither answer holds it.
    assert!(!holds(&get(&server, "/v2/lists").await.json()));
    assert!(!holds(
        &get(&server, "/v2/lists?status=deleted").await.json()
    ));
    assert_eq!(
        get(&server, &format!("/v2/lists/{id}")).await.json(),
        biggest
    );
    assert!(holds(
        &get(&server, "/v2/lists?status=deleted").await.json()
    ));
    let one = get(&server, &format!("/v2/lists/{id}")).await.json();
    assert_eq!(one["status"], "deleted");
}
