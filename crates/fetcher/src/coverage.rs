//! What a read proves, and what the reads of a run have proven together.
//!
//! The API serves offset windows over a listing sorted by `signup_date`, newest first. The
//! rules the proof rests on (the README's Guarantees state them too):
//!
//! 1. **Keys at the coarsest plausible precision.** A backend may sort at a coarser precision
//!    than it shows (by the second while values carry fractions). Every key is therefore the
//!    `signup_date` truncated to the second ([`key_of`]); contacts equal at that precision are
//!    ties, in any order. This is sound for any backend sorting at a second or finer, and costs
//!    nothing where values are whole seconds (the documented form). What the run saw of the
//!    real precision is reported ([`Precision`]); only an inversion of whole seconds fails it.
//! 2. **A read covers the keys it holds.** A read served from some listing holds, in that
//!    listing, the contiguous positions of its window; sorted order then means it holds
//!    **every** contact of that listing whose key lies strictly between its last key and its
//!    first key, whatever the order of ties and whatever happened before or after it was served.
//!    A contact present for the whole run is in every listing, so if no read delivered it, its
//!    key lies outside every read's open interval. Keys are whole seconds, so the open interval
//!    `(last, first)` is the closed integer range `[last + 1, first - 1]` ([`Covered`]).
//! 3. **The ends are proven by the response itself.** A read from offset 0 also holds everything
//!    above its last key. A read holds everything below its first key only when its own
//!    response shows the listing ends there: `offset + contacts == total` it reported. A read
//!    shorter than asked proves nothing by being short, and a failed read proves nothing at all.
//! 4. **A read shorter than asked, not at its end, is not trusted**: the API may have dropped
//!    contacts after its `LIMIT` (or capped the size without saying so); its contacts are
//!    delivered, but its interval is proven by other reads.
//! 5. **What is left** after the reads is a set of key ranges: a single key where more contacts
//!    share a second than the overlap of two windows holds (proven by counting them, see
//!    [`crate::proof`]), or a range where the listing moved further than the overlap between
//!    two reads (proven by reading around it again).

use std::collections::BTreeMap;

use trackly_contacts::key::Identity;

/// The key the proof uses: `signup_date` in whole seconds since the epoch (rule 1).
pub(crate) fn key_of(id: &Identity) -> Option<i64> {
    id.signup.map(|micros| micros.div_euclid(1_000_000))
}

/// The finest precision at which every read so far was in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) enum Precision {
    /// Sorted to the microsecond (or no contact so far shows otherwise).
    #[default]
    Microsecond,
    /// Some contacts within one millisecond came out of order.
    Millisecond,
    /// Some contacts within one second came out of order.
    Second,
}

impl Precision {
    /// Its name in the summary and the manifest.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Precision::Microsecond => "microsecond",
            Precision::Millisecond => "millisecond",
            Precision::Second => "second",
        }
    }
}

/// Two contacts of one read in an order no plausible sort precision explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfOrder {
    /// 0-based index of the contact that sorts above the one before it.
    pub(crate) record: usize,
    /// Its `signup_date` and the one before it, in microseconds.
    pub(crate) values: (i64, i64),
}

/// Checks a read's order: the coarsest precision its order needs, or the first inversion of
/// whole seconds.
pub(crate) fn order_of(ids: &[Identity]) -> Result<Precision, OutOfOrder> {
    let mut precision = Precision::Microsecond;
    let mut previous: Option<i64> = None;
    for (record, micros) in ids
        .iter()
        .enumerate()
        .filter_map(|(i, id)| Some((i, id.signup?)))
    {
        if let Some(before) = previous
            && micros > before
        {
            if micros.div_euclid(1_000_000) > before.div_euclid(1_000_000) {
                return Err(OutOfOrder {
                    record,
                    values: (micros, before),
                });
            }
            let needed = if micros.div_euclid(1_000) > before.div_euclid(1_000) {
                Precision::Second
            } else {
                Precision::Millisecond
            };
            precision = precision.max(needed);
        }
        previous = Some(micros);
    }
    Ok(precision)
}

/// The keys a read proves (rules 2 and 3), from its first and last key (`None`: it holds
/// no readable key): `None` when it proves nothing.
pub(crate) fn claim(ends: Option<(i64, i64)>, from_top: bool, to_end: bool) -> Option<(i64, i64)> {
    let Some((first, last)) = ends else {
        // Nothing readable: an empty listing read from the top to its end proves everything.
        return (from_top && to_end).then_some((i64::MIN, i64::MAX));
    };
    let high = if from_top { i64::MAX } else { first - 1 };
    let low = if to_end { i64::MIN } else { last + 1 };
    (low <= high).then_some((low, high))
}

/// The keys proven so far: disjoint, non-adjacent closed ranges.
#[derive(Debug, Clone, Default)]
pub(crate) struct Covered {
    /// Start of each range → its end.
    ranges: BTreeMap<i64, i64>,
}

