//! The command line (feature `cli`): flags in, a validated configuration, one library call, an
//! exit code out.
//!
//! The `trackly-export` binary is [`main`]; the Python package's `trackly-export` console script
//! calls [`run`] with its own `sys.argv`, so both are the same code: every subcommand, flag,
//! environment variable, exit code, signal and log line.

mod completions;
mod config;
mod demo;
mod flags;
mod logging;
mod memory;
mod metrics;
mod mock_server;
mod progress;
mod settings;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use trackly_export::contacts::schema::{duckdb_ddl_of, spark_ddl_of};
use trackly_export::fetcher::StatsHandle;
use trackly_export::{
    Client, ConvertError, ErrorKind, ExportError, FetchError, Page, Query, RunSummary, Table,
};

use flags::{Cli, Command, LogFormat, SchemaFormat};
use progress::Progress;

/// Exit codes, as documented in `--help` and the README.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Usage or configuration error.
    pub const CONFIG: u8 = 2;
    /// The API refused the API key.
    pub const AUTH: u8 = 3;
    /// API failure after retries.
    pub const API: u8 = 4;
    /// Local disk or object storage failed.
    pub const STORAGE: u8 = 5;
    /// Invalid data under `--on-invalid fail`.
    pub const INVALID_DATA: u8 = 6;
    /// The export could not be proven complete.
    pub const INCOMPLETE: u8 = 7;
    /// Stopped by Ctrl-C or SIGTERM.
    pub const INTERRUPTED: u8 = 130;
}

/// The binary's `main`: [`run`] with the process's arguments.
pub fn main() -> ExitCode {
    ExitCode::from(run(std::env::args_os()))
}

/// Parses `args` (the program name first, as in `argv`) and runs the command; every failure
/// becomes a one-line message on stderr and an [`exit`] code, which is returned rather than
/// passed to `std::process::exit`, so that an embedding process (the Python package) exits in
/// its own way. Ctrl-C and SIGTERM stop an export as in the binary (exit code 130): the
/// handlers are installed while the export runs, as the binary does.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    memory::tune_allocator();
    let code = run_args(args);
    // Complete lines are already out; a cdylib gets no flush of stdout at exit.
    let _dropped_if_unwritable = std::io::stdout().flush();
    code
}

fn run_args<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    logging::init(cli.quiet, cli.verbose, cli.log_format);
    let log_format = cli.log_format;

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            progress::say(format_args!("error: cannot start the async runtime: {e}"));
            return exit::STORAGE;
        }
    };
    match runtime.block_on(run_command(cli)) {
        Ok(()) => exit::OK,
        Err(failure) => {
            report(&failure, log_format);
            failure.code
        }
    }
}

/// What clap's `Error::exit` does, without exiting: help and `--version` on stdout (code 0),
/// usage errors on stderr (code 2).
fn usage_error(error: &clap::Error) -> u8 {
    let _dropped_if_unwritable = error.print();
    u8::try_from(error.exit_code()).unwrap_or(exit::CONFIG)
}

/// The failure on stderr: one line of text, or with `--log-format json` one error event that
/// also carries the exit code and what the API said (its `code` and `error`), when it said it.
fn report(failure: &Failure, log_format: LogFormat) {
    let message = one_line(&failure.error);
    if log_format != LogFormat::Json {
        progress::say(format_args!("error: {message}"));
        return;
    }
    let fetch = match failure.error.downcast_ref::<ExportError>() {
        Some(ExportError::Fetch(e)) => Some(e),
        _ => failure.error.downcast_ref::<trackly_export::FetchError>(),
    };
    let api = fetch.and_then(|e| e.api_error());
    tracing::error!(
        exit_code = failure.code,
        api_code = api.and_then(|a| a.code.as_deref()),
        api_error = api.and_then(|a| a.error.as_deref()),
        "{message}"
    );
}

/// The error and its causes on one line, each cause once: many layers already quote their
/// cause in their own message, so `{:#}` would repeat it. An output location that cannot be
/// used says what to do in its own message; the store's raw answer under it (an XML body, a
/// metadata-service URL) goes to the debug log, not the line.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain() {
        let access = match cause.downcast_ref::<ExportError>() {
            Some(ExportError::Convert(e)) => Some(e),
            _ => cause.downcast_ref::<ConvertError>(),
        };
        if let Some(ConvertError::Access { source, .. }) = access {
            tracing::debug!(error = %source, "the object store's answer");
            return line;
        }
    }
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    /// Errors raised before the library runs are configuration errors.
    fn from(error: anyhow::Error) -> Self {
        let code = match error.downcast_ref::<ExportError>() {
            Some(e) => code_of(e),
            None => exit::CONFIG,
        };
        Failure { code, error }
    }
}

