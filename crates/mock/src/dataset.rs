//! The pre-rendered data set: every contact's JSON text in served order, and page assembly.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{CapReport, Damage, DatasetConfig, Faults, SearchWindow, TotalForm};
use crate::generate::{
    END_SECS, ListInfo, ListPicker, Renderer, Slot, coarsen, make_lists, make_tie, plan, plan_newer,
};
use crate::json::push_u64;
use crate::query::MAX_PER_PAGE;

/// Per-contact facts needed to filter without parsing the JSON.
#[derive(Debug, Clone, Copy)]
struct Meta {
    list: u16,
    active: bool,
    /// The value the listing sorts by (equal values are ties): the signup time, or the signup
    /// time truncated ([`DatasetConfig::sort_precision`]).
    sort_key: i64,
}

/// Which contacts a query selects.
type FilterKey = (Option<u16>, Option<bool>);

/// A generated data set, pre-rendered for serving.
///
/// All contacts' JSON objects live in one contiguous buffer, newest first, separated by commas,
/// so the unfiltered page `k` is one slice of it. Filtered queries use an index of matching
/// positions computed once per `(list_number, active)` and cached for the life of this value
/// (a drift builds a new `Dataset`, which starts with an empty cache).
///
/// Memory: about 500 bytes per contact for the JSON text plus 24 bytes of index, plus 8 bytes
/// per contact for each filter index used.
pub struct Dataset {
    seed: u64,
    money_forms: bool,
    lists: Vec<ListInfo>,
    by_number: HashMap<String, u16>,
    /// Contacts joined by `,`, newest first.
    buf: Bytes,
    /// `starts[i]` is where contact `i` begins; `starts[len]` is `buf.len() + 1`, so contact `i`
    /// is `buf[starts[i]..starts[i + 1] - 1]` and contacts `i..j` are
    /// `buf[starts[i]..starts[j] - 1]`.
    starts: Vec<usize>,
    meta: Vec<Meta>,
    max_micros: i64,
    next_id: u64,
    next_person: u64,
    filters: Mutex<HashMap<FilterKey, Arc<Vec<usize>>>>,
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("seed", &self.seed)
            .field("contacts", &self.len())
            .field("lists", &self.list_numbers())
            .field("bytes", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// The contacts of one page as the server serves them.
pub(crate) struct ServedPage {
    /// The full response body.
    pub(crate) body: Bytes,
    /// Number of contacts in `contacts`.
    pub(crate) contacts: usize,
}

/// How a misbehaving server bends one answer.
#[derive(Debug, Default)]
pub(crate) struct View<'a> {
    /// Seed of this request's order among equal signup times (`None`: stable order).
    pub(crate) shuffle: Option<u64>,
    /// Added to the reported `total`.
    pub(crate) total_offset: i64,
    /// Answer a page past the end with an error instead of an empty page.
    pub(crate) refuse_past_end: bool,
    /// Contacts (by served position) to damage.
    pub(crate) damaged: &'a [(usize, Damage)],
    /// The page size this request is served at, when a cap lowers it below `per_page`.
    pub(crate) cap: Option<u64>,
    /// How the pagination block shows a cap.
    pub(crate) cap_report: CapReport,
    /// Leave each contact of the window out with probability `.1`, drawn from seed `.0`.
    pub(crate) drop: Option<(u64, f64)>,
    /// Leave out the contacts these faults suppress ([`Faults::suppresses`]).
    pub(crate) suppress: Option<&'a Faults>,
    /// A search index's limited result window.
    pub(crate) search_window: Option<SearchWindow>,
    /// Answer a page past the end with the last page (Django's `get_page()`).
    pub(crate) past_end_last_page: bool,
    /// How `total` is written.
    pub(crate) total_form: TotalForm,
}

/// Why a page is refused instead of served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The page asked for lies past the end of the listing.
    PastEnd,
    /// The window reaches beyond a search index's result window.
    WindowTooLarge,
}

