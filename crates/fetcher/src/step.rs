//! What one answer tells the run, without I/O: where the read really was, whether its interval
//! may be trusted, whether it shows the end of the listing, what it says about the page size,
//! and whether the main pass goes on, probes past the end, or is over.
//!
//! [`paginate`](crate::paginate) drives this with requests; everything here is a pure function
//! of the answer and the run so far, so each rule has a unit test that needs no HTTP.

use trackly_contacts::Pagination;

use crate::plan::Window;

/// Full pages in a row starting with the same contact (within the announced end) before the
/// API is taken to ignore `page`.
pub(crate) const MAX_REPEATED_PAGES: u32 = 3;

/// Totals at which search-index backends stop paging (Elasticsearch's and OpenSearch's
/// `index.max_result_window`): a listing that ends exactly there, with the next window
/// refused, may hold more than the API lets anyone page through.
pub(crate) const SEARCH_INDEX_LIMITS: [u64; 1] = [10_000];

/// One `200` answer, as the run reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    /// Where its first contact lies: from the page size the server says it applied, when it
    /// applied less than asked; else from what was asked.
    pub(crate) offset: u64,
    /// The page size the server applied, as far as the answer shows it.
    pub(crate) per_page: u64,
    /// Contacts it held.
    pub(crate) len: u64,
    pub(crate) total: Option<u64>,
    /// Its interval may be claimed: it is full, or it ends the listing by its own total.
    pub(crate) trusted: bool,
    /// Its own total says the listing ends with it.
    pub(crate) to_end: bool,
    /// The answer is for another page than asked, for a page past the end (Django's
    /// `Paginator.get_page()` answers the last page again): the listing ends before it.
    pub(crate) past_end: bool,
    /// Shorter than asked, not at its end: the page size the API seems to serve.
    pub(crate) cap: Option<u64>,
}

impl Answer {
    /// Reads the answer to `window` holding `len` contacts. `known_total`: the last total
    /// the run saw, for an answer that reports none.
    pub(crate) fn of(
        window: Window,
        len: u64,
        pagination: Pagination,
        known_total: Option<u64>,
    ) -> Answer {
        let total = pagination.total;
        let reported = pagination.per_page.filter(|&r| r > 0);
        // A server that says it applied a smaller size than asked computed the offset from it.
        let per_page = match reported {
            Some(r) if r < window.per_page && len > 0 && len <= r => r,
            _ => window.per_page,
        };
        let offset = (window.page - 1) * per_page;
        let other_page = pagination.page.is_some_and(|p| p != window.page);
        // Django's `get_page()` answers the last page for any page past it: a lower number
        // than asked, past the total when there is one.
        let past_end = other_page
            && match total.or(known_total) {
                Some(t) => offset >= t,
                None => pagination.page.is_some_and(|p| p < window.page),
            };
        // Another page inside the count: where its contacts lie is unknown, so it proves nothing.
        let to_end = !other_page && total.is_some_and(|t| len > 0 && offset + len == t);
        // More than asked: the API ignores `per_page`, and where the contacts lie is unknown.
        let trusted = !other_page && len <= per_page && (len == per_page || to_end);
        // Shorter than asked where the total says more follow (with room for a total that
        // jitters by a little): the API serves fewer a page than asked. At the end a short
        // window says nothing of the page size.
        // A cap is a size, well below what was asked; a few contacts short is an API dropping
        // some (its next answer is as likely full).
        let room = total.is_some_and(|t| offset + len + 2 <= t);
        let well_short = len * 10 <= per_page * 9;
        let cap = (!trusted && !past_end && len > 0 && well_short && room).then_some(len);
        Answer {
            offset,
            per_page,
            len,
            total,
            trusted,
            to_end,
            past_end,
            cap: cap.or((per_page < window.per_page).then_some(per_page)),
        }
    }
}

/// What the main pass does after a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// The next window.
    Continue,
    /// The read ended the listing by its own total while full (or showed no total): one
    /// window past it must show the end too (empty, 404 or Django's repeat) before the pass
    /// is over; it may also hold contacts added since.
    Probe,
    /// The listing ends here.
    Done,
}

