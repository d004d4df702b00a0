//! The bookkeeping of the proof that no contact fell between two pages (see
//! [`crate::coverage`]): which boundaries are open, which reads prove them, when to read again,
//! and when to give up. Pure and synchronous; [`crate::paginate`] drives it and makes the
//! requests it asks for.
//!
//! A boundary is proven by the two pages themselves (their keys overlap), or by a **straddle**:
//! one small read whose window holds the boundary's whole gap with a contact to spare on each
//! side. When the gap's tied keys are more than any window can hold (a bulk import of a
//! thousand contacts in one second), each tied key is proven by a **census** instead: the pages
//! that hold the key are read again until the distinct contacts seen with that key number as
//! many as the positions the key occupies, counted in reads that report one and the same total.

use std::collections::{BTreeMap, HashMap, HashSet};

use trackly_contacts::Frontier;
use trackly_contacts::key::Identity;

use crate::coverage::{OutOfOrder, Span, Straddle, gap, plan_straddle};
use crate::error::FetchError;
use crate::seen::{HashMapOfHashes, HashSetOfHashes};

/// A main-pass page as the proof needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Read {
    pub(crate) number: u64,
    pub(crate) span: Span,
    pub(crate) total: u64,
    /// It held `per_page` contacts (so the listing may go on after it).
    pub(crate) full: bool,
    /// Hash of its first contact.
    pub(crate) first: Option<u64>,
}

impl Read {
    pub(crate) fn of(
        number: u64,
        per_page: u64,
        total: u64,
        ids: &[Identity],
    ) -> Result<Read, OutOfOrder> {
        let full = ids.len() as u64 >= per_page;
        let span = Span::of(ids, (number - 1) * per_page, full)?;
        Ok(Read {
            number,
            span,
            total,
            full,
            first: ids.first().map(|id| id.hash),
        })
    }
}

/// A request the proof needs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Job {
    /// A read across the boundary above main page `check.page`.
    Straddle(Check),
    /// Main page `page` again, for the census of `key`.
    Census { key: i64, page: u64 },
}

/// One straddle of the boundary above main page `page`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check {
    /// The lower page of the boundary.
    pub(crate) page: u64,
    /// The closed `signup_date` gap the read must cover.
    gap: (i64, i64),
    /// Only the open interior of the gap is needed (its end keys go through a census).
    interior_only: bool,
    /// Where page n's last contact and page n + 1's first are expected in the listing now:
    /// positions `top - 1` and `bottom` (both `n * per_page` until the listing is seen to move).
    top: u64,
    bottom: u64,
    /// Where the pages had `top` and `bottom`: what measured moves are relative to.
    origin: u64,
    origin_bottom: u64,
    /// Tied keys at either side of the boundary.
    tail_ties: u64,
    head_ties: u64,
    /// Extra positions each side, for rows the listing moved since.
    slack: u64,
    pub(crate) totals: (u64, u64),
    pub(crate) attempt: u32,
    /// Reads that found neither page's contacts (the listing moved further than the window).
    blind: u32,
    /// What those reads showed: the boundary lies after position `floor` and before `ceil`.
    floor: u64,
    ceil: Option<u64>,
    /// The largest window the server serves whole.
    max_per_page: u64,
    pub(crate) straddle: Straddle,
}

/// Positions of slack each side of a boundary in its first straddle.
const INITIAL_SLACK: u64 = 4;

impl Check {
    fn new(above: &Read, below: &Read, gap: (i64, i64), per_page: u64, max_window: u64) -> Check {
        Check {
            page: below.number,
            gap,
            interior_only: false,
            top: above.number * per_page,
            bottom: above.number * per_page,
            origin: above.number * per_page,
            origin_bottom: above.number * per_page,
            tail_ties: above.span.tail_ties,
            head_ties: below.span.head_ties,
            slack: INITIAL_SLACK,
            totals: (above.total, below.total),
            attempt: 0,
            blind: 0,
            floor: 0,
            ceil: None,
            max_per_page: max_window,
            straddle: Straddle { page: 1, per_page },
        }
    }

    /// The window: the tied keys each side plus one contact beyond them (or, for the interior
    /// only, one contact each side), plus the slack.
    fn plan(&self) -> Option<Straddle> {
        let (tail, head) = if self.interior_only {
            (0, 0)
        } else {
            (self.tail_ties, self.head_ties)
        };
        // An empty page below: the window must also reach past the end of the listing.
        let after = if self.gap.0 == i64::MIN {
            self.slack * 2
        } else {
            head + 1 + self.slack
        };
        plan_straddle(
            self.top.saturating_sub(tail + 1 + self.slack),
            self.bottom.saturating_add(after),
            self.max_per_page,
        )
    }

    /// With a straddle planned: with the slack asked for, or as much of it as a window holds.
    fn planned(mut self) -> Option<Check> {
        loop {
            if let Some(straddle) = self.plan() {
                self.straddle = straddle;
                return Some(self);
            }
            if self.slack == 0 {
                return None;
            }
            self.slack /= 2;
        }
    }

