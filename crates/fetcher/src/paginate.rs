//! The run: page 1, then up to N pages in flight delivered in order, with de-duplication and
//! re-reads wherever the listing changed between two neighbouring pages.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::{self, Stream, StreamExt};
use tokio::sync::mpsc;

use crate::client::Client;
use crate::error::FetchError;
use crate::limit::Admission;
use crate::page::{ContactKey, Page};
use crate::query::Query;
use crate::stats::{DriftEvent, FetchStats, StatsHandle};

/// The pages of one export, as a [`Stream`]. Dropping it cancels the run.
///
/// Pages of the main pass come in ascending page order. When the listing changes between two
/// neighbouring pages, the pages around that boundary are read again and delivered right after
/// the later page, with [`Page::pass`] above 1 and only contacts not delivered before.
pub struct Contacts {
    rx: mpsc::Receiver<Result<Page, FetchError>>,
    stats: StatsHandle,
    task: tokio::task::JoinHandle<()>,
}

/// Where a run that was interrupted picks up again (see [`Client::contacts_resuming`]).
#[derive(Debug, Clone, Default)]
pub struct ResumeFrom {
    /// The first page to read: the page the interrupted run was reading when it last saved
    /// its progress.
    pub page: u64,
    /// `pagination.total` that page (or the one before it) reported then; a different total
    /// now means the listing changed while the run was down, and the boundary is re-read.
    pub total: u64,
    /// `(phone_number, list_number)` of every contact already written: never delivered again.
    pub delivered: Vec<(String, String)>,
}

impl Contacts {
    pub(crate) fn start(client: Client, query: Query, resume: Option<ResumeFrom>) -> Contacts {
        let stats = StatsHandle::default();
        // One finished page waits here while the next N are in flight: about N + 2 pages are
        // held at any time, whatever the total.
        let (tx, rx) = mpsc::channel(1);
        let client_per_page = client.per_page();
        let mut seen = Seen::new(client.inner.dedup_window);
        let mut start = None;
        if let Some(resume) = resume {
            for (phone, list) in &resume.delivered {
                seen.pin(phone, list);
            }
            start = Some((resume.page.max(1), resume.total));
        }
        let run = Run {
            admission: Admission::new(client.inner.concurrency, client.inner.max_rps),
            client,
            query,
            stats: stats.clone(),
            seen,
            start,
            per_page: u64::from(client_per_page),
            tx,
        };
        let task = tokio::spawn(async move {
            let tx = run.tx.clone();
            if let Err(error) = run.run().await {
                // The receiver may be gone already; then nobody is waiting for the error.
                let _ = tx.send(Err(error)).await;
            }
        });
        Contacts { rx, stats, task }
    }

    /// Live statistics of this run.
    pub fn stats(&self) -> StatsHandle {
        self.stats.clone()
    }

    /// The statistics as they are now (final once the stream has ended).
    pub fn snapshot(&self) -> FetchStats {
        self.stats.snapshot()
    }
}

impl Drop for Contacts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for Contacts {
    type Item = Result<Page, FetchError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// The receiver went away: stop quietly.
struct Cancelled;

enum RunError {
    Fetch(FetchError),
    Cancelled,
}

impl From<FetchError> for RunError {
    fn from(e: FetchError) -> Self {
        RunError::Fetch(e)
    }
}

impl From<Cancelled> for RunError {
    fn from(_: Cancelled) -> Self {
        RunError::Cancelled
    }
}

struct Run {
    client: Client,
    query: Query,
    admission: Arc<Admission>,
    stats: StatsHandle,
    seen: Seen,
    /// Resuming: the first page and the total it reported before the interruption.
    start: Option<(u64, u64)>,
    /// Contacts per page as the server applies it (from the first response).
    per_page: u64,
    tx: mpsc::Sender<Result<Page, FetchError>>,
}

impl Run {
    async fn run(mut self) -> Result<(), FetchError> {
        match self.pages().await {
            Ok(()) | Err(RunError::Cancelled) => Ok(()),
            Err(RunError::Fetch(e)) => Err(e),
        }
    }

    async fn fetch(&self, page: u64) -> Result<Page, FetchError> {
        self.client
            .fetch_page(&self.query, page, &self.admission, &self.stats)
            .await
    }

