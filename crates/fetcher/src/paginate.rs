//! The run: page 1, then up to N overlapping windows in flight delivered in order,
//! de-duplicated; every key proven covered (see [`crate::coverage`] and [`crate::proof`]), with
//! repair reads where the windows alone do not prove it; and the count reconciled at the end.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::stream::{self, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use trackly_contacts::Pass;
use trackly_contacts::key::{Identity, hash_key};
use trackly_contacts::page::{Frontier, Page, ResumePoint};

use crate::admission::Admission;
use crate::client::{Client, Reader};
use crate::coverage::key_of;
use crate::error::FetchError;
use crate::parts;
use crate::plan::{Sizes, Window, overlap};
use crate::proof::{Observed, Proof};
use crate::query::Query;
use crate::seen::Seen;
use crate::stats::{DriftEvent, FetchStats, Learned, Reconciliation, StatsHandle};
use crate::step::{Answer, MAX_REPEATED_PAGES, Next, SEARCH_INDEX_LIMITS, next_after};

/// The pages of one export, as a [`Stream`]. Dropping it cancels the run.
///
/// Windows of the main pass come in ascending position order; consecutive windows overlap by a
/// few positions, so most boundaries prove themselves. Where the windows alone do not prove
/// that no contact fell between them, repair reads follow a little later, with [`Page::pass`]
/// [`Pass::Verification`] and only contacts not delivered before. The stream ends with an
/// error, never short: a range that cannot be proven, or a count that does not add up, is a
/// [`FetchError`].
pub struct Contacts {
    rx: mpsc::Receiver<Result<Page, FetchError>>,
    stats: StatsHandle,
    task: tokio::task::JoinHandle<()>,
}

/// Where a run that was interrupted picks up again (see [`Client::contacts_with_stats`]).
#[derive(Debug, Clone, Default)]
pub struct ResumeFrom {
    /// What the interrupted run last saved: its page and total, and the [`Page::frontier`] of
    /// the last page whose contacts were all saved. The resumed run starts at the frontier's
    /// page, or earlier until its first page reaches above the frontier; without a frontier
    /// it starts from page 1 (exact, but every page is fetched again).
    pub point: ResumePoint,
    /// `(phone_number, list_number)` of every contact already written: never delivered again.
    pub delivered: Vec<(String, String)>,
}

/// The contacts' streams a [`Client`] starts (the client itself knows nothing of paging).
impl Client {
    /// Every contact matching `query`, as a stream of pages. See the crate docs for the
    /// ordering, exactness and memory guarantees.
    pub fn contacts(&self, query: Query) -> Contacts {
        Contacts::start(self.clone(), query, None, StatsHandle::default())
    }

    /// Like [`contacts`](Self::contacts), counting into `stats`: requests made before with the
    /// same handle (such as [`lists`](Self::lists)) and this run's add up in one
    /// [`FetchStats`]. With `resume`, it continues a run that was
    /// interrupted: reading starts at the page of the frontier (earlier if the listing has moved
    /// up since; page 1 without a frontier), contacts already delivered are never delivered
    /// again, and a change of the listing since the interruption is detected and recovered from
    /// like drift during a run.
    pub fn contacts_with_stats(
        &self,
        query: Query,
        resume: Option<ResumeFrom>,
        stats: StatsHandle,
    ) -> Contacts {
        Contacts::start(self.clone(), query, resume, stats)
    }
}