    /// Whether a read with `span` proves what this check is for.
    fn proves(&self, span: &Span) -> bool {
        let (low, high) = self.gap;
        if self.interior_only {
            // Every key strictly between the end keys: a read from at or below `low` to at or
            // above `high` holds them all.
            (span.lo == i64::MIN || span.lo <= low) && (span.hi == i64::MAX || high <= span.hi)
        } else {
            span.covers(low, high)
        }
    }

    /// The next attempt: each side moved to where the listing was seen to move it (twice the
    /// slack), or, when the read found neither page's contacts, the widest window at the next
    /// place of a galloping search for them.
    fn retry(&self, span: &Span, ids: &[Identity], anchors: Option<&Anchors>) -> Option<Check> {
        let mut next = *self;
        next.attempt += 1;
        let offset = self.straddle.offset();
        let (above, below) = anchors.map_or((None, None), |a| a.moves(offset, ids));
        let (low, high) = self.gap;
        let end = offset + ids.len() as u64;
        // How far past the window a side that it did not reach may lie: growing each attempt.
        let reach = (self.slack * 2).max(INITIAL_SLACK);
        if above.is_some() || below.is_some() {
            if above.is_none() || below.is_none() {
                // One side is still being searched for: a step of the search, not a miss.
                next.blind += 1;
            }
            next.slack = (self.slack * 2).max(INITIAL_SLACK);
            let (tail, head) = if self.interior_only {
                (0, 0)
            } else {
                (self.tail_ties, self.head_ties)
            };
            // A side not seen most likely moved like the other one; when the window's keys
            // stop short of it, it lies beyond the window too: the next window starts (or
            // ends) `reach` further out than this one did.
            let like_above = self.origin.saturating_add_signed(below.unwrap_or(0));
            next.top = match above {
                Some(moved) => self.origin.saturating_add_signed(moved),
                None if span.hi != i64::MAX && span.hi <= high => {
                    let start = offset.saturating_sub(reach);
                    like_above.min(start + tail + 1 + next.slack)
                }
                None => like_above,
            };
            let like_below = self.origin_bottom.saturating_add_signed(above.unwrap_or(0));
            next.bottom = match below {
                Some(moved) => self.origin_bottom.saturating_add_signed(moved),
                None if span.lo != i64::MIN && span.lo >= low => {
                    let stop = end + reach;
                    like_below.max(stop.saturating_sub(head + 1 + next.slack))
                }
                None => like_below,
            };
            next.bottom = next.bottom.max(next.top);
            return next.planned();
        }
        next.blind += 1;
        let first = ids.iter().find_map(|id| id.signup);
        let last = ids.iter().rev().find_map(|id| id.signup);
        let step = self.straddle.per_page.max(1) << self.blind.min(20);
        let centre = match (first, last) {
            // All newer than page n's last key: the boundary moved down, past this window.
            (_, Some(last)) if last > high => {
                next.floor = next.floor.max(end);
                next.ceil
                    .map_or(end + step, |ceil| next.floor.midpoint(ceil))
            }
            // All older than page n + 1's first key, or past the end: it moved up.
            (Some(first), _) if first < low => self.search_up(&mut next, offset, step),
            (None, None) if span.lo == i64::MIN => self.search_up(&mut next, offset, step),
            // Inside the gap, or nothing readable: widen where it is.
            _ => self.top.midpoint(self.bottom),
        };
        next.top = centre;
        next.bottom = centre;
        next.slack = self.max_per_page;
        next.planned()
    }

    fn search_up(&self, next: &mut Check, offset: u64, step: u64) -> u64 {
        let ceil = next.ceil.map_or(offset, |c| c.min(offset));
        next.ceil = Some(ceil);
        if next.floor > 0 {
            next.floor.midpoint(ceil)
        } else {
            ceil.saturating_sub(step)
        }
    }

    fn why_unproven(&self) -> String {
        format!(
            "the listing kept moving at the boundary (the last read was {} contacts wide around position {}); contacts may have fallen between the pages",
            self.straddle.per_page, self.top
        )
    }
}

/// The census of one tied key, in rounds. A round reads every page that holds the key
/// (together), then its first and last pages once more (the confirmation). It **counts** when
/// its reads agree on one listing: the key starts after the last higher key and ends before
/// the first lower key they show, every read holds exactly as many contacts with the key as
/// that range puts in its window, and the confirmation finds the same range, so the key did
/// not move or change size while the round read it. Contacts seen in counting rounds with the
/// same range are added up; when they are as many as the range's positions, every contact
/// with the key has been delivered.
#[derive(Debug, Default)]
struct Census {
    /// Main pages known to hold the key.
    first_page: u64,
    last_page: u64,
    /// Distinct contacts seen with the key, by the positions `start..end` it held.
    tallies: HashMap<Range, HashSetOfHashes>,
    /// This phase's reads: offset, identities, whether it reached the end of the listing.
    reads: Vec<CensusRead>,
    /// The range and contacts the round's first phase found, awaiting confirmation.
    confirming: Option<(Range, HashSet<u64>)>,
    rounds: u32,
    in_flight: u32,
    proven: bool,
    /// Boundaries (lower pages) waiting for it.
    waiting: Vec<u64>,
}

