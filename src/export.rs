//! The one-call export: pages → batches → Parquet files in any object store, published
//! atomically with a manifest, or not at all.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use serde::Serialize;
use trackly_converter::{
    DecoderOptions, FileInfo, InvalidPolicy, OutputLocation, ParquetSink, Reject, SinkOptions,
    WriterOptions,
};
use trackly_fetcher::{Client, FetchStats, Query, ResumeFrom, StatsHandle};

use crate::{ExportError, RecordBatches};

/// Progress of a running export, handed to the callback set with
/// [`ExportBuilder::on_progress`] after every page.
#[derive(Debug, Clone)]
pub struct ExportProgress {
    /// The fetcher's statistics so far.
    pub fetch: FetchStats,
    /// Rows handed to the Parquet writer so far.
    pub rows_written: u64,
    /// Contacts rejected so far.
    pub rejects: u64,
    /// Time since the run started.
    pub elapsed: Duration,
}

/// What a finished export wrote and saw.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run's id (a UUIDv7: sortable by start time).
    pub run_id: String,
    /// The partition written.
    pub extract_date: NaiveDate,
    /// When the run started (the `_extracted_at` of every row).
    pub started_at: DateTime<Utc>,
    /// When the last object was published.
    pub finished_at: DateTime<Utc>,
    /// Contacts written.
    pub rows: u64,
    /// Files published, in order.
    pub files: Vec<FileInfo>,
    /// Bytes of Parquet published.
    pub bytes: u64,
    /// Contacts quarantined.
    pub rejects: u64,
    /// Undocumented top-level fields kept in `_extra`.
    pub unknown_fields: u64,
    /// `revenue_total` values rounded half to even to 4 decimals (also in `_manifest.json`).
    pub rounded_values: u64,
    /// The fetcher's final statistics.
    pub fetch: FetchStats,
}

impl RunSummary {
    /// Wall time of the run.
    pub fn duration(&self) -> Duration {
        (self.finished_at - self.started_at)
            .to_std()
            .unwrap_or_default()
    }
}

type ProgressFn = Arc<dyn Fn(&ExportProgress) + Send + Sync>;
type StartFn = Box<dyn FnOnce(StatsHandle) + Send>;

/// Builds an [`Export`]. `client` and `location` are required.
#[derive(Default)]
pub struct ExportBuilder {
    client: Option<Client>,
    query: Query,
    location: Option<OutputLocation>,
    writer: WriterOptions,
    batch_size: Option<usize>,
    on_invalid: InvalidPolicy,
    extract_date: Option<NaiveDate>,
    progress: Option<ProgressFn>,
    on_start: Option<StartFn>,
    resume: bool,
}

impl ExportBuilder {
    /// Continue the newest interrupted run of the same query and extract date, if there is
    /// one: its finished files are kept and their pages not fetched again (default: false,
    /// start afresh).
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// The API client.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// What to export (default: every contact).
    pub fn query(mut self, query: Query) -> Self {
        self.query = query;
        self
    }

    /// Where to write.
    pub fn sink(mut self, location: OutputLocation) -> Self {
        self.location = Some(location);
        self
    }

    /// Parquet settings.
    pub fn writer(mut self, writer: WriterOptions) -> Self {
        self.writer = writer;
        self
    }

