//! The one-call export: pages → batches → Parquet files in any object store, published
//! atomically with a manifest, or not at all; with the lists table beside the contacts
//! (see [`ExportBuilder::tables`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use serde::Serialize;
use trackly_contacts::table::CONTACTS;
use trackly_contacts::{DecodeStats, DecoderOptions, InvalidPolicy, Reject};
use trackly_converter::{
    FileInfo, OutputLocation, ParquetSink, Retention, RetentionReport, SinkOptions, SinkSummary,
    StagedTable, TableFormat, WriterOptions,
};
use trackly_fetcher::{Client, FetchStats, Query, ResumeFrom, ResumePoint, StatsHandle};

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
    location: Option<OutputLocation>,
    settings: Settings,
    retain_days: Option<u32>,
    /// `None`: the default ([`DEFAULT_VACUUM_RETENTION`]).
    vacuum_retention: Option<Option<Duration>>,
}

/// What an export is asked to do besides where from and where to, as the builder took it.
#[derive(Default)]
struct Settings {
    query: Query,
    writer: WriterOptions,
    batch_size: Option<usize>,
    on_invalid: InvalidPolicy,
    extract_date: Option<NaiveDate>,
    progress: Option<ProgressFn>,
    on_start: Option<StartFn>,
    resume: bool,
    tables: Tables,
    table_format: TableFormat,
}

/// The default of [`ExportBuilder::vacuum_retention`]: 7 days, Delta's own default (the
/// converter's, which owns it).
pub use trackly_converter::DEFAULT_VACUUM_RETENTION;

impl ExportBuilder {
    /// How the run is published (default [`TableFormat::Parquet`]: Hive-style date folders
    /// with `_manifest.json` and `_SUCCESS`). `TableFormat::Delta` (feature `delta`, on with
    /// `cli`) makes each table a Delta Lake table, one commit per run: see
    /// [`delta`](trackly_converter::delta). A resumed run keeps the format it was written with.
    pub fn table_format(mut self, format: TableFormat) -> Self {
        self.settings.table_format = format;
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
        self.settings.tables = tables;
        self
    }

    /// Continue the newest interrupted run of the same query and extract date, if there is
    /// one: its finished contacts files are kept and their pages not fetched again (default:
    /// false, start afresh). The lists, small, are fetched again in full.
    pub fn resume(mut self, resume: bool) -> Self {
        self.settings.resume = resume;
        self
    }

    /// The API client.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// What to export (default: every contact).
    pub fn query(mut self, query: Query) -> Self {
        self.settings.query = query;
        self
    }

    /// Where the tables go: a local directory or any object store (see [`OutputLocation`]).
    pub fn location(mut self, location: OutputLocation) -> Self {
        self.location = Some(location);
        self
    }

    /// Parquet settings.
    pub fn writer(mut self, writer: WriterOptions) -> Self {
        self.settings.writer = writer;
        self
    }