    async fn pages(&mut self) -> Result<(), RunError> {
        let (start, resumed_total) = match self.start {
            Some((page, total)) => (page, Some(total)),
            None => (1, None),
        };
        let first = self.fetch(start).await?;
        // Page boundaries follow the page size the server applied (it may clamp what we asked).
        // A server may also cap it silently, reporting a `per_page` larger than it serves: a
        // first page shorter than that while more contacts follow it tells the real size.
        let reported = first.pagination().per_page.max(1);
        let served = first.len() as u64;
        let before_first = first.number().saturating_sub(1).saturating_mul(reported);
        self.per_page = if served > 0
            && served < reported
            && before_first.saturating_add(served) < first.pagination().total
        {
            served
        } else {
            reported
        };
        let per_page = self.per_page;
        let planned = first.pagination().total_pages;
        self.stats.update(|s| {
            s.expected_contacts = first.pagination().total;
            s.expected_pages = planned;
        });
        let mut previous = Boundary::of(&first, per_page);
        let mut previous_first_key = first.raw_contacts().next().and_then(key_hash);
        self.deliver(first).await?;
        if let Some(before) = resumed_total
            && before != previous.total
        {
            // The listing changed while the run was down: what moved across the resume point
            // is recovered like any other drift.
            self.reread(start, before, previous.total).await?;
        }

        let concurrency = self.client.inner.concurrency;
        let client = self.client.clone();
        let query = self.query.clone();
        let admission = Arc::clone(&self.admission);
        let stats = self.stats.clone();
        let mut main = stream::iter(start + 1..=planned.max(start))
            .map(move |n| {
                let (client, query, admission, stats) = (
                    client.clone(),
                    query.clone(),
                    Arc::clone(&admission),
                    stats.clone(),
                );
                async move { client.fetch_page(&query, n, &admission, &stats).await }
            })
            .buffered(concurrency);
        let mut next = start + 1;
        let mut repeats = 0;
        loop {
            // The main pass, then the tail: pages past the planned end while the listing says
            // there are more, or while the last page came back full (a `total_pages` that lies
            // low must not cut the export short).
            let page = if next <= planned {
                match main.next().await {
                    Some(page) => page?,
                    None => break,
                }
            } else if next <= previous.total_pages || previous.full {
                let page = self.fetch(next).await?;
                self.stats.update(|s| s.extra_pages += 1);
                page
            } else {
                break;
            };
            next += 1;
            let current = Boundary::of(&page, per_page);
            let number = page.number();
            let before = page.len();
            let first_key = page.raw_contacts().next().and_then(key_hash);
            self.deliver(page).await?;
            // Two pages in a row starting with the same contact cannot come from paging over
            // one listing, drifting or not: the API is repeating itself (e.g. it ignores
            // `page`). Past the planned end once is enough; inside it, a few in a row.
            if current.full && first_key.is_some() && first_key == previous_first_key {
                repeats += 1;
                if number > planned || repeats >= MAX_REPEATED_PAGES {
                    return Err(FetchError::RepeatingPages {
                        page: number,
                        repeats,
                    }
                    .into());
                }
            } else {
                repeats = 0;
            }
            previous_first_key = first_key;
            if current.total != previous.total {
                self.reread(number, previous.total, current.total).await?;
            } else if !current.full && (next <= planned || before == 0) {
                // A short page with no change of total: the listing ends here whatever
                // `total_pages` claimed, even when it is the last page by `total` (a
                // `total_pages` that lies high, up to 10^15, must not be read to the end) or an
                // empty page in the tail. Nothing is in flight past what we drop.
                if next <= planned {
                    tracing::warn!(
                        page = number,
                        planned,
                        "short page before the announced end; stopping"
                    );
                }
                break;
            }
            self.seen.forget_behind(number);
            previous = current;
        }
        Ok(())
    }

