//! The one-call export: pages → batches → Parquet files in any object store, published
//! atomically with a manifest, or not at all; with the lists table beside the contacts
//! (see [`ExportBuilder::tables`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use serde::Serialize;
use trackly_contacts::{DecoderOptions, InvalidPolicy, Reject};
use trackly_converter::{
    FileInfo, OutputLocation, ParquetSink, Retention, RetentionReport, SinkOptions, SinkSummary,
    TableFormat, WriterOptions,
};
use trackly_fetcher::{Client, FetchStats, Frontier, Query, ResumeFrom, StatsHandle};

use crate::lists::{ListIds, ListsTable};
use crate::{ConfigError, ExportError, RecordBatches, Table, Tables};

/// Progress of a running export, handed to the callback set with
/// [`ExportBuilder::on_progress`] after every Arrow batch handed to the Parquet writer (see
/// there for the cadence).
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
///
/// `rows`, `files`, `bytes`, `rejects` and `fetch` are the contacts' (zero and empty when the
/// run did not export them); [`tables`](Self::tables) has every table the run published.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run's id (a UUIDv7: sortable by start time).
    pub run_id: String,
    /// The partition written.
    pub extract_date: NaiveDate,
    /// When the run started (the `_extracted_at` of every row of every table).
    pub started_at: DateTime<Utc>,
    /// When the last object was published.
    pub finished_at: DateTime<Utc>,
    /// Contacts written.
    pub rows: u64,
    /// Contacts files published, in order.
    pub files: Vec<FileInfo>,
    /// Bytes of contacts Parquet published.
    pub bytes: u64,
    /// Contacts quarantined.
    pub rejects: u64,
    /// Undocumented top-level fields kept in `_extra`.
    pub unknown_fields: u64,
    /// `revenue_total` values rounded half to even to 4 decimals (also in `_manifest.json`).
    pub rounded_values: u64,
    /// The fetcher's final statistics for the contacts.
    pub fetch: FetchStats,
    /// Every table the run published, in publication order (the contacts last).
    pub tables: Vec<TableSummary>,
}

impl RunSummary {
    /// Wall time of the run.
    pub fn duration(&self) -> Duration {
        (self.finished_at - self.started_at)
            .to_std()
            .unwrap_or_default()
    }

    /// What the run published of `table`, if it exported it.
    pub fn table(&self, table: Table) -> Option<&TableSummary> {
        self.tables.iter().find(|t| t.table == table)
    }

    /// The date folders removed after publication, over every table, under
    /// [`ExportBuilder::retain_days`] (empty without it).
    pub fn removed_partitions(&self) -> impl Iterator<Item = &str> {
        self.tables
            .iter()
            .filter_map(|t| t.retention.as_ref())
            .flat_map(|r| r.removed.iter().map(String::as_str))
    }
}

/// What a run published of one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableSummary {
    /// The table.
    pub table: Table,
    /// Rows written.
    pub rows: u64,
    /// Files published, in order.
    pub files: Vec<FileInfo>,
    /// Bytes of Parquet published.
    pub bytes: u64,
    /// Records quarantined.
    pub rejects: u64,
    /// Object path of the table's `_manifest.json`.
    pub manifest_path: String,
    /// The requests that fetched the table.
    pub fetch: FetchStats,
    /// The table's date folders removed after publication under
    /// [`ExportBuilder::retain_days`] (`None` without it), as its `_manifest.json` records them.
    pub retention: Option<RetentionReport>,
}

impl TableSummary {
    fn new(table: Table, written: SinkSummary, fetch: FetchStats) -> TableSummary {
        TableSummary {
            table,
            rows: written.rows,
            files: written.files,
            bytes: written.bytes,
            rejects: written.rejects,
            manifest_path: written.manifest_path,
            fetch,
            retention: written.retention,
        }
    }
}

