//! Which windows of the listing to ask for: a window is a `(page, per_page)` request, the
//! positions `[(page - 1) * per_page, page * per_page)`, so a window always starts at a
//! multiple of its own size. Varying the size lets consecutive windows **overlap** by a few
//! positions, and a boundary whose overlap holds a contact of both windows proves itself (see
//! [`crate::coverage`]) with no extra request.
//!
//! What page sizes the API serves is learned during the run ([`Sizes`]): a cap (reported,
//! silent or echoed) lowers the largest size; a `400` for a size marks it refused, and once a
//! size below the largest is refused only sizes seen to work are used.

use std::collections::BTreeSet;

/// One request: the positions `[(page - 1) * per_page, page * per_page)` of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Window {
    pub(crate) page: u64,
    pub(crate) per_page: u64,
}

impl Window {
    /// Position of the window's first contact.
    pub(crate) fn offset(&self) -> u64 {
        (self.page - 1) * self.per_page
    }

    /// Position just past the window.
    pub(crate) fn end(&self) -> u64 {
        self.page * self.per_page
    }
}

/// Positions two consecutive main-pass windows share, at page size `max`: a few dozen, so that
/// a boundary proves itself unless more contacts than that share the `signup_date` there or
/// more than that many were deleted above it between the two reads.
pub(crate) fn overlap(max: u64) -> u64 {
    (max / 32).clamp(2, 48).min(max / 2).max(1)
}

/// The page sizes the API serves, as learned so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sizes {
    /// The largest size the main pass asks for.
    max: u64,
    /// The largest size a repair may ask for: the documented maximum, until the API is seen
    /// to serve less.
    limit: u64,
    /// Sizes answered `400`.
    refused: BTreeSet<u64>,
    /// Sizes seen to work.
    accepted: BTreeSet<u64>,
    /// A size below `max` was refused: only `accepted` sizes are used from now on.
    only_accepted: bool,
}

/// Sizes tried, largest first, when the API refuses the one asked for: the sizes APIs that
/// accept only a few allow (10/25/50/100, 20/50/100/200/500, ...).
const FALLBACK_SIZES: [u64; 10] = [1000, 500, 250, 200, 100, 50, 25, 20, 10, 5];

impl Sizes {
    /// Asking for at most `max` per page.
    #[cfg(test)]
    pub(crate) fn new(max: u64) -> Sizes {
        Sizes::with_limit(max, max)
    }

    /// Asking for at most `max` per page in the main pass, `limit` in a repair.
    pub(crate) fn with_limit(max: u64, limit: u64) -> Sizes {
        Sizes {
            max: max.max(1),
            limit: limit.max(max).max(1),
            refused: BTreeSet::new(),
            accepted: BTreeSet::new(),
            only_accepted: false,
        }
    }

    /// The largest size to ask for.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// Whether only sizes seen to work may be asked for (a smaller size was refused).
    #[cfg(test)]
    pub(crate) fn only_accepted(&self) -> bool {
        self.only_accepted
    }

    /// Whether `per_page` was seen to work.
    pub(crate) fn accepts(&self, per_page: u64) -> bool {
        self.accepted.contains(&per_page)
    }

    /// The smallest size seen to work.
    pub(crate) fn smallest_accepted(&self) -> Option<u64> {
        self.accepted.first().copied()
    }

