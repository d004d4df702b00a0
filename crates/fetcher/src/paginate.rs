//! The run: page 1, then up to N pages in flight delivered in order, de-duplicated; every
//! boundary between two pages proven to have lost nothing (see [`crate::coverage`]), with small
//! verification reads where the pages alone do not prove it; and the count reconciled at the end.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::{self, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use trackly_contacts::key::{Identity, hash_key};
use trackly_contacts::page::{Frontier, Page, Pagination};

use crate::client::{Client, MAX_PER_PAGE};
use crate::coverage::Span;
use crate::error::FetchError;
use crate::limit::Admission;
use crate::query::Query;
use crate::seen::Seen;
use crate::stats::{DriftEvent, FetchStats, Reconciliation, StatsHandle};
use crate::step::{self, MainPass};
use crate::verify::{Job, Moved, Read, Verifier};

/// The pages of one export, as a [`Stream`]. Dropping it cancels the run.
///
/// Pages of the main pass come in ascending page order. Where two neighbouring pages do not by
/// themselves prove that no contact fell between them, a verification read of that boundary
/// follows a little later, with [`Page::pass`] above 1 and only contacts not delivered before.
/// The stream ends with an error, never short: a boundary that cannot be proven, or a count
/// that does not add up, is a [`FetchError`].
pub struct Contacts {
    rx: mpsc::Receiver<Result<Page, FetchError>>,
    stats: StatsHandle,
    task: tokio::task::JoinHandle<()>,
}

/// Where a run that was interrupted picks up again (see [`Client::contacts_resuming`]).
#[derive(Debug, Clone, Default)]
pub struct ResumeFrom {
    /// The page the interrupted run was reading when it last saved its progress.
    pub page: u64,
    /// `pagination.total` that page reported then; when the resumed run sees the same total
    /// throughout, the count is reconciled across both runs.
    pub total: u64,
    /// [`Page::frontier`] of the last page whose contacts were all saved: every contact above
    /// its `signup_date` was written. The resumed run starts at its page, or earlier until its
    /// first page reaches above the frontier; `None` starts from page 1 (exact, but every page
    /// is fetched again).
    pub frontier: Option<Frontier>,
    /// `(phone_number, list_number)` of every contact already written: never delivered again.
    pub delivered: Vec<(String, String)>,
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
        let mut resumed = None;
        if let Some(resume) = resume {
            for (phone, list) in &resume.delivered {
                seen.pin(hash_key(phone.as_bytes(), list.as_bytes()));
            }
            resumed = Some(Resumed {
                page: resume.page.max(1),
                total: resume.total,
                frontier: resume.frontier,
                contacts: resume.delivered.len() as u64,
            });
        }
        let run = Run {
            admission: Admission::new(client.inner.concurrency, client.inner.max_rps),
            per_page: u64::from(client.per_page()),
            client,
            query,
            stats: stats.clone(),
            seen,
            resumed,
            jobs: JoinSet::new(),
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
    page: u64,
    total: u64,
    frontier: Option<Frontier>,
    contacts: u64,
}

struct Run {
    client: Client,
    query: Query,
    admission: Arc<Admission>,
    stats: StatsHandle,
    seen: Seen,
    resumed: Option<Resumed>,
    /// Contacts per page as the server applies it (from the first response).
    per_page: u64,
    /// Verification reads in flight.
    jobs: JoinSet<(Job, Result<Page, FetchError>)>,
    tx: mpsc::Sender<Result<Page, FetchError>>,
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

    async fn fetch(&self, page: u64) -> Result<Page, FetchError> {
        self.client
            .fetch_page(
                &self.query,
                page,
                self.per_page,
                &self.admission,
                &self.stats,
            )
            .await
    }