    /// Rows per Arrow batch (default 8192).
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.settings.batch_size = Some(rows);
        self
    }

    /// What to do with contacts that do not fit the schema (default: fail).
    pub fn on_invalid(mut self, policy: InvalidPolicy) -> Self {
        self.settings.on_invalid = policy;
        self
    }

    /// The partition date (default: today, UTC, at the start of the run).
    pub fn extract_date(mut self, date: NaiveDate) -> Self {
        self.settings.extract_date = Some(date);
        self
    }

    /// Called with the progress so far each time a batch of rows goes to the Parquet writer
    /// (every [`batch_size`](Self::batch_size) rows, 8192 by default: about every 8 pages of
    /// 1000 contacts), skipped when no page arrived since the last call. Runs on the export's
    /// task: keep it cheap. For a steady clock-driven view, read the live
    /// [`StatsHandle`] that [`on_start`](Self::on_start) hands out.
    pub fn on_progress(mut self, f: impl Fn(&ExportProgress) + Send + Sync + 'static) -> Self {
        self.settings.progress = Some(Arc::new(f));
        self
    }

    /// Called once as the run starts fetching, with a live view of the fetcher's statistics:
    /// for a display that refreshes on its own clock (e.g. while the API makes the run wait).
    pub fn on_start(mut self, f: impl FnOnce(StatsHandle) + Send + 'static) -> Self {
        self.settings.on_start = Some(Box::new(f));
        self
    }

    /// Checks the settings as [`build`](Self::build) does, without needing the client or the
    /// location: an empty set of tables or a zero batch size is a [`ConfigError`]; unusable
    /// Parquet settings or retention are reported too, all of
    /// [`ErrorKind::Config`](crate::ErrorKind::Config). For a caller (the CLI) that checks its
    /// configuration before it has either.
    pub fn check(&self) -> Result<(), ExportError> {
        self.retention().map(drop)
    }

    /// Checks the settings before anything runs (see [`check`](Self::check)); a missing
    /// client or location is a [`ConfigError`] too.
    pub fn build(self) -> Result<Export, ExportError> {
        let retention = self.retention()?;
        Ok(Export {
            client: self.client.ok_or(ConfigError::MissingClient)?,
            location: self.location.ok_or(ConfigError::MissingLocation)?,
            settings: self.settings,
            retention,
            vacuum_retention: self
                .vacuum_retention
                .unwrap_or(Some(DEFAULT_VACUUM_RETENTION)),
        })
    }

    /// Every check of [`check`](Self::check); the retention, when the run has one.
    fn retention(&self) -> Result<Option<Retention>, ExportError> {
        let settings = &self.settings;
        if settings.tables.iter().next().is_none() {
            return Err(ConfigError::NoTables.into());
        }
        if settings.batch_size == Some(0) {
            return Err(ConfigError::ZeroBatchSize.into());
        }
        // The Parquet settings are checked now, not when the first file opens an hour later.
        settings
            .writer
            .writer_properties(&CONTACTS, "build-check", NaiveDate::MIN)
            .map_err(ConfigError::check)?;
        self.retain_days
            .map(Retention::days)
            .transpose()
            .map_err(ConfigError::check)
    }
}

/// One export run; see the [crate docs](crate) for its guarantees.
pub struct Export {
    client: Client,
    location: OutputLocation,
    settings: Settings,
    retention: Option<Retention>,
    vacuum_retention: Option<Duration>,
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
        tokio::pin!(shutdown);
        // A store's answer that says what is wrong with the location is one line wherever in
        // the run it came (the probe explains its own).
        let location = self.location.clone();
        let explain = |error| match error {
            ExportError::Convert(e) => ExportError::Convert(location.explain(e)),
            other => other,
        };
        let mut run = Run::open(self).await.map_err(explain)?;
        match run.phases(shutdown).await {
            Ok(published) => Ok(run.summarise(published)),
            Err(error) => Err(explain(run.fail(error).await)),
        }
    }
}

/// One run of an export, phase by phase: [`open`](Self::open) (or resume), [`lists`](Self::lists),
/// [`pump`](Self::pump), [`stage`](Self::stage), [`commit`](Self::commit),
/// [`summarise`](Self::summarise). An error in any phase after `open` ends the run through
/// [`fail`](Self::fail), the one failure path.
struct Run {
    /// What the run was built with.
    export: Export,
    clock: Instant,
    /// The run's date, id (a resumed run's own), writer settings and query.
    options: SinkOptions,
    /// When the run started (a resumed run: when the interrupted one did).
    started_at: DateTime<Utc>,
    decoder: DecoderOptions,
    /// One count of every request of the run, the lists' and the contacts'.
    stats: StatsHandle,
    /// The contacts' sink; `None` for a run without the contacts, and once the commit has
    /// taken it.
    sink: Option<ParquetSink>,
    /// Where the contacts' pages start, for a resumed run.
    resume: Option<ResumeFrom>,
}

/// What the pump leaves for the later phases (all empty for a run without the contacts).
#[derive(Default)]
struct Pumped {
    /// The contacts' requests.
    fetch: FetchStats,
    decode: DecodeStats,
    /// The lists the contacts refer to.
    list_ids: ListIds,
}

/// The lists, staged, and the requests that read them.
type StagedLists = (StagedTable, FetchStats);