    /// Rows per Arrow batch (default 8192).
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = Some(rows);
        self
    }

    /// What to do with contacts that do not fit the schema (default: fail).
    pub fn on_invalid(mut self, policy: InvalidPolicy) -> Self {
        self.on_invalid = policy;
        self
    }

    /// The partition date (default: today, UTC, at the start of the run).
    pub fn extract_date(mut self, date: NaiveDate) -> Self {
        self.extract_date = Some(date);
        self
    }

    /// Called after every page with the progress so far (keep it cheap).
    pub fn on_progress(mut self, f: impl Fn(&ExportProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// Called once as the run starts fetching, with a live view of the fetcher's statistics:
    /// for a display that refreshes on its own clock (e.g. while the API makes the run wait).
    pub fn on_start(mut self, f: impl FnOnce(StatsHandle) + Send + 'static) -> Self {
        self.on_start = Some(Box::new(f));
        self
    }

    /// Checks that everything required is set.
    pub fn build(self) -> Result<Export, ExportError> {
        let missing = |what: &str| {
            ExportError::Convert(trackly_converter::ConvertError::InvalidOption {
                option: "export",
                reason: format!("no {what} given to Export::builder()"),
            })
        };
        Ok(Export {
            client: self.client.ok_or_else(|| missing("client"))?,
            location: self.location.ok_or_else(|| missing("sink"))?,
            query: self.query,
            writer: self.writer,
            batch_size: self.batch_size,
            on_invalid: self.on_invalid,
            extract_date: self.extract_date,
            progress: self.progress,
            on_start: self.on_start,
            resume: self.resume,
        })
    }
}

/// One export run; see the [crate docs](crate) for its guarantees.
pub struct Export {
    client: Client,
    query: Query,
    location: OutputLocation,
    writer: WriterOptions,
    batch_size: Option<usize>,
    on_invalid: InvalidPolicy,
    extract_date: Option<NaiveDate>,
    progress: Option<ProgressFn>,
    on_start: Option<StartFn>,
    resume: bool,
}

/// Where a run stands, saved with every finished file (see [`ParquetSink::checkpoint`]).
#[derive(Debug, Serialize, serde::Deserialize)]
struct Progress {
    /// The page being decoded when the last finished file was closed.
    page: u64,
    /// The `pagination.total` that page reported.
    total: u64,
    /// Every contact above this `signup_date` (microseconds) was written before that page.
    #[serde(default)]
    frontier: Option<i64>,
}

impl Export {
    /// A builder.
    pub fn builder() -> ExportBuilder {
        ExportBuilder::default()
    }

    /// Runs the export to the end.
    pub async fn run(self) -> Result<RunSummary, ExportError> {
        self.run_until(std::future::pending()).await
    }

    /// Runs the export until it ends or `shutdown` completes; on shutdown the run is aborted
    /// (multipart uploads aborted, staging objects removed) and
    /// [`ExportError::Interrupted`] returned.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<RunSummary, ExportError> {
        let clock = Instant::now();
        let now = Utc::now();
        let extract_date = self.extract_date.unwrap_or_else(|| now.date_naive());
        let query_json = serde_json::to_value(&self.query).unwrap_or_default();
        let options = SinkOptions {
            extract_date,
            run_id: uuid::Uuid::now_v7().to_string(),
            writer: self.writer,
            query_json,
        };
        let resumed = if self.resume {
            ParquetSink::resume(self.location.clone(), options.clone()).await?
        } else {
            None
        };
        let (mut sink, pages) = match resumed {
            Some((sink, checkpoint)) if sink.closed_files() > 0 => {
                let progress: Progress =
                    serde_json::from_value(checkpoint.progress).unwrap_or(Progress {
                        page: 1,
                        total: 0,
                        frontier: None,
                    });
                let delivered = sink.written_keys().await?;
                tracing::info!(
                    run_id = sink.run_id(),
                    files = sink.closed_files(),
                    contacts = delivered.len(),
                    page = progress.page,
                    "resuming an interrupted run"
                );
                let from = ResumeFrom {
                    page: progress.page,
                    total: progress.total,
                    frontier: progress.frontier,
                    delivered,
                };
                let pages = self.client.contacts_resuming(self.query.clone(), from);
                (sink, pages)
            }
            // An interrupted run that finished no file: keep its id, start from page 1.
            Some((sink, _)) => (sink, self.client.contacts(self.query.clone())),
            None => {
                if self.resume {
                    tracing::info!("no interrupted run to resume; starting afresh");
                }
                let sink = ParquetSink::create(self.location, options).await?;
                (sink, self.client.contacts(self.query.clone()))
            }
        };
        let run_id = sink.run_id().to_owned();
        let started_at = sink.started_at();
        let mut decoder =
            DecoderOptions::new(run_id.clone(), started_at).with_on_invalid(self.on_invalid);
        if let Some(rows) = self.batch_size {
            decoder = decoder.with_batch_size(rows);
        }
        let mut batches = RecordBatches::new(pages, decoder)?;
        if let Some(on_start) = self.on_start {
            on_start(batches.live_stats());
        }
        tracing::info!(%run_id, %extract_date, "export started");

        // Decoding (here) and Parquet encoding (the writer task) overlap on two cores; the
        // channel holds at most two batches, so memory stays bounded.
        sink.checkpoint(checkpoint_of(&batches)).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Item>(2);
        let writer = tokio::spawn(write_all(sink, rx));
        let fed = {
            let work = feed(&mut batches, tx, self.progress.as_deref(), clock);
            tokio::pin!(work);
            tokio::pin!(shutdown);
            tokio::select! {
                result = &mut work => Some(result),
                () = &mut shutdown => None,
            }
        };
        // The sender is gone now: the writer drains what it has and hands the sink back.
        let (sink, written) = match writer.await {
            Ok(done) => done,
            Err(panic) => std::panic::resume_unwind(panic.into_panic()),
        };
        let failure = match (fed, written) {
            (None, _) => Some(ExportError::Interrupted {
                run_id: run_id.clone(),
            }),
            // The writer's error is the cause when it stopped taking batches.
            (Some(_), Err(e)) => Some(e),
            (Some(Err(e)), Ok(())) => Some(e),
            (Some(Ok(())), Ok(())) => None,
        };
        if let Some(error) = failure {
            // Nothing half-written stays visible. Finished staged files stay (hidden) with
            // their checkpoint, so `--resume` can continue; a later successful run of the
            // same date removes them.
            let resumable = sink.closed_files() > 0;
            if let Err(cleanup) = sink.suspend().await {
                tracing::warn!(%cleanup, "cleaning up the failed run was incomplete");
            } else if resumable {
                tracing::info!(%run_id, "finished files of the failed run are kept; --resume continues from them");
            }
            return Err(error);
        }
        let fetch = batches.fetch_stats();
        let fetch_json = serde_json::to_value(&fetch).unwrap_or_default();
        let mut sink = sink;
        sink.set_decode_stats(batches.decode_stats());
        let written = match sink.finish(fetch_json).await {
            Ok(summary) => summary,
            Err(e) => return Err(e.into()),
        };
        Ok(RunSummary {
            run_id,
            extract_date,
            started_at,
            finished_at: Utc::now(),
            rows: written.rows,
            bytes: written.bytes,
            files: written.files,
            rejects: written.rejects,
            unknown_fields: batches.unknown_fields(),
            rounded_values: batches.decode_stats().rounded_values,
            fetch,
        })
    }
}

