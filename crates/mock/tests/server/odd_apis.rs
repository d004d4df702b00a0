//! Behaviours of real backends that break offset paging (issue 21): post-filtered short pages,
//! page-size caps and refusals, a search index's limited window, a sort coarser than the values
//! shown, big ties, bulk imports, Django's `get_page()` past the end and totals that are not
//! numbers. Each is off by default; the ground truth is always what exists.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;
use trackly_mock::{
    Beyond, BigTie, CapChange, CapReport, DatasetConfig, Drift, DriftKind, Faults, MockServer,
    PageCap, PastEndAnswer, SearchWindow, SortPrecision, TotalForm,
};

use crate::{get, json, lines, start, start_with};

/// The contacts of an answer.
fn contacts(answer: &Value) -> Vec<Value> {
    answer["contacts"].as_array().cloned().unwrap_or_default()
}

/// The ground truth, parsed, in served order.
fn truth(server: &MockServer) -> Vec<Value> {
    lines(&server.ground_truth(None, None))
        .iter()
        .map(|l| json(l))
        .collect()
}

fn key(c: &Value) -> (String, String) {
    (
        c["phone_number"].as_str().unwrap().to_owned(),
        c["list_number"].as_str().unwrap().to_owned(),
    )
}

/// `signup_date` as microseconds of the day's text: `(seconds part, fraction in micros)`.
fn signup(c: &Value) -> (String, u32) {
    let d = c["signup_date"].as_str().unwrap();
    let (secs, frac) = d.split_once('.').unwrap_or((d, ""));
    let micros = format!("{frac:0<6}").parse().unwrap_or(0);
    (secs.to_owned(), micros)
}

fn path(page: u64, per_page: u64) -> String {
    format!("/v2/contacts?page={page}&per_page={per_page}")
}

#[tokio::test]
async fn transient_drops_shorten_pages_and_a_second_read_recovers_them() {
    let server = start(
        2_000,
        Faults {
            p_drop: 0.05,
            ..Faults::default()
        },
    )
    .await;
    let truth = truth(&server);
    let window: Vec<_> = truth[100..200].iter().map(key).collect();
    let mut seen = HashSet::new();
    let mut short = 0;
    for _ in 0..10 {
        let a = get(&server, &path(2, 100)).await.json();
        assert_eq!(a["pagination"]["total"], 2_000);
        let got: Vec<_> = contacts(&a).iter().map(key).collect();
        // A subsequence of the window, in order.
        let mut rest = window.iter();
        assert!(got.iter().all(|k| rest.any(|w| w == k)), "not the window");
        short += usize::from(got.len() < 100);
        seen.extend(got);
    }
    assert!(
        short >= 5,
        "most reads of 100 at 5 % come back short: {short}"
    );
    assert_eq!(seen.len(), 100, "read again, every contact comes");
    assert_eq!(truth.len(), 2_000, "the ground truth keeps them");
}

#[tokio::test]
async fn suppressed_contacts_are_never_served_but_counted_in_total() {
    let faults = Faults {
        suppressed_share: 0.01,
        ..Faults::default()
    };
    let server = start(3_000, faults.clone()).await;
    let raw = server.ground_truth(None, None);
    let suppressed: HashSet<_> = lines(&raw)
        .iter()
        .filter(|l| faults.suppresses(l))
        .map(|l| key(&json(l)))
        .collect();
    assert!(
        (10..=60).contains(&suppressed.len()),
        "{}",
        suppressed.len()
    );
    let mut served = Vec::new();
    for p in 1..=30 {
        for _ in 0..2 {
            let a = get(&server, &path(p, 100)).await.json();
            assert_eq!(a["pagination"]["total"], 3_000);
            let got: Vec<_> = contacts(&a).iter().map(key).collect();
            assert!(got.iter().all(|k| !suppressed.contains(k)));
            served.push(got);
        }
    }
    let all: HashSet<_> = served.iter().flatten().cloned().collect();
    assert_eq!(all.len() + suppressed.len(), 3_000);
    assert!(
        served.iter().any(|p| p.len() < 100),
        "pages holding one are short"
    );
    assert_eq!(lines(&raw).len(), 3_000);
}