/// A contact's JSON with `damage` applied.
fn damaged(json: &[u8], damage: Damage) -> Vec<u8> {
    let text = String::from_utf8_lossy(json);
    let out = match damage {
        Damage::NaN | Damage::Infinity => {
            let token = if damage == Damage::NaN {
                "NaN"
            } else {
                "Infinity"
            };
            match text.find("\"revenue_total\":") {
                Some(at) => {
                    let value = at + "\"revenue_total\":".len();
                    let end = text[value..]
                        .find([',', '}'])
                        .map_or(text.len(), |e| value + e);
                    format!("{}{token}{}", &text[..value], &text[end..])
                }
                None => text.into_owned(),
            }
        }
        Damage::ControlChar => {
            text.replacen("\"signup_method\":\"", "\"signup_method\":\"\u{1}", 1)
        }
    };
    out.into_bytes()
}

/// What a query selects before paging.
enum Selection {
    All,
    Index(Arc<Vec<usize>>),
    Nothing,
}

/// Contacts rendered by one worker: JSON joined by commas, relative starts, active flags.
struct Rendered {
    buf: Vec<u8>,
    starts: Vec<usize>,
    meta: Vec<Meta>,
}

impl Rendered {
    fn with_capacity(bytes: usize, contacts: usize) -> Rendered {
        Rendered {
            buf: Vec::with_capacity(bytes),
            starts: Vec::with_capacity(contacts),
            meta: Vec::with_capacity(contacts),
        }
    }

    /// Appends contacts joined by commas (`buf`), with their starts relative to `buf`.
    fn append(&mut self, buf: &[u8], starts: impl Iterator<Item = usize>, meta: &[Meta]) {
        if !self.buf.is_empty() {
            self.buf.push(b',');
        }
        let offset = self.buf.len();
        self.buf.extend_from_slice(buf);
        self.starts.extend(starts.map(|s| s + offset));
        self.meta.extend_from_slice(meta);
    }
}

fn render_slots(renderer: &Renderer<'_>, slots: &[Slot], first_id: u64) -> Rendered {
    // `slots` is oldest first; render newest first. Contact ids grow with signup time.
    let mut out = Rendered::with_capacity(slots.len() * 560, slots.len());
    for (k, slot) in slots.iter().enumerate().rev() {
        if !out.starts.is_empty() {
            out.buf.push(b',');
        }
        out.starts.push(out.buf.len());
        let active = renderer.render(&mut out.buf, slot, first_id + k as u64);
        out.meta.push(Meta {
            list: slot.list,
            active,
            sort_key: slot.sort_key,
        });
    }
    out
}