/// One census read: offset, identities, whether it reached the end of the listing, and the
/// `total` it reported.
type CensusRead = (u64, Vec<Identity>, bool, u64);

/// Positions `start..end` a tied key holds, in a listing that reported `total`.
type Range = (i64, i64, u64);

/// Where a set of reads puts a tied key, and its contacts in them, when they agree: on one
/// `total` (reads that report different totals saw different listings), and on positions.
fn measure(key: i64, reads: &[CensusRead]) -> Option<(Range, HashSet<u64>)> {
    let total = reads.first()?.3;
    if reads.iter().any(|r| r.3 != total) {
        return None;
    }
    let mut start = None;
    let mut end: Option<i64> = None;
    for (offset, ids, short, _) in reads {
        let offset = *offset as i64;
        if offset == 0 {
            start = start.max(Some(0));
        }
        for (i, id) in ids.iter().enumerate() {
            let at = offset + i as i64;
            match id.signup {
                Some(k) if k > key => start = start.max(Some(at + 1)),
                Some(k) if k < key => end = Some(end.map_or(at, |e| e.min(at))),
                _ => {}
            }
        }
        if *short {
            let at = offset + ids.len() as i64;
            end = Some(end.map_or(at, |e| e.min(at)));
        }
    }
    let (start, end) = (start?, end?);
    let agree = end >= start
        && reads.iter().all(|(offset, ids, ..)| {
            let from = (*offset as i64).max(start);
            let to = (*offset as i64 + ids.len() as i64).min(end);
            ids.iter().filter(|id| id.signup == Some(key)).count() == (to - from).max(0) as usize
        });
    let members = reads
        .iter()
        .flat_map(|(_, ids, ..)| ids)
        .filter(|id| id.signup == Some(key))
        .map(|id| id.hash)
        .collect();
    agree.then_some(((start, end, total), members))
}

impl Census {
    /// A phase of the round is complete: the confirmation to send (first phase agreed), or
    /// `None` when the round is over (then `proven` says how it went).
    fn phase_done(&mut self, key: i64) -> Option<Vec<u64>> {
        let reads = std::mem::take(&mut self.reads);
        let measured = measure(key, &reads);
        match (self.confirming.take(), measured) {
            (None, Some(found)) => {
                self.confirming = Some(found);
                let mut pages = vec![self.first_page];
                if self.last_page != self.first_page {
                    pages.push(self.last_page);
                }
                self.in_flight = pages.len() as u32;
                Some(pages)
            }
            (Some((range, mut members)), Some((confirmed, more))) if confirmed == range => {
                members.extend(more);
                let seen = self.tallies.entry(range).or_default();
                seen.extend(members);
                self.proven = seen.len() as i64 >= range.1 - range.0;
                None
            }
            _ => None,
        }
    }
}

/// The contacts of the two pages at an open boundary, by position, to measure how far the
/// listing moved each side when a straddle finds them elsewhere. Kept as read and indexed only
/// when a straddle misses ([`Anchors::moves`]): most boundaries never need it, and indexing
/// both pages of every boundary up front cost ≈ 1% of an export's CPU.
#[derive(Debug, Default)]
struct Anchors {
    /// Page n, which ends at position `top`, and page n + 1, which starts at `bottom`.
    above: Vec<Identity>,
    top: u64,
    below: Vec<Identity>,
    bottom: u64,
    /// Keys left out (see [`Anchors::split`]).
    tied: [i64; 2],
}

impl Anchors {
    /// Contacts whose key is one of `tied` are left out: ties may come back in any order, so
    /// where one of them turns up says nothing about how the listing moved.
    /// `above` ends at position `top`, `below` starts at `bottom`.
    fn split(
        top: u64,
        above: &[Identity],
        bottom: u64,
        below: &[Identity],
        tied: [i64; 2],
    ) -> Anchors {
        Anchors {
            above: above.to_vec(),
            top,
            below: below.to_vec(),
            bottom,
            tied,
        }
    }

    /// How far each side moved: where the read at `offset` found the pages' contacts against
    /// where the pages had them (the median of each side).
    fn moves(&self, offset: u64, ids: &[Identity]) -> (Option<i64>, Option<i64>) {
        let side = |at: HashMapOfHashes<i64>| {
            let mut moves: Vec<i64> = ids
                .iter()
                .enumerate()
                .filter_map(|(i, id)| Some(offset as i64 + i as i64 - at.get(&id.hash)?))
                .collect();
            moves.sort_unstable();
            moves.get(moves.len() / 2).copied()
        };
        let start = self.top as i64 - self.above.len() as i64;
        (
            side(positions(start, &self.above, self.tied)),
            side(positions(self.bottom as i64, &self.below, self.tied)),
        )
    }
}