#[tokio::test]
async fn a_page_cap_offsets_by_the_capped_size_reported_echoed_or_silent() {
    for report in [CapReport::Reported, CapReport::Echoed, CapReport::Silent] {
        let server = start(
            1_000,
            Faults {
                page_cap: Some(PageCap {
                    cap: 100,
                    report,
                    change: None,
                    other_pod: None,
                }),
                ..Faults::default()
            },
        )
        .await;
        let truth = truth(&server);
        let a = get(&server, &path(3, 250)).await.json();
        let got = contacts(&a);
        assert_eq!(got.len(), 100, "{report:?}");
        assert_eq!(got[0], truth[200], "{report:?}: page 3 starts at 2 x 100");
        let p = &a["pagination"];
        match report {
            CapReport::Reported => {
                assert_eq!(
                    (&p["per_page"], &p["total_pages"]),
                    (&100.into(), &10.into())
                );
            }
            CapReport::Echoed => {
                assert_eq!(
                    (&p["per_page"], &p["total_pages"]),
                    (&250.into(), &4.into())
                );
            }
            CapReport::Silent => {
                assert!(p.get("per_page").is_none(), "{p}");
                assert_eq!(p["total_pages"], 10);
            }
        }
        // Below the cap, the asked size is served.
        let a = get(&server, &path(2, 40)).await.json();
        assert_eq!(contacts(&a)[0], truth[40]);
    }
}

#[tokio::test]
async fn a_page_cap_can_change_mid_run_and_differ_between_pods() {
    let cap = PageCap {
        cap: 100,
        report: CapReport::Silent,
        change: Some(CapChange {
            after_request: 2,
            cap: 30,
        }),
        other_pod: None,
    };
    let server = start(
        500,
        Faults {
            page_cap: Some(cap),
            ..Faults::default()
        },
    )
    .await;
    let sizes = [
        contacts(&get(&server, &path(1, 1000)).await.json()).len(),
        contacts(&get(&server, &path(1, 1000)).await.json()).len(),
        contacts(&get(&server, &path(1, 1000)).await.json()).len(),
    ];
    assert_eq!(sizes, [100, 100, 30]);
    server.set_faults(Faults {
        page_cap: Some(PageCap {
            change: None,
            other_pod: Some(70),
            ..cap
        }),
        ..Faults::default()
    });
    let truth = truth(&server);
    let a = contacts(&get(&server, &path(2, 1000)).await.json());
    let b = contacts(&get(&server, &path(2, 1000)).await.json());
    assert_eq!((a.len(), b.len()), (100, 70));
    assert_eq!((&a[0], &b[0]), (&truth[100], &truth[70]));
}

#[tokio::test]
async fn page_sizes_outside_the_accepted_set_or_above_the_maximum_are_refused() {
    let server = start(
        300,
        Faults {
            accepted_per_page: vec![10, 25, 50, 100],
            ..Faults::default()
        },
    )
    .await;
    for (per_page, ok) in [(25, true), (100, true), (30, false), (1000, false)] {
        let a = get(&server, &path(1, per_page)).await;
        if ok {
            assert_eq!(a.status, StatusCode::OK);
            assert_eq!(contacts(&a.json()).len() as u64, per_page);
        } else {
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{per_page}");
            assert_eq!(
                a.error(),
                ("invalid_parameter".into(), Some("per_page".into()))
            );
        }
    }
    assert_eq!(get(&server, "/v2/contacts").await.status, StatusCode::OK);
    server.set_faults(Faults {
        refuse_per_page_above: Some(500),
        ..Faults::default()
    });
    assert_eq!(get(&server, &path(1, 500)).await.status, StatusCode::OK);
    let a = get(&server, &path(1, 501)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error().1.as_deref(), Some("per_page"));
}

#[tokio::test]
async fn a_search_window_caps_total_and_clamps_or_refuses_deep_windows() {
    let window = |beyond| Faults {
        search_window: Some(SearchWindow {
            max_window: 1_000,
            beyond,
        }),
        ..Faults::default()
    };
    let server = start(1_500, window(Beyond::Clamp)).await;
    let truth = truth(&server);
    let a = get(&server, &path(4, 300)).await.json();
    assert_eq!(a["pagination"]["total"], 1_000);
    assert_eq!(a["pagination"]["total_pages"], 4);
    let got = contacts(&a);
    assert_eq!((got.len(), &got[0]), (100, &truth[900]), "clamped at 1000");
    let a = get(&server, &path(5, 300)).await.json();
    assert!(contacts(&a).is_empty());
    assert_eq!(truth.len(), 1_500, "the ground truth is all of them");

    server.set_faults(window(Beyond::Refuse));
    let a = get(&server, &path(10, 100)).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = get(&server, &path(4, 300)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error().0, "result_window_too_large");
}

/// A data set of bursts with fractional seconds, sorted at `precision`.
async fn fractional(precision: SortPrecision, faults: Faults) -> MockServer {
    start_with(
        DatasetConfig {
            seed: 11,
            contacts: 3_000,
            lists: 3,
            fractional_seconds: true,
            sort_precision: precision,
            ..DatasetConfig::default()
        },
        faults,
    )
    .await
}