impl Run {
    /// Checks that the output location can be written, then opens the contacts' sink: a
    /// resumed one when asked and an interrupted run of the same query and date is there.
    /// Nothing is fetched yet, but a resumed run's id and start are known, so every table
    /// carries them.
    async fn open(mut export: Export) -> Result<Run, ExportError> {
        let (location, settings) = (&export.location, &mut export.settings);
        let clock = Instant::now();
        let now = Utc::now();
        let mut options = SinkOptions {
            extract_date: settings.extract_date.unwrap_or_else(|| now.date_naive()),
            run_id: uuid::Uuid::now_v7().to_string(),
            writer: settings.writer.clone(),
            query_json: serde_json::to_value(&settings.query).unwrap_or_default(),
        };
        // A missing bucket, missing credentials or an endpoint that does not answer is said
        // in one line before anything is fetched or staged.
        location.check_access().await?;
        let (sink, resume) = if settings.tables.contains(Table::Contacts) {
            let (resume, format) = (settings.resume, settings.table_format);
            let (sink, resume) = open_contacts(location, options.clone(), resume, format).await?;
            (Some(sink), resume)
        } else {
            (None, None)
        };
        let started_at = sink.as_ref().map_or(now, ParquetSink::started_at);
        if let Some(sink) = &sink {
            options.run_id = sink.run_id().to_owned();
        }
        let mut decoder = DecoderOptions::new(options.run_id.clone(), started_at)
            .with_on_invalid(settings.on_invalid);
        if let Some(rows) = settings.batch_size {
            decoder = decoder.with_batch_size(rows);
        }
        let stats = StatsHandle::default();
        if let Some(on_start) = settings.on_start.take() {
            on_start(stats.clone());
        }
        Ok(Run {
            export,
            clock,
            options,
            started_at,
            decoder,
            stats,
            sink,
            resume,
        })
    }