fn positions(start: i64, ids: &[Identity], tied: [i64; 2]) -> HashMapOfHashes<i64> {
    let mut at = HashMapOfHashes::with_capacity_and_hasher(ids.len(), Default::default());
    at.extend(
        ids.iter()
            .enumerate()
            .filter(|(_, id)| id.signup.is_none_or(|k| !tied.contains(&k)))
            .map(|(i, id)| (id.hash, start + i as i64)),
    );
    at
}

/// What a boundary still needs before it is proven.
#[derive(Debug, Default)]
struct Open {
    /// The closed `signup_date` gap of the boundary.
    gap: (i64, i64),
    /// Straddles (or the interior straddles of a census boundary) still to succeed.
    straddles: u32,
    /// Tied keys whose census is still to succeed.
    censuses: Vec<i64>,
}

/// Every boundary of the run, and how far down everything is proven.
#[derive(Debug)]
pub(crate) struct Verifier {
    per_page: u64,
    /// The widest straddle the server serves whole.
    max_window: u64,
    max_attempts: u32,
    open: BTreeMap<u64, Open>,
    censuses: BTreeMap<i64, Census>,
    /// Main pages read, by number: their lowest key (only what the frontier still needs).
    lows: BTreeMap<u64, i64>,
    last_page: u64,
    /// Every boundary down to this page is proven.
    proven_to: u64,
    /// Contacts delivered and reads made by straddles, by boundary.
    recovered: HashMap<u64, (u64, u32)>,
    /// The contacts at each boundary a straddle is proving.
    anchors: HashMap<u64, Anchors>,
    /// The last main page's contacts.
    last_ids: Vec<Identity>,
    /// Boundaries inside a run of pages that all share one `signup_date`, waiting for the
    /// page where it ends: one straddle across the whole run proves them all.
    deferred: Option<Deferred>,
}

/// The start of a run of tied pages: the boundary above its first page.
#[derive(Debug)]
struct Deferred {
    /// The lower page of that boundary.
    first: u64,
    /// The boundary's position and the page above it.
    top: u64,
    above: Vec<Identity>,
    tail_ties: u64,
    /// The high end of that boundary's gap, and the tied key.
    high: i64,
    key: i64,
    total: u64,
}

/// A boundary whose straddles recovered contacts or whose pages disagreed on the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Moved {
    pub(crate) page: u64,
    pub(crate) totals: (u64, u64),
    pub(crate) reads: u32,
    pub(crate) recovered: u64,
}

/// Straddles per boundary that may find neither page's contacts (each a galloping step of a
/// search for where the listing moved them) before the run gives up.
const MAX_BLIND: u32 = 24;

/// Census rounds per tied key before the run gives up.
const MAX_CENSUS_ROUNDS: u32 = 12;

impl Verifier {
    /// `first`: the run's first page, proven at its top (page 1, or a resumed run's first page
    /// reaching above the interrupted run's frontier).
    pub(crate) fn new(
        per_page: u64,
        max_window: u64,
        max_attempts: u32,
        first: &Read,
        ids: &[Identity],
    ) -> Verifier {
        let mut v = Verifier {
            per_page,
            max_window: max_window.max(per_page),
            max_attempts: max_attempts.max(1),
            open: BTreeMap::new(),
            censuses: BTreeMap::new(),
            lows: BTreeMap::new(),
            last_page: first.number,
            proven_to: first.number,
            recovered: HashMap::new(),
            anchors: HashMap::new(),
            last_ids: Vec::new(),
            deferred: None,
        };
        v.lows.insert(first.number, first.span.lo);
        v.last_ids = ids.to_vec();
        v
    }

    /// Every contact present throughout the run with a `signup_date` above this was delivered.
    pub(crate) fn frontier(&self) -> Option<Frontier> {
        self.lows.get(&self.proven_to).map(|&signup_date| Frontier {
            signup_date,
            page: self.proven_to,
        })
    }

    /// The last main page all of whose boundaries are proven.
    pub(crate) fn proven_to(&self) -> u64 {
        self.proven_to
    }

    /// Whether any request is still needed.
    pub(crate) fn done(&self) -> bool {
        self.open.is_empty()
    }