#[tokio::test]
async fn a_listing_sorted_by_the_second_shows_fractions_out_of_order_within_a_second() {
    for (precision, digits) in [(SortPrecision::Second, 0), (SortPrecision::Millisecond, 3)] {
        let server = fractional(precision, Faults::default()).await;
        let truth = truth(&server);
        assert_eq!(truth.len(), 3_000);
        let dates: Vec<_> = truth.iter().map(signup).collect();
        let fractional = dates.iter().filter(|d| d.1 != 0).count();
        assert!(fractional > 2_000, "{fractional}");
        let unit = 10u32.pow(6 - digits);
        let coarse = |d: &(String, u32)| (d.0.clone(), d.1 / unit);
        // Newest first at the sort's precision...
        assert!(dates.windows(2).all(|w| coarse(&w[0]) >= coarse(&w[1])));
        // ...and inversions at full precision inside one unit.
        let inversions = dates.windows(2).filter(|w| w[0] < w[1]).count();
        assert!(inversions > 20, "{precision:?}: {inversions}");
        // Served as the ground truth says.
        let a = get(&server, &path(1, 1000)).await.json();
        assert_eq!(contacts(&a)[..], truth[..1000]);
    }
    // Ties at the coarse precision are reshuffled per request with `shuffle_ties`.
    let server = fractional(
        SortPrecision::Second,
        Faults {
            shuffle_ties: true,
            ..Faults::default()
        },
    )
    .await;
    let a = get(&server, &path(1, 1000)).await.body;
    let b = get(&server, &path(1, 1000)).await.body;
    assert_ne!(a, b);
}

#[tokio::test]
async fn a_big_tie_shares_one_signup_date_at_the_top_or_in_the_middle() {
    for (at, len) in [(0, 3_000), (2_000, 2_500)] {
        let server = start_with(
            DatasetConfig {
                seed: 11,
                contacts: 6_000,
                lists: 3,
                big_tie: Some(BigTie { at, len }),
                ..DatasetConfig::default()
            },
            Faults::default(),
        )
        .await;
        let truth = truth(&server);
        let date = &truth[at]["signup_date"];
        assert!(
            truth[at..at + len]
                .iter()
                .all(|c| &c["signup_date"] == date)
        );
        assert!(
            truth[at..at + len]
                .iter()
                .all(|c| c["signup_method"] == "import")
        );
        assert_ne!(&truth[at + len]["signup_date"], date);
        let keys: HashSet<_> = truth.iter().map(key).collect();
        assert_eq!(keys.len(), 6_000);
    }
}

#[tokio::test]
async fn an_import_drift_puts_a_tie_of_n_on_top() {
    let server = start(
        500,
        Faults {
            drift: vec![Drift {
                after_request: 1,
                kind: DriftKind::Import(300),
            }],
            ..Faults::default()
        },
    )
    .await;
    let before = truth(&server);
    get(&server, "/v2/contacts").await;
    let after = truth(&server);
    assert_eq!(after.len(), 800);
    let date = &after[0]["signup_date"];
    assert!(after[..300].iter().all(|c| &c["signup_date"] == date));
    assert!(date.as_str() > before[0]["signup_date"].as_str());
    assert_eq!(after[300..], before[..]);
}

#[tokio::test]
async fn django_get_page_answers_the_last_page_for_a_page_past_the_end() {
    let server = start(
        250,
        Faults {
            past_end: PastEndAnswer::LastPage,
            ..Faults::default()
        },
    )
    .await;
    let last = get(&server, &path(3, 100)).await.json();
    for p in [4, 9, u64::MAX / 1000] {
        let a = get(&server, &path(p, 100)).await.json();
        assert_eq!(a, last, "page {p}");
        assert_eq!(a["pagination"]["page"], 3);
    }
    // `past_end_status` refuses first.
    server.set_faults(Faults {
        past_end: PastEndAnswer::LastPage,
        past_end_status: Some(404),
        ..Faults::default()
    });
    assert_eq!(
        get(&server, &path(4, 100)).await.status,
        StatusCode::NOT_FOUND
    );
    let empty = start(
        0,
        Faults {
            past_end: PastEndAnswer::LastPage,
            ..Faults::default()
        },
    )
    .await;
    let a = get(&empty, &path(2, 100)).await.json();
    assert_eq!(a["pagination"]["page"], 1);
}

#[tokio::test]
async fn total_can_be_missing_null_or_a_string() {
    for (form, total, pages) in [
        (TotalForm::Missing, None, None),
        (TotalForm::Null, Some(Value::Null), Some(Value::Null)),
        (TotalForm::String, Some("120".into()), Some(3.into())),
        (TotalForm::Number, Some(120.into()), Some(3.into())),
    ] {
        let server = start(
            120,
            Faults {
                total_form: form,
                ..Faults::default()
            },
        )
        .await;
        let a = get(&server, "/v2/contacts").await.json();
        let p = a["pagination"].as_object().unwrap();
        assert_eq!(p.get("total").cloned(), total, "{form:?}");
        assert_eq!(p.get("total_pages").cloned(), pages, "{form:?}");
        assert_eq!(p["page"], 1);
        assert_eq!(contacts(&a).len(), 50);
    }
}
