//! The proof that every contact present for the whole run was delivered: which keys the reads
//! have covered ([`crate::coverage`]), which ranges are left, and the reads that cover them.
//! Pure and synchronous; [`crate::paginate`] feeds it every read and makes the requests it asks
//! for.
//!
//! A range left open after the main pass is **repaired** by a batch of windows around where its
//! contacts were last seen ([`Sizes::sweep`]: one window when one holds it, overlapping windows
//! when not). When the batch comes back, what it covers is proven like any read. A single key
//! that is still open (more contacts share a second than a window reaches across) is proven by a
//! **census**: reads of one listing (one `total`, positions that agree) put the key at
//! positions `start..end`; once as many distinct contacts with that key as those positions have
//! been seen in such reads, every one has been delivered. A range whose batch did not reach
//! above or below it moves the next batch that way (the listing moved more than the batch's
//! slack). Attempts that make no progress are limited; the run then fails, saying where and
//! what was seen.

use std::collections::{BTreeMap, HashMap};

use crate::seen::HashSetOfHashes as HashSet;

use trackly_contacts::Frontier;
use trackly_contacts::key::Identity;

use crate::coverage::{Covered, OutOfOrder, Precision, claim, key_of, order_of};
use crate::error::FetchError;
use crate::plan::{Sizes, Window};

/// A read as the proof needs it.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    /// Position of its first contact in the listing it was served from.
    pub(crate) offset: u64,
    /// Key and hash of each contact, in served order (contacts without a readable
    /// `signup_date` left out: they prove nothing, which only narrows the claim).
    pub(crate) keys: Vec<(i64, u64)>,
    /// Contacts it held, readable or not.
    pub(crate) len: u64,
    /// `pagination.total` it reported, if it did.
    pub(crate) total: Option<u64>,
    /// Its interval may be claimed (rule 4 of [`crate::coverage`]).
    pub(crate) trusted: bool,
    /// Its response shows the listing ends with it (rule 3).
    pub(crate) to_end: bool,
    /// It held fewer contacts than asked (and some).
    pub(crate) short: bool,
}

impl Observed {
    /// A read at `offset` holding `ids`.
    pub(crate) fn new(
        offset: u64,
        ids: &[Identity],
        total: Option<u64>,
        trusted: bool,
        to_end: bool,
        short: bool,
    ) -> Observed {
        Observed {
            offset,
            keys: ids
                .iter()
                .filter_map(|id| Some((key_of(id)?, id.hash)))
                .collect(),
            len: ids.len() as u64,
            total,
            trusted,
            to_end,
            short: short && !ids.is_empty(),
        }
    }

    fn first_key(&self) -> Option<i64> {
        self.keys.first().map(|k| k.0)
    }

    fn last_key(&self) -> Option<i64> {
        self.keys.last().map(|k| k.0)
    }

    /// Positions of its contacts with their keys (positions of unreadable ones skipped:
    /// approximate, which only the planning of repairs uses).
    fn positioned(&self) -> impl Iterator<Item = (u64, i64, u64)> + '_ {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, &(key, hash))| (self.offset + i as u64, key, hash))
    }
}

/// Repair batches of one open range that may make no progress (each re-centred and wider than
/// the last), and census rounds that may add no new contact, before the run gives up on it.
const MAX_IDLE_ROUNDS: u32 = 6;
/// Census rounds in all, however much each adds.
const MAX_ROUNDS: u32 = 96;
/// Batches that find nothing of their range (each moving further, galloping) before the run
/// gives up.
const MAX_BLIND: u32 = 24;
/// How far from its total a short read may end and still vote for the end of the listing (a
/// total that jitters by this much is still read exactly).
const END_TOLERANCE: u64 = 3;
/// The smallest window a range read short again and again is read in.
const MIN_SHORT_WINDOW: u64 = 10;
/// Windows in one repair batch at most.
const MAX_BATCH: usize = 256;
/// Positions of slack each side of a range in its first repair.
const INITIAL_SLACK: u64 = 4;

/// A batch of repair reads in flight.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub(crate) id: u64,
    pub(crate) windows: Vec<Window>,
}