    /// Main page `below` was read after `above`: the requests its boundary needs, and census
    /// rounds for tied keys the main pass has now gone past.
    pub(crate) fn page(
        &mut self,
        above: &Read,
        below: &Read,
        ids: &[Identity],
    ) -> Result<Vec<Job>, FetchError> {
        let n = below.number;
        self.lows.insert(n, below.span.lo);
        self.last_page = n;
        let mut jobs = Vec::new();
        let boundary = (n - 1) * self.per_page;
        let open = gap(&above.span, &below.span);
        // Page n holds nothing but the key it starts with: the tie goes on past it, and a
        // straddle of this boundary alone could not hold it. Wait for the page where it ends.
        let tied_through = below.full
            && below.span.hi == below.span.lo
            && below.span.head_ties == self.per_page
            && open.is_some_and(|(low, _)| low == below.span.hi);
        if let Some(gap) = open {
            self.open.insert(
                n,
                Open {
                    gap,
                    straddles: 1,
                    censuses: Vec::new(),
                },
            );
        }
        if tied_through && let Some((_, high)) = open {
            if self.deferred.is_none() {
                self.deferred = Some(Deferred {
                    first: n,
                    top: boundary,
                    above: self.last_ids.clone(),
                    tail_ties: above.span.tail_ties,
                    high,
                    key: below.span.hi,
                    total: above.total,
                });
            }
        } else if let Some(d) = self.deferred.take() {
            // The tie ends here: one straddle from above its first page to below this one.
            let low = open.map_or(d.key, |(low, _)| low);
            let mut check = Check::new(above, below, (low, d.high), self.per_page, self.max_window);
            check.top = d.top;
            check.origin = d.top;
            check.bottom = boundary;
            check.origin_bottom = boundary;
            check.tail_ties = d.tail_ties;
            check.totals.0 = d.total;
            let anchors = Anchors::split(d.top, &d.above, boundary, ids, [low, d.high]);
            self.anchors.insert(n, anchors);
            self.open.entry(n).or_insert(Open {
                gap: (low, d.high),
                straddles: 1,
                censuses: Vec::new(),
            });
            match check.planned() {
                Some(check) => jobs.push(Job::Straddle(check)),
                None => jobs.extend(self.census_boundary(check, d.first, Some(d.key))?),
            }
        } else if let Some(gap) = open {
            let check = Check::new(above, below, gap, self.per_page, self.max_window);
            let anchors = Anchors::split(boundary, &self.last_ids, boundary, ids, [gap.0, gap.1]);
            self.anchors.insert(n, anchors);
            match check.planned() {
                Some(check) => jobs.push(Job::Straddle(check)),
                None => jobs.extend(self.census_boundary(check, n, None)?),
            }
        }
        self.extend_censuses(n, ids);
        self.last_ids.clear();
        self.last_ids.extend_from_slice(ids);
        // The main pass has gone below a tied key: count it.
        for (&key, census) in &mut self.censuses {
            if !census.proven && census.rounds == 0 && below.span.lo < key {
                jobs.extend(round(key, census));
            }
        }
        self.advance();
        Ok(jobs)
    }

    /// The tied keys at a boundary are more than a window holds: a census for each end key,
    /// and a straddle for what lies strictly between them.
    ///
    /// `tied`: the key of a run of tied pages between the ends, when there is one: it gets a
    /// census of its own, and the interior is then two straddles, one at each end of the run.
    fn census_boundary(
        &mut self,
        check: Check,
        first: u64,
        tied: Option<i64>,
    ) -> Result<Vec<Job>, FetchError> {
        let (low, high) = check.gap;
        if low == i64::MIN || high == i64::MAX {
            return Err(FetchError::Unverified {
                page: check.page,
                attempts: 0,
                reason: format!(
                    "{} contacts share the signup_date at the end of page {}, more than one page can hold, and no page after them proves where they end",
                    check.tail_ties,
                    check.page - 1
                ),
            });
        }
        let mut jobs = Vec::new();
        let mut open = Open {
            gap: check.gap,
            ..Open::default()
        };
        // What lies strictly between the end keys (and the tied key), each part proven by a
        // straddle holding a contact of each of its end keys.
        let interiors = match tied.filter(|&v| low < v && v < high) {
            Some(v) => vec![((v, high), check.top), ((low, v), check.bottom)],
            None if low < high => vec![((low, high), check.top)],
            None => Vec::new(),
        };
        for (gap, at) in interiors {
            let interior = Check {
                interior_only: true,
                gap,
                top: at,
                bottom: at,
                origin: at,
                origin_bottom: at,
                ..check
            };
            let interior = interior.planned().ok_or_else(|| FetchError::Unverified {
                page: check.page,
                attempts: 0,
                reason: format!(
                    "pages of {} contacts are too small to hold a verification read across the boundary",
                    check.max_per_page
                ),
            })?;
            open.straddles += 1;
            jobs.push(Job::Straddle(interior));
        }
        let keys = [Some(high), Some(low), tied.filter(|&v| low < v && v < high)];
        for key in keys.into_iter().flatten() {
            if open.censuses.contains(&key) {
                continue;
            }
            open.censuses.push(key);
            let census = self.censuses.entry(key).or_insert_with(|| Census {
                first_page: first - 1,
                last_page: check.page,
                ..Census::default()
            });
            census.first_page = census.first_page.min(first - 1).max(1);
            census.last_page = census.last_page.max(check.page);
            census.waiting.extend(first..=check.page);
        }
        // Boundaries inside a run of tied pages wait for the same censuses.
        for page in first..check.page {
            self.open.insert(
                page,
                Open {
                    gap: check.gap,
                    straddles: 0,
                    censuses: open.censuses.clone(),
                },
            );
        }
        self.open.insert(check.page, open);
        Ok(jobs)
    }

    /// Main page `n` was read: a tied key that goes on into it is counted over it too.
    fn extend_censuses(&mut self, n: u64, ids: &[Identity]) {
        for (&key, census) in &mut self.censuses {
            if n == census.last_page + 1 && ids.first().and_then(|id| id.signup) == Some(key) {
                census.last_page = n;
            }
        }
    }

