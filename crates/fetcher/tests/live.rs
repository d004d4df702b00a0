//! The fetcher against servers that behave like real ones: ties on the sort key reshuffled on
//! every request, a listing that changes throughout the run, totals that jitter, replicas that
//! lag, refusals past the end, and damage inside single contacts. Every run is exact, or fails
//! loudly; none is short.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use proptest::prelude::*;
use trackly_fetcher::{Client, FetchError, FetchStats, Query, signup_micros};
use trackly_mock::{
    Beyond, BigTie, CapChange, CapReport, Damage, DatasetConfig, Drift, DriftKind, Faults, Live,
    MockServer, PageCap, PastEndAnswer, SearchWindow, SortPrecision, TotalForm,
};

mod support;

type Key = (String, String);

use support::mock as server;

fn client(mock: &MockServer, per_page: u32, concurrency: usize) -> Client {
    support::client_builder(mock, per_page, concurrency)
        .build()
        .expect("valid client")
}

/// Every delivered contact's key (duplicates kept, to be caught) and the stats.
async fn export(client: &Client) -> Result<(Vec<Key>, FetchStats), FetchError> {
    let mut pages = client.contacts(Query::all());
    let mut keys = Vec::new();
    while let Some(page) = pages.next().await {
        for raw in page?.raw_contacts() {
            let c: serde_json::Value = serde_json::from_slice(raw).unwrap();
            keys.push((
                c["phone_number"].as_str().unwrap().to_owned(),
                c["list_number"].as_str().unwrap().to_owned(),
            ));
        }
    }
    Ok((keys, pages.snapshot()))
}