    /// The sizes refused so far.
    pub(crate) fn refused(&self) -> impl Iterator<Item = u64> + '_ {
        self.refused.iter().copied()
    }

    /// `per_page` was served.
    pub(crate) fn accept(&mut self, per_page: u64) {
        self.accepted.insert(per_page);
    }

    /// The API serves at most `cap` contacts a page (it said so, or served that many).
    pub(crate) fn cap(&mut self, cap: u64) {
        let cap = cap.max(1);
        self.limit = self.limit.min(cap);
        if cap < self.max {
            self.max = cap;
            self.accepted.retain(|&s| s <= cap);
        }
    }

    /// `per_page` was answered `400`. Returns the size to try instead, `None` when none is left.
    pub(crate) fn refuse(&mut self, per_page: u64) -> Option<u64> {
        self.refused.insert(per_page);
        self.accepted.remove(&per_page);
        if per_page > self.max {
            // A repair's size above the main pass's: repairs stay at or below the main size.
            self.limit = self.max;
            return Some(self.max);
        }
        if per_page == self.max {
            // The largest size is refused: step down to a size that APIs commonly allow.
            let next = FALLBACK_SIZES
                .into_iter()
                .find(|&s| s < per_page && !self.refused.contains(&s))?;
            self.max = next;
            self.limit = self.limit.min(next);
            return Some(next);
        }
        // A size below the largest is refused: the API takes only some sizes.
        self.only_accepted = true;
        self.limit = self.limit.min(self.max);
        Some(
            self.accepted
                .iter()
                .next_back()
                .copied()
                .unwrap_or(self.max),
        )
    }

    /// The sizes that may be asked for, largest first: with `only_accepted`, those seen to
    /// work; else every size from `max` down to `floor` (not refused).
    fn candidates(&self, floor: u64) -> Vec<u64> {
        self.candidates_up_to(floor, self.max)
    }

    fn candidates_up_to(&self, floor: u64, top: u64) -> Vec<u64> {
        if self.only_accepted {
            let mut sizes: Vec<u64> = self.accepted.iter().rev().copied().collect();
            if sizes.is_empty() {
                sizes.push(self.max);
            }
            return sizes;
        }
        (floor.clamp(1, top)..=top)
            .rev()
            .filter(|s| !self.refused.contains(s))
            .collect()
    }

    /// The window that starts at or before `start` and reaches furthest past it (a smaller
    /// size on equal reach).
    pub(crate) fn reaching_from(&self, start: u64) -> Window {
        let candidates = self.candidates(self.max / 2);
        let first = candidates.first().copied().unwrap_or(self.max);
        let mut best = Window {
            page: start / first + 1,
            per_page: first,
        };
        for per_page in candidates {
            let w = Window {
                page: start / per_page + 1,
                per_page,
            };
            if w.end() >= best.end() {
                best = w;
            }
        }
        best
    }

    /// The next main-pass window after one that ended at `end`: starting `overlap` positions
    /// before it, or, where no allowed size can (only a few sizes are accepted), at `end`.
    pub(crate) fn after(&self, end: u64, overlap: u64) -> Window {
        let w = self.reaching_from(end.saturating_sub(overlap));
        if w.end() > end {
            w
        } else {
            self.reaching_from(end)
        }
    }

    /// The smallest window holding positions `start..end`, if an allowed size can.
    pub(crate) fn covering(&self, start: u64, end: u64) -> Option<Window> {
        let need = end.saturating_sub(start).max(1);
        let mut sizes = self.candidates_up_to(need, self.limit);
        sizes.reverse();
        sizes
            .into_iter()
            .filter(|&s| s >= need)
            .find_map(|per_page| {
                let w = Window {
                    page: start / per_page + 1,
                    per_page,
                };
                (w.end() >= end).then_some(w)
            })
    }

    /// Like [`sweep`](Self::sweep), with windows of at most `limit` contacts (an API that drops
    /// contacts at random serves small windows whole more often).
    pub(crate) fn sweep_within(&self, start: u64, end: u64, limit: u64) -> Vec<Window> {
        let limit = limit.max(1);
        if limit >= self.limit {
            return self.sweep(start, end);
        }
        Sizes {
            max: self.max.min(limit),
            limit,
            ..self.clone()
        }
        .sweep(start, end)
    }

    /// Windows that together hold positions `start..end`: one when a window can, else a run of
    /// overlapping windows.
    pub(crate) fn sweep(&self, start: u64, end: u64) -> Vec<Window> {
        if let Some(w) = self.covering(start, end) {
            return vec![w];
        }
        // Repairs may ask for up to `limit` a page: fewer, larger windows.
        let wide = Sizes {
            max: self.limit,
            ..self.clone()
        };
        let overlap = overlap(wide.max);
        let mut windows = vec![wide.reaching_from(start)];
        while let Some(last) = windows.last().copied()
            && last.end() < end
        {
            windows.push(wide.after(last.end(), overlap));
        }
        windows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_windows_overlap_and_cost_a_few_percent_more_requests() {
        let sizes = Sizes::new(1000);
        let overlap = overlap(1000);
        let mut w = Window {
            page: 1,
            per_page: 1000,
        };
        let mut requests = 1;
        while w.end() < 1_000_000 {
            let next = sizes.after(w.end(), overlap);
            assert!(next.offset() + overlap <= w.end(), "{w:?} then {next:?}");
            assert!(next.end() > w.end());
            w = next;
            requests += 1;
        }
        // 1,000 pages of 1,000 without overlap (measured: 1,073 with an overlap of 31).
        assert!(requests <= 1_080, "{requests} requests for 1M contacts");
    }

    #[test]
    fn a_cap_lowers_the_largest_size_and_refusals_step_down_to_common_sizes() {
        let mut sizes = Sizes::new(1000);
        sizes.cap(500);
        assert_eq!(sizes.max(), 500);
        let w = sizes.after(500, overlap(500));
        assert!(w.per_page <= 500 && w.offset() < 500, "{w:?}");
        let mut sizes = Sizes::new(1000);
        assert_eq!(sizes.refuse(1000), Some(500));
        assert_eq!(sizes.refuse(500), Some(250));
        assert_eq!(sizes.refuse(250), Some(200));
        assert_eq!(sizes.refuse(200), Some(100));
        sizes.accept(100);
        // 97 is refused too: from now on only 100.
        assert_eq!(sizes.refuse(97), Some(100));
        assert!(sizes.only_accepted());
        let w = sizes.after(100, 3);
        assert_eq!(
            w,
            Window {
                page: 2,
                per_page: 100
            },
            "no overlap is possible"
        );
        assert_eq!(sizes.covering(95, 105), None);
    }

    #[test]
    fn a_region_wider_than_a_window_is_swept_by_overlapping_windows() {
        let sizes = Sizes::new(1000);
        let one = sizes.sweep(2995, 3005);
        assert_eq!(one.len(), 1);
        assert!(one[0].offset() <= 2995 && one[0].end() >= 3005 && one[0].per_page < 20);
        let many = sizes.sweep(6_100, 27_000);
        assert!(many[0].offset() <= 6_100);
        assert!(many.last().unwrap().end() >= 27_000);
        for pair in many.windows(2) {
            assert!(pair[1].offset() < pair[0].end(), "{pair:?}");
        }
    }
}