impl From<ExportError> for Failure {
    fn from(error: ExportError) -> Self {
        Failure {
            code: code_of(&error),
            error: error.into(),
        }
    }
}

fn code_of(error: &ExportError) -> u8 {
    match error.kind() {
        ErrorKind::Config => exit::CONFIG,
        ErrorKind::Auth => exit::AUTH,
        ErrorKind::Api => exit::API,
        ErrorKind::Storage => exit::STORAGE,
        ErrorKind::InvalidData => exit::INVALID_DATA,
        ErrorKind::Incomplete => exit::INCOMPLETE,
        ErrorKind::Interrupted => exit::INTERRUPTED,
    }
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes and cron's timeout send).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run_command(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Export(args) => {
            // The metrics file is known before the rest is validated, so that a configuration
            // error is in the metrics too.
            let file = config::file_settings(&args);
            let recorder = Arc::new(metrics::Recorder::new(config::metrics_file(
                &args,
                file.as_ref().ok(),
            )));
            let result = async {
                let config = config::resolve(&args, file?)?;
                recorder.tables(config.tables);
                export(config, cli.quiet, cli.log_format, Arc::clone(&recorder)).await
            }
            .await;
            recorder.finish(match &result {
                Ok(Some(summary)) => metrics::Outcome::Success(summary),
                Ok(None) => metrics::Outcome::DryRun,
                Err(failure) => metrics::Outcome::Failure(failure.code),
            });
            result.map(|_| ())
        }
        Command::Demo(args) => {
            let progress = Arc::new(Progress::new(cli.quiet));
            let result = demo::run(&args, Arc::clone(&progress)).await;
            progress.finish();
            let summary = result.map_err(Failure::from)?;
            if !cli.quiet {
                print_summary(&summary, &args.output.to_string_lossy(), cli.log_format);
                demo::print_written(&summary, &args.output);
            }
            Ok(())
        }
        Command::Schema(args) => {
            let _dropped_if_unreadable = write!(
                std::io::stdout(),
                "{}",
                schema_text(args.format, args.table)
            )
            .and_then(|()| std::io::stdout().flush());
            Ok(())
        }
        Command::MockServer(args) => mock_server::run(&args).await.map_err(Failure::from),
        Command::Completions(args) => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&completions::script(args.shell))
                .and_then(|()| stdout.flush())
                .map_err(|e| Failure {
                    code: exit::STORAGE,
                    error: anyhow::Error::new(e).context("cannot write the completion script"),
                })
        }
    }
}

/// What `schema` prints: the Arrow fields or the DDL of one table, or of every table (contacts
/// then lists; Arrow with a `# table` line before each, DDL as statements separated by `;`).
fn schema_text(format: SchemaFormat, only: Option<Table>) -> String {
    let texts: Vec<String> = Table::ALL
        .into_iter()
        .filter(|table| only.is_none_or(|only| only == *table))
        .map(|table| (table.name(), table.definition().schema()))
        .map(|(name, schema)| match format {
            SchemaFormat::Arrow => {
                let mut out = String::new();
                if only.is_none() {
                    out.push_str(&format!("# {name}\n"));
                }
                for field in schema.fields() {
                    out.push_str(&format!(
                        "{}: {}{}\n",
                        field.name(),
                        field.data_type(),
                        if field.is_nullable() { "" } else { " NOT NULL" }
                    ));
                }
                out
            }
            SchemaFormat::Duckdb => duckdb_ddl_of(&schema, name),
            SchemaFormat::Spark => spark_ddl_of(&schema, name),
        })
        .collect();
    match format {
        SchemaFormat::Arrow => texts.join("\n"),
        SchemaFormat::Duckdb | SchemaFormat::Spark => texts.join(";\n\n"),
    }
}

