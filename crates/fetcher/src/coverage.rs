//! The proof that no contact fell between two pages, from the contacts themselves.
//!
//! The API serves offset pages over a listing sorted by `signup_date`, newest first. A page read
//! at offset `o` holds, in the listing as it stood when that page was served, the `per_page`
//! contacts from position `o`. Sorted order means a page holds **every** contact of that
//! listing whose key lies strictly between its lowest key `lo` and its highest key `hi`; a page
//! at offset 0 also holds everything above `hi`, and a short page everything below `lo`. That
//! holds whatever the order among equal keys (ties may come back in any order on every
//! request) and whatever happened to the listing between two requests.
//!
//! A contact present for the whole run is in every listing the run read. If it was delivered by
//! no page, its key is in no page's open interval, so it lies in the closed gap
//! `[hi of page n+1, lo of page n]` of some boundary. A boundary is therefore **certified** when
//! that gap is empty (page n+1 starts above where page n ended: the listing moved rows down) or
//! when some other read's open interval covers the whole gap. Such a read is a small
//! **straddle**: a request with another `per_page` whose window has the boundary's offset in its
//! middle ([`plan_straddle`]). A run whose every boundary is certified has delivered every
//! contact present for the whole run; one that cannot certify a boundary within its budget
//! fails instead of publishing a short export.

use trackly_contacts::key::Identity;

/// What one read proves: every contact of the listing it was served from whose key lies in
/// the open interval `(lo, hi)` is in it. `i64::MIN`/`i64::MAX` stand for "everything below" (a
/// short read) and "everything above" (offset 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) lo: i64,
    pub(crate) hi: i64,
    /// Contacts at the end sharing the key `lo`.
    pub(crate) tail_ties: u64,
    /// Contacts at the start sharing the key `hi`.
    pub(crate) head_ties: u64,
}

/// The page's keys are not in the documented newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfOrder {
    /// 0-based index of the first contact that sorts above the one before it.
    pub(crate) record: usize,
}

impl Span {
    /// The span of a read at `offset` holding `ids` (in served order), `full` when it holds as
    /// many contacts as it asked for. Contacts without a readable `signup_date` prove nothing
    /// and are skipped, which only narrows the span (the claim stays true).
    pub(crate) fn of(ids: &[Identity], offset: u64, full: bool) -> Result<Span, OutOfOrder> {
        let mut keys = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| Some((i, id.signup?)));
        let mut previous: Option<i64> = None;
        let (mut first, mut last) = (None, None);
        let (mut head_ties, mut tail_ties) = (0, 0);
        for (record, key) in keys.by_ref() {
            if previous.is_some_and(|p| key > p) {
                return Err(OutOfOrder { record });
            }
            if first.is_none() {
                first = Some(key);
            }
            if first == Some(key) {
                head_ties += 1;
            }
            if last == Some(key) {
                tail_ties += 1;
            } else {
                tail_ties = 1;
            }
            last = Some(key);
            previous = Some(key);
        }
        let hi = match (offset, first) {
            (0, _) => i64::MAX,
            (_, Some(key)) => key,
            // Nothing readable: claim nothing.
            (_, None) => i64::MIN,
        };
        let lo = match (full, last) {
            (false, _) => i64::MIN,
            (true, Some(key)) => key,
            (true, None) => i64::MAX,
        };
        Ok(Span {
            lo,
            hi,
            tail_ties,
            head_ties,
        })
    }

    /// Whether this read's open interval covers the closed gap `[low, high]` (with `i64::MIN`
    /// as "everything below", which only a read reaching the end covers, and `i64::MAX` as
    /// "everything above", which only a read from offset 0 covers).
    pub(crate) fn covers(&self, low: i64, high: i64) -> bool {
        let below = self.lo == i64::MIN || self.lo < low;
        let above = self.hi == i64::MAX || high < self.hi;
        below && above
    }
}

/// The gap of the boundary between `above` (page n) and `below` (page n + 1): `None` when it is
/// empty, i.e. the boundary is certified by the two pages themselves.
pub(crate) fn gap(above: &Span, below: &Span) -> Option<(i64, i64)> {
    if above.lo == i64::MIN {
        // Page n was short: it reached the end, nothing lies below it.
        return None;
    }
    // `below.hi == i64::MIN`: page n + 1 proves nothing (empty, or no readable key), so the gap
    // reaches down to everything below page n.
    let (low, high) = (below.hi, above.lo);
    (low <= high).then_some((low, high))
}

/// A request for the window `[(page - 1) * per_page, page * per_page)` of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Straddle {
    pub(crate) page: u64,
    pub(crate) per_page: u64,
}

impl Straddle {
    /// Position of the window's first contact.
    pub(crate) fn offset(&self) -> u64 {
        (self.page - 1) * self.per_page
    }
}

