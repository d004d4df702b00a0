//! Contacts as a stream of Arrow record batches, for callers who want Arrow in memory and no
//! Parquet.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use arrow_array::RecordBatch;
use futures::{Stream, StreamExt};
use trackly_contacts::{ContactBatcher, DecoderOptions, Reject};
use trackly_fetcher::{Client, Contacts, FetchStats, Frontier, Query, ResumePoint};

use crate::ExportError;

/// Every contact matching `query`, decoded into batches of
/// [`contacts_schema`](trackly_contacts::contacts_schema).
///
/// Batches hold `options.batch_size` rows except the last. Rows come in the fetcher's delivery
/// order (see [`trackly_fetcher`]); memory is bounded by the fetcher's in-flight pages plus one
/// batch being built.
pub fn record_batches(
    client: &Client,
    query: Query,
    options: DecoderOptions,
) -> Result<RecordBatches, ExportError> {
    RecordBatches::new(client.contacts(query), options)
}

/// The stream returned by [`record_batches`].
pub struct RecordBatches {
    pages: Contacts,
    decoder: ContactBatcher,
    done: bool,
    failed: bool,
    pages_seen: u64,
    /// Where a resumed run would start: the page decoded last, with the
    /// [`Page::frontier`](trackly_fetcher::Page::frontier) of the page decoded before it.
    resume_point: ResumePoint,
    /// The frontier of the page decoded last.
    last_frontier: Option<Frontier>,
}

impl RecordBatches {
    pub(crate) fn new(pages: Contacts, options: DecoderOptions) -> Result<Self, ExportError> {
        Ok(RecordBatches {
            decoder: ContactBatcher::new(options)?,
            pages,
            done: false,
            failed: false,
            pages_seen: 0,
            resume_point: ResumePoint::default(),
            last_frontier: None,
        })
    }

    /// Where a resumed run can start without missing anything (see
    /// [`ResumeFrom`](trackly_fetcher::ResumeFrom)): the number and `pagination.total` of the
    /// page decoded last (every row of the pages delivered before it is in a batch already
    /// returned or buffered in the decoder), and a frontier above which every contact present
    /// throughout the run is in those earlier pages.
    pub fn resume_point(&self) -> ResumePoint {
        self.resume_point
    }

    /// Contacts set aside so far under [`InvalidPolicy::Quarantine`](trackly_contacts::InvalidPolicy).
    pub fn take_rejects(&mut self) -> Vec<Reject> {
        self.decoder.take_rejects()
    }

    /// The fetcher's statistics as they are now.
    pub fn fetch_stats(&self) -> FetchStats {
        self.pages.snapshot()
    }

    /// What decoding changed within accepted rows so far (values rounded, fields kept).
    pub fn decode_stats(&self) -> trackly_contacts::DecodeStats {
        self.decoder.stats()
    }

    /// Contacts rejected so far (under either policy).
    pub fn rejects(&self) -> u64 {
        self.decoder.rejects()
    }

    /// Pages decoded so far.
    pub fn pages(&self) -> u64 {
        self.pages_seen
    }

    /// After an error the stream ends: a failed run must not look like a short one.
    fn fail(&mut self) {
        self.failed = true;
        self.done = true;
    }
}

impl Stream for RecordBatches {
    type Item = Result<RecordBatch, ExportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        loop {
            if let Some(batch) = this.decoder.next_batch() {
                return Poll::Ready(Some(Ok(batch)));
            }
            if this.done {
                return Poll::Ready(this.decoder.flush().map_err(Into::into).transpose());
            }
            match ready!(this.pages.poll_next_unpin(cx)) {
                Some(Ok(page)) => {
                    this.pages_seen += 1;
                    this.resume_point = ResumePoint {
                        page: page.number(),
                        total: page.pagination().total.unwrap_or(0),
                        frontier: this.last_frontier,
                    };
                    this.last_frontier = page.frontier();
                    if let Err(e) = this.decoder.push_page(&page) {
                        this.fail();
                        return Poll::Ready(Some(Err(e.into())));
                    }
                }
                Some(Err(e)) => {
                    this.fail();
                    return Poll::Ready(Some(Err(e.into())));
                }
                None => this.done = true,
            }
        }
    }
}