/// Renders `slots` (oldest first, ids `first_id..`) newest first, on all cores.
fn render_parallel(renderer: &Renderer<'_>, slots: &[Slot], first_id: u64) -> Rendered {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .clamp(1, 16);
    if threads == 1 || slots.len() < 20_000 {
        return render_slots(renderer, slots, first_id);
    }
    let chunk = slots.len().div_ceil(threads);
    let parts: Vec<Rendered> = std::thread::scope(|scope| {
        let handles: Vec<_> = slots
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let first = first_id + (c * chunk) as u64;
                scope.spawn(move || render_slots(renderer, part, first))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(rendered) => rendered,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    // Chunks are oldest first; the newest chunk goes first.
    let total: usize = parts.iter().map(|p| p.buf.len() + 1).sum();
    let mut out = Rendered::with_capacity(total, slots.len());
    for part in parts.iter().rev().filter(|p| !p.starts.is_empty()) {
        out.append(&part.buf, part.starts.iter().copied(), &part.meta);
    }
    out
}

impl Dataset {
    /// Generates the data set described by `cfg`: the same `cfg` always gives the same bytes.
    ///
    /// Runs on all available cores; 1 000 000 contacts take a few seconds in release mode.
    pub fn generate(cfg: &DatasetConfig) -> Dataset {
        let lists = make_lists(cfg.lists);
        let picker = ListPicker::new(lists.len());
        let mut planned = plan(cfg.seed, cfg.contacts, &picker, cfg.fractional_seconds);
        if let Some(tie) = cfg.big_tie {
            make_tie(&mut planned.slots, tie);
        }
        coarsen(&mut planned.slots, cfg.sort_precision, cfg.seed);
        // Inserts into an empty data set still land after the generated time range.
        let max_micros = planned
            .slots
            .iter()
            .map(|s| s.micros)
            .max()
            .unwrap_or(END_SECS * 1_000_000);
        let renderer = Renderer {
            seed: cfg.seed,
            lists: &lists,
            money_forms: cfg.money_forms,
        };
        let rendered = render_parallel(&renderer, &planned.slots, 1);
        Dataset::assemble(
            cfg.seed,
            cfg.money_forms,
            lists,
            rendered,
            max_micros,
            planned.slots.len() as u64 + 1,
            planned.next_person,
        )
    }

    fn assemble(
        seed: u64,
        money_forms: bool,
        lists: Vec<ListInfo>,
        rendered: Rendered,
        max_micros: i64,
        next_id: u64,
        next_person: u64,
    ) -> Dataset {
        let mut starts = rendered.starts;
        starts.push(rendered.buf.len() + 1);
        let by_number = lists
            .iter()
            .enumerate()
            .map(|(i, l)| (l.number.clone(), i as u16))
            .collect();
        Dataset {
            seed,
            money_forms,
            lists,
            by_number,
            buf: Bytes::from(rendered.buf),
            starts,
            meta: rendered.meta,
            max_micros,
            next_id,
            next_person,
            filters: Mutex::new(HashMap::new()),
        }
    }

    /// Number of contacts.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// Whether there are no contacts.
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// The JSON object of the `i`-th contact in served (newest-first) order, exactly as served.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn contact_json(&self, i: usize) -> &[u8] {
        &self.buf[self.starts[i]..self.starts[i + 1] - 1]
    }

    /// The E.164 numbers of the sending lists, biggest list first.
    pub fn list_numbers(&self) -> Vec<String> {
        self.lists.iter().map(|l| l.number.clone()).collect()
    }

    /// The sending lists contacts are on, in list index order (the order of `Meta::list`).
    pub(crate) fn lists(&self) -> &[ListInfo] {
        &self.lists
    }

    /// The seed the data set was generated from.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    /// Active contacts per list, by list index: one pass over the per-contact facts.
    pub(crate) fn active_per_list(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.lists.len()];
        for meta in self.meta.iter().filter(|m| m.active) {
            if let Some(count) = counts.get_mut(usize::from(meta.list)) {
                *count += 1;
            }
        }
        counts
    }

    /// A full `/v2/contacts` response body exactly as the server sends it.
    ///
    /// Takes values as the server has them after validation: `per_page` is clamped into
    /// `1..=1000` and `page` raised to at least 1, and those are the values the pagination
    /// block reports. `list_number` is matched exactly; an unknown number gives an empty page
    /// with `total` 0.
    pub fn page_body(
        &self,
        list_number: Option<&str>,
        active: Option<bool>,
        page: u64,
        per_page: u64,
    ) -> Bytes {
        // A default view never refuses a page.
        self.page_as(list_number, active, page, per_page, &View::default())
            .map_or_else(|_| Bytes::new(), |page| page.body)
    }

    /// A page as a server with the misbehaviours in `view` serves it; `Err` when the page lies
    /// past the end and `view.refuse_past_end` is set, or reaches beyond a refusing search
    /// window.
    // Somewhat long: selection, the page's window, then the contacts and pagination (helpers);
    // each misbehaviour in `view` is a line or two where it bends the page.
    pub(crate) fn page_as(
        &self,
        list_number: Option<&str>,
        active: Option<bool>,
        page: u64,
        per_page: u64,
        view: &View<'_>,
    ) -> Result<ServedPage, Refused> {
        let asked = per_page.clamp(1, MAX_PER_PAGE);
        let size = view.cap.map_or(asked, |cap| asked.min(cap.max(1)));
        let mut page = page.max(1);
        let selection = self.select(list_number, active);
        let total = match &selection {
            Selection::All => self.len(),
            Selection::Index(index) => index.len(),
            Selection::Nothing => 0,
        };
        // What a search index counts and pages: at most its result window.
        let reachable = match view.search_window {
            Some(w) => total.min(usize::try_from(w.max_window).unwrap_or(usize::MAX)),
            None => total,
        };
        let window = |page: u64| {
            let start = usize::try_from((page - 1).saturating_mul(size)).unwrap_or(usize::MAX);
            let end = start.saturating_add(size as usize).min(reachable);
            (start, end)
        };
        if let Some(w) = view.search_window
            && w.beyond == crate::config::Beyond::Refuse
            && (page - 1).saturating_mul(size).saturating_add(size) > w.max_window
        {
            return Err(Refused::WindowTooLarge);
        }
        let (mut start, mut end) = window(page);
        if page > 1 && end <= start {
            if view.refuse_past_end {
                return Err(Refused::PastEnd);
            }
            if view.past_end_last_page {
                page = (reachable as u64).div_ceil(size).max(1);
                (start, end) = window(page);
            }
        }
        let count = end.saturating_sub(start);
        let at = |i: usize| match &selection {
            Selection::Index(index) => index[i],
            _ => i,
        };

        let mut body = Vec::with_capacity(self.estimate(count) + 128);
        body.extend_from_slice(b"{\"contacts\":[");
        let mut served = count;
        if count > 0 {
            if matches!(selection, Selection::All)
                && view.shuffle.is_none()
                && view.damaged.is_empty()
                && view.drop.is_none()
                && view.suppress.is_none()
            {
                body.extend_from_slice(&self.buf[self.starts[start]..self.starts[end] - 1]);
            } else {
                let mut positions = match view.shuffle {
                    Some(seed) => self.shuffled(start, end, total, seed, at),
                    None => (start..end).map(at).collect(),
                };
                if let Some(faults) = view.suppress {
                    positions.retain(|&i| !faults.suppresses(self.contact_json(i)));
                }
                if let Some((seed, p)) = view.drop {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xd20b_5eed);
                    positions.retain(|_| !rng.random_bool(p));
                }
                served = positions.len();
                self.push_contacts(&mut body, &positions, view);
            }
        }
        body.extend_from_slice(b"],");
        Self::push_pagination(&mut body, view, page, asked, size, reachable);
        body.extend_from_slice(b"}");
        Ok(ServedPage {
            body: Bytes::from(body),
            contacts: served,
        })
    }

    /// The contacts at `positions`, comma-separated, damaged as `view` says.
    fn push_contacts(&self, body: &mut Vec<u8>, positions: &[usize], view: &View<'_>) {
        for (n, &i) in positions.iter().enumerate() {
            if n > 0 {
                body.push(b',');
            }
            match view.damaged.iter().find(|(p, _)| *p == i) {
                Some(&(_, damage)) => {
                    body.extend_from_slice(&damaged(self.contact_json(i), damage))
                }
                None => body.extend_from_slice(self.contact_json(i)),
            }
        }
    }

    /// The `"pagination"` member of a page: `page`, then `per_page` and the totals as `view` bends
    /// them. `asked` is the size requested, `size` the one served, `reachable` what the listing
    /// (or its search window) holds.
    fn push_pagination(
        body: &mut Vec<u8>,
        view: &View<'_>,
        page: u64,
        asked: u64,
        size: u64,
        reachable: usize,
    ) {
        let reported = (reachable as u64).saturating_add_signed(view.total_offset);
        // The size `per_page` and `total_pages` speak of.
        let shown = match view.cap_report {
            CapReport::Echoed => asked,
            CapReport::Reported | CapReport::Silent => size,
        };
        body.extend_from_slice(b"\"pagination\":{\"page\":");
        push_u64(body, page);
        if view.cap.is_none() || view.cap_report != CapReport::Silent {
            body.extend_from_slice(b",\"per_page\":");
            push_u64(body, shown);
        }
        match view.total_form {
            TotalForm::Number => {
                body.extend_from_slice(b",\"total\":");
                push_u64(body, reported);
                body.extend_from_slice(b",\"total_pages\":");
                push_u64(body, reported.div_ceil(shown));
            }
            TotalForm::Missing => {}
            TotalForm::Null => body.extend_from_slice(b",\"total\":null,\"total_pages\":null"),
            TotalForm::String => {
                body.extend_from_slice(b",\"total\":\"");
                push_u64(body, reported);
                body.extend_from_slice(b"\",\"total_pages\":");
                push_u64(body, reported.div_ceil(shown));
            }
        }
        body.extend_from_slice(b"}");
    }

    /// Positions `start..end` of the selection after shuffling every run of equal signup
    /// times that reaches into the window, as one request of an unstable sort would order them.
    fn shuffled(
        &self,
        start: usize,
        end: usize,
        total: usize,
        seed: u64,
        at: impl Fn(usize) -> usize,
    ) -> Vec<usize> {
        let key = |i: usize| self.meta[at(i)].sort_key;
        let mut from = start;
        while from > 0 && key(from - 1) == key(start) {
            from -= 1;
        }
        let mut to = end;
        while to < total && key(to) == key(end - 1) {
            to += 1;
        }
        let mut positions: Vec<usize> = (from..to).map(&at).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut run = 0;
        while run < positions.len() {
            let k = self.meta[positions[run]].sort_key;
            let len = positions[run..]
                .iter()
                .take_while(|&&p| self.meta[p].sort_key == k)
                .count();
            positions[run..run + len].shuffle(&mut rng);
            run += len;
        }
        positions.drain(..start - from);
        positions.truncate(end - start);
        positions
    }

    /// Every matching contact, one JSON object per line, in served order.
    pub(crate) fn ndjson(&self, list_number: Option<&str>, active: Option<bool>) -> Vec<u8> {
        let index = match self.select(list_number, active) {
            Selection::All => None,
            Selection::Index(index) => Some(index),
            Selection::Nothing => return Vec::new(),
        };
        let count = index.as_ref().map_or(self.len(), |index| index.len());
        let mut out = Vec::with_capacity(self.estimate(count));
        for n in 0..count {
            let i = index.as_ref().map_or(n, |index| index[n]);
            out.extend_from_slice(self.contact_json(i));
            out.push(b'\n');
        }
        out
    }

    /// Rough size of `count` contacts, to size buffers.
    fn estimate(&self, count: usize) -> usize {
        if self.is_empty() {
            return 0;
        }
        (self.buf.len() / self.len() + 1).saturating_mul(count)
    }

    fn select(&self, list_number: Option<&str>, active: Option<bool>) -> Selection {
        let list = match list_number {
            None => None,
            Some(number) => match self.by_number.get(number) {
                Some(&i) => Some(i),
                None => return Selection::Nothing,
            },
        };
        if list.is_none() && active.is_none() {
            return Selection::All;
        }
        let key = (list, active);
        let mut filters = self.filters.lock().unwrap_or_else(PoisonError::into_inner);
        let index = filters.entry(key).or_insert_with(|| {
            Arc::new(
                self.meta
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| {
                        list.is_none_or(|l| m.list == l) && active.is_none_or(|a| m.active == a)
                    })
                    .map(|(i, _)| i)
                    .collect(),
            )
        });
        Selection::Index(Arc::clone(index))
    }

    /// A new data set with `n` brand-new contacts, signed up after every existing one, on top.
    pub(crate) fn with_inserted(&self, n: usize) -> Dataset {
        self.with_newer(n, false)
    }

    /// A new data set with `n` brand-new contacts imported in one second, after every existing
    /// one: a tie of `n` on top.
    pub(crate) fn with_imported(&self, n: usize) -> Dataset {
        self.with_newer(n, true)
    }

    fn with_newer(&self, n: usize, import: bool) -> Dataset {
        let picker = ListPicker::new(self.lists.len());
        let slots = plan_newer(
            self.seed,
            n,
            &picker,
            self.max_micros,
            self.next_person,
            self.next_id,
            import,
        );
        let max_micros = slots.last().map_or(self.max_micros, |s| s.micros);
        let renderer = Renderer {
            seed: self.seed,
            lists: &self.lists,
            money_forms: self.money_forms,
        };
        let mut rendered = render_parallel(&renderer, &slots, self.next_id);
        if !self.is_empty() {
            let starts = self.starts[..self.len()].iter().copied();
            rendered.append(&self.buf, starts, &self.meta);
        }
        Dataset::assemble(
            self.seed,
            self.money_forms,
            self.lists.clone(),
            rendered,
            max_micros,
            self.next_id + n as u64,
            self.next_person + n as u64,
        )
    }

    /// A new data set without `n` contacts at positions `i * len / n`, spread over the order.
    pub(crate) fn with_deleted(&self, n: usize) -> Dataset {
        let len = self.len();
        let n = n.min(len);
        let mut keep = vec![true; len];
        for i in 0..n {
            let at = (i as u128 * len as u128 / n as u128) as usize;
            keep[at] = false;
        }
        self.without(&keep)
    }

    /// A new data set without the contacts at `positions` (served order; out of range ignored).
    pub(crate) fn with_deleted_at(&self, positions: &[usize]) -> Dataset {
        let mut keep = vec![true; self.len()];
        for &p in positions {
            if let Some(k) = keep.get_mut(p) {
                *k = false;
            }
        }
        self.without(&keep)
    }

    /// A new data set of the contacts whose flag in `keep` is true.
    fn without(&self, keep: &[bool]) -> Dataset {
        let len = self.len();
        let n = keep.iter().filter(|k| !**k).count();
        let mut out = Rendered::with_capacity(self.buf.len(), len - n);
        // Copy maximal runs of kept contacts in one go: they are contiguous in `buf`.
        let mut i = 0;
        while i < len {
            if !keep[i] {
                i += 1;
                continue;
            }
            let run_start = i;
            while i < len && keep[i] {
                i += 1;
            }
            let base = self.starts[run_start];
            out.append(
                &self.buf[base..self.starts[i] - 1],
                self.starts[run_start..i].iter().map(|s| s - base),
                &self.meta[run_start..i],
            );
        }
        Dataset::assemble(
            self.seed,
            self.money_forms,
            self.lists.clone(),
            out,
            self.max_micros,
            self.next_id,
            self.next_person,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn small(contacts: usize) -> Dataset {
        Dataset::generate(&DatasetConfig {
            seed: 11,
            contacts,
            lists: 3,
            ..DatasetConfig::default()
        })
    }

    fn parse(bytes: &[u8]) -> Value {
        match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => panic!("invalid JSON ({e}): {}", String::from_utf8_lossy(bytes)),
        }
    }

    #[test]
    fn every_contact_is_valid_json_with_all_fields_in_documented_order() {
        let ds = small(3_000);
        assert_eq!(ds.len(), 3_000);
        const FIELDS: [&str; 18] = [
            "phone_number",
            "list_number",
            "list_id",
            "active",
            "signup_date",
            "signup_method",
            "custom_fields",
            "carrier",
            "line_type",
            "timezone",
            "is_valid",
            "send_count",
            "click_count",
            "revenue_total",
            "conversion_count",
            "last_sent_at",
            "last_clicked_at",
            "in_workflow",
        ];
        for i in 0..ds.len() {
            let text = ds.contact_json(i);
            assert!(!text.contains(&b'\n'), "contact {i} spans lines");
            // Key order: serde_json's Map is sorted, so check positions in the text instead.
            let s = String::from_utf8_lossy(text);
            let mut last = 0;
            for field in FIELDS {
                let needle = format!("\"{field}\":");
                let pos = s.find(&needle);
                assert!(
                    pos.is_some_and(|p| p >= last),
                    "{field} out of order in {s}"
                );
                last = pos.unwrap_or(0);
            }
            let v = parse(text);
            assert_eq!(v.as_object().map(|o| o.len()), Some(18));
        }
    }

    #[test]
    fn pages_concatenate_to_the_whole_data_set_newest_first() {
        let ds = small(1_234);
        let mut all = Vec::new();
        for page in 1..=13 {
            let v = parse(&ds.page_body(None, None, page, 100));
            let p = &v["pagination"];
            assert_eq!(p["total"], 1_234);
            assert_eq!(p["total_pages"], 13);
            let contacts = v["contacts"].as_array().cloned().unwrap_or_default();
            assert_eq!(contacts.len(), if page == 13 { 34 } else { 100 });
            all.extend(contacts);
        }
        assert_eq!(all.len(), ds.len());
        for (i, c) in all.iter().enumerate() {
            assert_eq!(c, &parse(ds.contact_json(i)));
        }
        let dates: Vec<&str> = all
            .iter()
            .filter_map(|c| c["signup_date"].as_str())
            .collect();
        // Naive ISO strings with the same precision compare like times; compare on seconds.
        assert!(dates.windows(2).all(|w| w[0][..19] >= w[1][..19]));
    }

    #[test]
    fn filtered_pages_match_ndjson() {
        let ds = small(2_000);
        let list = ds.list_numbers()[1].clone();
        let truth = ds.ndjson(Some(&list), Some(false));
        let lines: Vec<&[u8]> = truth
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let v = parse(&ds.page_body(Some(&list), Some(false), 1, 1000));
        let contacts = v["contacts"].as_array().cloned().unwrap_or_default();
        assert_eq!(contacts.len(), lines.len());
        assert_eq!(v["pagination"]["total"], lines.len());
        for (c, line) in contacts.iter().zip(&lines) {
            assert_eq!(c, &parse(line));
            assert_eq!(c["list_number"], list.as_str());
            assert_eq!(c["active"], false);
        }
    }

    #[test]
    fn empty_and_unknown_list_pages() {
        let ds = small(0);
        assert!(ds.is_empty());
        assert_eq!(
            &ds.page_body(None, None, 1, 50)[..],
            b"{\"contacts\":[],\"pagination\":{\"page\":1,\"per_page\":50,\"total\":0,\"total_pages\":0}}"
        );
        let ds = small(10);
        assert_eq!(
            &ds.page_body(Some("+19999999999"), None, 1, 50)[..],
            b"{\"contacts\":[],\"pagination\":{\"page\":1,\"per_page\":50,\"total\":0,\"total_pages\":0}}"
        );
        let v = parse(&ds.page_body(None, None, 5, 3));
        assert_eq!(v["contacts"].as_array().map(Vec::len), Some(0));
        assert_eq!(v["pagination"]["total_pages"], 4);
        assert_eq!(v["pagination"]["page"], 5);
        let v = parse(&ds.page_body(None, None, u64::MAX, 1000));
        assert_eq!(v["contacts"].as_array().map(Vec::len), Some(0));
    }

    #[test]
    fn insert_puts_new_contacts_on_top_and_delete_spreads() {
        let ds = small(500);
        let grown = ds.with_inserted(7);
        assert_eq!(grown.len(), 507);
        for i in 0..500 {
            assert_eq!(grown.contact_json(i + 7), ds.contact_json(i));
        }
        let newest_old = parse(ds.contact_json(0));
        for i in 0..7 {
            let c = parse(grown.contact_json(i));
            assert!(c["signup_date"].as_str() > newest_old["signup_date"].as_str());
        }
        let shrunk = grown.with_deleted(100);
        assert_eq!(shrunk.len(), 407);
        // Every 507/100-th contact went: the first one, and none of the last four in a row.
        assert_eq!(shrunk.contact_json(0), grown.contact_json(1));
        let v = parse(&shrunk.page_body(None, None, 1, 1000));
        assert_eq!(v["contacts"].as_array().map(Vec::len), Some(407));
        assert!(grown.with_deleted(10_000).is_empty());
        let revived = small(0).with_inserted(3);
        let c = parse(revived.contact_json(2));
        assert!(c["signup_date"].as_str() > Some("2025-05-31T23:59:59"));
    }

    #[test]
    fn parallel_and_sequential_rendering_agree() {
        let lists = make_lists(4);
        let picker = ListPicker::new(4);
        let planned = plan(5, 25_000, &picker, false);
        let renderer = Renderer {
            seed: 5,
            lists: &lists,
            money_forms: true,
        };
        let a = render_parallel(&renderer, &planned.slots, 1);
        let b = render_slots(&renderer, &planned.slots, 1);
        assert_eq!(a.buf, b.buf);
        assert_eq!(a.starts, b.starts);
    }
}