/// The listing now: key → signup time.
fn truth(mock: &MockServer) -> HashMap<Key, i64> {
    String::from_utf8(mock.ground_truth(None, None))
        .unwrap()
        .lines()
        .map(|line| {
            let c: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = (
                c["phone_number"].as_str().unwrap().to_owned(),
                c["list_number"].as_str().unwrap().to_owned(),
            );
            (
                key,
                signup_micros(c["signup_date"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// An export of `mock` delivers exactly what was present before and after it, or fails loudly
/// (`what` names the case).
async fn assert_exact_or_loud(mock: &MockServer, per_page: u32, concurrency: usize, what: &str) {
    let before = truth(mock);
    let result = export(&client(mock, per_page, concurrency)).await;
    let after = truth(mock);
    match result {
        Ok((keys, _)) => assert_exact(&keys, &before, &after),
        Err(e) => assert!(e.is_incomplete(), "{what}: not a loud incompleteness: {e}"),
    }
}

/// Exact for a listing that changed: every contact present from start to end delivered once,
/// nothing delivered twice, nothing delivered that never existed (a contact that is in neither
/// snapshot must have signed up during the run, after every contact of the first snapshot).
fn assert_exact(delivered: &[Key], before: &HashMap<Key, i64>, after: &HashMap<Key, i64>) {
    let unique: HashSet<&Key> = delivered.iter().collect();
    assert_eq!(
        unique.len(),
        delivered.len(),
        "a contact was delivered twice"
    );
    let missing: Vec<&Key> = before
        .keys()
        .filter(|k| after.contains_key(*k) && !unique.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "{} contact(s) present throughout were not delivered, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    let newest = before.values().max().copied().unwrap_or(i64::MIN);
    for key in &unique {
        let known = before.contains_key(*key) || after.get(*key).is_some_and(|&t| t > newest);
        assert!(known || !after.contains_key(*key), "{key:?} never existed");
    }
}

#[tokio::test]
async fn ties_reshuffled_on_every_request_lose_nothing() {
    // Bulk imports put hundreds of contacts in one second; their order changes per request.
    for (per_page, concurrency) in [(1000, 8), (100, 4), (250, 16)] {
        let faults = Faults {
            shuffle_ties: true,
            ..Faults::default()
        };
        let mock = server(3, 20_000, faults).await;
        let before = truth(&mock);
        let (keys, stats) = export(&client(&mock, per_page, concurrency)).await.unwrap();
        assert_eq!(keys.len(), 20_000, "per_page {per_page}: {stats:?}");
        assert_exact(&keys, &before, &before);
        let r = stats.reconciliation.clone().unwrap();
        assert!(r.steady && r.delivered == 20_000, "{r:?}");
        assert!(stats.verification_reads > 0);
    }
}

#[tokio::test]
async fn a_live_listing_completes_exactly_at_every_concurrency() {
    for concurrency in [1, 8, 16] {
        let faults = Faults {
            latency: Duration::from_millis(10),
            latency_jitter: Duration::from_millis(10),
            live: Some(Live {
                signups_per_sec: 20.0,
                deletes_per_sec: 4.0,
            }),
            shuffle_ties: true,
            total_jitter: 1,
            replica_lag: Some(Duration::from_millis(150)),
            fault_seed: concurrency as u64,
            ..Faults::default()
        };
        let mock = server(5, 8_000, faults).await;
        let before = truth(&mock);
        let result = export(&client(&mock, 200, concurrency)).await;
        let after = truth(&mock);
        let (keys, stats) = result.unwrap_or_else(|e| panic!("concurrency {concurrency}: {e}"));
        assert_exact(&keys, &before, &after);
        let r = stats.reconciliation.unwrap();
        assert!(!r.steady, "{r:?}");
        assert!(
            after.len() != before.len() || r.min_total != r.max_total,
            "the listing did change"
        );
    }
}

#[tokio::test]
async fn a_page_past_the_end_refused_with_404_or_400_ends_the_listing() {
    for status in [404, 400] {
        let faults = Faults {
            past_end_status: Some(status),
            ..Faults::default()
        };
        // An exact multiple of per_page: the page after the last is asked for and refused.
        let mock = server(7, 3_000, faults).await;
        let (keys, stats) = export(&client(&mock, 1000, 4)).await.unwrap();
        assert_eq!(keys.len(), 3_000, "{status}");
        // Overlapping windows end at the total itself, so no page past the end is needed (two
        // more requests count the active and the inactive contacts).
        assert!(stats.requests <= 6, "{stats:?}");
    }
}

#[tokio::test]
async fn damage_inside_one_contact_leaves_the_page_to_the_decoder() {
    let faults = Faults {
        damaged: vec![
            (5, Damage::NaN),
            (1_234, Damage::ControlChar),
            (1_500, Damage::Infinity),
        ],
        ..Faults::default()
    };
    let mock = server(7, 2_000, faults).await;
    let mut pages = client(&mock, 1000, 2).contacts(Query::all());
    let mut raw = Vec::new();
    while let Some(page) = pages.next().await {
        raw.extend(page.unwrap().raw_contacts().map(<[u8]>::to_vec));
    }
    let stats = pages.snapshot();
    assert_eq!(raw.len(), 2_000);
    assert_eq!(
        stats.retries.total(),
        0,
        "not retried as broken pages: {stats:?}"
    );
    let damaged = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).is_err();
    assert_eq!(raw.iter().filter(|r| damaged(r)).count(), 3);
    assert!(raw.iter().any(|r| r.windows(3).any(|w| w == b"NaN")));
}

#[tokio::test]
async fn a_total_that_never_changes_must_match_what_was_delivered() {
    // A server whose listing shrinks between reads without its total saying so is caught by
    // the boundary proof; here the count itself is checked: deletions happen, totals jitter.
    let faults = Faults {
        drift: vec![Drift {
            after_request: 2,
            kind: DriftKind::Delete(50),
        }],
        ..Faults::default()
    };
    let mock = server(9, 5_000, faults).await;
    let before = truth(&mock);
    let (keys, stats) = export(&client(&mock, 500, 4)).await.unwrap();
    let after = truth(&mock);
    assert_exact(&keys, &before, &after);
    let r = stats.reconciliation.unwrap();
    assert!(!r.steady, "{r:?}");
}

/// One random interleaving of changes and reshuffles during a paged read, on an API that may
/// also behave like the backends of issue 21.
#[derive(Debug, Clone)]
struct Scenario {
    contacts: usize,
    per_page: u32,
    concurrency: usize,
    shuffle_ties: bool,
    total_jitter: u64,
    drift: Vec<Drift>,
    seed: u64,
    odd: OddApi,
}

/// How the API departs from the documentation (issue 21), drawn per scenario.
#[derive(Debug, Clone, Default)]
struct OddApi {
    /// [`Faults::p_drop`].
    p_drop: f64,
    /// [`Faults::suppressed_share`]: an exact export is then impossible; only loud is right.
    suppressed_share: f64,
    page_cap: Option<PageCap>,
    accepted_per_page: Vec<u64>,
    refuse_per_page_above: Option<u64>,
    search_window: Option<SearchWindow>,
    past_end: PastEndAnswer,
    total_form: TotalForm,
    fractional_seconds: bool,
    sort_precision: SortPrecision,
    big_tie: Option<BigTie>,
}

fn page_cap() -> impl Strategy<Value = Option<PageCap>> {
    let report = prop_oneof![
        Just(CapReport::Reported),
        Just(CapReport::Echoed),
        Just(CapReport::Silent)
    ];
    let change = prop::option::of(
        (1u64..20, 20u64..400).prop_map(|(after_request, cap)| CapChange { after_request, cap }),
    );
    prop::option::weighted(
        0.3,
        (20u64..400, report, change, prop::option::of(20u64..400)).prop_map(
            |(cap, report, change, other_pod)| PageCap {
                cap,
                report,
                change,
                other_pod,
            },
        ),
    )
}

fn odd_api() -> impl Strategy<Value = OddApi> {
    let sizes = prop_oneof![
        4 => Just((Vec::new(), None)),
        1 => Just((vec![10, 25, 50, 100], None)),
        1 => Just((Vec::new(), Some(500))),
    ];
    let window = prop::option::weighted(
        0.15,
        (
            500u64..5_000,
            prop_oneof![Just(Beyond::Clamp), Just(Beyond::Refuse)],
        )
            .prop_map(|(max_window, beyond)| SearchWindow { max_window, beyond }),
    );
    let order = prop_oneof![
        3 => Just((false, SortPrecision::Exact)),
        1 => Just((true, SortPrecision::Exact)),
        1 => Just((true, SortPrecision::Second)),
        1 => Just((true, SortPrecision::Millisecond)),
    ];
    let tie = prop::option::weighted(
        0.2,
        (0usize..3_000, 100usize..2_500).prop_map(|(at, len)| BigTie { at, len }),
    );
    (
        prop_oneof![3 => Just(0.0), 1 => Just(0.01)],
        prop_oneof![5 => Just(0.0), 1 => Just(0.003)],
        page_cap(),
        sizes,
        window,
        prop_oneof![Just(PastEndAnswer::Empty), Just(PastEndAnswer::LastPage)],
        prop_oneof![
            3 => Just(TotalForm::Number),
            1 => Just(TotalForm::Missing),
            1 => Just(TotalForm::Null),
            1 => Just(TotalForm::String)
        ],
        order,
        tie,
    )
        .prop_map(
            |(
                p_drop,
                suppressed_share,
                page_cap,
                sizes,
                search_window,
                past_end,
                total_form,
                order,
                big_tie,
            )| {
                // Contacts never served are detectable only by the count: with no usable total
                // no client can tell them from contacts that do not exist, so that pair is not
                // drawn (an exact export is impossible and nothing can be loud about it).
                let suppressed_share = if matches!(total_form, TotalForm::Number) {
                    suppressed_share
                } else {
                    0.0
                };
                // A search index that clamps its window is caught by the count of its active and
                // inactive contacts, which needs a total (README, Guarantees): without one it is
                // a known limit, and only refusing windows are drawn.
                let search_window = search_window.map(|w: SearchWindow| SearchWindow {
                    beyond: if matches!(total_form, TotalForm::Number) {
                        w.beyond
                    } else {
                        Beyond::Refuse
                    },
                    ..w
                });
                OddApi {
                    p_drop,
                    suppressed_share,
                    page_cap,
                    accepted_per_page: sizes.0,
                    refuse_per_page_above: sizes.1,
                    search_window,
                    past_end,
                    total_form,
                    fractional_seconds: order.0,
                    sort_precision: order.1,
                    big_tie,
                }
            },
        )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let drift = prop::collection::vec(
        (
            1u64..40,
            prop_oneof![
                (1usize..300).prop_map(DriftKind::Insert),
                (1usize..300).prop_map(DriftKind::Delete),
                (1usize..1_500).prop_map(DriftKind::Import),
            ],
        )
            .prop_map(|(after_request, kind)| Drift {
                after_request,
                kind,
            }),
        0..5,
    );
    (
        300usize..4_000,
        prop_oneof![Just(50u32), Just(100), Just(333), Just(1000)],
        prop_oneof![Just(1usize), Just(4), Just(16)],
        any::<bool>(),
        0u64..3,
        drift,
        any::<u64>(),
        odd_api(),
    )
        .prop_map(
            |(
                contacts,
                per_page,
                concurrency,
                shuffle_ties,
                total_jitter,
                drift,
                seed,
                mut odd,
            )| {
                // The count of the parts catches a clamping search index only while its capped
                // total stands still: a total that jitters, or a listing that grows or shrinks
                // across the window during the run, is a known limit (README). There only
                // refusing windows are drawn.
                let (mut added, mut deleted) = (0, 0);
                for d in &drift {
                    match d.kind {
                        DriftKind::Delete(n) => deleted += n,
                        DriftKind::Insert(n) | DriftKind::Import(n) => added += n,
                    }
                }
                if let Some(w) = &mut odd.search_window {
                    let window = usize::try_from(w.max_window).unwrap_or(usize::MAX);
                    let crossed = window + deleted >= contacts && window <= contacts + added;
                    if total_jitter > 0 || crossed {
                        w.beyond = Beyond::Refuse;
                    }
                }
                Scenario {
                    contacts,
                    per_page,
                    concurrency,
                    shuffle_ties,
                    total_jitter,
                    drift,
                    seed,
                    odd,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        // A failing case is slow to shrink (each one a run against a server); a few steps say
        // enough.
        max_shrink_iters: 64,
        // A fixed seed, so that CI runs the same 32 cases every time; explore others with
        // PROPTEST_RNG_SEED=<n> (the environment overrides it).
        rng_seed: proptest::test_runner::RngSeed::Fixed(
            std::env::var("PROPTEST_RNG_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(21),
        ),
        ..ProptestConfig::default()
    })]

    /// The delivered set is exact, or the run fails loudly: never a short success.
    #[test]
    fn any_interleaving_is_exact_or_loud(s in scenario()) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let odd = s.odd.clone();
            let faults = Faults {
                shuffle_ties: s.shuffle_ties,
                total_jitter: s.total_jitter,
                drift: s.drift.clone(),
                fault_seed: s.seed,
                p_drop: odd.p_drop,
                suppressed_share: odd.suppressed_share,
                page_cap: odd.page_cap,
                accepted_per_page: odd.accepted_per_page,
                refuse_per_page_above: odd.refuse_per_page_above,
                search_window: odd.search_window,
                past_end: odd.past_end,
                total_form: odd.total_form,
                ..Faults::default()
            };
            let dataset = DatasetConfig {
                fractional_seconds: odd.fractional_seconds,
                sort_precision: odd.sort_precision,
                big_tie: odd.big_tie,
                ..support::dataset(s.seed, s.contacts)
            };
            let mock = support::mock_with(dataset, faults).await;
            assert_exact_or_loud(&mock, s.per_page, s.concurrency, &format!("{s:?}")).await;
        });
    }
}

/// Found by the property test: a tie of 681 contacts over three pages of 333, counted by a
/// census while a deletion lands between the reads of a round. Reads that report different
/// totals saw different listings and must not be added up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_census_does_not_add_up_reads_of_different_listings() {
    for _ in 0..10 {
        let faults = Faults {
            shuffle_ties: true,
            drift: vec![
                Drift {
                    after_request: 1,
                    kind: DriftKind::Insert(85),
                },
                Drift {
                    after_request: 8,
                    kind: DriftKind::Delete(62),
                },
            ],
            fault_seed: 18_289_872_003_698_525_291,
            ..Faults::default()
        };
        let mock = server(18_289_872_003_698_525_291, 2226, faults).await;
        assert_exact_or_loud(&mock, 333, 4, "a census over a drift").await;
    }
}

/// A search index that clamps its window over a listing that changes while it is read, but
/// always holds more than the window: its total stands still at the window, and its active and
/// inactive contacts add up to more. Loud, naming the counts; never short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clamping_search_index_over_a_live_listing_fails_naming_its_parts() {
    for concurrency in [1, 4] {
        let faults = Faults {
            search_window: Some(SearchWindow {
                max_window: 2_000,
                beyond: Beyond::Clamp,
            }),
            drift: vec![
                Drift {
                    after_request: 3,
                    kind: DriftKind::Insert(200),
                },
                Drift {
                    after_request: 6,
                    kind: DriftKind::Delete(150),
                },
            ],
            fault_seed: concurrency as u64,
            ..Faults::default()
        };
        let mock = server(11, 3_000, faults).await;
        let error = export(&client(&mock, 250, concurrency)).await.unwrap_err();
        assert!(
            matches!(error, FetchError::PartsExceedTotal { total: 2_000, .. }),
            "concurrency {concurrency}: {error}"
        );
        assert!(error.is_incomplete());
        assert!(
            error
                .to_string()
                .contains("more than the 2000 it counts in all"),
            "{error}"
        );
    }
}

/// An API that caps the page size without saying so and reports no total: it places its
/// windows by its own size, so a short answer is not where it was asked for, and nothing but
/// the position after it being empty said the listing ended there (900 of 1,000 contacts
/// exported, exit 0, before). Reads of one contact, which no cap moves, now confirm where it
/// ends. Exact or loud: a tie wider than the cap cannot be counted without a total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_cap_without_a_total_is_never_a_short_success() {
    let mut short = Vec::new();
    let mut exact = 0;
    for seed in 0..4u64 {
        for (cap, other_pod) in [(300, None), (300, Some(700)), (450, Some(90))] {
            let faults = Faults {
                total_form: TotalForm::Missing,
                page_cap: Some(PageCap {
                    cap,
                    report: CapReport::Silent,
                    change: None,
                    other_pod,
                }),
                fault_seed: seed,
                ..Faults::default()
            };
            let mock = server(seed, 1_000 + seed as usize * 97, faults).await;
            let before = truth(&mock);
            match export(&client(&mock, 1000, 4)).await {
                Ok((keys, _)) => {
                    let unique: HashSet<&Key> = keys.iter().collect();
                    if unique.len() == before.len() && keys.len() == before.len() {
                        exact += 1;
                    } else {
                        short.push(format!(
                            "seed {seed}, cap {cap}/{other_pod:?}: {} of {}",
                            unique.len(),
                            before.len()
                        ));
                    }
                }
                Err(e) => assert!(e.is_incomplete(), "not a loud incompleteness: {e}"),
            }
        }
    }
    assert!(short.is_empty(), "short successes: {short:#?}");
    // Seed 0's data has no tie wider than the cap at a boundary: those runs are exact.
    assert!(exact >= 2, "{exact} exact runs");
}
