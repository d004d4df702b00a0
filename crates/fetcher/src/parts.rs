//! A listing's parts must add up to no more than the whole.
//!
//! A search index that counts and pages no further than its result window (Elasticsearch's
//! `max_result_window`) reports a total capped at the window and serves nothing past it. On
//! its own that looks exactly like a listing that ends there: every read agrees with every
//! other. Its parts do not. The active and the inactive contacts are each a search of their
//! own, counted in a window of their own; when the whole holds more than the window and both
//! parts hold some, their totals add up to more than the whole's. No honest listing does that:
//! every contact is in at most one of them.
//!
//! So right after the run's first read of a listing not filtered by status, two reads of one
//! contact each ask for the totals of its two parts (two requests, sent with the windows after
//! the first: no time unless the listing is one page).
//! After a counted run (every answer reported a total), they are judged against the total the
//! first read reported. When they add up to no more, the count holds. When they add up to
//! more, the listing may just have moved between the reads: when the run's totals stood still
//! (a capped total does), the parts are counted again between two reads of the whole, and fails
//! the run only when, three times, the whole's total stood still at the run's total around
//! parts that exceeded it. A status that changes (an unsubscribe) moves a contact
//! from one part to the other and leaves the sum alone.
//!
//! What the count of the parts cannot see: a listing whose contacts all share one status (one part is
//! empty, the other is capped like the whole), an export filtered by status, an API that
//! reports no total, a total that moved during the run (a listing that grew past the window
//! while it was read), and an API that ignores the `active` filter (seen when a part's contact
//! has the other status: the parts are then not counted, and the run says so).

use crate::client::Reader;
use crate::error::FetchError;
use crate::query::Query;
use crate::stats::Parts;

/// Rounds taken between two reads of the whole, at most, when the parts exceed it.
const ROUNDS: u32 = 4;

/// Rounds in which the whole stood still at the run's total and the parts exceeded it, for the
/// run to fail. Three: an API whose counts jitter by one (a cached or estimated count) fails
/// one run in about ten thousand of a single page, and never one whose totals moved.
const CONFIRMATIONS: u32 = 3;

/// What one read of a part (or of the whole) showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count {
    /// Its `pagination.total`, when it reported a usable one.
    pub(crate) total: Option<u64>,
    /// Every contact it served matches its filter.
    pub(crate) honours_filter: bool,
}

/// What the parts say of the whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The parts add up to no more than the whole.
    AddsUp { active: u64, inactive: u64 },
    /// The parts add up to more than the whole.
    Exceeds { active: u64, inactive: u64 },
    /// The count says nothing: why.
    Unusable(&'static str),
}

/// Judges the parts' counts against the whole's total.
pub(crate) fn judge(whole: u64, [active, inactive]: [Count; 2]) -> Verdict {
    if !(active.honours_filter && inactive.honours_filter) {
        return Verdict::Unusable("the API ignores the active filter");
    }
    let (Some(a), Some(i)) = (active.total, inactive.total) else {
        return Verdict::Unusable("the API reported no total for a part");
    };
    if a.saturating_add(i) > whole {
        Verdict::Exceeds {
            active: a,
            inactive: i,
        }
    } else {
        Verdict::AddsUp {
            active: a,
            inactive: i,
        }
    }
}

/// The first count of the parts, as it came back, with the parts it counted.
pub(crate) struct FirstCount {
    parts: [Query; 2],
    counts: Result<[Count; 2], FetchError>,
}

// The reads that count one run's listing's parts (the rest of `Reader` is in `client.rs`): the
// first count goes out right after the run's first read (two requests, sent with the windows
// after it), and is judged once the run is over.
impl Reader {
    /// Counts the parts once, reading one contact of each. `None` when the export is filtered
    /// by status (there are no parts to count).
    pub(crate) fn first_count(&self) -> Option<impl Future<Output = FirstCount> + use<>> {
        let parts = parts(&self.query)?;
        let reader = self.clone();
        Some(async move {
            let counts = reader.read_parts(&parts, 1).await;
            FirstCount { parts, counts }
        })
    }

    /// Judges the first count against `whole`, the total the run's first read reported (at
    /// about the same time), and, when the parts exceed it and the run's totals were `steady`,
    /// counts again between two reads of the whole. `served` is a page size the API served,
    /// tried when it refuses one of 1.
    pub(crate) async fn judge_first(
        &self,
        whole: u64,
        steady: bool,
        FirstCount { parts, counts }: FirstCount,
        served: u64,
    ) -> Result<Parts, FetchError> {
        let counts = match counts {
            // A refused size: count again with one the API served.
            Err(FetchError::Rejected { status: 400, .. }) => self.read_parts(&parts, served).await,
            other => other,
        };
        let counts = match counts {
            Err(FetchError::Rejected {
                status: 400 | 404 | 422,
                ..
            }) => return Ok(skipped("the API refused the active filter")),
            other => other?,
        };
        let (active, inactive) = match judge(whole, counts) {
            Verdict::AddsUp { active, inactive } => return Ok(held(active, inactive, 0)),
            Verdict::Unusable(why) => return Ok(skipped(why)),
            Verdict::Exceeds { .. } if !steady => {
                // A capped total stands still; one that moved (a live listing, or counts that
                // jitter) cannot be told from a capped one by its parts.
                return Ok(skipped("the API's total changed during the run"));
            }
            Verdict::Exceeds { active, inactive } => (active, inactive),
        };
        tracing::info!(
            whole,
            active,
            inactive,
            "the active and inactive contacts add up to more than the whole listing; counting again between two reads of the whole"
        );
        self.count_again(&parts, whole, served, (active, inactive))
            .await
    }

