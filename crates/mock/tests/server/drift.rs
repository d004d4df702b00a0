//! Drift: the data set changing while a client pages through it.

use trackly_mock::{Drift, DriftKind, Faults};

use crate::{get, json, lines, start};

fn drift(after_request: u64, kind: DriftKind) -> Faults {
    Faults {
        drift: vec![Drift {
            after_request,
            kind,
        }],
        ..Faults::default()
    }
}

#[tokio::test]
async fn inserted_contacts_appear_on_top_after_the_kth_request() {
    let server = start(500, drift(2, DriftKind::Insert(5))).await;
    let before = get(&server, "/v2/contacts").await.body;
    // Request 2 is still answered from the old state...
    assert_eq!(get(&server, "/v2/contacts").await.body, before);
    assert_eq!(server.stats().drift_events, 1);
    assert_eq!(server.contact_count(), 505);
    // ...and request 3 sees the new contacts on top of page 1.
    let after = json(&get(&server, "/v2/contacts").await.body);
    let old = json(&before);
    assert_eq!(after["pagination"]["total"], 505);
    let contacts = after["contacts"].as_array().unwrap();
    let newest_old = old["contacts"][0]["signup_date"].as_str().unwrap();
    for c in &contacts[..5] {
        assert!(c["signup_date"].as_str().unwrap() > newest_old);
    }
    assert_eq!(contacts[5], old["contacts"][0]);
    // Ground truth reflects the drift, in served order.
    let truth = server.ground_truth(None, None);
    let truth = lines(&truth);
    assert_eq!(truth.len(), 505);
    for (line, c) in truth.iter().zip(contacts) {
        assert_eq!(&json(line), c);
    }
    // Applied once only.
    get(&server, "/v2/contacts").await;
    assert_eq!(server.contact_count(), 505);
}

#[tokio::test]
async fn deleted_contacts_shrink_the_total() {
    let server = start(1_000, drift(1, DriftKind::Delete(100))).await;
    let first = json(&get(&server, "/v2/contacts").await.body);
    assert_eq!(first["pagination"]["total"], 1_000);
    let second = json(&get(&server, "/v2/contacts").await.body);
    assert_eq!(second["pagination"]["total"], 900);
    assert_eq!(second["pagination"]["total_pages"], 18);
    assert_eq!(lines(&server.ground_truth(None, None)).len(), 900);
    assert_eq!(server.stats().drift_events, 1);
}

#[tokio::test]
async fn every_contacts_request_counts_and_set_faults_restarts_the_count() {
    let server = start(100, Faults::default()).await;
    get(&server, "/v2/contacts").await;
    get(&server, "/v2/contacts?page=0").await; // 400 counts too
    get(&server, "/v2/contacts").await;
    server.set_faults(drift(2, DriftKind::Insert(3)));
    get(&server, "/v2/contacts").await;
    assert_eq!(server.contact_count(), 100);
    get(&server, "/nope").await; // not a contacts request
    assert_eq!(server.contact_count(), 100);
    crate::get_with_key(&server, "/v2/contacts", None).await; // 401 counts
    assert_eq!(server.contact_count(), 103);
    // `after_request: 0` applies at installation.
    server.set_faults(drift(0, DriftKind::Delete(3)));
    assert_eq!(server.contact_count(), 100);
    assert_eq!(server.stats().drift_events, 2);
}