impl Covered {
    /// Adds the closed range `[low, high]`.
    pub(crate) fn add(&mut self, low: i64, high: i64) {
        if low > high {
            return;
        }
        let (mut low, mut high) = (low, high);
        // A range starting at or below `high + 1` and ending at or above `low - 1` merges.
        let touching: Vec<(i64, i64)> = self
            .ranges
            .range(..=high.saturating_add(1))
            .rev()
            .take_while(|(_, end)| **end >= low.saturating_sub(1))
            .map(|(&s, &e)| (s, e))
            .collect();
        for (start, end) in touching {
            self.ranges.remove(&start);
            low = low.min(start);
            high = high.max(end);
        }
        self.ranges.insert(low, high);
    }

    /// Whether `key` is proven.
    pub(crate) fn contains(&self, key: i64) -> bool {
        self.ranges
            .range(..=key)
            .next_back()
            .is_some_and(|(_, &end)| end >= key)
    }

    /// Whether everything is proven.
    pub(crate) fn is_complete(&self) -> bool {
        self.ranges.get(&i64::MIN) == Some(&i64::MAX)
    }

    /// The lowest key down to which everything above is proven (`i64::MIN` when complete),
    /// `None` while the top itself is not.
    pub(crate) fn proven_down_to(&self) -> Option<i64> {
        let (&start, &end) = self.ranges.iter().next_back()?;
        (end == i64::MAX).then_some(start)
    }

    /// The unproven ranges within `[low, high]`, highest first.
    pub(crate) fn gaps_within(&self, low: i64, high: i64) -> Vec<(i64, i64)> {
        let mut gaps = Vec::new();
        if low > high {
            return gaps;
        }
        // The lowest key of `[low, high]` not yet accounted for; `None` once all are.
        let mut next = Some(low);
        let from = self
            .ranges
            .range(..=low)
            .next_back()
            .map_or(low, |(&s, _)| s);
        for (&start, &end) in self.ranges.range(from..=high) {
            let Some(at) = next else { break };
            if end < at {
                continue;
            }
            if start > at {
                gaps.push((at, start - 1));
            }
            next = (end < high).then(|| end + 1);
        }
        if let Some(at) = next {
            gaps.push((at, high));
        }
        gaps.reverse();
        gaps
    }

    /// The unproven ranges, highest first.
    pub(crate) fn gaps(&self) -> Vec<(i64, i64)> {
        self.gaps_within(i64::MIN, i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(seconds: i64, frac: i64) -> Identity {
        Identity {
            hash: 0,
            signup: Some(seconds * 1_000_000 + frac),
        }
    }

    #[test]
    fn a_read_proves_the_keys_strictly_inside_it_and_an_end_only_when_it_shows_one() {
        assert_eq!(claim(Some((20, 12)), false, false), Some((13, 19)));
        assert_eq!(claim(Some((20, 12)), true, false), Some((13, i64::MAX)));
        assert_eq!(claim(Some((20, 12)), false, true), Some((i64::MIN, 19)));
        assert_eq!(
            claim(Some((12, 12)), false, false),
            None,
            "a tie proves nothing"
        );
        assert_eq!(
            claim(Some((13, 12)), false, false),
            None,
            "adjacent seconds"
        );
        assert_eq!(claim(None, true, true), Some((i64::MIN, i64::MAX)));
        assert_eq!(claim(None, false, true), None);
    }

    #[test]
    fn ranges_merge_when_they_touch_and_leave_tie_points_open() {
        let mut c = Covered::default();
        c.add(13, i64::MAX);
        c.add(5, 11);
        assert_eq!(c.gaps(), vec![(12, 12), (i64::MIN, 4)]);
        assert_eq!(c.proven_down_to(), Some(13));
        c.add(12, 12);
        assert_eq!(c.proven_down_to(), Some(5));
        c.add(i64::MIN, 4);
        assert!(c.is_complete());
        assert!(c.gaps().is_empty());
        let mut d = Covered::default();
        d.add(100, 200);
        d.add(300, 400);
        assert_eq!(d.gaps_within(150, 350), vec![(201, 299)]);
        assert_eq!(d.gaps_within(0, 50), vec![(0, 50)]);
        assert!(d.contains(100) && !d.contains(250));
    }

    #[test]
    fn an_inversion_within_a_second_is_a_tie_and_across_seconds_fails_naming_both_values() {
        assert_eq!(
            order_of(&[id(9, 0), id(8, 5), id(8, 0)]),
            Ok(Precision::Microsecond)
        );
        assert_eq!(
            order_of(&[id(9, 0), id(9, 1), id(8, 0)]),
            Ok(Precision::Millisecond)
        );
        assert_eq!(order_of(&[id(9, 0), id(9, 500_000)]), Ok(Precision::Second));
        assert_eq!(
            order_of(&[id(9, 0), id(10, 0)]),
            Err(OutOfOrder {
                record: 1,
                values: (10_000_000, 9_000_000)
            })
        );
    }
}