impl Contacts {
    pub(crate) fn start(
        client: Client,
        query: Query,
        resume: Option<ResumeFrom>,
        stats: StatsHandle,
    ) -> Contacts {
        // One finished page waits here while the next N are in flight: about N + 2 pages are
        // held at any time, whatever the total.
        let (tx, rx) = mpsc::channel(1);
        let mut seen = Seen::new(client.inner.dedup_window);
        let resumed = resume.map(|resume| {
            for (phone, list) in &resume.delivered {
                seen.pin(hash_key(phone.as_bytes(), list.as_bytes()));
            }
            Resumed {
                total: resume.point.total,
                frontier: resume.point.frontier,
                contacts: resume.delivered.len() as u64,
            }
        });
        let per_page = u64::from(client.per_page());
        let run = Run {
            proof: Proof::new(per_page),
            reader: Reader {
                admission: Admission::new(client.inner.concurrency, client.inner.max_rps),
                client,
                query,
                stats: stats.clone(),
            },
            sizes: Arc::new(Mutex::new(Sizes::with_limit(
                per_page,
                u64::from(crate::client::MAX_PER_PAGE),
            ))),
            seen,
            resumed,
            jobs: JoinSet::new(),
            outstanding: HashMap::new(),
            main_reads: 0,
            last_total: None,
            last_main: None,
            unproven_end: None,
            short_end: None,
            cap_guess: None,
            totals_moved: 0,
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

/// What an interrupted run left behind.
struct Resumed {
    total: u64,
    frontier: Option<Frontier>,
    contacts: u64,
}

/// A repair read in flight: its batch, its window, its answer.
type RepairRead = (u64, Window, Result<Page, FetchError>);

struct Run {
    /// The client, the query, the admission and the counters of every read.
    reader: Reader,
    seen: Seen,
    resumed: Option<Resumed>,
    /// The page sizes the API serves, shared with the main pass's planner.
    sizes: Arc<Mutex<Sizes>>,
    proof: Proof,
    /// Repair reads in flight, and how many of each batch are still out.
    jobs: JoinSet<RepairRead>,
    outstanding: HashMap<u64, usize>,
    /// Main-pass reads taken in (the de-duplication window counts in these).
    main_reads: u64,
    /// The last total any answer reported.
    last_total: Option<u64>,
    /// The last main-pass answer: its window, its first contact, full pages in a row starting
    /// with that contact.
    last_main: Option<(Window, Option<u64>, u32)>,
    /// A short main-pass answer without a total, waiting for the window after it to show
    /// the end.
    unproven_end: Option<Observed>,
    /// That short answer, once the window after it showed nothing: the end, if
    /// [`Run::confirm_end`] confirms where it sits.
    short_end: Option<Observed>,
    /// A page size guessed from a short answer, waiting for a second one as short.
    cap_guess: Option<u64>,
    /// The sum of the changes of total between consecutive answers (any answers, in the order
    /// they came; a resumed run's first answer against the interrupted run's total).
    totals_moved: u64,
    tx: mpsc::Sender<Result<Page, FetchError>>,
}

/// Locks the shared page sizes (a poisoned lock still holds valid sizes).
fn lock(sizes: &Mutex<Sizes>) -> std::sync::MutexGuard<'_, Sizes> {
    sizes.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Run {
    async fn run(mut self) -> Result<(), FetchError> {
        let outcome = self.pages().await;
        self.jobs.abort_all();
        match outcome {
            Ok(()) | Err(RunError::Cancelled) => Ok(()),
            Err(RunError::Fetch(e)) => Err(e),
        }
    }

    /// The run's first read: page 1, or for a resumed run the window at the interrupted run's
    /// frontier, or an earlier one until it reaches above it (the listing may have shifted up
    /// since). A `400` for the page size steps down to sizes APIs commonly accept.
    async fn first_read(&mut self) -> Result<(Window, Page), RunError> {
        let frontier = self.resumed.as_ref().and_then(|r| r.frontier);
        let mut start = frontier.map_or(0, |f| {
            (f.page.max(1) - 1).saturating_mul(u64::from(self.client().per_page()))
        });
        let mut step = u64::from(self.client().per_page());
        loop {
            let window = lock(&self.sizes).reaching_from(start);
            let window = Window {
                page: start / window.per_page + 1,
                ..window
            };
            let page = match self.reader.fetch(window).await {
                Ok(page) => page,
                Err(FetchError::Rejected { status: 400, .. })
                    if lock(&self.sizes).refuse(window.per_page).is_some() =>
                {
                    tracing::info!(
                        per_page = window.per_page,
                        "the API refused the page size; trying a smaller one"
                    );
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            lock(&self.sizes).accept(window.per_page);
            let top = page.keys().iter().find_map(key_of);
            let reaches_above = match frontier {
                None => true,
                Some(f) => top.is_some_and(|top| top > f.signup_date.div_euclid(1_000_000)),
            };
            if start == 0 || reaches_above {
                if self.resumed.is_some() {
                    tracing::info!(
                        position = window.offset(),
                        "resuming at the first window that reaches above what was written"
                    );
                }
                return Ok((window, page));
            }
            tracing::debug!(
                position = start,
                ?frontier,
                ?top,
                "window starts below the resume frontier; stepping back"
            );
            start = start.saturating_sub(step);
            step = step.saturating_mul(2);
        }
    }

    async fn pages(&mut self) -> Result<(), RunError> {
        let (first_window, first) = self.first_read().await?;
        // The first count of the listing's parts goes out with the windows after the first read.
        let parts = self
            .reader
            .first_count()
            .map(|count| AbortOnDrop(tokio::spawn(count)));
        if let Some(f) = self.resumed.as_ref().and_then(|r| r.frontier) {
            // Everything above the interrupted run's frontier was written then.
            self.proof
                .assume_above(f.signup_date.div_euclid(1_000_000) + 1);
        }
        let total = first.pagination().total;
        let max = lock(&self.sizes).max();
        self.seen.presize(max, total.unwrap_or(0));
        self.stats().update(|s| {
            s.expected_contacts = total.unwrap_or(0);
            s.expected_pages = total.map_or(0, |t| t.div_ceil(max));
        });
        let mut next = self.take_main(first_window, Ok(first)).await?;
        let mut last_end = first_window.end();
        let concurrency = self.client().inner.concurrency;
        let mut main = self.planned_reads(last_end, total);
        let mut planned = true;
        while next != Next::Done {
            self.repair(false).await?;
            // Repairs keep up with the main pass, so memory stays bounded and a resumed run
            // starts close to where this one was.
            while self.jobs.len() > concurrency {
                self.join_repair().await?;
            }
            let (window, fetched) = if planned && next == Next::Continue {
                match main.next().await {
                    Some(done) => done.map_err(not_run("a page request"))?,
                    None => {
                        planned = false;
                        continue;
                    }
                }
            } else {
                // Past the planned windows (the listing grew, or a probe past its end). Without
                // a total, the probe after a short window asks for the one position right
                // after it: only an answer that shows nothing exactly there proves the end (a
                // window placed by a size the API may cap could land anywhere).
                let window = match (&self.unproven_end, next) {
                    (Some(short), Next::Probe) => Window {
                        page: short.offset + short.len + 1,
                        per_page: 1,
                    },
                    _ => {
                        let sizes = lock(&self.sizes);
                        sizes.after(last_end, overlap(sizes.max()))
                    }
                };
                self.stats().update(|s| s.extra_pages += 1);
                let fetched = self.reader.fetch(window).await;
                (window, fetched)
            };
            last_end = last_end.max(window.end());
            let probe = next == Next::Probe;
            next = self.take_main(window, fetched).await?;
            if probe && next == Next::Continue {
                // The probe found more: the listing grew; read on one window at a time.
                planned = false;
            }
        }
        drop(main);
        self.finish(total, parts).await
    }

    /// The main pass's planned windows after the one ending at `end`, up to `total` (without
    /// one: until the stream is dropped), read `concurrency` at a time and answered in window
    /// order. Each read is a task of its own, so it goes on while the run waits for repair
    /// reads (and is aborted when the run is).
    fn planned_reads(
        &self,
        end: u64,
        total: Option<u64>,
    ) -> impl Stream<Item = Result<(Window, Result<Page, FetchError>), tokio::task::JoinError>>
    + Unpin
    + use<> {
        let planner = Arc::clone(&self.sizes);
        let reader = self.reader.clone();
        let mut planned_end = end;
        let windows = std::iter::from_fn(move || {
            if total.is_some_and(|t| planned_end >= t) {
                return None;
            }
            let sizes = lock(&planner);
            let w = sizes.after(planned_end, overlap(sizes.max()));
            planned_end = w.end();
            Some(w)
        });
        let concurrency = self.client().inner.concurrency;
        stream::iter(windows)
            .map(move |w| {
                let reader = reader.clone();
                AbortOnDrop(tokio::spawn(async move { (w, reader.fetch(w).await) }))
            })
            .buffered(concurrency)
    }

    /// After the main pass: its end confirmed, every repair read done, the proof complete, the
    /// totals reconciled and the listing's parts counted. `total` is the first read's.
    async fn finish(
        &mut self,
        total: Option<u64>,
        parts: Option<AbortOnDrop<parts::FirstCount>>,
    ) -> Result<(), RunError> {
        self.confirm_end().await?;
        self.repair(true).await?;
        while !self.jobs.is_empty() {
            self.join_repair().await?;
            self.repair(true).await?;
        }
        let failures = self.proof.take_failures();
        if let Some(first) = failures.into_iter().next() {
            return Err(self.with_count(first).into());
        }
        if !self.proof.is_complete() {
            return Err(FetchError::Internal {
                reason: "the proof ended with keys still open".into(),
            }
            .into());
        }
        self.record_learned();
        // A count that fails is reported after the parts are counted: parts that exceed the
        // whole say more about why (a total capped by a search window stands still).
        let reconciled = self.reconcile();
        self.count_parts(total, parts).await?;
        reconciled?;
        Ok(())
    }

    /// Takes in one main-pass answer: delivers its contacts, tells the proof what it shows,
    /// learns the page size, and decides what the pass does next.
    async fn take_main(
        &mut self,
        window: Window,
        fetched: Result<Page, FetchError>,
    ) -> Result<Next, RunError> {
        self.main_reads += 1;
        let page = match fetched {
            Ok(page) => page,
            Err(e) => return self.refused(window, e),
        };
        lock(&self.sizes).accept(window.per_page);
        let answer = self.answer(window, &page);
        if answer.past_end {
            tracing::debug!(
                page = window.page,
                "the API answered another page for a page past the end: the listing ends before it"
            );
            return Ok(self.end_shown(window));
        }
        if answer.len == 0 {
            if answer.offset == 0 {
                // Nothing at all, from the top: an empty listing.
                self.note_answer(window, &answer);
                self.proof
                    .observe(Observed::new(0, &[], answer.total, true, true, false), None);
                // One empty page, so that a consumer sees the listing was read.
                self.deliver(page, &[], Pass::Main).await?;
            }
            return Ok(self.end_shown(window));
        }
        self.note_total_change(window, &answer);
        self.note_answer(window, &answer);
        let ids = page.keys().to_vec();
        self.check_order(window.page, &ids)?;
        let repeats = self.repeats(window, &ids)?;
        let observed = observed(&answer, &ids);
        if !answer.trusted {
            tracing::debug!(
                page = window.page,
                per_page = window.per_page,
                served = answer.len,
                total = ?answer.total,
                "a window came back shorter than asked, before the end: not trusted, read again later"
            );
        }
        let mut next = next_after(&answer);
        if next == Next::Probe && answer.total.is_none() {
            self.unproven_end = Some(observed.clone());
        }
        if self.proof.observe(observed, None) && answer.len < answer.per_page {
            // Another short read ended at the same position: the listing ends here.
            next = Next::Done;
        }
        let kept = self.deliver(page, &ids, Pass::Main).await?;
        // Past the total (where the answer is placed for sure), nothing new: the API repeats
        // what it served; it is not paging.
        if kept == 0 && answer.trusted && answer.total.is_some_and(|t| answer.offset >= t) {
            return Err(FetchError::RepeatingPages {
                page: window.page,
                repeats: repeats.max(1),
            }
            .into());
        }
        self.seen.forget_behind(self.main_reads);
        Ok(next)
    }

    /// A main-pass read that failed for good. A size refused with `400` is learned (the
    /// positions are read again by a repair); a `404` past the end ends the listing (Django REST
    /// Framework's "Invalid page."); a `400` past an end the listing reached exactly is that
    /// end, unless the total is a search index's window limit. Anything else fails the run.
    fn refused(&mut self, window: Window, error: FetchError) -> Result<Next, RunError> {
        let status = match &error {
            FetchError::Rejected { status, .. } => *status,
            _ => return Err(error.into()),
        };
        let past_end =
            self.last_total.is_some_and(|t| window.offset() >= t) || self.unproven_end.is_some();
        let accepted = lock(&self.sizes).accepts(window.per_page);
        match status {
            404 if past_end => Ok(self.end_shown(window)),
            400 if past_end && accepted => {
                let total = self.last_total.unwrap_or(0);
                if SEARCH_INDEX_LIMITS.contains(&total) {
                    return Err(FetchError::Unverified {
                        page: window.page,
                        attempts: 1,
                        reason: format!(
                            "the listing seems to end at exactly {total} contacts, the window limit of search-index backends, and the API refused (HTTP 400) the window after it: it may hold more contacts than it lets anyone page through"
                        ),
                    }
                    .into());
                }
                Ok(self.end_shown(window))
            }
            400 if !accepted => {
                let instead = lock(&self.sizes).refuse(window.per_page);
                tracing::info!(
                    per_page = window.per_page,
                    ?instead,
                    "the API refused a page size; using the sizes it serves"
                );
                if instead.is_none() {
                    return Err(error.into());
                }
                Ok(Next::Continue)
            }
            400 => Err(FetchError::Unverified {
                page: window.page,
                attempts: 1,
                reason: format!(
                    "the API refused a window of a size it had served before, at positions {}-{} ({error}): it pages no further there (a search index's window limit?), so the listing past it could not be read",
                    window.offset(),
                    window.end()
                ),
            }
            .into()),
            _ => Err(error.into()),
        }
    }

    /// The window at `window` shows the listing ends before it (empty, 404, or another page).
    fn end_shown(&mut self, window: Window) -> Next {
        if let Some(short) = self.unproven_end.take()
            && short.offset + short.len == window.offset()
        {
            // No total: the short page before it may be the end; where it really ends is
            // confirmed once the main pass is over.
            self.short_end = Some(short);
        }
        Next::Done
    }

    /// Without a total, a short answer followed by nothing at the position after it ends the
    /// listing only if it really sits where it was asked for: an API that caps the page size
    /// silently places its windows by its own size. A read of one contact is placed exactly
    /// whatever the cap, so one at the short answer's last position must hold a contact with
    /// its last key; then the short answer ends the listing. Otherwise the listing's last
    /// position is searched for one contact at a time, and that read ends it (the repairs then
    /// read whatever lies between).
    async fn confirm_end(&mut self) -> Result<(), RunError> {
        let Some(mut short) = self.short_end.take() else {
            return Ok(());
        };
        let end = short.offset + short.len;
        let last_key = short.keys.last().map(|k| k.0);
        let at_last = self.one_at(end - 1).await?;
        // Reads of one contact made, all undelivered but the one that ends the listing.
        let mut reads = 1;
        let holds = at_last
            .as_ref()
            .and_then(|(page, _)| page.keys().first().and_then(key_of));
        if last_key.is_some() && holds == last_key {
            short.trusted = true;
            short.to_end = true;
            self.proof.observe(short, None);
            self.stats().update(|s| s.undelivered_reads += reads);
            return Ok(());
        }
        tracing::info!(
            position = end,
            "a short answer is not where it was asked for (a page size capped without saying so?); looking for the end of the listing one contact at a time"
        );
        // Galloping down from the first position known empty, then halving.
        let (mut empty, mut found) = (end, at_last.map(|hit| (end - 1, hit)));
        if found.is_none() {
            empty = end - 1;
            let mut step = 1u64;
            while empty > 0 {
                let at = empty.saturating_sub(step);
                reads += 1;
                match self.one_at(at).await? {
                    Some(hit) => {
                        found = Some((at, hit));
                        break;
                    }
                    None => empty = at,
                }
                step = step.saturating_mul(2);
            }
        }
        while let Some((at, _)) = &found
            && empty - at > 1
        {
            let mid = at.midpoint(empty);
            reads += 1;
            match self.one_at(mid).await? {
                Some(hit) => found = Some((mid, hit)),
                None => empty = mid,
            }
        }
        let delivered = u64::from(found.is_some());
        self.stats()
            .update(|s| s.undelivered_reads += reads - delivered);
        match found {
            Some((at, (page, ids))) => {
                self.proof
                    .observe(Observed::new(at, &ids, None, true, true, false), None);
                self.deliver(page, &ids, Pass::Verification).await?;
            }
            // Nothing at position 0: the listing is empty now.
            None => {
                self.proof
                    .observe(Observed::new(0, &[], None, true, true, false), None);
            }
        }
        Ok(())
    }

    /// The contact at position `at` (a read of one contact, which no page-size cap moves), or
    /// `None` when the listing has none there.
    async fn one_at(&mut self, at: u64) -> Result<Option<(Page, Vec<Identity>)>, RunError> {
        let window = Window {
            page: at + 1,
            per_page: 1,
        };
        self.stats().update(|s| s.extra_pages += 1);
        match self.reader.fetch(window).await {
            Ok(page) => {
                let answer = Answer::of(window, page.len() as u64, page.pagination(), None);
                if answer.past_end || page.keys().is_empty() {
                    return Ok(None);
                }
                self.note_total(&answer);
                let ids = page.keys().to_vec();
                Ok(Some((page, ids)))
            }
            Err(FetchError::Rejected { status: 404, .. }) => Ok(None),
            Err(error) => Err(FetchError::Unverified {
                page: window.page,
                attempts: 1,
                reason: format!(
                    "the API reports no total and served fewer contacts than asked; confirming where the listing ends needs reads of one contact, and one failed: {error}"
                ),
            }
            .into()),
        }
    }

    /// How the run reads `page`, the answer to `window`.
    fn answer(&self, window: Window, page: &Page) -> Answer {
        Answer::of(
            window,
            page.keys().len() as u64,
            page.pagination(),
            self.last_total,
        )
    }

    /// Two main-pass windows in a row that report different totals: the listing moved there.
    fn note_total_change(&mut self, window: Window, answer: &Answer) {
        let (Some(before), Some(after)) = (self.last_total, answer.total) else {
            return;
        };
        if before != after {
            let page = window.offset() / u64::from(self.client().per_page()).max(1) + 1;
            self.stats().update(|s| {
                s.drift_events.push(DriftEvent {
                    page,
                    total_before: before,
                    total_after: after,
                    pages_reread: 0,
                    contacts_recovered: 0,
                });
            });
        }
    }

    /// What an answer says of the totals.
    fn note_total(&mut self, answer: &Answer) {
        if let Some(total) = answer.total {
            let previous = self.last_total.or(self.resumed.as_ref().map(|r| r.total));
            if let Some(previous) = previous {
                self.totals_moved += previous.abs_diff(total);
            }
            self.last_total = Some(total);
            self.stats().update(|s| {
                if s.min_total == 0 && s.max_total == 0 {
                    s.min_total = total;
                }
                s.min_total = s.min_total.min(total);
                s.max_total = s.max_total.max(total);
            });
        } else {
            self.stats().update(|s| s.reads_without_total += 1);
        }
    }

    /// What a main-pass answer to `window` says of the totals and the page size.
    fn note_answer(&mut self, window: Window, answer: &Answer) {
        self.note_total(answer);
        // A cap the answer reports applies at once; one guessed from a short answer only when
        // the next short answer is as short (contacts dropped at random vary the count).
        let cap = match answer.cap {
            Some(cap) if answer.per_page < window.per_page => Some(cap),
            Some(cap) => match self.cap_guess {
                Some(guess) if guess == cap => Some(cap),
                _ => {
                    self.cap_guess = Some(cap);
                    None
                }
            },
            None => None,
        };
        if let Some(cap) = cap {
            let mut sizes = lock(&self.sizes);
            if cap < sizes.max() {
                tracing::info!(
                    served = cap,
                    asked = sizes.max(),
                    "the API serves fewer contacts a page than asked; asking for that many from now on"
                );
                sizes.cap(cap);
            }
        }
    }

    fn check_order(&mut self, page: u64, ids: &[Identity]) -> Result<(), FetchError> {
        self.proof
            .check_order(ids)
            .map_err(|o| FetchError::OutOfOrder {
                page,
                record: o.record,
                signup_date: o.values.0,
                before: o.values.1,
            })
    }

    /// Full main-pass windows in a row starting with the same contact cannot come from paging
    /// over one listing, drifting or not: the API is repeating itself (it ignores `page`).
    fn repeats(&mut self, window: Window, ids: &[Identity]) -> Result<u32, FetchError> {
        let first = ids.first().map(|id| id.hash);
        let repeats = match self.last_main {
            Some((_, before, n)) if first.is_some() && before == first => n + 1,
            _ => 0,
        };
        self.last_main = Some((window, first, repeats));
        if repeats >= MAX_REPEATED_PAGES {
            return Err(FetchError::RepeatingPages {
                page: window.page,
                repeats,
            });
        }
        Ok(repeats)
    }

    /// Sends the repair batches the proof asks for now.
    async fn repair(&mut self, main_done: bool) -> Result<(), RunError> {
        self.take_finished_repairs().await?;
        let batches = {
            let sizes = lock(&self.sizes);
            self.proof.plan(main_done, &sizes)
        };
        for batch in batches {
            self.widen_dedup(&batch);
            self.outstanding.insert(batch.id, batch.windows.len());
            for window in batch.windows {
                self.stats().update(|s| s.verification_reads += 1);
                let (id, reader) = (batch.id, self.reader.clone());
                self.jobs
                    .spawn(async move { (id, window, reader.fetch(window).await) });
            }
        }
        Ok(())
    }

    /// A repair far behind the main pass must still recognise what the main pass delivered
    /// there: the de-duplication window reaches at least that far back.
    fn widen_dedup(&mut self, batch: &crate::proof::Batch) {
        let Some(window) = &mut self.seen.window else {
            return;
        };
        let max = lock(&self.sizes).max();
        let start = batch.windows.iter().map(Window::offset).min().unwrap_or(0);
        let behind = self
            .proof
            .deepest()
            .saturating_sub(start)
            .div_ceil(max.max(1));
        *window = (*window).max(behind + 4);
    }

    /// Waits for the next repair read and takes it in.
    async fn join_repair(&mut self) -> Result<(), RunError> {
        if let Some(done) = self.jobs.join_next().await {
            self.take_repair(done.map_err(not_run("a repair read"))?)
                .await?;
        }
        Ok(())
    }

    /// Takes in the repair reads that have finished, without waiting for the others.
    async fn take_finished_repairs(&mut self) -> Result<(), RunError> {
        while let Some(done) = self.jobs.try_join_next() {
            self.take_repair(done.map_err(not_run("a repair read"))?)
                .await?;
        }
        Ok(())
    }

    /// One repair read: delivered, shown to the proof; the batch judged once all of it is back.
    /// A failed read proves nothing: a refused size is learned and the batch judged without it;
    /// any other failure fails the run.
    async fn take_repair(&mut self, (batch, window, result): RepairRead) -> Result<(), RunError> {
        match result {
            Ok(mut page) => {
                let answer = self.answer(window, &page);
                if !answer.past_end {
                    lock(&self.sizes).accept(window.per_page);
                    self.note_total(&answer);
                    let ids = page.keys().to_vec();
                    self.check_order(window.page, &ids)?;
                    self.proof.observe(observed(&answer, &ids), Some(batch));
                    page.set_verification(window.page);
                    let kept = self.deliver(page, &ids, Pass::Verification).await? as u64;
                    self.proof.count_recovered(batch, kept);
                }
            }
            Err(FetchError::Rejected { status: 400, .. })
                if !lock(&self.sizes).accepts(window.per_page) =>
            {
                lock(&self.sizes).refuse(window.per_page);
            }
            Err(FetchError::Rejected { status: 404, .. })
                if self.last_total.is_some_and(|t| window.offset() >= t) => {}
            // A window refused although its size was served before (a search index's window
            // limit): it proves nothing; the range stays open, and fails the run if nothing
            // else proves it.
            Err(error @ FetchError::Rejected { status: 400, .. }) => {
                tracing::debug!(%error, "a repair window was refused; it proves nothing");
            }
            Err(e) => return Err(e.into()),
        }
        let left = self.outstanding.entry(batch).or_insert(1);
        *left -= 1;
        if *left == 0 {
            self.outstanding.remove(&batch);
            self.proof.batch_done(batch, &lock(&self.sizes))?;
        }
        Ok(())
    }

    /// A range given up on, with what the count says: how many contacts the API reports against
    /// how many were delivered.
    fn with_count(&self, failure: FetchError) -> FetchError {
        let FetchError::Unverified {
            page,
            attempts,
            reason,
        } = failure
        else {
            return failure;
        };
        let resumed = self.resumed.as_ref().map_or(0, |r| r.contacts);
        let (contacts, min, max) = self
            .stats()
            .update(|s| (s.contacts, s.min_total, s.max_total));
        let delivered = contacts + resumed;
        let count = match self.last_total {
            Some(total) if min == max && total > delivered => format!(
                "; the API reports {total} contacts and {delivered} were delivered: {} missing",
                total - delivered
            ),
            Some(total) if min == max => {
                format!("; the API reports {total} contacts and {delivered} were delivered")
            }
            Some(total) => format!(
                "; the API reported {min} to {} contacts, {delivered} were delivered (the listing changed)",
                max.max(total)
            ),
            None => format!("; {delivered} contacts were delivered (the API reports no total)"),
        };
        FetchError::Unverified {
            page,
            attempts,
            reason: reason + &count,
        }
    }

    /// What the run learned about the API, for the summary and the manifest.
    fn record_learned(&self) {
        let sizes = lock(&self.sizes).clone();
        let per_page = u64::from(self.client().per_page());
        self.stats().update(|s| {
            s.learned = Learned {
                page_size: sizes.max(),
                page_size_asked: per_page,
                refused_page_sizes: sizes.refused().collect(),
                sort_precision: self.proof.precision().name().to_owned(),
                total_reported: s.reads_without_total == 0,
            };
            for r in self.proof.recovered() {
                s.drift_events.push(DriftEvent {
                    page: r.position / per_page.max(1) + 1,
                    total_before: s.min_total,
                    total_after: s.max_total,
                    pages_reread: u64::from(r.reads),
                    contacts_recovered: r.contacts,
                });
            }
        });
    }

    /// The count: what was delivered against what the API said it holds.
    fn reconcile(&mut self) -> Result<(), FetchError> {
        let (resumed_contacts, resumed_total) = self
            .resumed
            .as_ref()
            .map_or((0, None), |r| (r.contacts, Some(r.total)));
        let last_total = self.last_total;
        let totals_moved = self.totals_moved;
        let verdict = self.stats().update(|s| {
            let delivered = s.contacts + resumed_contacts;
            let counted = last_total.is_some() && s.reads_without_total == 0;
            let steady = counted
                && s.min_total == s.max_total
                && resumed_total.is_none_or(|t| t == s.max_total);
            let r = Reconciliation {
                reported_total: last_total.unwrap_or(0),
                min_total: s.min_total,
                max_total: s.max_total,
                delivered,
                resumed: resumed_contacts,
                boundaries_proven: s.pages,
                steady,
                counted,
                totals_moved,
                parts: None,
            };
            s.reconciliation = Some(r.clone());
            r
        });
        if !verdict.counted {
            tracing::info!(
                delivered = verdict.delivered,
                "the API reported no usable total on some pages: every key range was proven, but the count could not be reconciled"
            );
            return Ok(());
        }
        if verdict.steady {
            if verdict.delivered != verdict.reported_total {
                return Err(FetchError::Unreconciled {
                    expected: verdict.reported_total,
                    delivered: verdict.delivered,
                });
            }
            return Ok(());
        }
        // With a total that changed, every contact present throughout was delivered (the proof),
        // so what was delivered lies within the changes seen of the last total: each change is
        // a contact that came or went. (Changes that cancel between two answers are not seen.)
        let (last, moved) = (verdict.reported_total, verdict.totals_moved);
        if !(last.saturating_sub(moved)..=last.saturating_add(moved)).contains(&verdict.delivered) {
            return Err(FetchError::UnreconciledDrift {
                last_total: last,
                moved,
                delivered: verdict.delivered,
            });
        }
        tracing::info!(
            delivered = verdict.delivered,
            reported_total = verdict.reported_total,
            min_total = verdict.min_total,
            max_total = verdict.max_total,
            "the listing changed during the run; every key range was proven, so every contact present throughout was delivered"
        );
        Ok(())
    }

    /// After a counted run, the listing's parts must add up to no more than its total (see
    /// [`crate::parts`]).
    async fn count_parts(
        &mut self,
        whole: Option<u64>,
        first: Option<AbortOnDrop<parts::FirstCount>>,
    ) -> Result<(), FetchError> {
        let counted = self.stats().update(|s| {
            let r = s.reconciliation.as_ref()?;
            Some((r.counted, r.steady))
        });
        let (Some(whole), Some(first), Some((true, steady))) = (whole, first, counted) else {
            return Ok(());
        };
        let first = first.await.map_err(not_run("counting the parts"))?;
        let served = {
            let sizes = lock(&self.sizes);
            sizes.smallest_accepted().unwrap_or(sizes.max())
        };
        let parts = self
            .reader
            .judge_first(whole, steady, first, served)
            .await?;
        self.stats().update(|s| {
            if let Some(r) = &mut s.reconciliation {
                r.parts = Some(parts);
            }
        });
        Ok(())
    }

    fn client(&self) -> &Client {
        &self.reader.client
    }

    fn stats(&self) -> &StatsHandle {
        &self.reader.stats
    }

    /// Drops contacts delivered before, sends the page on, and returns how many it kept.
    async fn deliver(
        &mut self,
        mut page: Page,
        ids: &[Identity],
        pass: Pass,
    ) -> Result<usize, Cancelled> {
        let before = page.len();
        let hashes: Vec<u64> = ids.iter().map(|id| id.hash).collect();
        let unseen = self.seen.insert_page(self.main_reads, &hashes);
        page.retain_among_kept(&unseen);
        page.set_frontier(self.proof.frontier());
        let kept = page.len();
        self.stats().update(|s| {
            s.pages += 1;
            s.contacts += kept as u64;
            let again = (before - kept) as u64;
            // A repair read mostly sees contacts already delivered: that is its cost, not a
            // duplicate the API served.
            if pass == Pass::Verification {
                s.verification_repeats += again;
            } else {
                s.duplicates_dropped += again;
            }
        });
        self.tx.send(Ok(page)).await.map_err(|_| Cancelled)?;
        Ok(kept)
    }
}

/// Why a task of the run (`what`) did not run to its end.
fn not_run(what: &'static str) -> impl FnOnce(tokio::task::JoinError) -> FetchError {
    move |e| FetchError::Internal {
        reason: format!("{what} failed to run: {e}"),
    }
}

/// What the proof is told of an answer holding `ids`.
fn observed(answer: &Answer, ids: &[Identity]) -> Observed {
    Observed::new(
        answer.offset,
        ids,
        answer.total,
        answer.trusted,
        answer.to_end,
        answer.len < answer.per_page,
    )
}

/// A spawned task that is aborted when its handle is dropped (a cancelled run leaves nothing
/// running).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}