    /// The first page of the run: page 1, or for a resumed run the page that held the
    /// interrupted run's frontier, or an earlier one until the page reaches above it (the
    /// listing may have shifted up since). Starting at the frontier's page rather than where
    /// the run stopped matters: the proof can lag the main pass by a few pages, and stepping
    /// back from there in doubling steps can overshoot to page 1.
    async fn first_read(&mut self) -> Result<(Page, Vec<Identity>), RunError> {
        let frontier = self.resumed.as_ref().and_then(|r| r.frontier);
        let mut number = match (&self.resumed, frontier) {
            (Some(r), Some(f)) => f.page.clamp(1, r.page),
            _ => 1,
        };
        let mut step = 1;
        loop {
            let page = self.fetch(number).await?;
            let ids = identities(&page);
            let reaches_above = ids
                .iter()
                .find_map(|id| id.signup)
                .zip(frontier)
                .is_some_and(|(top, frontier)| top > frontier.signup_date);
            if number == 1 || reaches_above {
                if self.resumed.is_some() {
                    tracing::info!(
                        page = number,
                        "resuming at the first page that reaches above what was written"
                    );
                }
                return Ok((page, ids));
            }
            tracing::debug!(page = number, ?frontier, top = ?ids.iter().find_map(|id| id.signup), "page starts below the resume frontier; stepping back");
            number = number.saturating_sub(step).max(1);
            step *= 2;
        }
    }

    fn read_of(&self, page: &Page, ids: &[Identity]) -> Result<Read, FetchError> {
        Read::of(page.number(), self.per_page, page.pagination().total, ids).map_err(|o| {
            FetchError::OutOfOrder {
                page: page.number(),
                record: o.record,
            }
        })
    }

