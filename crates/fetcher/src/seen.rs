//! Which contacts were delivered recently: the run's de-duplication window.
//!
//! Every contact the main pass or a repair read delivers is checked here, so this is on
//! the hot path of every page: about 1.2 million checks per million contacts exported. A
//! general-purpose hash set (hashbrown, 9 bytes per slot in two arrays) took two or three
//! cache misses per check on the window's 9 MB table, ≈ 8% of a whole export's CPU (perf,
//! BENCHMARKS.md). [`KeySet`] keeps the hashes in one array of `u64` (one miss per check) and
//! touches the slots of a page's contacts before it probes them, so the misses overlap.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The contacts delivered recently, as 64-bit hashes of `(phone_number, list_number)`, by the
/// page they were delivered under.
///
/// A contact can only come back when the listing moved it across page boundaries, so it comes
/// back within a few pages of where it was delivered: the set forgets pages more than
/// `window` pages behind the main pass (and keeps more when a repair read measured a
/// larger move), so memory stays flat however many contacts the run has. `window: None`
/// remembers every contact (24–40 bytes each: its hash in the table, which is at most half
/// full, and in its page's list). Contacts
/// written by an interrupted run that is being resumed are always remembered. Two different
/// keys share a hash with probability about `n² / 2⁶⁵` over the keys held at once.
pub(crate) struct Seen {
    recent: KeySet,
    by_page: BTreeMap<u64, Vec<u64>>,
    pinned: HashSetOfHashes,
    /// Pages remembered behind the main pass (`None`: all of them).
    pub(crate) window: Option<u64>,
    /// Contacts per page, once known: the capacity of each page's list.
    page_size: usize,
}

impl Seen {
    pub(crate) fn new(window: Option<u64>) -> Seen {
        Seen {
            recent: KeySet::default(),
            by_page: BTreeMap::new(),
            pinned: HashSet::default(),
            window,
            page_size: 0,
        }
    }

    /// Makes room for every contact the window can hold (at most `total`, the run's size, plus
    /// one page), so the table is allocated once, at the start, instead of doubling late in a
    /// long run: a doubling holds the old and the new table at once, and the freed one stays
    /// in the allocator's arena (RSS that only grows).
    pub(crate) fn presize(&mut self, per_page: u64, total: u64) {
        self.page_size = usize::try_from(per_page).unwrap_or(0);
        let Some(window) = self.window else {
            return;
        };
        let entries = window
            .saturating_add(1)
            .saturating_mul(per_page)
            .min(total.saturating_add(per_page));
        self.recent
            .reserve(usize::try_from(entries).unwrap_or(usize::MAX));
    }

    /// Remembers a contact written before this run started, for good.
    pub(crate) fn pin(&mut self, hash: u64) {
        self.pinned.insert(hash);
    }

    /// Records the contacts of one page (their hashes, in body order), delivered under `page`;
    /// one flag each: false when that contact was delivered before (earlier in this page too).
    pub(crate) fn insert_page(&mut self, page: u64, hashes: &[u64]) -> Vec<bool> {
        let mut fresh = Vec::with_capacity(hashes.len());
        for chunk in hashes.chunks(TOUCH_AHEAD) {
            self.recent.touch(chunk);
            for &hash in chunk {
                fresh.push(!self.pinned.contains(&hash) && self.recent.insert(hash));
            }
        }
        let page_size = self.page_size.max(hashes.len());
        let list = self
            .by_page
            .entry(page)
            .or_insert_with(|| Vec::with_capacity(page_size));
        list.extend(
            hashes
                .iter()
                .zip(&fresh)
                .filter(|(_, fresh)| **fresh)
                .map(|(hash, _)| *hash),
        );
        fresh
    }

    /// Forgets what was delivered under pages more than the window behind `main_page`.
    pub(crate) fn forget_behind(&mut self, main_page: u64) {
        let Some(window) = self.window else {
            return;
        };
        let keep = self.by_page.split_off(&main_page.saturating_sub(window));
        for (_, hashes) in std::mem::replace(&mut self.by_page, keep) {
            for chunk in hashes.chunks(TOUCH_AHEAD) {
                self.recent.touch(chunk);
                for &hash in chunk {
                    self.recent.remove(hash);
                }
            }
        }
    }

    #[cfg(test)]
    fn insert(&mut self, page: u64, hash: u64) -> bool {
        self.insert_page(page, &[hash])[0]
    }
}

/// Hashes whose slots are loaded together before any of them is probed.
const TOUCH_AHEAD: usize = 16;

/// A set of 64-bit hashes: one array of slots, linear probing, at most half full, deletion by
/// shifting the following entries back (no tombstones, so a long run of inserts and removals
/// never degrades or rebuilds it). Slot value 0 means empty; the hash 0 is kept apart.
#[derive(Debug, Default)]
struct KeySet {
    slots: Vec<u64>,
    /// `64 - log2(slots.len())`: a hash's home slot is its top bits after a multiply.
    shift: u32,
    len: usize,
    has_zero: bool,
}