/// The main pass's decision after an answer.
pub(crate) fn next_after(answer: &Answer) -> Next {
    if answer.past_end || answer.len == 0 {
        return Next::Done;
    }
    if answer.to_end {
        // A full window ending exactly at the total may be a capped total (a search index),
        // or the listing may have grown: look one window further.
        return if answer.len == answer.per_page {
            Next::Probe
        } else {
            Next::Done
        };
    }
    if answer.total.is_none() && answer.len < answer.per_page {
        // No total to show the end: a short page may be it; the window after it says.
        return Next::Probe;
    }
    Next::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer to page `page` of `asked` contacts: it holds `len` and reports page
    /// `served`, `per_page` and `total`.
    fn answer(
        page: u64,
        asked: u64,
        len: u64,
        (served, per_page, total): (u64, Option<u64>, Option<u64>),
    ) -> Answer {
        let pagination = Pagination {
            page: Some(served),
            per_page,
            total,
            total_pages: None,
        };
        Answer::of(
            Window {
                page,
                per_page: asked,
            },
            len,
            pagination,
            None,
        )
    }

    #[test]
    fn a_full_window_is_trusted_and_goes_on() {
        let a = answer(3, 100, 100, (3, Some(100), Some(1000)));
        assert!(a.trusted && !a.to_end);
        assert_eq!(a.offset, 200);
        assert_eq!(next_after(&a), Next::Continue);
    }

    #[test]
    fn a_short_window_in_the_middle_is_not_the_end_and_not_trusted() {
        let a = answer(3, 100, 97, (3, Some(100), Some(1000)));
        assert!(!a.trusted && !a.to_end);
        assert_eq!(a.cap, None, "3 short: dropped contacts, not a cap");
        let b = answer(3, 100, 50, (3, Some(100), Some(1000)));
        assert_eq!(b.cap, Some(50));
        assert_eq!(next_after(&a), Next::Continue);
    }

    #[test]
    fn a_short_window_ending_at_its_own_total_ends_the_listing() {
        let a = answer(10, 100, 50, (10, Some(100), Some(950)));
        assert!(a.trusted && a.to_end);
        assert_eq!(next_after(&a), Next::Done);
        // A full window ending exactly at the total is probed.
        let b = answer(10, 100, 100, (10, Some(100), Some(1000)));
        assert_eq!(next_after(&b), Next::Probe);
    }

    #[test]
    fn a_reported_cap_moves_the_offset_and_is_trusted() {
        let a = answer(3, 1000, 500, (3, Some(500), Some(9000)));
        assert_eq!((a.offset, a.per_page), (1000, 500));
        assert!(a.trusted);
        assert_eq!(a.cap, Some(500));
        // Echoed or silent: the asked size, fewer contacts: not trusted, the cap a guess.
        for per_page in [Some(1000), None] {
            let e = answer(3, 1000, 500, (3, per_page, Some(9000)));
            assert!(!e.trusted);
            assert_eq!((e.offset, e.cap), (2000, Some(500)));
        }
    }

    #[test]
    fn djangos_last_page_again_for_a_page_past_the_end_ends_the_listing() {
        let a = answer(12, 100, 50, (11, Some(100), Some(1050)));
        assert!(a.past_end && !a.trusted);
        assert_eq!(next_after(&a), Next::Done);
        // Another page number inside the count is not an end.
        let b = answer(5, 100, 100, (4, Some(100), Some(1050)));
        assert!(!b.past_end);
        // Without a total, a lower page number than asked is the last page again.
        let c = answer(12, 100, 50, (11, Some(100), None));
        assert!(c.past_end);
    }

    #[test]
    fn without_a_total_a_short_page_is_probed_and_an_empty_one_ends() {
        let a = answer(4, 100, 30, (4, Some(100), None));
        assert!(!a.trusted && !a.to_end);
        assert_eq!(next_after(&a), Next::Probe);
        let e = answer(5, 100, 0, (5, Some(100), None));
        assert_eq!(next_after(&e), Next::Done);
    }
}