    async fn pages(&mut self) -> Result<(), RunError> {
        let (first, ids) = self.first_read().await?;
        let start = first.number();
        // Page boundaries follow the page size the server applied (it may clamp what we asked).
        // A server may also cap it silently, reporting a `per_page` larger than it serves: a
        // first page shorter than that while more contacts follow it tells the real size.
        let reported = first
            .pagination()
            .per_page
            .clamp(1, u64::from(MAX_PER_PAGE));
        let served = first.len() as u64;
        let before_first = (start - 1).saturating_mul(reported);
        let capped_silently = served > 0
            && served < reported
            && before_first.saturating_add(served) < first.pagination().total;
        self.per_page = if capped_silently { served } else { reported };
        self.seen.presize(self.per_page, first.pagination().total);
        // Verification reads may ask for any page size the server honours: up to the documented
        // maximum, or no more than what a server that caps silently really serves.
        let max_window = if capped_silently {
            served
        } else {
            u64::from(MAX_PER_PAGE)
        };
        let per_page = self.per_page;
        let planned = first.pagination().total_pages;
        self.stats.update(|s| {
            s.expected_contacts = first.pagination().total;
            s.expected_pages = planned;
        });
        let above = self.read_of(&first, &ids)?;
        // Page 1 holds everything above its last key; a resumed run's first page reaches above
        // the interrupted run's frontier. Either way nothing is missing above it.
        let mut verifier = Verifier::new(
            per_page,
            max_window,
            self.client.inner.max_rereads,
            &above,
            &ids,
        );
        self.deliver(first, &ids, &verifier).await?;

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
                // A task of its own, so the request goes on while the loop below waits for
                // verification reads (and is aborted when the run is).
                AbortOnDrop(tokio::spawn(async move {
                    client
                        .fetch_page(&query, n, per_page, &admission, &stats)
                        .await
                }))
            })
            .buffered(concurrency);
        let mut pass = MainPass::new(per_page, planned, above);
        while let Some(next) = pass.next() {
            self.take_finished_jobs(&mut verifier).await?;
            // Verification keeps up with the main pass: at most `concurrency` reads behind,
            // so memory stays bounded and a resumed run starts close to where this one was.
            while self.jobs.len() > concurrency {
                self.join_job(&mut verifier).await?;
            }
            let fetched = if next.tail {
                self.stats.update(|s| s.extra_pages += 1);
                self.fetch(next.number).await
            } else {
                match main.next().await {
                    Some(page) => page.map_err(|e| FetchError::Internal {
                        reason: format!("a page request failed to run: {e}"),
                    })?,
                    None => break,
                }
            };
            let page = match fetched {
                Ok(page) => page,
                Err(e) => empty_page(next.number, per_page, pass.refused(e)?),
            };
            let ids = identities(&page);
            let read = self.read_of(&page, &ids)?;
            let advance = pass.advance(read)?;
            if advance.short_before_planned {
                tracing::warn!(
                    page = next.number,
                    planned,
                    "short page before the announced end: the listing ends here"
                );
            }
            let jobs = verifier.page(&advance.above, &read, &ids)?;
            self.deliver(page, &ids, &verifier).await?;
            self.spawn(jobs);
            self.seen.forget_behind(next.number);
        }
        let above = *pass.last();
        drop(main);
        let jobs = verifier.finish_main();
        self.spawn(jobs);
        while !self.jobs.is_empty() {
            self.join_job(&mut verifier).await?;
        }
        if !verifier.done() {
            return Err(FetchError::Internal {
                reason: "verification ended with boundaries still open".into(),
            }
            .into());
        }
        self.reconcile(&above, &verifier)?;
        Ok(())
    }

    /// Starts the verification reads the verifier asked for.
    fn spawn(&mut self, jobs: Vec<Job>) {
        for job in jobs {
            let (client, query, admission, stats) = (
                self.client.clone(),
                self.query.clone(),
                Arc::clone(&self.admission),
                self.stats.clone(),
            );
            let (page, per_page) = match job {
                Job::Straddle(check) => (check.straddle.page, check.straddle.per_page),
                Job::Census { page, .. } => (page, self.per_page),
            };
            self.stats.update(|s| s.verification_reads += 1);
            self.jobs.spawn(async move {
                let result = client
                    .fetch_page(&query, page, per_page, &admission, &stats)
                    .await;
                (job, result)
            });
        }
    }

    /// Waits for the next verification read to finish and handles it.
    async fn join_job(&mut self, verifier: &mut Verifier) -> Result<(), RunError> {
        if let Some(done) = self.jobs.join_next().await {
            let (job, result) = done.map_err(|e| FetchError::Internal {
                reason: format!("a verification read failed to run: {e}"),
            })?;
            self.on_job(verifier, job, result).await?;
        }
        Ok(())
    }

    /// Handles the verification reads that have finished, without waiting for the others.
    async fn take_finished_jobs(&mut self, verifier: &mut Verifier) -> Result<(), RunError> {
        while let Some(done) = self.jobs.try_join_next() {
            let (job, result) = done.map_err(|e| FetchError::Internal {
                reason: format!("a verification read failed to run: {e}"),
            })?;
            self.on_job(verifier, job, result).await?;
        }
        Ok(())
    }

    /// Delivers what a verification read found and tells the verifier.
    async fn on_job(
        &mut self,
        verifier: &mut Verifier,
        job: Job,
        result: Result<Page, FetchError>,
    ) -> Result<(), RunError> {
        let (number, per_page, boundary) = match job {
            Job::Straddle(check) => (check.straddle.page, check.straddle.per_page, check.page),
            Job::Census { page, .. } => (page, self.per_page, page),
        };
        let mut read = match result {
            Ok(read) => read,
            Err(e) if step::past_the_end(&e) => empty_page(number, per_page, 0),
            Err(e) => return Err(e.into()),
        };
        // A server that applies a smaller page size than asked (and says so) served another
        // window: take the one it reports.
        let per_page = read.pagination().per_page.clamp(1, per_page);
        let ids = identities(&read);
        let offset = (number - 1) * per_page;
        let full = read.len() as u64 >= per_page;
        let total = read.pagination().total;
        let span = Span::of(&ids, offset, full).map_err(|o| FetchError::OutOfOrder {
            page: boundary,
            record: o.record,
        })?;
        let pass = match job {
            Job::Straddle(check) => check.attempt + 2,
            Job::Census { .. } => 2,
        };
        read.set_verification(boundary, pass);
        let recovered = self.deliver(read, &ids, verifier).await? as u64;
        match job {
            Job::Straddle(check) => {
                let (again, moved) = verifier.on_straddle(&check, &span, &ids, recovered)?;
                if let Some(Moved {
                    page,
                    totals,
                    reads,
                    recovered,
                }) = moved
                {
                    tracing::info!(
                        page,
                        recovered,
                        reads,
                        total_before = totals.0,
                        total_after = totals.1,
                        "the listing moved at a page boundary; verified, nothing lost"
                    );
                    self.stats.update(|s| {
                        s.drift_events.push(DriftEvent {
                            page,
                            total_before: totals.0,
                            total_after: totals.1,
                            pages_reread: u64::from(reads),
                            contacts_recovered: recovered,
                        });
                    });
                }
                if let Some(Job::Straddle(again)) = again {
                    if let Some(window) = &mut self.seen.window {
                        // Rows moved that far: remember at least that far back from now on.
                        let moved = again.straddle.offset().abs_diff(check.straddle.offset());
                        *window = (*window).max(moved / self.per_page + 4);
                        self.seen
                            .presize(self.per_page, self.stats.snapshot().expected_contacts);
                    }
                    tracing::debug!(
                        page = check.page,
                        attempt = again.attempt,
                        "a verification read did not cover its boundary; reading again"
                    );
                }
                self.spawn(again.into_iter().collect());
            }
            Job::Census { key, page } => {
                let jobs = verifier.on_census_read(key, page, &ids, full, total)?;
                self.spawn(jobs);
            }
        }
        Ok(())
    }

    /// The count: what was delivered against what the API said it holds.
    fn reconcile(&mut self, last: &Read, verifier: &Verifier) -> Result<(), FetchError> {
        let (resumed_contacts, resumed_total) = self
            .resumed
            .as_ref()
            .map_or((0, None), |r| (r.contacts, Some(r.total)));
        let verdict = self.stats.update(|s| {
            let delivered = s.contacts + resumed_contacts;
            let steady =
                s.min_total == s.max_total && resumed_total.is_none_or(|t| t == s.max_total);
            let r = Reconciliation {
                reported_total: last.total,
                min_total: s.min_total,
                max_total: s.max_total,
                delivered,
                resumed: resumed_contacts,
                boundaries_proven: verifier.proven_to(),
                steady,
            };
            s.reconciliation = Some(r.clone());
            r
        });
        if verdict.steady && verdict.delivered != verdict.reported_total {
            return Err(FetchError::Unreconciled {
                expected: verdict.reported_total,
                delivered: verdict.delivered,
            });
        }
        if !verdict.steady {
            tracing::info!(
                delivered = verdict.delivered,
                reported_total = verdict.reported_total,
                min_total = verdict.min_total,
                max_total = verdict.max_total,
                "the listing changed during the run; every page boundary was verified, so every contact present throughout was delivered"
            );
        }
        Ok(())
    }

    /// Drops contacts delivered before, sends the page on, and returns how many it kept.
    async fn deliver(
        &mut self,
        mut page: Page,
        ids: &[Identity],
        verifier: &Verifier,
    ) -> Result<usize, Cancelled> {
        let before = page.len();
        let number = page.number();
        let hashes: Vec<u64> = ids.iter().map(|id| id.hash).collect();
        let keep = self.seen.insert_page(number, &hashes);
        page.retain_flagged(&keep);
        page.set_frontier(verifier.frontier());
        let kept = page.len();
        let total = page.pagination().total;
        self.stats.update(|s| {
            if s.pages == 0 {
                s.min_total = total;
                s.max_total = total;
            }
            s.min_total = s.min_total.min(total);
            s.max_total = s.max_total.max(total);
            s.pages += 1;
            s.contacts += kept as u64;
            let again = (before - kept) as u64;
            // A verification read mostly sees contacts already delivered: that is its cost,
            // not a duplicate the API served.
            if page.pass() > 1 {
                s.verification_repeats += again;
            } else {
                s.duplicates_dropped += again;
            }
        });
        self.tx.send(Ok(page)).await.map_err(|_| Cancelled)?;
        Ok(kept)
    }
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

/// Every contact's key, read when the page was decoded.
fn identities(page: &Page) -> Vec<Identity> {
    page.keys().to_vec()
}

fn empty_page(number: u64, per_page: u64, total: u64) -> Page {
    let pagination = Pagination {
        page: number,
        per_page,
        total,
        total_pages: total.div_ceil(per_page.max(1)),
    };
    Page::from_raw_contacts(number, pagination, std::iter::empty())
}