    /// The phases after [`open`](Self::open), in order; the first error ends them.
    async fn phases(
        &mut self,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Published, ExportError> {
        let lists = self.lists(shutdown.as_mut()).await?;
        let pumped = self.pump(shutdown).await?;
        let staged = self.stage(lists, &pumped.list_ids).await?;
        let tables = self.commit(staged, &pumped).await?;
        Ok(Published { tables, pumped })
    }

    /// The lists (when the run exports them), fetched and decoded before any contact is paged:
    /// a failure there ends the run early and cheaply.
    // `&mut self` here and in every phase, although some change nothing: the sink is not
    // `Sync`, and a shared borrow of the run held across an await would make `run_until`'s
    // future `!Send`.
    async fn lists(
        &mut self,
        shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Option<ListsTable>, ExportError> {
        if !self.export.settings.tables.contains(Table::Lists) {
            return Ok(None);
        }
        let (run_id, extract_date) = (&self.options.run_id, self.options.extract_date);
        tracing::debug!(%run_id, %extract_date, "fetching the lists");
        let table = tokio::select! {
            pages = self.export.client.lists(&self.stats) => {
                ListsTable::decode(pages?, self.decoder.clone(), self.stats.snapshot())?
            }
            () = shutdown => return Err(self.interrupted()),
        };
        tracing::info!(lists = table.rows(), "lists fetched and decoded");
        Ok(Some(table))
    }

    /// The contacts, page by page into batches and from there into the sink, which a writer
    /// task holds meanwhile; nothing for a run without the contacts.
    async fn pump(
        &mut self,
        shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Pumped, ExportError> {
        let Some(sink) = self.sink.take() else {
            return Ok(Pumped::default());
        };
        let (sink, pumped) = self.write_contacts(sink, shutdown).await;
        self.sink = Some(sink);
        pumped
    }

    /// [`pump`](Self::pump) with the sink in hand; gives it back however writing went.
    async fn write_contacts(
        &mut self,
        sink: ParquetSink,
        shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> (ParquetSink, Result<Pumped, ExportError>) {
        let query = self.export.settings.query.clone();
        let pages =
            self.export
                .client
                .contacts_with_stats(query, self.resume.take(), self.stats.clone());
        let mut batches = match RecordBatches::new(pages, self.decoder.clone()) {
            Ok(batches) => batches,
            Err(e) => return (sink, Err(e)),
        };
        let (run_id, extract_date) = (&self.options.run_id, self.options.extract_date);
        tracing::info!(%run_id, %extract_date, "export started");
        // Decoding (here) and Parquet encoding (the writer task) overlap on two cores; the
        // channel holds at most two batches, so memory stays bounded.
        let (tx, rx) = tokio::sync::mpsc::channel::<Item>(2);
        let writer = tokio::spawn(write_all(sink, batches.resume_point(), rx));
        let mut list_ids = ListIds::default();
        let progress = self.export.settings.progress.as_deref();
        let fed = tokio::select! {
            result = feed(&mut batches, tx, &mut list_ids, progress, self.clock) => Some(result),
            () = shutdown => None,
        };
        // The sender is gone now: the writer drains what it has and hands the sink back.
        let (sink, written) = match writer.await {
            Ok(done) => done,
            Err(panic) => std::panic::resume_unwind(panic.into_panic()),
        };
        let pumped = match (fed, written) {
            (None, _) => Err(self.interrupted()),
            // The writer's error is the cause when it stopped taking batches.
            (Some(_), Err(e)) | (Some(Err(e)), Ok(())) => Err(e),
            (Some(Ok(())), Ok(())) => Ok(Pumped {
                fetch: batches.fetch_stats(),
                decode: batches.decode_stats(),
                list_ids,
            }),
        };
        (sink, pumped)
    }

    /// Gives every list the contacts refer to its row, then stages the lists table beside the
    /// contacts.
    async fn stage(
        &mut self,
        lists: Option<ListsTable>,
        list_ids: &ListIds,
    ) -> Result<Option<StagedLists>, ExportError> {
        let Some(lists) = lists else {
            return Ok(None);
        };
        let lists = lists
            .complete(list_ids, &self.export.client, &self.stats)
            .await?;
        let format = self.export.settings.table_format;
        let staged = lists
            .stage(
                format,
                &self.export.location,
                &self.options,
                self.started_at,
            )
            .await?;
        Ok(Some((staged, lists.fetch)))
    }

    /// Publishes every table of the run in one step (see
    /// [`ParquetSink::finish_with`](trackly_converter::ParquetSink::finish_with)), or the
    /// lists alone, leaving the contacts' folder untouched; returns each table's summary in
    /// publication order. A failed commit rolls back and cleans up by itself.
    async fn commit(
        &mut self,
        lists: Option<StagedLists>,
        pumped: &Pumped,
    ) -> Result<Vec<TableSummary>, ExportError> {
        let (staged, lists_fetch) = lists.unzip();
        let Some(mut sink) = self.sink.take() else {
            let staged = staged.ok_or(ConfigError::NoTables)?;
            let written = staged
                .with_retention(self.export.retention)
                .with_vacuum_retention(self.export.vacuum_retention)
                .publish()
                .await?;
            let fetch = lists_fetch.unwrap_or_default();
            return Ok(vec![TableSummary::new(Table::Lists, written, fetch)]);
        };
        sink.set_decode_stats(pumped.decode);
        sink.set_retention(self.export.retention);
        sink.set_vacuum_retention(self.export.vacuum_retention);
        let fetch_json = serde_json::to_value(&pumped.fetch).unwrap_or_default();
        let (written, companions) = sink
            .finish_with(fetch_json, staged.into_iter().collect())
            .await?;
        let mut published: Vec<TableSummary> = companions
            .into_iter()
            .zip(lists_fetch)
            .map(|(summary, fetch)| TableSummary::new(Table::Lists, summary, fetch))
            .collect();
        published.push(TableSummary::new(
            Table::Contacts,
            written,
            pumped.fetch.clone(),
        ));
        Ok(published)
    }

    /// What the run published, as its summary (the contacts' figures zero when it exported
    /// none).
    fn summarise(&self, published: Published) -> RunSummary {
        let Published { tables, pumped } = published;
        let contacts = tables.iter().find(|t| t.table == Table::Contacts);
        RunSummary {
            run_id: self.options.run_id.clone(),
            extract_date: self.options.extract_date,
            started_at: self.started_at,
            finished_at: Utc::now(),
            rows: contacts.map_or(0, |c| c.rows),
            files: contacts.map(|c| c.files.clone()).unwrap_or_default(),
            bytes: contacts.map_or(0, |c| c.bytes),
            rejects: contacts.map_or(0, |c| c.rejects),
            unknown_fields: pumped.decode.unknown_fields,
            rounded_values: pumped.decode.rounded_values,
            fetch: pumped.fetch,
            tables,
        }
    }

    /// The one failure path: nothing half-written stays visible. Finished staged contacts
    /// files stay (hidden) with their checkpoint, so `--resume` can continue; a later
    /// successful run of the same date removes them.
    async fn fail(&mut self, error: ExportError) -> ExportError {
        let Some(sink) = self.sink.take() else {
            return error;
        };
        let resumable = sink.closed_files() > 0;
        if let Err(cleanup) = sink.suspend().await {
            tracing::warn!(%cleanup, "cleaning up the failed run was incomplete");
        } else if resumable {
            let run_id = &self.options.run_id;
            tracing::info!(%run_id, "finished files of the failed run are kept; --resume continues from them");
        }
        error
    }

    fn interrupted(&self) -> ExportError {
        ExportError::Interrupted {
            run_id: self.options.run_id.clone(),
        }
    }
}

/// What the run published: every table's summary, and what the pump saw of the contacts.
struct Published {
    tables: Vec<TableSummary>,
    pumped: Pumped,
}

/// The contacts sink of the run (a resumed one when `resume` finds an interrupted run of the
/// same query and date) and, for a resumed run with finished files, where its pages start.
async fn open_contacts(
    location: &OutputLocation,
    options: SinkOptions,
    resume: bool,
    format: TableFormat,
) -> Result<(ParquetSink, Option<ResumeFrom>), ExportError> {
    let resumed = if resume {
        ParquetSink::resume(location.clone(), options.clone()).await?
    } else {
        None
    };
    if resume && resumed.is_none() {
        tracing::info!("no interrupted run to resume; starting afresh");
    }
    let (mut sink, checkpoint) = match resumed {
        Some((sink, checkpoint)) => (sink, Some(checkpoint)),
        None => (ParquetSink::create(location.clone(), options).await?, None),
    };
    sink.set_table_format(format)?;
    // A run started afresh, or an interrupted run that finished no file (it keeps its id),
    // starts from page 1.
    let Some(checkpoint) = checkpoint.filter(|_| sink.closed_files() > 0) else {
        return Ok((sink, None));
    };
    let point = checkpoint.resume_point;
    let delivered = sink.written_keys().await?;
    tracing::info!(
        run_id = sink.run_id(),
        files = sink.closed_files(),
        contacts = delivered.len(),
        page = point.page,
        frontier_page = point.frontier.map(|f| f.page),
        "resuming an interrupted run"
    );
    Ok((sink, Some(ResumeFrom { point, delivered })))
}

/// One batch on its way to the writer task, with the rejects met before it and where the run
/// stands (saved if this batch finishes a file).
struct Item {
    batch: Option<RecordBatch>,
    rejects: Vec<Reject>,
    resume_point: ResumePoint,
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
            resume_point: batches.resume_point(),
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
            resume_point: batches.resume_point(),
        };
        let _ = tx.send(item).await;
    }
    Ok(())
}

/// The writer task: a first checkpoint (where the run starts), then every batch and reject
/// into the sink, a checkpoint whenever a file is finished. Returns the sink (to finish or
/// suspend) and how writing went.
async fn write_all(
    mut sink: ParquetSink,
    start: ResumePoint,
    mut rx: tokio::sync::mpsc::Receiver<Item>,
) -> (ParquetSink, Result<(), ExportError>) {
    let written = async {
        sink.checkpoint(start).await?;
        let mut closed = sink.closed_files();
        while let Some(item) = rx.recv().await {
            if !item.rejects.is_empty() {
                sink.write_rejects(&item.rejects).await?;
            }
            if let Some(batch) = &item.batch {
                sink.write(batch).await?;
            }
            if sink.closed_files() != closed {
                // A file was finished: record it and where to pick up if the run dies now.
                closed = sink.closed_files();
                sink.checkpoint(item.resume_point).await?;
            }
        }
        Ok::<(), ExportError>(())
    };
    let written = written.await;
    (sink, written)
}