/// The repair of one open range of keys.
#[derive(Debug, Clone)]
struct Repair {
    /// The keys `[low, high]` it is for.
    low: i64,
    high: i64,
    /// Positions to read next: `start..end`.
    start: u64,
    end: u64,
    slack: u64,
    /// Batches sent, batches that added nothing, batches that found nothing of the range.
    attempts: u32,
    idle: u32,
    blind: u32,
    /// Distinct contacts with the key (a single-key range), by the positions and total of
    /// the listing they were counted in.
    tallies: HashMap<(u64, u64), HashSet>,
    /// Contacts delivered by its reads that no read had delivered before.
    recovered: u64,
    in_flight: Option<u64>,
    /// While searching for where the range went: a position known to lie above it, one known
    /// to lie below it.
    above_at: Option<u64>,
    below_at: Option<u64>,
    /// The largest window to read it with: halved each time a read comes back short before
    /// the end (an API dropping contacts at random serves small windows whole more often).
    window_limit: u64,
}

/// A repaired range whose reads found contacts that no read had delivered (the listing moved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Where it was: position of its first contact.
    pub(crate) position: u64,
    pub(crate) reads: u32,
    pub(crate) contacts: u64,
}

/// Every read of the run, what they prove together, and the repairs under way.
#[derive(Debug)]
pub(crate) struct Proof {
    covered: Covered,
    precision: Precision,
    /// Reads that still touch an open key, by sequence number.
    log: BTreeMap<u64, Observed>,
    seq: u64,
    repairs: Vec<Repair>,
    next_batch: u64,
    /// Reads of each batch in flight, as they come back.
    batch_reads: HashMap<u64, Vec<Observed>>,
    /// The deepest position any read reached.
    deepest: u64,
    /// The page size positions are counted in for the frontier (the configured one).
    frontier_page_size: u64,
    /// Where the frontier's key was last seen.
    frontier_position: u64,
    recovered: Vec<Recovered>,
    /// Short reads not proven by their own total, by the position they end at: the offset of
    /// the first one.
    end_votes: HashMap<u64, u64>,
    /// Without a total: where the main pass confirmed the listing ends, and its last key.
    known_end: Option<(u64, Option<i64>)>,
    /// Ranges given up on, and why.
    abandoned: Vec<(i64, i64)>,
    failures: Vec<FetchError>,
}