/// Runs `export`; the summary of what it published, or none for `--dry-run`.
async fn export(
    config: settings::ExportConfig,
    quiet: bool,
    log_format: LogFormat,
    recorder: Arc<metrics::Recorder>,
) -> Result<Option<RunSummary>, Failure> {
    if config.key_on_command_line {
        tracing::warn!(
            "--api-key shows in the process list; prefer TRACKLY_API_KEY or --api-key-file"
        );
    }
    let client = config.client.clone().build().map_err(ExportError::from)?;
    if config.dry_run {
        dry_run(&config, &client).await?;
        return Ok(None);
    }
    let location = config.location()?;
    let progress = Arc::new(Progress::new(quiet));
    let reporter = Arc::clone(&progress);
    let watcher = Arc::clone(&progress);
    let result = config
        .export_builder()
        .client(client)
        .location(location)
        .on_progress(move |p| reporter.update(p))
        .on_start(move |live| {
            recorder.watch(live.clone());
            watcher.watch(live);
        })
        .build()?
        .run_until(shutdown_signal())
        .await;
    progress.finish();
    let summary = result.map_err(|e| refused_key(e, &config.key_source))?;
    if !quiet {
        print_summary(&summary, config.output(), log_format);
    }
    Ok(Some(summary))
}

/// An export error, with where the key came from when the API refused it.
fn refused_key(error: ExportError, key_source: &str) -> Failure {
    let mut failure = Failure::from(error);
    if failure.code == exit::AUTH {
        failure.error = failure.error.context(format!("API key from {key_source}"));
    }
    failure
}

/// `--dry-run`: validates the location without creating anything, then spends one request on
/// page 1 of the contacts and the (two, small) requests of the lists, and prints the plan.
async fn dry_run(config: &settings::ExportConfig, client: &Client) -> Result<(), Failure> {
    check_output(config).await?;
    let output = config.output().trim_end_matches('/');
    let refused = |e: FetchError| refused_key(e.into(), &config.key_source);
    let mut plan = Vec::new();
    if config.tables.contains(Table::Contacts) {
        let first = client.first_page(&config.query).await.map_err(refused)?;
        let matching = contacts_plan(&first, &config.query, client.per_page());
        plan.push(format!(
            "{matching}, to be written under {output}/contacts/extract_date=…"
        ));
    }
    if config.tables.contains(Table::Lists) {
        let answers = client
            .lists(&StatsHandle::default())
            .await
            .map_err(refused)?;
        let lists: usize = answers.iter().map(|a| a.len()).sum();
        plan.push(format!(
            "{} (deleted ones included) in {}, to be written under {output}/lists/extract_date=…",
            count(lists as u64, "list", "lists"),
            count(answers.len() as u64, "answer", "answers"),
        ));
    }
    if let Some(days) = config.retain_days {
        let date = config
            .extract_date
            .unwrap_or_else(|| chrono::Utc::now().date_naive());
        let cutoff = trackly_export::converter::Retention::days(days)
            .map_err(ExportError::from)?
            .cutoff(date);
        plan.push(format!(
            "then this tool's extract_date= folders before {cutoff} to be removed (--retain-days {days})"
        ));
    }
    let output_checked = if output.contains("://") {
        " and the output location takes writes (a probe object was written and removed)"
    } else {
        ""
    };
    progress::print(format_args!(
        "dry run: the API key works{output_checked}; {} (nothing else written)",
        plan.join("; ")
    ));
    Ok(())
}

/// What page 1 says of the contacts an export would fetch: `1200 contacts match every list,
/// active only, 2 pages of 1000`.
fn contacts_plan(first: &Page, query: &Query, per_page: u32) -> String {
    match first.pagination().total {
        Some(total) => format!(
            "{} {}, {} of {per_page}",
            count(total, "contact matches", "contacts match"),
            describe_query(query),
            count(total.div_ceil(u64::from(per_page)), "page", "pages"),
        ),
        None => format!(
            "contacts {} (the API reports no total), in pages of {per_page}",
            describe_query(query),
        ),
    }
}

/// Validates the output location for `--dry-run`: a cloud location must exist and take a
/// probe object (written and removed); a local directory is not created.
async fn check_output(config: &settings::ExportConfig) -> Result<(), Failure> {
    let output = config.output();
    if output.contains("://") {
        let location = config.location()?;
        location.check_access().await.map_err(ExportError::from)?;
        return Ok(());
    }
    let path = std::path::Path::new(output);
    let existing = path.ancestors().find(|p| p.exists()).unwrap_or(path);
    if !existing.is_dir() {
        return Err(Failure {
            code: exit::CONFIG,
            error: anyhow::anyhow!(
                "invalid output location {output:?}: {} is not a directory",
                existing.display()
            ),
        });
    }
    Ok(())
}

fn describe_query(query: &Query) -> String {
    let list = query
        .list_number
        .as_ref()
        .map_or("every list".to_owned(), |l| format!("list {l}"));
    let active = match query.active {
        None => "active and inactive",
        Some(true) => "active only",
        Some(false) => "inactive only",
    };
    format!("{list}, {active}")
}

