//! The one-call export: pages → batches → Parquet files in any object store, published
//! atomically with a manifest, or not at all.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use serde::Serialize;
use trackly_converter::{
    DecoderOptions, FileInfo, InvalidPolicy, OutputLocation, ParquetSink, SinkOptions,
    WriterOptions,
};
use trackly_fetcher::{Client, FetchStats, Query};

use crate::{ExportError, RecordBatches, record_batches};

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
}

impl ExportBuilder {
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
        let started_at = Utc::now();
        let clock = Instant::now();
        let run_id = uuid::Uuid::now_v7().to_string();
        let extract_date = self.extract_date.unwrap_or_else(|| started_at.date_naive());
        let mut options =
            DecoderOptions::new(run_id.clone(), started_at).with_on_invalid(self.on_invalid);
        if let Some(rows) = self.batch_size {
            options = options.with_batch_size(rows);
        }
        let mut batches = record_batches(&self.client, self.query.clone(), options)?;
        let query_json = serde_json::to_value(&self.query).unwrap_or_default();
        let mut sink = ParquetSink::create(
            self.location,
            SinkOptions {
                extract_date,
                run_id: run_id.clone(),
                writer: self.writer,
                query_json,
            },
        )
        .await?;
        tracing::info!(%run_id, %extract_date, "export started");

        let outcome = {
            let work = pump(&mut batches, &mut sink, self.progress.as_deref(), clock);
            tokio::pin!(work);
            tokio::pin!(shutdown);
            tokio::select! {
                result = &mut work => Some(result),
                () = &mut shutdown => None,
            }
        };
        let failure = match outcome {
            Some(Ok(())) => None,
            Some(Err(e)) => Some(e),
            None => Some(ExportError::Interrupted {
                run_id: run_id.clone(),
            }),
        };
        if let Some(error) = failure {
            // Whatever failed, leave nothing half-published behind.
            if let Err(abort) = sink.abort().await {
                tracing::warn!(%abort, "cleaning up the failed run was incomplete");
            }
            return Err(error);
        }
        let fetch = batches.fetch_stats();
        let fetch_json = serde_json::to_value(&fetch).unwrap_or_default();
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
            fetch,
        })
    }
}

/// Moves every batch (and every reject) from the stream into the sink.
async fn pump(
    batches: &mut RecordBatches,
    sink: &mut ParquetSink,
    progress: Option<&(dyn Fn(&ExportProgress) + Send + Sync)>,
    clock: Instant,
) -> Result<(), ExportError> {
    let mut rows_written = 0u64;
    let mut last_pages = 0;
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        let rejects = batches.take_rejects();
        if !rejects.is_empty() {
            sink.write_rejects(&rejects).await?;
        }
        rows_written += batch.num_rows() as u64;
        sink.write(&batch).await?;
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
        sink.write_rejects(&rejects).await?;
    }
    Ok(())
}