impl Proof {
    /// A proof whose positions are reported as pages of `page_size`.
    pub(crate) fn new(page_size: u64) -> Proof {
        Proof {
            covered: Covered::default(),
            precision: Precision::default(),
            log: BTreeMap::new(),
            seq: 0,
            repairs: Vec::new(),
            next_batch: 0,
            batch_reads: HashMap::new(),
            deepest: 0,
            frontier_page_size: page_size.max(1),
            frontier_position: 0,
            recovered: Vec::new(),
            end_votes: HashMap::new(),
            known_end: None,
            abandoned: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The precision the API was seen to sort at.
    pub(crate) fn precision(&self) -> Precision {
        self.precision
    }

    /// Everything from key `key` up was proven by an earlier run (a resumed run's frontier).
    pub(crate) fn assume_above(&mut self, key: i64) {
        self.covered.add(key, i64::MAX);
    }

    /// The deepest position any read reached.
    pub(crate) fn deepest(&self) -> u64 {
        self.deepest
    }

    /// Checks a read's order (see [`order_of`]) before anything is taken from it.
    pub(crate) fn check_order(&mut self, ids: &[Identity]) -> Result<(), OutOfOrder> {
        self.precision = self.precision.max(order_of(ids)?);
        Ok(())
    }

    /// Takes in a read: what it proves, and (for a repair) its batch. Returns whether the read
    /// ends the listing (by its own total, or agreeing with another read; rule 3).
    pub(crate) fn observe(&mut self, mut seen: Observed, batch: Option<u64>) -> bool {
        // Only a read that ends where its own total says the listing nearly ends may vote: a
        // read short because the API dropped contacts mid-listing ends far above its total.
        // Without a total, only the end the main pass confirmed counts: a read that ends exactly
        // there, with the listing's last key, dropped nothing (two reads short by drops could
        // end at one position anywhere, and a window a silent cap moved could end at a
        // position it does not hold).
        let end = seen.offset + seen.len;
        if seen.total.is_none() {
            if seen.to_end {
                self.known_end = Some((end, seen.last_key()));
            } else if seen.short && self.known_end == Some((end, seen.last_key())) {
                seen.trusted = true;
                seen.to_end = true;
            }
        }
        let near_end = seen.total.is_some_and(|t| end.abs_diff(t) <= END_TOLERANCE);
        if seen.short && !seen.to_end && near_end {
            // A total that jitters (a cached or estimated count) never matches the end exactly.
            // Two short reads of different windows that end at one position saw one listing
            // end there: a read short because the API dropped contacts ends elsewhere than
            // one that was not.
            match self.end_votes.get(&end) {
                Some(&other) if other != seen.offset => {
                    seen.trusted = true;
                    seen.to_end = true;
                }
                Some(_) => {}
                None => {
                    self.end_votes.insert(end, seen.offset);
                }
            }
        }
        let ends = seen.to_end;
        tracing::trace!(
            ?batch,
            offset = seen.offset,
            len = seen.len,
            total = ?seen.total,
            trusted = seen.trusted,
            to_end = seen.to_end,
            first = ?seen.first_key(),
            last = ?seen.last_key(),
            "read taken in"
        );
        if seen.trusted
            && let Some((low, high)) = claim(
                seen.first_key().zip(seen.last_key()),
                seen.offset == 0,
                seen.to_end,
            )
        {
            self.covered.add(low, high);
        }
        self.deepest = self.deepest.max(seen.offset + seen.len);
        if let Some(batch) = batch {
            self.batch_reads
                .entry(batch)
                .or_default()
                .push(seen.clone());
        }
        self.seq += 1;
        self.log.insert(self.seq, seen);
        self.prune();
        ends
    }

    /// Contacts a repair delivered that no read had delivered before.
    pub(crate) fn count_recovered(&mut self, batch: u64, contacts: u64) {
        if let Some(r) = self.repairs.iter_mut().find(|r| r.in_flight == Some(batch)) {
            r.recovered += contacts;
        }
    }

    /// Forgets reads that touch no open key any more.
    fn prune(&mut self) {
        let Some(down_to) = self.covered.proven_down_to() else {
            return;
        };
        let covered = &self.covered;
        let mut frontier_position = self.frontier_position;
        self.log.retain(|_, seen| {
            let keep = match (seen.first_key(), seen.last_key()) {
                (Some(first), Some(last)) => {
                    // Keys at or below the frontier may still be open; above it all are proven.
                    last <= down_to || !covered.gaps_within(last, first).is_empty()
                }
                _ => false,
            };
            if !keep && let Some((at, ..)) = seen.positioned().last() {
                frontier_position = frontier_position.max(at);
            }
            keep
        });
        self.frontier_position = frontier_position;
    }

    /// Everything present throughout the run with a `signup_date` above this was delivered.
    pub(crate) fn frontier(&self) -> Option<Frontier> {
        let down_to = self.covered.proven_down_to()?;
        // Keys are whole seconds: everything from second `down_to` on is proven, i.e. every
        // microsecond above the last one of the second before.
        let signup_date = down_to.saturating_mul(1_000_000).saturating_sub(1);
        Some(Frontier {
            signup_date,
            page: self.frontier_position / self.frontier_page_size + 1,
        })
    }

    /// The ranges given up on, in the order they were: the run fails with them.
    pub(crate) fn take_failures(&mut self) -> Vec<FetchError> {
        std::mem::take(&mut self.failures)
    }

    /// Whether every key is proven.
    pub(crate) fn is_complete(&self) -> bool {
        self.covered.is_complete()
    }

    /// Ranges repaired with contacts the pages had skipped.
    pub(crate) fn recovered(&self) -> &[Recovered] {
        &self.recovered
    }

    /// Batches to send now: one for each open range that is ready (the main pass has gone
    /// below it, or is over) and has none in flight.
    pub(crate) fn plan(&mut self, main_done: bool, sizes: &Sizes) -> Vec<Batch> {
        let mut batches = Vec::new();
        for (low, high) in self.covered.gaps() {
            let ready = main_done || (low > i64::MIN && self.covered.contains(low - 1));
            let given_up = self.abandoned.iter().any(|&(l, h)| l <= high && low <= h);
            if !ready || given_up {
                continue;
            }
            let overlapping = self
                .repairs
                .iter()
                .position(|r| r.low <= high && low <= r.high);
            let index = match overlapping {
                Some(i) if self.repairs[i].in_flight.is_some() => continue,
                Some(i) => {
                    let r = &mut self.repairs[i];
                    r.low = low;
                    r.high = high;
                    i
                }
                None => {
                    let (start, end) = self.estimate(low, high);
                    if low == high && self.census(low, None, None) {
                        continue;
                    }
                    self.repairs.push(Repair::new(low, high, start, end));
                    self.repairs.len() - 1
                }
            };
            let r = &mut self.repairs[index];
            let mut windows = sizes.sweep_within(
                r.start.saturating_sub(r.slack),
                r.end.saturating_add(r.slack),
                r.window_limit,
            );
            // A range wider than this is read a part at a time (the rest stays open and is
            // read by the next batch).
            windows.truncate(MAX_BATCH);
            self.next_batch += 1;
            r.in_flight = Some(self.next_batch);
            r.attempts += 1;
            batches.push(Batch {
                id: self.next_batch,
                windows,
            });
        }
        batches
    }

    /// Where the keys `[low, high]` lie, from the reads that still touch them: positions from
    /// just above the deepest contact seen above `high` to just past the shallowest contact seen
    /// below `low`.
    fn estimate(&self, low: i64, high: i64) -> (u64, u64) {
        let at = Placement::of(self.log.values(), low, high);
        let start = match (at.above, at.inside) {
            (Some(a), Some((s, _))) => a.min(s),
            (Some(a), None) => a,
            (None, Some((s, _))) => s.saturating_sub(1),
            (None, None) => 0,
        };
        let end = match (at.below, at.inside) {
            (Some(b), Some((_, e))) => b.max(e) + 1,
            (Some(b), None) => b + 1,
            (None, Some((_, e))) => e + 2,
            (None, None) => self.deepest + 1,
        };
        (start, end.max(start + 1))
    }

    /// Counts key `key` in the reads of `batch` (or, with `None`, the reads logged so far):
    /// whether that proved it.
    fn census(&mut self, key: i64, batch: Option<&[Observed]>, repair: Option<usize>) -> bool {
        let reads: Vec<&Observed> = match batch {
            Some(reads) => reads.iter().collect(),
            None => self.log.values().collect(),
        };
        let Some((range, members)) = measure(key, &reads) else {
            return false;
        };
        let size = range.1 - range.0;
        let proven = match repair {
            Some(i) => {
                let tally = self.repairs[i].tallies.entry(range).or_default();
                tally.extend(members);
                tally.len() as u64 >= size
            }
            None => members.len() as u64 >= size,
        };
        if proven {
            self.covered.add(key, key);
        }
        proven
    }

    /// Every read of batch `id` came back (each already [`observe`](Self::observe)d): the
    /// range is proven, or the next batch moves or widens, or the run fails.
    pub(crate) fn batch_done(&mut self, id: u64, sizes: &Sizes) -> Result<(), FetchError> {
        let reads = self.batch_reads.remove(&id).unwrap_or_default();
        let Some(index) = self.repairs.iter().position(|r| r.in_flight == Some(id)) else {
            return Ok(());
        };
        self.repairs[index].in_flight = None;
        let (low, high) = (self.repairs[index].low, self.repairs[index].high);
        // Windows of one listing that tile a run of positions hold every contact between the
        // first and last of the run, wherever their own boundaries fall (an API that serves only
        // a few page sizes has boundaries no single window can cross).
        for (low, high) in tiled_claim(&reads) {
            self.covered.add(low, high);
        }
        let counted: usize = self.repairs[index].tallies.values().map(HashSet::len).sum();
        // Keys still open alone (more contacts share them than a window reaches across):
        // count them in this batch's reads.
        for (key, k) in self.covered.gaps_within(low, high) {
            if key == k {
                self.census(key, Some(&reads), Some(index));
            }
        }
        let open = self.covered.gaps_within(low, high);
        let recounted: usize = self.repairs[index].tallies.values().map(HashSet::len).sum();
        let progress = open != vec![(low, high)] || recounted > counted;
        if open.is_empty() {
            self.finish(index);
            return Ok(());
        }
        let (low, high) = (open.last().map_or(low, |g| g.0), open[0].1);
        let r = &mut self.repairs[index];
        tracing::trace!(
            batch = id,
            low = r.low,
            high = r.high,
            start = r.start,
            end = r.end,
            ?open,
            reads = reads.len(),
            "repair batch back, range still open"
        );
        r.low = low;
        r.high = high;
        let blind_before = r.blind;
        if reads.iter().any(|s| !s.trusted && s.short) {
            r.window_limit = (r.window_limit.min(sizes.max()) / 2).max(MIN_SHORT_WINDOW);
        }
        r.follow(&Placement::of(&reads, low, high), sizes.max());
        // A step of a search for where the range went is not a read that failed to prove it.
        if !progress && blind_before == r.blind {
            r.idle += 1;
        }
        if r.idle > MAX_IDLE_ROUNDS || r.blind > MAX_BLIND || r.attempts >= MAX_ROUNDS {
            // Given up: the run will fail, but the other ranges are still proven (or given up
            // too) first, so that the failure can say how much is missing in all.
            let failure = self.give_up(index, &reads);
            let r = self.repairs.swap_remove(index);
            self.abandoned.push((r.low, r.high));
            self.failures.push(failure);
        }
        Ok(())
    }

    fn finish(&mut self, index: usize) {
        let r = self.repairs.swap_remove(index);
        if r.recovered > 0 {
            self.recovered.push(Recovered {
                position: r.start,
                reads: r.attempts,
                contacts: r.recovered,
            });
        }
    }

    /// The error for a range that could not be proven, saying what its reads saw.
    fn give_up(&self, index: usize, reads: &[Observed]) -> FetchError {
        let r = &self.repairs[index];
        let page = r.start / self.frontier_page_size + 1;
        let totals: Vec<u64> = reads.iter().filter_map(|s| s.total).collect();
        let (min, max) = (totals.iter().min(), totals.iter().max());
        let short = reads.iter().filter(|s| !s.trusted && s.len > 0).count();
        let keys = describe_keys(r.low, r.high);
        let ends: Vec<u64> = reads
            .iter()
            .filter(|s| s.len > 0)
            .map(|s| s.offset + s.len)
            .collect();
        let reason = if r.low == i64::MIN
            && let (Some(end), Some(total)) = (ends.iter().max(), max)
            && end + END_TOLERANCE < *total
        {
            format!(
                "the answers end at position {end}, but the total the API reports ({total}) says more follow: the end of the listing could not be proven (contacts with {keys} may be missing)"
            )
        } else if r.low == r.high && !r.tallies.is_empty() {
            let ((start, end), best) = r
                .tallies
                .iter()
                .max_by_key(|(_, s)| s.len())
                .map(|(k, s)| (*k, s.len()))
                .unwrap_or(((0, 0), 0));
            format!(
                "{} contacts share {keys} (positions {start}-{end}), more than the pages' overlap; {} rounds of reading them again found {best} distinct ones but could not count them all in one unchanged listing (the listing or their order kept changing between reads, or the API leaves some out of its answers)",
                end - start,
                r.attempts
            )
        } else if short > 0 {
            format!(
                "the API answered {short} of the last reads around positions {}-{} with fewer contacts than asked, though {}; contacts with {keys} may be missing from its answers",
                r.start,
                r.end,
                if max.is_some() {
                    "its total says more follow"
                } else {
                    "more contacts follow them"
                }
            )
        } else if r.blind > MAX_BLIND {
            format!(
                "the listing kept moving: {} reads looking for contacts with {keys} around positions {}-{} did not find where they went",
                r.blind, r.start, r.end
            )
        } else {
            format!(
                "contacts with {keys} around positions {}-{} were never covered by one read or by reads of one listing ({}): the listing changed between the reads, or the API answered there with windows that do not fit together",
                r.start,
                r.end,
                match (min, max) {
                    (Some(a), Some(b)) if a != b => format!("totals {a} to {b}"),
                    (Some(a), _) => format!("total {a}"),
                    _ => "no total reported".to_owned(),
                }
            )
        };
        FetchError::Unverified {
            page,
            attempts: r.attempts,
            reason,
        }
    }
}

impl Repair {
    /// The repair of keys `[low, high]`, to be read at positions `start..end`.
    fn new(low: i64, high: i64, start: u64, end: u64) -> Repair {
        Repair {
            low,
            high,
            start,
            end,
            slack: INITIAL_SLACK,
            attempts: 0,
            idle: 0,
            blind: 0,
            tallies: HashMap::new(),
            recovered: 0,
            in_flight: None,
            above_at: None,
            below_at: None,
            window_limit: u64::MAX,
        }
    }

    /// Where to read next, from where the last batch found the range (`at`; `max` is the
    /// largest page size): the same place a little wider when the batch held it, higher when
    /// the listing moved up (deletions above), lower when it moved down (insertions above, or
    /// a bigger tie), galloping and then halving while the batch found nothing of it.
    fn follow(&mut self, at: &Placement, max: u64) {
        let widen = (self.slack * 2).max(INITIAL_SLACK);
        let span = self.end.saturating_sub(self.start).max(max);
        let gallop = span.saturating_mul(1 << self.blind.min(20));
        match (at.above, at.below.or(at.reached_end.then_some(u64::MAX))) {
            (Some(a), Some(b)) => {
                // The batch held the range; what is still open is a key it could not count
                // or a read it could not trust: read the range again, a little wider.
                self.start = a;
                self.end = if b == u64::MAX {
                    at.last.map_or(self.end, |l| l + 2)
                } else {
                    b + 1
                };
                self.slack = widen.min(max);
            }
            (None, below) => {
                // The range starts above the batch: the listing moved up (deletions above).
                let from = at.first.unwrap_or(self.start);
                if at.inside.is_some() {
                    self.slack = widen.min(max);
                    self.start = from.saturating_sub(self.slack);
                    self.end = match below {
                        Some(b) if b != u64::MAX => b + 1,
                        _ => self.end.max(from + 1),
                    };
                } else {
                    // Nothing of the range here, all of it below: search further up,
                    // galloping until a read lands above the range, then halving.
                    self.blind += 1;
                    self.below_at = Some(self.below_at.map_or(from, |b| b.min(from)));
                    self.start = match self.above_at {
                        Some(above) if above < from => above.midpoint(from),
                        _ => from.saturating_sub(gallop),
                    };
                    self.end = self.start + max;
                }
            }
            (Some(a), None) => {
                // The range goes on below the batch (insertions above, or a bigger tie).
                let to = at.last.map_or(self.end, |l| l + 1);
                self.start = a;
                if at.inside.is_some() {
                    self.slack = widen.min(max);
                    self.end = to + self.slack;
                } else {
                    // Nothing of the range here, all of it above: search further down,
                    // galloping until a read lands below the range, then halving.
                    self.blind += 1;
                    self.above_at = Some(self.above_at.map_or(to, |a| a.max(to)));
                    self.end = match self.below_at {
                        Some(below) if below > to => to.midpoint(below) + max,
                        _ => to.saturating_add(gallop),
                    };
                    self.start = self.end.saturating_sub(max);
                }
            }
        }
    }
}

/// Where some reads found the keys `[low, high]`: positions of the contacts they held above
/// the range, inside it and below it.
#[derive(Debug, Default)]
struct Placement {
    /// The deepest position of a contact above the range.
    above: Option<u64>,
    /// The shallowest position of a contact below it.
    below: Option<u64>,
    /// The first and last positions of contacts inside it.
    inside: Option<(u64, u64)>,
    /// The first and last positions of any contact.
    first: Option<u64>,
    last: Option<u64>,
    /// A read showed the listing ends with it.
    reached_end: bool,
}

impl Placement {
    fn of<'a>(reads: impl IntoIterator<Item = &'a Observed>, low: i64, high: i64) -> Placement {
        let mut at = Placement::default();
        for seen in reads {
            at.reached_end |= seen.to_end;
            for (pos, key, _) in seen.positioned() {
                at.first = Some(at.first.map_or(pos, |f| f.min(pos)));
                at.last = Some(at.last.map_or(pos, |l| l.max(pos)));
                if key > high {
                    at.above = Some(at.above.map_or(pos, |a| a.max(pos)));
                } else if key < low {
                    at.below = Some(at.below.map_or(pos, |b| b.min(pos)));
                } else {
                    at.inside = Some(
                        at.inside
                            .map_or((pos, pos), |(s, e)| (s.min(pos), e.max(pos))),
                    );
                }
            }
        }
        at
    }
}

/// What the trusted reads of one batch prove together when they report one total and their
/// windows tile a run of positions without a hole: the claim of one read spanning the run,
/// except the keys found in more than one of them. Ties may come back in another order on
/// every request, so a key whose contacts straddle two windows may have contacts that neither
/// holds; such keys stay open (for a census). A key held by one window alone has all its
/// positions inside it, so that window holds every contact with it.
fn tiled_claim(reads: &[Observed]) -> Vec<(i64, i64)> {
    let mut tiles: Vec<&Observed> = reads.iter().filter(|s| s.trusted).collect();
    let Some(total) = tiles.first().map(|s| s.total) else {
        return Vec::new();
    };
    if tiles.len() < 2 || total.is_none() || tiles.iter().any(|s| s.total != total) {
        return Vec::new();
    }
    tiles.sort_by_key(|s| s.offset);
    let mut end = tiles[0].offset;
    for tile in &tiles {
        if tile.offset > end || tile.len as usize != tile.keys.len() {
            // A hole, or contacts without a readable key whose place is unknown.
            return Vec::new();
        }
        end = end.max(tile.offset + tile.len);
    }
    let (Some(first), Some(last)) = (tiles.first(), tiles.iter().max_by_key(|s| s.offset + s.len))
    else {
        return Vec::new();
    };
    let (Some(top), Some(bottom)) = (first.first_key(), last.last_key()) else {
        return Vec::new();
    };
    let Some((low, high)) = claim(Some((top, bottom)), first.offset == 0, last.to_end) else {
        return Vec::new();
    };
    // Keys seen in more than one window: open.
    let mut seen_in: HashMap<i64, usize> = HashMap::new();
    for (i, tile) in tiles.iter().enumerate() {
        for &(key, _) in &tile.keys {
            let at = seen_in.entry(key).or_insert(i);
            if *at != i {
                *at = usize::MAX;
            }
        }
    }
    let mut straddling: Vec<i64> = seen_in
        .into_iter()
        .filter(|&(key, at)| at == usize::MAX && low <= key && key <= high)
        .map(|(key, _)| key)
        .collect();
    straddling.sort_unstable();
    let mut parts = Vec::new();
    let mut from = low;
    for key in straddling {
        if key > from {
            parts.push((from, key - 1));
        }
        from = key.saturating_add(1);
    }
    if from <= high {
        parts.push((from, high));
    }
    parts
}

/// A range of keys (whole seconds) for a message.
fn describe_keys(low: i64, high: i64) -> String {
    let at = |k: i64| {
        chrono::DateTime::from_timestamp(k, 0)
            .map_or_else(|| k.to_string(), |t| t.naive_utc().to_string())
    };
    match (low, high) {
        (i64::MIN, i64::MAX) => "any signup_date".to_owned(),
        (i64::MIN, h) => format!("signup_date at or before {}", at(h)),
        (l, i64::MAX) => format!("signup_date at or after {}", at(l)),
        (l, h) if l == h => format!("signup_date {}", at(l)),
        (l, h) => format!("signup_date from {} to {}", at(l), at(h)),
    }
}

/// Where reads put key `key`, and its contacts in them, when they agree: on one `total`
/// (reads that report different totals saw different listings: positions of two listings
/// shifted by a deletion can agree by accident, and the count would then be short) and on
/// positions: the key starts after the last higher key and ends before the first lower key (or
/// the end) they show, and every read holds exactly as many contacts with the key as that
/// range puts in its window.
fn measure(key: i64, reads: &[&Observed]) -> Option<((u64, u64), HashSet)> {
    let reads: Vec<&&Observed> = reads.iter().filter(|s| s.trusted).collect();
    let total = reads.first()?.total;
    if total.is_none() || reads.iter().any(|r| r.total != total) {
        return None;
    }
    let mut start: Option<u64> = None;
    let mut end: Option<u64> = None;
    for seen in &reads {
        if seen.offset == 0 {
            start = start.max(Some(0));
        }
        for (at, k, _) in seen.positioned() {
            if k > key {
                start = start.max(Some(at + 1));
            } else if k < key {
                end = Some(end.map_or(at, |e| e.min(at)));
            }
        }
        if seen.to_end {
            let at = seen.offset + seen.len;
            end = Some(end.map_or(at, |e| e.min(at)));
        }
    }
    let (start, end) = (start?, end?);
    if end < start {
        return None;
    }
    let agree = reads.iter().all(|seen| {
        let from = seen.offset.max(start);
        let to = (seen.offset + seen.len).min(end);
        let held = seen.keys.iter().filter(|k| k.0 == key).count() as u64;
        held == to.saturating_sub(from)
    });
    let members = reads
        .iter()
        .flat_map(|s| s.keys.iter())
        .filter(|k| k.0 == key)
        .map(|k| k.1)
        .collect();
    agree.then_some(((start, end), members))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(keys: &[(i64, u64)]) -> Vec<Identity> {
        keys.iter()
            .map(|&(k, hash)| Identity {
                hash,
                signup: Some(k * 1_000_000),
            })
            .collect()
    }

    fn seen(offset: u64, keys: &[(i64, u64)], total: u64) -> Observed {
        let to_end = offset + keys.len() as u64 == total;
        Observed::new(offset, &ids(keys), Some(total), true, to_end, false)
    }

    /// A static listing of `n` contacts, keys falling by one second from 100, hashes 1..=n;
    /// the window `w` of it as the API would serve it, leaving out positions in `dropped`.
    fn serve(n: u64, w: Window, dropped: &[u64]) -> Observed {
        let keys: Vec<(i64, u64)> = (w.offset()..w.end().min(n))
            .filter(|p| !dropped.contains(p))
            .map(|p| (100 - p as i64, p + 1))
            .collect();
        let full = keys.len() as u64 == w.per_page;
        let to_end = w.offset() + keys.len() as u64 == n;
        Observed::new(
            w.offset(),
            &ids(&keys),
            Some(n),
            full || to_end,
            to_end,
            !full,
        )
    }

    #[test]
    fn a_range_the_batch_missed_is_searched_for_galloping_then_halving() {
        // Keys [500, 600] expected at positions 100..200; the batch there found only contacts
        // below the range (keys under 500): the listing moved up. Search above, galloping.
        let mut r = Repair::new(500, 600, 100, 200);
        let below = seen(100, &[(400, 1), (399, 2)], 10_000);
        r.follow(&Placement::of([&below], 500, 600), 100);
        assert_eq!((r.blind, r.below_at), (1, Some(100)));
        assert_eq!((r.start, r.end), (0, 100), "galloped up by a span");
        // The next batch lands above the range: halve between the two.
        r.above_at = Some(20);
        let below_again = seen(60, &[(450, 3)], 10_000);
        r.follow(&Placement::of([&below_again], 500, 600), 100);
        assert_eq!(r.start, 20_u64.midpoint(60));
        // A batch that holds the range between contacts above and below reads it again there,
        // a little wider.
        let held = seen(30, &[(700, 4), (550, 5), (450, 6)], 10_000);
        let blind = r.blind;
        r.follow(&Placement::of([&held], 500, 600), 100);
        assert_eq!((r.start, r.end, r.blind), (30, 33, blind));
        assert_eq!(r.slack, 2 * INITIAL_SLACK);
    }

    #[test]
    fn overlapping_reads_prove_everything_with_no_repair() {
        let mut p = Proof::new(4);
        p.observe(seen(0, &[(100, 1), (99, 2), (98, 3), (97, 4)], 8), None);
        p.observe(seen(2, &[(98, 3), (97, 4), (96, 5), (95, 6)], 8), None);
        p.observe(seen(4, &[(96, 5), (95, 6), (94, 7), (93, 8)], 8), None);
        assert!(p.is_complete(), "{:?}", p.covered.gaps());
        assert!(p.plan(true, &Sizes::new(4)).is_empty());
    }

    #[test]
    fn a_tie_across_the_overlap_is_counted_from_the_pages_themselves() {
        // Key 50 at positions 2..6 of 8; windows [0,4) and [3,8) overlap by one position.
        let mut p = Proof::new(4);
        p.observe(seen(0, &[(90, 1), (80, 2), (50, 3), (50, 4)], 8), None);
        p.observe(
            seen(3, &[(50, 4), (50, 5), (50, 6), (40, 7), (30, 8)], 8),
            None,
        );
        assert_eq!(p.covered.gaps(), vec![(50, 50)]);
        assert!(p.plan(true, &Sizes::new(5)).is_empty(), "counted: 4 of 4");
        assert!(p.is_complete());
    }

    #[test]
    fn a_short_read_in_the_middle_proves_nothing_and_is_read_again() {
        let mut p = Proof::new(10);
        let sizes = Sizes::new(10);
        let w = |page| Window { page, per_page: 10 };
        p.observe(serve(40, w(1), &[]), None);
        // Position 15 dropped once (a contact that failed to serialise): not trusted.
        p.observe(serve(40, w(2), &[15]), None);
        p.observe(serve(40, w(3), &[]), None);
        assert_eq!(p.covered.gaps()[0], (80, 91));
        let batches = p.plan(false, &sizes);
        assert_eq!(batches.len(), 1, "{batches:?}");
        for &window in &batches[0].windows {
            p.observe(serve(40, window, &[]), Some(batches[0].id));
        }
        p.batch_done(batches[0].id, &sizes).unwrap();
        assert_eq!(
            p.covered.proven_down_to(),
            Some(72),
            "{batches:?} {:?}",
            p.covered
        );
        assert!(p.plan(false, &sizes).is_empty());
    }

    #[test]
    fn a_range_that_stays_short_fails_the_run_saying_so() {
        let mut p = Proof::new(10);
        let sizes = Sizes::new(10);
        let w = |page| Window { page, per_page: 10 };
        // Position 15 is never served, though the total counts it.
        for page in 1..=4 {
            p.observe(serve(40, w(page), &[15]), None);
        }
        loop {
            let batches = p.plan(true, &sizes);
            if batches.is_empty() {
                break;
            }
            for batch in batches {
                for &window in &batch.windows {
                    p.observe(serve(40, window, &[15]), Some(batch.id));
                }
                p.batch_done(batch.id, &sizes).unwrap();
            }
        }
        assert!(!p.is_complete());
        let err = p.take_failures().remove(0);
        assert!(err.is_incomplete(), "{err}");
        assert!(
            err.to_string().contains("fewer contacts than asked"),
            "{err}"
        );
    }
}