    /// The listing changed between page `page - 1` and `page`. Contacts may have moved across
    /// that boundary, so read the pages around it again until they agree on one total, and
    /// deliver what was not delivered yet.
    async fn reread(&mut self, page: u64, before: u64, after: u64) -> Result<(), RunError> {
        let per_page = self.per_page;
        let mut shift = before.abs_diff(after);
        let max = self.client.inner.max_rereads.max(1);
        let mut totals = Vec::new();
        for attempt in 1..=max {
            let reach = shift.div_ceil(per_page) + 1;
            let first = page.saturating_sub(reach).max(1);
            let last = page + reach;
            let pages: Vec<Page> = stream::iter(first..=last)
                .map(|n| self.fetch(n))
                .buffered(self.client.inner.concurrency)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            totals = pages.iter().map(|p| p.pagination().total).collect();
            let stable = totals.windows(2).all(|w| w[0] == w[1]);
            if !stable {
                // The listing is still moving: widen by what moved and read again.
                shift += totals.iter().max().unwrap_or(&0) - totals.iter().min().unwrap_or(&0);
                continue;
            }
            // Rows moved up to `shift` positions: remember that far back from now on.
            self.seen.widen(2 * reach + shift.div_ceil(per_page) + 2);
            let reread = pages.len() as u64;
            let mut recovered = 0;
            for mut p in pages {
                p.set_pass(attempt + 1);
                recovered += self.deliver(p).await? as u64;
            }
            tracing::info!(
                page,
                before,
                after,
                reread,
                recovered,
                "listing changed during the run; re-read the boundary"
            );
            self.stats.update(|s| {
                s.pages_reread += reread;
                s.drift_events.push(DriftEvent {
                    page,
                    total_before: before,
                    total_after: after,
                    pages_reread: reread,
                    contacts_recovered: recovered,
                });
            });
            return Ok(());
        }
        Err(FetchError::UnstableListing {
            page,
            attempts: max,
            totals,
        }
        .into())
    }

    /// Drops contacts delivered before, sends the page on, and returns how many it kept.
    async fn deliver(&mut self, mut page: Page) -> Result<usize, Cancelled> {
        let before = page.len();
        let seen = &mut self.seen;
        let number = page.number();
        page.retain_contacts(|raw| seen.insert(number, raw));
        let kept = page.len();
        self.stats.update(|s| {
            s.pages += 1;
            s.contacts += kept as u64;
            s.duplicates_dropped += (before - kept) as u64;
        });
        self.tx.send(Ok(page)).await.map_err(|_| Cancelled)?;
        Ok(kept)
    }
}

/// What a page tells about the listing at the time it was served.
#[derive(Debug, Clone, Copy)]
struct Boundary {
    total: u64,
    total_pages: u64,
    /// The page came back with `per_page` contacts.
    full: bool,
}

impl Boundary {
    fn of(page: &Page, per_page: u64) -> Boundary {
        let p = page.pagination();
        Boundary {
            total: p.total,
            total_pages: p.total_pages,
            full: page.len() as u64 >= per_page,
        }
    }
}

/// Full pages in a row with nothing new and no change of `total` before the run gives up.
const MAX_REPEATED_PAGES: u32 = 3;

/// The contacts delivered recently, as 64-bit hashes of `(phone_number, list_number)`, by the
/// page they were delivered under.
///
/// A contact can only come back when the listing moved it across page boundaries, so it comes
/// back within a few pages of where it was delivered: the set forgets pages more than
/// `window` pages behind the main pass (and keeps more when a drift moved rows further), so
/// memory stays flat however many contacts the run has. `window: None` remembers every
/// contact (about 16 bytes each). Contacts written by an interrupted run that is being resumed
/// are always remembered. Two different keys share a hash with probability about
/// `n² / 2⁶⁵` over the keys held at once.
struct Seen {
    recent: HashMap<u64, u64, BuildHasherDefault<PreHashed>>,
    by_page: BTreeMap<u64, Vec<u64>>,
    pinned: HashSet<u64, BuildHasherDefault<PreHashed>>,
    window: Option<u64>,
}

impl Seen {
    fn new(window: Option<u64>) -> Seen {
        Seen {
            recent: HashMap::default(),
            by_page: BTreeMap::new(),
            pinned: HashSet::default(),
            window,
        }
    }

    /// Remembers a contact written before this run started, for good.
    fn pin(&mut self, phone: &str, list: &str) {
        self.pinned
            .insert(hash_key(phone.as_bytes(), list.as_bytes()));
    }