/// How the count came out: what was delivered against what the API reported, and what the
/// count of the listing's active and inactive contacts showed.
fn reconciliation(f: &trackly_export::FetchStats) -> String {
    let count = count_of_the_whole(f);
    match f.reconciliation.as_ref().and_then(|r| r.parts.as_ref()) {
        Some(p) if p.held => format!("{count} ({} active + {} inactive)", p.active, p.inactive),
        Some(p) => format!(
            "{count} (active and inactive not counted: {})",
            p.skipped.as_deref().unwrap_or("no answer")
        ),
        None => count,
    }
}

/// What was delivered against what the API reported.
fn count_of_the_whole(f: &trackly_export::FetchStats) -> String {
    match &f.reconciliation {
        Some(r) if !r.counted => format!(
            "count not reconciled (the API reported no usable total): every key range proven, {} delivered",
            r.delivered
        ),
        Some(r) if r.steady => format!(
            "count reconciled: {} of {} the API reported",
            r.delivered,
            count(r.reported_total, "contact", "contacts")
        ),
        Some(r) => format!(
            "the listing changed during the run (total {} to {}, {} at the end): every key range proven, {} delivered",
            r.min_total, r.max_total, r.reported_total, r.delivered
        ),
        None => "count not reconciled".to_owned(),
    }
}

/// What the run learned about how the API pages: `API pages of 1000, sorted to the second`,
/// with a cap (`500 of 1000 asked`) and refused sizes when there were any.
fn learned(f: &trackly_export::FetchStats) -> String {
    let l = &f.learned;
    let mut text = if l.page_size < l.page_size_asked {
        format!(
            "API serves pages of {} ({} asked)",
            l.page_size, l.page_size_asked
        )
    } else {
        format!("API pages of {}", l.page_size)
    };
    if !l.refused_page_sizes.is_empty() {
        let refused: Vec<String> = l.refused_page_sizes.iter().map(u64::to_string).collect();
        text.push_str(&format!(", refused per_page {}", refused.join("/")));
    }
    text.push_str(&format!(", sorted to the {}", l.sort_precision));
    if !l.total_reported {
        text.push_str(", no total on some pages");
    }
    text
}

/// What the responses cost on the wire: `12.3 MB received for 98.7 MB of JSON (8.0x
/// compressed)`, or `98.7 MB received` when nothing came compressed.
fn transfer(f: &trackly_export::FetchStats) -> String {
    let mb = |n: u64| n as f64 / 1e6;
    match f.compression_ratio() {
        Some(ratio) if f.body_bytes != f.wire_bytes => format!(
            "{:.1} MB received for {:.1} MB of JSON ({ratio:.1}x compressed)",
            mb(f.wire_bytes),
            mb(f.body_bytes)
        ),
        _ => format!("{:.1} MB received", mb(f.wire_bytes)),
    }
}

/// `1 retry`, `2 retries`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What retention did, over every table: `removed 3 partitions older than 2026-11-20`,
/// with what could not be removed; empty without `--retain-days`.
fn retention_note(summary: &RunSummary) -> String {
    let reports: Vec<_> = summary
        .tables
        .iter()
        .filter_map(|t| t.retention.as_ref())
        .collect();
    let Some(first) = reports.first() else {
        return String::new();
    };
    let removed = summary.removed_partitions().count() as u64;
    let failed: u64 = reports.iter().map(|r| r.failed.len() as u64).sum();
    let left_alone: u64 = reports.iter().map(|r| r.left_alone.len() as u64).sum();
    let mut note = format!(
        "removed {} older than {}",
        count(removed, "partition", "partitions"),
        first.cutoff
    );
    if failed > 0 {
        note.push_str(&format!(
            " ({failed} could not be removed, see the warnings; the next run retries)"
        ));
    }
    if left_alone > 0 {
        note.push_str(&format!(
            ", {} not written by this tool left alone",
            count(left_alone, "folder", "folders")
        ));
    }
    note
}

/// The final summary on stderr; with `--log-format json` a log event, so every line parses.
fn print_summary(summary: &RunSummary, output: &str, format: LogFormat) {
    let output = output.trim_end_matches('/');
    let retention = retention_note(summary);
    match (summary.table(Table::Contacts).is_some(), format) {
        (_, LogFormat::Json) => log_summary(summary, output, &retention),
        (false, LogFormat::Text) => say_lists_summary(summary, output, &retention),
        (true, LogFormat::Text) => say_contacts_summary(summary, output, &retention),
    }
}