type ProgressFn = Arc<dyn Fn(&ExportProgress) + Send + Sync>;
type StartFn = Box<dyn FnOnce(StatsHandle) + Send>;

/// Builds an [`Export`]. [`client`](Self::client) and [`location`](Self::location) are required.
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
    tables: Tables,
    retain_days: Option<u32>,
    table_format: TableFormat,
    /// `None`: the default ([`DEFAULT_VACUUM_RETENTION`]).
    vacuum_retention: Option<Option<Duration>>,
}

/// The default of [`ExportBuilder::vacuum_retention`]: 7 days, Delta's own default.
pub const DEFAULT_VACUUM_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl ExportBuilder {
    /// How the run is published (default [`TableFormat::Parquet`]: Hive-style date folders
    /// with `_manifest.json` and `_SUCCESS`). `TableFormat::Delta` (feature `delta`, on with
    /// `cli`) makes each table a Delta Lake table, one commit per run: see
    /// [`delta`](trackly_converter::delta). A resumed run keeps the format it was written with.
    pub fn table_format(mut self, format: TableFormat) -> Self {
        self.table_format = format;
        self
    }

    /// Delta only: after each run's commit, delete the data files that earlier commits
    /// removed more than `retention` ago (default 7 days; `None`: never). Files of the current
    /// snapshot are never deleted; a reader still reading an older snapshot than that may
    /// find its files gone, so keep it longer than your longest query.
    pub fn vacuum_retention(mut self, retention: Option<Duration>) -> Self {
        self.vacuum_retention = Some(retention);
        self
    }

    /// Once the run is published, delete each of its tables' date folders older than `days`
    /// before its extract date (at least 1; default `None`: keep everything). Only folders
    /// this tool wrote (holding its `_manifest.json`) are deleted, never on a failed or
    /// interrupted run, and a deletion that fails does not fail the run: see
    /// [`retention`](trackly_converter::retention) and [`TableSummary::retention`].
    pub fn retain_days(mut self, days: Option<u32>) -> Self {
        self.retain_days = days;
        self
    }

    /// Which tables to write (default: [`Tables::ALL`], the contacts and the lists). The
    /// [`query`](Self::query) filters the contacts only: the lists table always holds every
    /// list, deleted ones included. Every table of a run is published in the same step, or
    /// none is; a table left out keeps whatever an earlier run published for the date.
    pub fn tables(mut self, tables: Tables) -> Self {
        self.tables = tables;
        self
    }

    /// Continue the newest interrupted run of the same query and extract date, if there is
    /// one: its finished contacts files are kept and their pages not fetched again (default:
    /// false, start afresh). The lists, small, are fetched again in full.
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

    /// Where the tables go: a local directory or any object store (see [`OutputLocation`]).
    pub fn location(mut self, location: OutputLocation) -> Self {
        self.location = Some(location);
        self
    }

    /// The old name of [`location`](Self::location): a location is not a sink.
    #[deprecated(since = "0.1.0", note = "renamed to `location`")]
    pub fn sink(self, location: OutputLocation) -> Self {
        self.location(location)
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

    /// Called with the progress so far each time a batch of rows goes to the Parquet writer
    /// (every [`batch_size`](Self::batch_size) rows, 8192 by default: about every 8 pages of
    /// 1000 contacts), skipped when no page arrived since the last call. Runs on the export's
    /// task: keep it cheap. For a steady clock-driven view, read the live
    /// [`StatsHandle`] that [`on_start`](Self::on_start) hands out.
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

    /// Checks the settings before anything runs: a missing client or location, an empty set
    /// of tables or a zero batch size is a [`ConfigError`]; unusable Parquet settings or
    /// retention are reported here too (as [`ExportError::Convert`]), all of
    /// [`ErrorKind::Config`](crate::ErrorKind::Config).
    pub fn build(self) -> Result<Export, ExportError> {
        if self.tables.iter().next().is_none() {
            return Err(ConfigError::NoTables.into());
        }
        if self.batch_size == Some(0) {
            return Err(ConfigError::ZeroBatchSize.into());
        }
        // The Parquet settings are checked now, not when the first file opens an hour later.
        self.writer
            .writer_properties("build-check", chrono::NaiveDate::MIN)
            .map_err(ConfigError::check)?;
        let retention = self
            .retain_days
            .map(Retention::days)
            .transpose()
            .map_err(ConfigError::check)?;
        Ok(Export {
            retention,
            table_format: self.table_format,
            vacuum_retention: self
                .vacuum_retention
                .unwrap_or(Some(DEFAULT_VACUUM_RETENTION)),
            tables: self.tables,
            client: self.client.ok_or(ConfigError::MissingClient)?,
            location: self.location.ok_or(ConfigError::MissingLocation)?,
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
    tables: Tables,
    retention: Option<Retention>,
    table_format: TableFormat,
    vacuum_retention: Option<Duration>,
}

/// Where the contacts pages start.
enum Start {
    /// From page 1.
    Fresh,
    /// Where an interrupted run stopped.
    From(ResumeFrom),
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
    /// The page that held the frontier's key (absent from older checkpoints: those resume
    /// from `page` and step back).
    #[serde(default)]
    frontier_page: Option<u64>,
}

impl Progress {
    fn of(batches: &RecordBatches) -> Progress {
        let (page, total) = batches.last_page().unwrap_or((1, 0));
        let frontier = batches.resume_frontier();
        Progress {
            page,
            total,
            frontier: frontier.map(|f| f.signup_date),
            frontier_page: frontier.map(|f| f.page),
        }
    }

    fn resume_from(self, delivered: Vec<(String, String)>) -> ResumeFrom {
        ResumeFrom {
            page: self.page,
            total: self.total,
            frontier: self.frontier.map(|signup_date| Frontier {
                signup_date,
                page: self.frontier_page.unwrap_or(self.page),
            }),
            delivered,
        }
    }
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

    /// Runs the export until it ends or `shutdown` completes; on shutdown the run stops and
    /// [`ExportError::Interrupted`] is returned. Nothing of it is published: the multipart upload
    /// in progress is aborted, and the Parquet files it had finished stay in staging with
    /// `_checkpoint.json`, so a later run with [`resume`](ExportBuilder::resume) continues from
    /// them (a run that had not finished a file leaves nothing). A later successful run of the
    /// same extract date without `resume` deletes such staging once it has been left for
    /// [`STALE_STAGING`](trackly_converter::heartbeat::STALE_STAGING) (a run killed a moment ago
    /// cannot be told from one still running), and
    /// [`ParquetSink::discard_interrupted`](trackly_converter::ParquetSink::discard_interrupted)
    /// deletes it at once for a caller that will not resume. The same holds when the run
    /// fails.
    ///
    /// The lists (when [`tables`](ExportBuilder::tables) has them) are fetched and decoded
    /// first, so a failure there (the key, the endpoint, a list that does not fit under
    /// `InvalidPolicy::Fail`) ends the run before any contact is paged; they are staged once
    /// the contacts are written and published with them.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<RunSummary, ExportError> {
        // A store's answer that says what is wrong with the location is one line wherever in
        // the run it came (the probe explains its own).
        let location = self.location.clone();
        self.run_to_end(shutdown).await.map_err(|e| match e {
            ExportError::Convert(e) => ExportError::Convert(location.explain(e)),
            other => other,
        })
    }

    async fn run_to_end(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<RunSummary, ExportError> {
        let Export {
            client,
            query,
            location,
            writer,
            batch_size,
            on_invalid,
            extract_date,
            progress,
            mut on_start,
            resume,
            tables,
            retention,
            table_format,
            vacuum_retention,
        } = self;
        let clock = Instant::now();
        let now = Utc::now();
        let extract_date = extract_date.unwrap_or_else(|| now.date_naive());
        let query_json = serde_json::to_value(&query).unwrap_or_default();
        let mut options = SinkOptions {
            extract_date,
            run_id: uuid::Uuid::now_v7().to_string(),
            writer,
            query_json,
        };
        tokio::pin!(shutdown);

        // A missing bucket, missing credentials or an endpoint that does not answer is said
        // in one line before anything is fetched or staged.
        location.check_access().await?;

        // Nothing is fetched yet: a resumed run's id and start are known before the lists are
        // decoded, so both tables carry them.
        let contacts = if tables.contains(Table::Contacts) {
            Some(open_contacts(&location, options.clone(), resume, table_format).await?)
        } else {
            None
        };
        let (run_id, started_at) = match &contacts {
            Some((sink, _)) => (sink.run_id().to_owned(), sink.started_at()),
            None => (options.run_id.clone(), now),
        };
        options.run_id = run_id.clone();
        let mut decoder =
            DecoderOptions::new(run_id.clone(), started_at).with_on_invalid(on_invalid);
        if let Some(rows) = batch_size {
            decoder = decoder.with_batch_size(rows);
        }

        // One count of every request of the run, the lists' and the contacts'.
        let stats = StatsHandle::default();
        if let Some(on_start) = on_start.take() {
            on_start(stats.clone());
        }
        let lists = if tables.contains(Table::Lists) {
            tracing::debug!(%run_id, %extract_date, "fetching the lists");
            let fetched = tokio::select! {
                pages = client.lists(&stats) => pages.map_err(ExportError::from).and_then(|pages| {
                    ListsTable::decode(pages, decoder.clone(), stats.snapshot())
                }),
                () = &mut shutdown => Err(ExportError::Interrupted { run_id: run_id.clone() }),
            };
            match fetched {
                Ok(table) => {
                    tracing::info!(lists = table.rows(), "lists fetched and decoded");
                    Some(table)
                }
                Err(error) => {
                    if let Some((sink, _)) = contacts {
                        suspend(sink, &run_id).await;
                    }
                    return Err(error);
                }
            }
        } else {
            None
        };

        let Some((mut sink, start)) = contacts else {
            // The lists alone: the contacts folder is not touched.
            let Some(lists) = lists else {
                return Err(ConfigError::NoTables.into());
            };
            let written = lists
                .stage(table_format, &location, &options, started_at)
                .await?
                .with_retention(retention)
                .with_vacuum_retention(vacuum_retention)
                .publish()
                .await?;
            return Ok(RunSummary {
                run_id,
                extract_date,
                started_at,
                finished_at: Utc::now(),
                rows: 0,
                files: Vec::new(),
                bytes: 0,
                rejects: 0,
                unknown_fields: 0,
                rounded_values: 0,
                fetch: FetchStats::default(),
                tables: vec![TableSummary::new(
                    Table::Lists,
                    written,
                    lists.fetch.clone(),
                )],
            });
        };

        let resume = match start {
            Start::Fresh => None,
            Start::From(from) => Some(from),
        };
        let pages = client.contacts_with_stats(query.clone(), resume, stats.clone());
        let mut batches = RecordBatches::new(pages, decoder)?;
        tracing::info!(%run_id, %extract_date, "export started");

        // Decoding (here) and Parquet encoding (the writer task) overlap on two cores; the
        // channel holds at most two batches, so memory stays bounded.
        sink.checkpoint(checkpoint_of(&batches)).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Item>(2);
        let writer = tokio::spawn(write_all(sink, rx));
        let mut list_ids = ListIds::default();
        let fed = {
            let work = feed(&mut batches, tx, &mut list_ids, progress.as_deref(), clock);
            tokio::pin!(work);
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
            suspend(sink, &run_id).await;
            return Err(error);
        }
        let lists = match lists {
            Some(lists) => match lists.complete(&list_ids, &client, &stats).await {
                Ok(lists) => Some(lists),
                Err(error) => {
                    suspend(sink, &run_id).await;
                    return Err(error);
                }
            },
            None => None,
        };
        let staged = match &lists {
            Some(lists) => match lists
                .stage(table_format, &location, &options, started_at)
                .await
            {
                Ok(staged) => vec![staged],
                Err(error) => {
                    suspend(sink, &run_id).await;
                    return Err(error);
                }
            },
            None => Vec::new(),
        };
        let fetch = batches.fetch_stats();
        let fetch_json = serde_json::to_value(&fetch).unwrap_or_default();
        let mut sink = sink;
        sink.set_decode_stats(batches.decode_stats());
        sink.set_retention(retention);
        sink.set_vacuum_retention(vacuum_retention);
        let (written, companions) = sink.finish_with(fetch_json, staged).await?;
        let mut published: Vec<TableSummary> = companions
            .into_iter()
            .zip(&lists)
            .map(|(summary, lists)| TableSummary::new(Table::Lists, summary, lists.fetch.clone()))
            .collect();
        published.push(TableSummary::new(
            Table::Contacts,
            written.clone(),
            fetch.clone(),
        ));
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
            tables: published,
        })
    }
}

/// The contacts sink of the run (a resumed one if `resume` finds an interrupted run of the
/// same query and date) and where its pages start.
async fn open_contacts(
    location: &OutputLocation,
    options: SinkOptions,
    resume: bool,
    format: TableFormat,
) -> Result<(ParquetSink, Start), ExportError> {
    let resumed = if resume {
        ParquetSink::resume(location.clone(), options.clone()).await?
    } else {
        None
    };
    let resumed = match resumed {
        Some((mut sink, checkpoint)) => {
            sink.set_table_format(format)?;
            Some((sink, checkpoint))
        }
        None => None,
    };
    Ok(match resumed {
        Some((mut sink, checkpoint)) if sink.closed_files() > 0 => {
            let progress: Progress =
                serde_json::from_value(checkpoint.progress).unwrap_or(Progress {
                    page: 1,
                    total: 0,
                    frontier: None,
                    frontier_page: None,
                });
            let delivered = sink.written_keys().await?;
            tracing::info!(
                run_id = sink.run_id(),
                files = sink.closed_files(),
                contacts = delivered.len(),
                page = progress.page,
                frontier_page = progress.frontier_page,
                "resuming an interrupted run"
            );
            (sink, Start::From(progress.resume_from(delivered)))
        }
        // An interrupted run that finished no file: keep its id, start from page 1.
        Some((sink, _)) => (sink, Start::Fresh),
        None => {
            if resume {
                tracing::info!("no interrupted run to resume; starting afresh");
            }
            let mut sink = ParquetSink::create(location.clone(), options).await?;
            sink.set_table_format(format)?;
            (sink, Start::Fresh)
        }
    })
}

/// After a failure: nothing half-written stays visible. Finished staged contacts files stay
/// (hidden) with their checkpoint, so `--resume` can continue; a later successful run of the
/// same date removes them.
async fn suspend(sink: ParquetSink, run_id: &str) {
    let resumable = sink.closed_files() > 0;
    if let Err(cleanup) = sink.suspend().await {
        tracing::warn!(%cleanup, "cleaning up the failed run was incomplete");
    } else if resumable {
        tracing::info!(%run_id, "finished files of the failed run are kept; --resume continues from them");
    }
}

fn checkpoint_of(batches: &RecordBatches) -> serde_json::Value {
    serde_json::to_value(Progress::of(batches)).unwrap_or_default()
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
    list_ids: &mut ListIds,
    progress: Option<&(dyn Fn(&ExportProgress) + Send + Sync)>,
    clock: Instant,
) -> Result<(), ExportError> {
    let mut rows_written = 0u64;
    let mut last_pages = 0;
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        rows_written += batch.num_rows() as u64;
        list_ids.observe(&batch);
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