fn checkpoint_of(batches: &RecordBatches) -> serde_json::Value {
    let (page, total) = batches.last_page().unwrap_or((1, 0));
    let frontier = batches.resume_frontier();
    serde_json::to_value(Progress {
        page,
        total,
        frontier,
    })
    .unwrap_or_default()
}

/// One batch on its way to the writer task, with the rejects met before it and where the run
/// stands (saved if this batch finishes a file).
struct Item {
    batch: Option<RecordBatch>,
    rejects: Vec<Reject>,
    progress: serde_json::Value,
}

/// Decodes every batch and hands it to the writer task. Fails with the decode or fetch error,
/// or quietly stops when the writer has gone (its own error is the one to report).
async fn feed(
    batches: &mut RecordBatches,
    tx: tokio::sync::mpsc::Sender<Item>,
    progress: Option<&(dyn Fn(&ExportProgress) + Send + Sync)>,
    clock: Instant,
) -> Result<(), ExportError> {
    let mut rows_written = 0u64;
    let mut last_pages = 0;
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        rows_written += batch.num_rows() as u64;
        let item = Item {
            batch: Some(batch),
            rejects: batches.take_rejects(),
            progress: checkpoint_of(batches),
        };
        if tx.send(item).await.is_err() {
            return Ok(());
        }
        if let Some(progress) = progress
            && batches.pages() != last_pages
        {
            last_pages = batches.pages();
            progress(&ExportProgress {
                fetch: batches.fetch_stats(),
                rows_written,
                rejects: batches.rejects(),
                elapsed: clock.elapsed(),
            });
        }
    }
    let rejects = batches.take_rejects();
    if !rejects.is_empty() {
        let item = Item {
            batch: None,
            rejects,
            progress: checkpoint_of(batches),
        };
        let _ = tx.send(item).await;
    }
    Ok(())
}

/// The writer task: every batch and reject into the sink, a checkpoint whenever a file is
/// finished. Returns the sink (to finish or suspend) and how writing went.
async fn write_all(
    mut sink: ParquetSink,
    mut rx: tokio::sync::mpsc::Receiver<Item>,
) -> (ParquetSink, Result<(), ExportError>) {
    let mut closed = sink.closed_files();
    while let Some(item) = rx.recv().await {
        let step = async {
            if !item.rejects.is_empty() {
                sink.write_rejects(&item.rejects).await?;
            }
            if let Some(batch) = &item.batch {
                sink.write(batch).await?;
            }
            if sink.closed_files() != closed {
                // A file was finished: record it and where to pick up if the run dies now.
                closed = sink.closed_files();
                sink.checkpoint(item.progress).await?;
            }
            Ok::<(), ExportError>(())
        };
        if let Err(e) = step.await {
            return (sink, Err(e));
        }
    }
    (sink, Ok(()))
}