    fn prove_censuses(&mut self) {
        let proven: Vec<(i64, Vec<u64>)> = self
            .censuses
            .iter_mut()
            .filter(|(_, c)| c.proven && !c.waiting.is_empty())
            .map(|(&k, c)| (k, std::mem::take(&mut c.waiting)))
            .collect();
        for (key, pages) in proven {
            for page in pages {
                if let Some(open) = self.open.get_mut(&page) {
                    open.censuses.retain(|&k| k != key);
                }
            }
        }
        self.open
            .retain(|_, open| open.straddles > 0 || !open.censuses.is_empty());
        self.advance();
    }

    /// A straddle came back with `span` (its contacts `ids`, of which `recovered` were new):
    /// the boundary is proven, or the next attempt, or the run fails.
    pub(crate) fn on_straddle(
        &mut self,
        check: &Check,
        span: &Span,
        ids: &[Identity],
        recovered: u64,
    ) -> Result<(Option<Job>, Option<Moved>), FetchError> {
        let entry = self.recovered.entry(check.page).or_default();
        entry.0 += recovered;
        entry.1 += 1;
        if check.proves(span) {
            let (recovered, reads) = self.recovered.remove(&check.page).unwrap_or_default();
            if let Some(open) = self.open.get_mut(&check.page) {
                open.straddles = open.straddles.saturating_sub(1);
            }
            if !check.interior_only {
                // One read may cover several boundaries (a run of tied pages).
                for open in self.open.values_mut() {
                    if open.straddles > 0
                        && open.censuses.is_empty()
                        && span.covers(open.gap.0, open.gap.1)
                    {
                        open.straddles = 0;
                    }
                }
            }
            self.prove_censuses();
            let moved = (recovered > 0 || check.totals.0 != check.totals.1).then_some(Moved {
                page: check.page,
                totals: check.totals,
                reads,
                recovered,
            });
            return Ok((None, moved));
        }
        let again = check.retry(span, ids, self.anchors.get(&check.page));
        tracing::trace!(?check, span.lo, span.hi, read = ids.len(), next = ?again, "a straddle missed its boundary");
        match again {
            Some(again)
                if again.attempt - again.blind < self.max_attempts && again.blind <= MAX_BLIND =>
            {
                Ok((Some(Job::Straddle(again)), None))
            }
            _ => Err(FetchError::Unverified {
                page: check.page,
                attempts: check.attempt + 1,
                reason: check.why_unproven(),
            }),
        }
    }

    /// A census read came back (already taken in by [`observe`](Self::observe)): the next
    /// round when this one is complete and the key is not proven yet, or the run fails.
    pub(crate) fn on_census_read(
        &mut self,
        key: i64,
        page: u64,
        ids: &[Identity],
        full: bool,
        total: u64,
    ) -> Result<Vec<Job>, FetchError> {
        let per_page = self.per_page;
        let Some(census) = self.censuses.get_mut(&key) else {
            return Ok(Vec::new());
        };
        census.in_flight = census.in_flight.saturating_sub(1);
        census
            .reads
            .push(((page - 1) * per_page, ids.to_vec(), !full, total));
        if census.in_flight > 0 || census.proven {
            return Ok(Vec::new());
        }
        // The listing may have moved the key since the pages were read: follow it.
        let edge = |page: u64| {
            let (_, ids, ..) = census
                .reads
                .iter()
                .find(|(o, ..)| *o == (page - 1) * per_page)?;
            Some((
                ids.iter().find_map(|id| id.signup),
                ids.iter().rev().find_map(|id| id.signup),
                ids.len() as u64 >= per_page,
            ))
        };
        let move_first = match edge(census.first_page) {
            Some((_, Some(last), _)) if last > key => 1,
            Some((Some(first), ..)) if first <= key && census.first_page > 1 => -1,
            _ => 0,
        };
        let move_last = match edge(census.last_page) {
            Some((Some(first), ..)) if first < key && census.last_page > census.first_page => -1,
            Some((_, Some(last), true)) if last >= key => 1,
            _ => 0,
        };
        if let Some(pages) = census.phase_done(key) {
            return Ok(pages
                .into_iter()
                .map(|page| Job::Census { key, page })
                .collect());
        }
        if census.proven {
            self.prove_censuses();
            return Ok(Vec::new());
        }
        if census.rounds >= MAX_CENSUS_ROUNDS {
            let page = census.waiting.first().copied().unwrap_or(census.last_page);
            let best = census.tallies.values().map(HashSet::len).max().unwrap_or(0);
            return Err(FetchError::Unverified {
                page,
                attempts: census.rounds,
                reason: format!(
                    "more contacts share one signup_date than a page holds (around pages {}-{}); {} rounds of reading them again found {best} distinct ones but could not count them all in one unchanged listing (the listing or their order kept changing between the reads of a round)",
                    census.first_page, census.last_page, census.rounds
                ),
            });
        }
        census.first_page = census.first_page.saturating_add_signed(move_first).max(1);
        census.last_page = census
            .last_page
            .saturating_add_signed(move_last)
            .max(census.first_page);
        Ok(round(key, census))
    }