/// The summary as one log event: the contacts' figures when the run exported them, the
/// lists' when it did (`requests` are the contacts', or the lists' in a run of the lists
/// alone).
fn log_summary(summary: &RunSummary, output: &str, retention: &str) {
    let contacts = summary.table(Table::Contacts).map(|_| &summary.fetch);
    let lists = summary.table(Table::Lists);
    let requests = contacts
        .or(lists.map(|l| &l.fetch))
        .map_or(0, |f| f.requests);
    let removed: Vec<&str> = summary.removed_partitions().collect();
    tracing::info!(
        contacts = contacts.map(|_| summary.rows),
        files = contacts.map(|_| summary.files.len()),
        bytes = contacts.map(|_| summary.bytes),
        seconds = summary.duration().as_secs_f64(),
        requests,
        wire_bytes = contacts.map(|f| f.wire_bytes),
        body_bytes = contacts.map(|f| f.body_bytes),
        retries = contacts.map(|f| f.retries.total()),
        drift_events = contacts.map(|f| f.drift_events.len()),
        verification_reads = contacts.map(|f| f.verification_reads),
        reconciliation = contacts.map(|f| tracing::field::display(reconciliation(f))),
        api = contacts.map(|f| tracing::field::display(learned(f))),
        page_size = contacts.map(|f| f.learned.page_size),
        sort_precision = contacts.map(|f| tracing::field::display(&f.learned.sort_precision)),
        duplicates_dropped = contacts.map(|f| f.duplicates_dropped),
        rejects = contacts.map(|_| summary.rejects),
        rounded_values = contacts.map(|_| summary.rounded_values),
        lists = lists.map(|l| l.rows),
        lists_rejects = lists.map(|l| l.rejects),
        run_id = %summary.run_id,
        extract_date = %summary.extract_date,
        output,
        retention = (!retention.is_empty()).then_some(retention),
        removed_partitions = ?removed,
        "export finished"
    );
}

/// The summary of a run that exported the lists alone, as a line of text.
fn say_lists_summary(summary: &RunSummary, output: &str, retention: &str) {
    let lists = summary.table(Table::Lists);
    progress::say(format_args!(
        "exported {} in {:.1}s to {output}/lists/extract_date={}: {}, {}, run {}{}",
        count(lists.map_or(0, |l| l.rows), "list", "lists"),
        summary.duration().as_secs_f64(),
        summary.extract_date,
        count(lists.map_or(0, |l| l.rejects), "reject", "rejects"),
        count(lists.map_or(0, |l| l.fetch.requests), "request", "requests"),
        summary.run_id,
        retention_suffix(retention),
    ));
}

/// The summary of a run with the contacts, as a line of text.
fn say_contacts_summary(summary: &RunSummary, output: &str, retention: &str) {
    let f = &summary.fetch;
    let secs = summary.duration().as_secs_f64();
    let lists = summary.table(Table::Lists).map_or(String::new(), |l| {
        format!(
            "; and {} to {output}/lists/extract_date={} ({}, {})",
            count(l.rows, "list", "lists"),
            summary.extract_date,
            count(l.rejects, "reject", "rejects"),
            count(l.fetch.requests, "request", "requests"),
        )
    });
    progress::say(format_args!(
        "exported {} in {:.1}s ({:.0}/s) to {}/contacts/extract_date={}: {}, {:.1} MiB; {}; {}; {} ({}), {}, {}, {}, {} dropped, {}, {} rounded{}, run {}{}",
        count(summary.rows, "contact", "contacts"),
        secs,
        summary.rows as f64 / secs.max(1e-3),
        output,
        summary.extract_date,
        count(summary.files.len() as u64, "file", "files"),
        summary.bytes as f64 / (1024.0 * 1024.0),
        reconciliation(f),
        learned(f),
        count(f.requests, "request", "requests"),
        count(f.verification_reads, "repair read", "repair reads"),
        transfer(f),
        count(f.retries.total(), "retry", "retries"),
        count(f.drift_events.len() as u64, "drift event", "drift events"),
        count(f.duplicates_dropped, "duplicate", "duplicates"),
        count(summary.rejects, "reject", "rejects"),
        count(summary.rounded_values, "revenue value", "revenue values"),
        lists,
        summary.run_id,
        retention_suffix(retention),
    ));
}

fn retention_suffix(retention: &str) -> String {
    if retention.is_empty() {
        String::new()
    } else {
        format!("; {retention}")
    }
}