impl KeySet {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len + usize::from(self.has_zero)
    }

    /// Makes room for `entries` hashes in all without growing.
    fn reserve(&mut self, entries: usize) {
        let slots = entries.saturating_mul(2).max(16).next_power_of_two();
        if slots > self.slots.len() {
            self.resize(slots);
        }
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        // Fibonacci hashing: spreads hashes that differ only in their low bits (tests use
        // small numbers) over the whole table.
        (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Loads the home slots of `hashes`: independent loads whose cache misses overlap, where
    /// one probe after another would wait for each miss in turn.
    #[inline]
    fn touch(&self, hashes: &[u64]) {
        if self.slots.is_empty() {
            return;
        }
        let mut any = 0u64;
        for &hash in hashes {
            any ^= self.slots[self.home(hash)];
        }
        std::hint::black_box(any);
    }

    /// Adds `hash`; false when it was there already.
    fn insert(&mut self, hash: u64) -> bool {
        if hash == 0 {
            return !std::mem::replace(&mut self.has_zero, true);
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.resize((self.slots.len() * 2).max(16));
        }
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = hash;
                    self.len += 1;
                    return true;
                }
                slot if slot == hash => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Removes `hash` if present.
    fn remove(&mut self, hash: u64) {
        if hash == 0 {
            self.has_zero = false;
            return;
        }
        if self.slots.is_empty() {
            return;
        }
        let mask = self.mask();
        let mut hole = self.home(hash);
        loop {
            match self.slots[hole] {
                0 => return,
                slot if slot == hash => break,
                _ => hole = (hole + 1) & mask,
            }
        }
        // Shift back every following entry of the run that may sit at the hole: one whose
        // home is not after the hole (cyclically, up to where it sits).
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let entry = self.slots[next];
            if entry == 0 {
                break;
            }
            let home = self.home(entry);
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                self.slots[hole] = entry;
                hole = next;
            }
        }
        self.slots[hole] = 0;
        self.len -= 1;
    }

    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![0; slots]);
        self.shift = 64 - slots.trailing_zeros();
        self.len = 0;
        for hash in old.into_iter().filter(|&h| h != 0) {
            self.insert(hash);
        }
    }

    #[cfg(test)]
    fn contains(&self, hash: u64) -> bool {
        if hash == 0 {
            return self.has_zero;
        }
        if self.slots.is_empty() {
            return false;
        }
        let mut i = self.home(hash);
        loop {
            match self.slots[i] {
                0 => return false,
                slot if slot == hash => return true,
                _ => i = (i + 1) & self.mask(),
            }
        }
    }
}

/// Keys are already hashes: pass them through.
#[derive(Default)]
pub(crate) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of contact hashes, which need no hashing again.
pub(crate) type HashSetOfHashes = HashSet<u64, BuildHasherDefault<PreHashed>>;

#[cfg(test)]
mod tests {
    use super::*;
    use trackly_contacts::key::hash_key;

    #[test]
    fn the_window_forgets_old_pages_but_never_pinned_contacts() {
        let (a, b) = (
            hash_key(b"+14155550001", b"+1800"),
            hash_key(b"+14155550002", b"+1800"),
        );
        let mut seen = Seen::new(Some(4));
        seen.pin(b);
        assert!(seen.insert(10, a));
        seen.forget_behind(14);
        assert!(!seen.insert(14, a), "page 10 is within 4 pages of page 14");
        seen.forget_behind(15);
        assert!(seen.insert(15, a), "page 10 is forgotten at page 15");
        assert!(!seen.insert(15, b), "pinned contacts are never forgotten");
        seen.window = Some(100);
        seen.forget_behind(60);
        assert!(!seen.insert(60, a), "a widened window keeps page 15");
        assert_eq!(seen.recent.len(), 1);
    }

    #[test]
    fn a_page_that_repeats_a_contact_keeps_it_once() {
        let mut seen = Seen::new(Some(4));
        assert_eq!(
            seen.insert_page(1, &[7, 8, 7, 0, 0]),
            [true, true, false, true, false]
        );
        assert_eq!(seen.insert_page(2, &[8, 9]), [false, true]);
        seen.forget_behind(6);
        assert_eq!(seen.insert_page(6, &[7, 0, 9]), [true, true, false]);
    }

    /// Inserts and removes agree with `std`'s set over long mixed runs, including clustered
    /// hashes (many sharing a home slot), the hash 0, growth and wrap-around at the end of
    /// the table.
    #[test]
    fn the_key_set_agrees_with_a_hash_set() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..4 {
            let mut ours = KeySet::default();
            let mut std_set = HashSet::new();
            // Few distinct values, so that inserts and removes hit present keys often; round 1
            // uses values that differ only in their high bits.
            let universe = [40u64, 400, 4000, 40_000][round];
            for _ in 0..200_000 {
                let r = next();
                let hash = match round {
                    1 => (r % universe) << 40,
                    _ => r % universe,
                };
                if r >> 63 == 0 {
                    assert_eq!(ours.insert(hash), std_set.insert(hash), "insert {hash}");
                } else {
                    ours.remove(hash);
                    std_set.remove(&hash);
                }
                assert_eq!(ours.len(), std_set.len());
            }
            for hash in 0..universe {
                let hash = if round == 1 { hash << 40 } else { hash };
                assert_eq!(ours.contains(hash), std_set.contains(&hash), "{hash}");
            }
            assert!(ours.slots.len() >= 2 * ours.len);
        }
    }

    #[test]
    fn a_reserved_set_does_not_grow_within_its_room() {
        let mut set = KeySet::default();
        set.reserve(1000);
        let slots = set.slots.len();
        for hash in 1..=1000u64 {
            assert!(set.insert(hash.wrapping_mul(0x1234_5678_9ABC_DEF1)));
        }
        assert_eq!(set.slots.len(), slots);
        for hash in 1..=1000u64 {
            set.remove(hash.wrapping_mul(0x1234_5678_9ABC_DEF1));
        }
        assert_eq!(set.len(), 0);
        assert!(set.slots.iter().all(|&s| s == 0));
    }
}