    /// Records the contact, delivered under `page`; false when it was delivered before. A
    /// contact without a readable key is always kept (the converter decides what to do with
    /// it).
    fn insert(&mut self, page: u64, raw: &[u8]) -> bool {
        let Some(hash) = key_hash(raw) else {
            return true;
        };
        if self.pinned.contains(&hash) || self.recent.contains_key(&hash) {
            return false;
        }
        self.recent.insert(hash, page);
        self.by_page.entry(page).or_default().push(hash);
        true
    }

    /// Keeps at least `pages` pages behind the main pass from now on (a drift moved rows that
    /// far).
    fn widen(&mut self, pages: u64) {
        if let Some(window) = &mut self.window {
            *window = (*window).max(pages);
        }
    }

    /// Forgets what was delivered under pages more than the window behind `main_page`.
    fn forget_behind(&mut self, main_page: u64) {
        let Some(window) = self.window else {
            return;
        };
        let keep = self.by_page.split_off(&main_page.saturating_sub(window));
        for (_, hashes) in std::mem::replace(&mut self.by_page, keep) {
            for hash in hashes {
                self.recent.remove(&hash);
            }
        }
    }
}

/// Keys are already hashes: pass them through.
#[derive(Default)]
struct PreHashed(u64);

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

fn key_hash(raw: &[u8]) -> Option<u64> {
    let (phone, list) = match fast_key(raw) {
        Some(key) => key,
        None => {
            let key: ContactKey<'_> = serde_json::from_slice(raw).ok()?;
            return Some(hash_key(
                key.phone_number?.as_bytes(),
                key.list_number?.as_bytes(),
            ));
        }
    };
    Some(hash_key(phone, list))
}

fn hash_key(phone: &[u8], list: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(phone);
    h.update(&[0]);
    h.update(list);
    h.digest()
}

/// The documented field order puts both keys first: read them without a JSON parse when the
/// object starts exactly so and neither value has an escape.
fn fast_key(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = raw.strip_prefix(br#"{"phone_number":""#)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    let (phone, rest) = rest.split_at(end);
    let rest = rest.strip_prefix(br#"","list_number":""#)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    let (list, rest) = rest.split_at(end);
    rest.first().filter(|&&b| b == b'"')?;
    Some((phone, list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_and_slow_key_paths_agree() {
        let compact = br#"{"phone_number":"+14155559876","list_number":"+18005551234","x":1}"#;
        let spaced = br#"{ "list_number": "+18005551234", "phone_number": "+14155559876" }"#;
        assert!(fast_key(compact).is_some());
        assert!(fast_key(spaced).is_none());
        assert_eq!(key_hash(compact), key_hash(spaced));
        let escaped = br#"{"phone_number":"+1415555\u0039876","list_number":"+18005551234"}"#;
        assert!(fast_key(escaped).is_none());
        assert_eq!(key_hash(escaped), key_hash(compact));
    }

    #[test]
    fn the_window_forgets_old_pages_but_never_pinned_contacts() {
        let a = br#"{"phone_number":"+14155550001","list_number":"+18005551234"}"#;
        let b = br#"{"phone_number":"+14155550002","list_number":"+18005551234"}"#;
        let mut seen = Seen::new(Some(4));
        seen.pin("+14155550002", "+18005551234");
        assert!(seen.insert(10, a));
        seen.forget_behind(14);
        assert!(!seen.insert(14, a), "page 10 is within 4 pages of page 14");
        seen.forget_behind(15);
        assert!(seen.insert(15, a), "page 10 is forgotten at page 15");
        assert!(!seen.insert(15, b), "pinned contacts are never forgotten");
        seen.widen(100);
        seen.forget_behind(60);
        assert!(!seen.insert(60, a), "a widened window keeps page 15");
        assert_eq!(seen.recent.len(), 1);
    }

    #[test]
    fn contacts_without_keys_are_kept() {
        let mut seen = Seen::new(None);
        assert!(seen.insert(1, br#"{"list_number":"+18005551234"}"#));
        assert!(seen.insert(1, br#"{"list_number":"+18005551234"}"#));
        assert!(seen.insert(1, br#"not json"#));
        let c = br#"{"phone_number":"+14155559876","list_number":"+18005551234"}"#;
        assert!(seen.insert(1, c));
        assert!(!seen.insert(2, c));
    }
}