    /// Counts the parts again between two reads of the whole, up to [`ROUNDS`] times: a count
    /// that adds up holds; one that exceeds a whole that stood still [`CONFIRMATIONS`] times
    /// fails the run; a listing that keeps moving leaves the first count (`active`, `inactive`)
    /// unconfirmed.
    async fn count_again(
        &self,
        parts: &[Query; 2],
        whole: u64,
        served: u64,
        (active, inactive): (u64, u64),
    ) -> Result<Parts, FetchError> {
        let mut confirmed = 0;
        for round in 1..=ROUNDS {
            let before = self.read(&self.query, served).await?.total;
            let counts = self.read_parts(parts, served).await?;
            let after = self.read(&self.query, served).await?.total;
            let (Some(before), Some(after)) = (before, after) else {
                return Ok(skipped("the API reported no total for the whole listing"));
            };
            if before != whole || after != whole {
                tracing::debug!(
                    round,
                    before,
                    after,
                    "the listing moved while its parts were counted"
                );
                continue;
            }
            match judge(before, counts) {
                Verdict::AddsUp { active, inactive } => return Ok(held(active, inactive, round)),
                Verdict::Unusable(why) => return Ok(skipped(why)),
                Verdict::Exceeds { active, inactive } => {
                    confirmed += 1;
                    if confirmed == CONFIRMATIONS {
                        return Err(FetchError::PartsExceedTotal {
                            total: before,
                            active,
                            inactive,
                        });
                    }
                }
            }
        }
        tracing::info!(
            "the listing kept moving while its parts were counted; the count says nothing"
        );
        Ok(Parts {
            active,
            inactive,
            rounds: ROUNDS,
            held: false,
            skipped: Some("the listing kept moving while its parts were counted".into()),
        })
    }

    /// Reads the totals of both parts at once, `per_page` contacts each.
    async fn read_parts(
        &self,
        [active, inactive]: &[Query; 2],
        per_page: u64,
    ) -> Result<[Count; 2], FetchError> {
        let (a, i) =
            futures::future::try_join(self.read(active, per_page), self.read(inactive, per_page))
                .await?;
        Ok([a, i])
    }

    /// One read of page 1 of `query`, for its total.
    async fn read(&self, query: &Query, per_page: u64) -> Result<Count, FetchError> {
        let page = self
            .client
            .fetch_page(query, 1, per_page, &self.admission, &self.stats)
            .await?;
        self.stats.update(|s| s.undelivered_reads += 1);
        let honours_filter = match query.active {
            None => true,
            Some(wanted) => page
                .contacts()
                .is_ok_and(|contacts| contacts.iter().all(|c| c.active == Some(wanted))),
        };
        Ok(Count {
            total: page.pagination().total,
            honours_filter,
        })
    }
}

/// The two parts of a listing not filtered by status: its active and its inactive contacts.
fn parts(query: &Query) -> Option<[Query; 2]> {
    query.active.is_none().then(|| {
        [
            query.clone().with_active(true),
            query.clone().with_active(false),
        ]
    })
}

fn held(active: u64, inactive: u64, rounds: u32) -> Parts {
    Parts {
        active,
        inactive,
        rounds,
        held: true,
        skipped: None,
    }
}

fn skipped(why: &str) -> Parts {
    tracing::info!(
        "the active and inactive contacts were not counted: {why}; a search index that pages no further than its window would not be seen"
    );
    Parts {
        active: 0,
        inactive: 0,
        rounds: 0,
        held: false,
        skipped: Some(why.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(total: u64) -> Count {
        Count {
            total: Some(total),
            honours_filter: true,
        }
    }

    /// The verdict on a whole of `whole` whose parts count `active` and `inactive`.
    fn judged(whole: u64, active: u64, inactive: u64) -> Verdict {
        judge(whole, [count(active), count(inactive)])
    }

    #[test]
    fn parts_that_add_up_to_the_whole_or_less_hold() {
        assert_eq!(
            judged(1_000, 700, 300),
            Verdict::AddsUp {
                active: 700,
                inactive: 300
            }
        );
        // Contacts with no status at all are in neither part.
        assert!(matches!(judged(1_000, 600, 300), Verdict::AddsUp { .. }));
    }

    #[test]
    fn parts_each_capped_by_a_search_window_exceed_the_capped_whole() {
        // 12,000 contacts, 9,000 active, 3,000 inactive, a window of 10,000: the whole reports
        // 10,000, its parts 9,000 and 3,000.
        assert_eq!(
            judged(10_000, 9_000, 3_000),
            Verdict::Exceeds {
                active: 9_000,
                inactive: 3_000
            }
        );
        // 25,000 contacts, most of each status: both parts capped too.
        assert!(matches!(
            judged(10_000, 10_000, 10_000),
            Verdict::Exceeds { .. }
        ));
    }

    #[test]
    fn a_count_from_an_api_that_ignores_the_filter_or_the_total_says_nothing() {
        let ignored = Count {
            total: Some(1_000),
            honours_filter: false,
        };
        assert_eq!(
            judge(1_000, [count(1_000), ignored]),
            Verdict::Unusable("the API ignores the active filter")
        );
        let uncounted = Count {
            total: None,
            honours_filter: true,
        };
        assert!(matches!(
            judge(1_000, [uncounted, count(10)]),
            Verdict::Unusable(_)
        ));
    }

    #[test]
    fn only_a_listing_not_filtered_by_status_has_parts() {
        assert!(parts(&Query::all()).is_some());
        assert!(parts(&Query::all().with_active(true)).is_none());
        let [a, i] = parts(&Query::all()).unwrap();
        assert_eq!((a.active, i.active), (Some(true), Some(false)));
    }
}