/// The smallest window (at most `max_per_page` wide) that holds positions `start..end`;
/// `None` when no allowed page size can (windows start at multiples of their size).
pub(crate) fn plan_straddle(start: u64, end: u64, max_per_page: u64) -> Option<Straddle> {
    let min = end.saturating_sub(start).max(1);
    (min..=max_per_page).find_map(|per_page| {
        let page = start / per_page + 1;
        let window_end = page * per_page;
        (window_end >= end).then_some(Straddle { page, per_page })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(keys: &[Option<i64>]) -> Vec<Identity> {
        keys.iter()
            .enumerate()
            .map(|(i, &signup)| Identity {
                hash: i as u64,
                signup,
            })
            .collect()
    }

    #[test]
    fn spans_count_ties_and_open_up_at_the_ends_of_the_listing() {
        let page = ids(&[Some(9), Some(9), Some(7), None, Some(5), Some(5), Some(5)]);
        let span = Span::of(&page, 10, true).unwrap();
        assert_eq!(
            span,
            Span {
                lo: 5,
                hi: 9,
                tail_ties: 3,
                head_ties: 2
            }
        );
        let first = Span::of(&page, 0, true).unwrap();
        assert_eq!((first.lo, first.hi), (5, i64::MAX));
        let last = Span::of(&page, 10, false).unwrap();
        assert_eq!((last.lo, last.hi), (i64::MIN, 9));
        let empty = Span::of(&[], 10, false).unwrap();
        assert_eq!((empty.lo, empty.hi), (i64::MIN, i64::MIN));
        assert_eq!(
            Span::of(&ids(&[Some(5), Some(6)]), 0, true),
            Err(OutOfOrder { record: 1 })
        );
    }

    #[test]
    fn a_boundary_is_certified_by_overlap_or_by_a_read_across_its_gap() {
        let a = Span::of(&ids(&[Some(20), Some(15), Some(12)]), 3, true).unwrap();
        // Page n + 1 starts above where page n ended: rows moved down, nothing fell between.
        let moved_down = Span::of(&ids(&[Some(15), Some(12), Some(11)]), 6, true).unwrap();
        assert_eq!(gap(&a, &moved_down), None);
        // Adjacent pages leave the gap [11, 12] open: a tie or a deleted row may hide there.
        let next = Span::of(&ids(&[Some(11), Some(10), Some(9)]), 6, true).unwrap();
        assert_eq!(gap(&a, &next), Some((11, 12)));
        let straddle = Span::of(&ids(&[Some(13), Some(12), Some(11), Some(10)]), 4, true).unwrap();
        assert!(straddle.covers(11, 12));
        let too_narrow = Span::of(&ids(&[Some(12), Some(11), Some(10)]), 5, true).unwrap();
        assert!(
            !too_narrow.covers(11, 12),
            "key 12 may have more contacts above"
        );
        // A tie across the boundary: the gap is the tied key itself.
        let tied = Span::of(&ids(&[Some(12), Some(12), Some(9)]), 6, true).unwrap();
        assert_eq!(gap(&a, &tied), Some((12, 12)));
        // Page n + 1 empty: the gap is everything below page n; only a read reaching the end
        // covers it.
        let empty = Span::of(&[], 6, false).unwrap();
        assert_eq!(gap(&a, &empty), Some((i64::MIN, 12)));
        let end = Span::of(&ids(&[Some(13), Some(12)]), 4, false).unwrap();
        assert!(end.covers(i64::MIN, 12));
        assert!(!straddle.covers(i64::MIN, 12));
        // Page n short: it reached the end, nothing can be below it.
        let short = Span::of(&ids(&[Some(20)]), 3, false).unwrap();
        assert_eq!(gap(&short, &empty), None);
    }

    #[test]
    fn straddles_put_the_boundary_inside_the_smallest_window() {
        let s = plan_straddle(2995, 3005, 1000).unwrap();
        assert!(
            s.offset() <= 2995 && s.offset() + s.per_page >= 3005,
            "{s:?}"
        );
        assert!(s.per_page < 20, "{s:?}");
        let s = plan_straddle(0, 15, 1000).unwrap();
        assert_eq!(
            s,
            Straddle {
                page: 1,
                per_page: 15
            }
        );
        let tie = plan_straddle(6700, 7290, 1000).unwrap();
        assert!(
            tie.offset() <= 6700 && tie.offset() + tie.per_page >= 7290,
            "{tie:?}"
        );
        // Windows start at multiples of their size: a wide one may fit nowhere.
        assert_eq!(plan_straddle(6300, 7290, 1000), None);
        assert_eq!(plan_straddle(6100, 7200, 1000), None);
    }
}