    /// The main pass is over: census rounds for every tied key not proven yet.
    pub(crate) fn finish_main(&mut self) -> Vec<Job> {
        let mut jobs = Vec::new();
        if let Some(d) = self.deferred.take() {
            // The pass ended inside a run of tied pages (it cannot, as a full page is always
            // followed by a read; kept for safety): its boundaries stay open and fail loudly.
            tracing::warn!(page = d.first, "a run of tied pages had no end");
        }
        for (&key, census) in &mut self.censuses {
            if !census.proven && census.in_flight == 0 && census.rounds == 0 {
                jobs.extend(round(key, census));
            }
        }
        jobs
    }

    fn advance(&mut self) {
        while self.proven_to < self.last_page && !self.open.contains_key(&(self.proven_to + 1)) {
            self.proven_to += 1;
        }
        // Only the frontier's page is needed from here on.
        self.lows = self.lows.split_off(&self.proven_to);
        let open = &self.open;
        self.anchors.retain(|page, _| open.contains_key(page));
    }
}

/// Reads every page that holds the key once more.
fn round(key: i64, census: &mut Census) -> Vec<Job> {
    census.rounds += 1;
    let pages: Vec<Job> = (census.first_page.max(1)..=census.last_page)
        .map(|page| Job::Census { key, page })
        .collect();
    census.in_flight = pages.len() as u32;
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frontier(signup_date: i64, page: u64) -> Frontier {
        Frontier { signup_date, page }
    }

    fn id(hash: u64, signup: i64) -> Identity {
        Identity {
            hash,
            signup: Some(signup),
        }
    }

    fn read(number: u64, per_page: u64, total: u64, ids: &[Identity]) -> Read {
        Read::of(number, per_page, total, ids).unwrap()
    }

    #[test]
    fn the_frontier_stops_at_the_first_unproven_boundary() {
        // Pages of 8, keys falling by 1 a contact: 100 99 .. 93 | 92 .. 85 | ...
        let pages: Vec<Vec<Identity>> = (0..4u64)
            .map(|p| {
                (0..8u64)
                    .map(|i| id(p * 8 + i, 100 - (p * 8 + i) as i64))
                    .collect()
            })
            .collect();
        let reads: Vec<Read> = pages
            .iter()
            .enumerate()
            .map(|(i, ids)| read(i as u64 + 1, 8, 32, ids))
            .collect();
        let mut v = Verifier::new(8, 8, 5, &reads[0], &pages[0]);
        assert_eq!(v.frontier(), Some(frontier(93, 1)));
        let jobs = v.page(&reads[0], &reads[1], &pages[1]).unwrap();
        let [Job::Straddle(check)] = jobs[..] else {
            panic!("{jobs:?}")
        };
        assert_eq!(v.frontier(), Some(frontier(93, 1)), "boundary 1|2 is open");
        v.page(&reads[1], &reads[2], &pages[2]).unwrap();
        assert_eq!(v.proven_to(), 1);
        // A straddle holding page 1's last two contacts and page 2's first two.
        let span = Span::of(&[id(6, 94), id(7, 93), id(8, 92), id(9, 91)], 6, true).unwrap();
        let (next, moved) = v.on_straddle(&check, &span, &[], 0).unwrap();
        assert!(next.is_none() && moved.is_none());
        assert_eq!(v.proven_to(), 2, "boundary 2|3 is still open");
        assert_eq!(v.frontier(), Some(frontier(85, 2)));
        assert!(!v.done());
    }

    #[test]
    fn a_straddle_that_misses_is_retried_recentred_then_the_run_fails() {
        let above = read(3, 1000, 5000, &[id(1, 90), id(2, 50)]);
        let below = read(4, 1000, 4990, &[id(3, 40), id(4, 10)]);
        let check = Check::new(&above, &below, (40, 50), 1000, 1000)
            .planned()
            .unwrap();
        let s = check.straddle;
        assert!(
            s.offset() <= 3000 - 6 && s.offset() + s.per_page >= 3000 + 6,
            "{s:?}"
        );
        // Page 3's last contact turns up a few positions higher (deletions above it), page 4's
        // first where it was.
        let anchors = Anchors::split(
            3000,
            &[id(1, 90), id(2, 50)],
            3000,
            &[id(3, 40), id(4, 10)],
            [i64::MIN, i64::MAX],
        );
        let at = check.straddle.offset();
        let mut found = vec![id(2, 50)];
        found.extend((at + 1..3000).map(|p| id(100 + p, 45)));
        found.push(id(3, 40));
        let span = Span::of(&found, at, true).unwrap();
        let again = check.retry(&span, &found, Some(&anchors)).unwrap();
        assert_eq!((again.top, again.bottom), (3000 - (2999 - at), 3000));
        assert_eq!(again.slack, 2 * INITIAL_SLACK);
        let s = again.straddle;
        assert!(s.offset() + 2 + again.slack <= again.top, "{s:?}");
        assert!(s.offset() + s.per_page >= 3000 + 2 + again.slack, "{s:?}");
        // A read that lands far above the boundary gallops down.
        let newer = [id(7, 95), id(8, 94)];
        let blind = check.retry(
            &Span::of(&newer, 2995, true).unwrap(),
            &newer,
            Some(&anchors),
        );
        let blind = blind.unwrap();
        assert_eq!(blind.floor, check.straddle.offset() + 2, "{blind:?}");
        assert!(blind.top > blind.floor, "{blind:?}");
        // A read that never finds the boundary: the search ends, and the run fails.
        let mut v = Verifier::new(1000, 1000, 2, &above, &[]);
        let miss = Span::of(&[id(9, 45)], 1, true).unwrap();
        let mut check = check;
        for reads in 1.. {
            match v.on_straddle(&check, &miss, &[], 0) {
                Ok((Some(Job::Straddle(next)), _)) => check = next,
                Ok(other) => panic!("{other:?}"),
                Err(err) => {
                    assert!(err.is_incomplete(), "{err}");
                    assert!(reads <= 2 + MAX_BLIND + 1, "{reads}");
                    break;
                }
            }
        }
    }

    #[test]
    fn a_tie_larger_than_a_page_is_proven_by_counting_it_in_one_listing() {
        // Key 50 holds positions 3..9 of a 12-contact listing, pages of 4: [0-3] [4-7] [8-11].
        let key = 50;
        let page1 = [id(1, 90), id(2, 80), id(3, 70), id(10, key)];
        let page2 = [id(11, key), id(12, key), id(13, key), id(14, key)];
        let page3 = [id(15, key), id(4, 30), id(5, 20), id(6, 10)];
        let (r1, r2, r3) = (
            read(1, 4, 12, &page1),
            read(2, 4, 12, &page2),
            read(3, 4, 12, &page3),
        );
        let mut v = Verifier::new(4, 4, 5, &r1, &page1);
        assert!(
            v.page(&r1, &r2, &page2).unwrap().is_empty(),
            "tie: census, no window fits"
        );
        let jobs = v.page(&r2, &r3, &page3).unwrap();
        assert!(
            jobs.iter()
                .all(|j| matches!(j, Job::Census { key: 50, .. })),
            "{jobs:?}"
        );
        assert_eq!(v.proven_to(), 1);
        // Round 1: the tie comes back shuffled, contact 13 twice and 14 not at all; the
        // confirmation finds the key where the round did.
        let round1 = [
            [id(1, 90), id(2, 80), id(3, 70), id(11, key)],
            [id(10, key), id(12, key), id(13, key), id(15, key)],
            [id(13, key), id(4, 30), id(5, 20), id(6, 10)],
        ];
        let read = |v: &mut Verifier, page: u64, ids: &[Identity]| {
            v.on_census_read(key, page, ids, true, 12).unwrap()
        };
        let mut next = Vec::new();
        for (page, ids) in (1..).zip(&round1) {
            next = read(&mut v, page, ids);
        }
        assert_eq!(next.len(), 2, "confirmation of pages 1 and 3: {next:?}");
        read(&mut v, 1, &round1[0]);
        let next = read(&mut v, 3, &round1[2]);
        assert_eq!(v.proven_to(), 1, "5 distinct contacts for 6 positions");
        assert_eq!(next.len(), 3, "another round: {next:?}");
        // Round 2 from the same listing shows 14: 6 of 6.
        let round2 = [
            [id(1, 90), id(2, 80), id(3, 70), id(14, key)],
            [id(10, key), id(11, key), id(12, key), id(13, key)],
            [id(15, key), id(4, 30), id(5, 20), id(6, 10)],
        ];
        for (page, ids) in (1..).zip(&round2) {
            read(&mut v, page, ids);
        }
        read(&mut v, 1, &round2[0]);
        read(&mut v, 3, &round2[2]);
        assert_eq!(v.proven_to(), 3);
        assert!(v.done());
        // A sign-up moves everything down one position during a round: page 1 is read after
        // it, page 3 before. The round alone agrees on positions 4..9 (5, one too few); the
        // confirmation sees 4..10 and the round counts for nothing.
        let mut w = Verifier::new(4, 4, 5, &r1, &page1);
        w.page(&r1, &r2, &page2).unwrap();
        w.page(&r2, &r3, &page3).unwrap();
        let mixed = [
            [id(0, 95), id(1, 90), id(2, 80), id(3, 70)],
            [id(10, key), id(11, key), id(12, key), id(13, key)],
            [id(15, key), id(4, 30), id(5, 20), id(6, 10)],
        ];
        for (page, ids) in (1..).zip(&mixed) {
            read(&mut w, page, ids);
        }
        read(&mut w, 1, &mixed[0]);
        read(&mut w, 3, &[id(14, key), id(15, key), id(4, 30), id(5, 20)]);
        assert_eq!(w.proven_to(), 1);
    }
}
