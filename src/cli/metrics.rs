//! `--metrics-file`: what a run did, in the Prometheus text exposition format, for
//! node_exporter's textfile collector (or anything else that reads that format).
//!
//! The file is written once at the end of every `export` run (not `--dry-run`), successful or
//! not, and replaced atomically: written beside the target under a name the collector skips
//! (it reads `*.prom` only), then renamed over it, so a scrape sees the previous run or this
//! one, never half a file. [`render`] is the pure part; [`Recorder`] gathers what it needs
//! during the run and does the one write.
//!
//! What a failure knows: the exit code, the time, and the requests made so far (the fetcher's
//! live statistics). Nothing is published by a failed run, so its rows, bytes, files and
//! rejects are 0; `trackly_export_last_success_timestamp_seconds` keeps the value the file
//! held before, so "hours since the last success" stays true across failures.
//!
//! Nothing secret goes in: the values are numbers, and the only labels are table names, HTTP
//! statuses and retry causes.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use trackly_export::fetcher::{FetchStats, StatsHandle};
use trackly_export::{RunSummary, Tables};

/// The metric whose value a failed run carries over from the existing file.
const LAST_SUCCESS: &str = "trackly_export_last_success_timestamp_seconds";

/// What one table of the run published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// The table's name (`contacts`, `lists`): the `table` label.
    pub table: &'static str,
    /// Rows published.
    pub rows: u64,
    /// Bytes of Parquet published.
    pub bytes: u64,
    /// Parquet files published.
    pub files: u64,
    /// Records quarantined.
    pub rejects: u64,
}

/// Everything the metrics file says about one run.
#[derive(Debug, Clone)]
pub struct RunMetrics {
    /// When the run ended, in seconds since the Unix epoch.
    pub finished_at: f64,
    /// When the last successful run ended: `finished_at` after a success, the previous file's
    /// value after a failure, `None` when no run is known to have succeeded (written as 0, so
    /// an alert on the age of the last success fires).
    pub last_success: Option<f64>,
    /// The process's exit code.
    pub exit_code: u8,
    /// Wall time of the run.
    pub duration: Duration,
    /// What each table of the run published (zeros after a failure).
    pub written: Vec<Written>,
    /// The fetcher's statistics: requests by status, retries by cause, drift.
    pub fetch: FetchStats,
}

impl RunMetrics {
    /// The metrics of a successful run.
    pub fn success(summary: &RunSummary, fetch: FetchStats, duration: Duration) -> RunMetrics {
        let finished_at = unix_now();
        RunMetrics {
            finished_at,
            last_success: Some(finished_at),
            exit_code: 0,
            duration,
            written: summary
                .tables
                .iter()
                .map(|t| Written {
                    table: t.table.name(),
                    rows: t.rows,
                    bytes: t.bytes,
                    files: t.files.len() as u64,
                    rejects: t.rejects,
                })
                .collect(),
            fetch,
        }
    }

    /// The metrics of a failed run of `tables`, ended with `exit_code`, after a last success
    /// at `last_success` (if any).
    pub fn failure(
        exit_code: u8,
        tables: Tables,
        fetch: FetchStats,
        duration: Duration,
        last_success: Option<f64>,
    ) -> RunMetrics {
        RunMetrics {
            finished_at: unix_now(),
            last_success,
            exit_code,
            duration,
            written: tables
                .iter()
                .map(|table| Written {
                    table: table.name(),
                    ..Written::default()
                })
                .collect(),
            fetch,
        }
    }
}

/// The exposition text: every metric with its `# HELP` and `# TYPE` lines, in a fixed order.
///
/// Values describing the run as a whole are gauges; the `_total` ones count events within the
/// run and are counters (each run starts them afresh, which Prometheus reads as a counter
/// reset, so `increase()` over days adds the runs up).
pub fn render(m: &RunMetrics) -> String {
    let mut out = Families::default();
    run_families(&mut out, m);
    written_families(&mut out, m);
    fetch_families(&mut out, m);
    out.0
}

/// The run as a whole: when it ended, how, and how long it took.
fn run_families(out: &mut Families, m: &RunMetrics) {
    out.family(
        "trackly_export_last_run_timestamp_seconds",
        "gauge",
        "When the last run ended, successful or not (Unix time).",
        &[(Vec::new(), seconds(m.finished_at))],
    );
    out.family(
        LAST_SUCCESS,
        "gauge",
        "When the last successful run ended (Unix time); kept from the previous file by a failed run, 0 before any success.",
        &[(Vec::new(), seconds(m.last_success.unwrap_or(0.0)))],
    );
    out.family(
        "trackly_export_exit_code",
        "gauge",
        "Exit code of the last run: 0 success, 2 configuration, 3 API key refused, 4 API, 5 storage, 6 invalid data, 7 incomplete, 130 interrupted.",
        &[(Vec::new(), m.exit_code.to_string())],
    );
    out.family(
        "trackly_export_duration_seconds",
        "gauge",
        "Wall time of the last run.",
        &[(Vec::new(), seconds(m.duration.as_secs_f64()))],
    );
}

/// What the run published (nothing after a failure) and quarantined.
fn written_families(out: &mut Families, m: &RunMetrics) {
    let by_table = |value: fn(&Written) -> u64| -> Vec<(Vec<(&str, String)>, String)> {
        m.written
            .iter()
            .map(|w| (vec![("table", w.table.to_owned())], value(w).to_string()))
            .collect()
    };
    let sum = |value: fn(&Written) -> u64| m.written.iter().map(value).sum::<u64>().to_string();
    out.family(
        "trackly_export_rows_written",
        "gauge",
        "Rows the last run published, by table (0 after a failure: nothing is published).",
        &by_table(|w| w.rows),
    );
    out.family(
        "trackly_export_bytes_written",
        "gauge",
        "Bytes of Parquet the last run published, every table.",
        &[(Vec::new(), sum(|w| w.bytes))],
    );
    out.family(
        "trackly_export_files_written",
        "gauge",
        "Parquet files the last run published, every table.",
        &[(Vec::new(), sum(|w| w.files))],
    );
    out.family(
        "trackly_export_rejects_total",
        "counter",
        "Records the last run quarantined (--on-invalid quarantine), every table.",
        &[(Vec::new(), sum(|w| w.rejects))],
    );
}

/// What the fetcher saw of the API: responses, retries and drift.
fn fetch_families(out: &mut Families, m: &RunMetrics) {
    let statuses: Vec<_> = m
        .fetch
        .responses_by_status
        .iter()
        .map(|(status, n)| (vec![("status", status.to_string())], n.to_string()))
        .collect();
    out.family(
        "trackly_export_http_requests_total",
        "counter",
        "API responses of the last run by HTTP status, retried ones included.",
        &statuses,
    );
    let r = &m.fetch.retries;
    let causes: Vec<_> = [
        ("rate_limited", r.rate_limited),
        ("server_error", r.server_error),
        ("timeout", r.timeout),
        ("connection", r.connection),
        ("invalid_body", r.invalid_body),
    ]
    .into_iter()
    .map(|(cause, n)| (vec![("cause", cause.to_owned())], n.to_string()))
    .collect();
    out.family(
        "trackly_export_retries_total",
        "counter",
        "API requests the last run retried, by cause.",
        &causes,
    );
    out.family(
        "trackly_export_drift_events_total",
        "counter",
        "Page boundaries where the last run saw the listing move (each verified).",
        &[(Vec::new(), m.fetch.drift_events.len().to_string())],
    );
}

/// The exposition text being built.
#[derive(Default)]
struct Families(String);

impl Families {
    /// One metric family: its `# HELP`, its `# TYPE`, then a line per sample.
    fn family(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        samples: &[(Vec<(&str, String)>, String)],
    ) {
        let out = &mut self.0;
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            out.push_str(name);
            if !labels.is_empty() {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                let _ = write!(out, "{{{}}}", labels.join(","));
            }
            let _ = writeln!(out, " {value}");
        }
    }
}

/// Seconds with millisecond precision.
fn seconds(secs: f64) -> String {
    format!("{secs:.3}")
}

/// A label value as the format wants it: backslash, double quote and line feed escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', r#"\""#)
        .replace('\n', r"\n")
}

/// A `# HELP` text: backslash and line feed escaped (quotes may stay).
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The last-success time an earlier run wrote to `text`, if it did.
pub fn last_success_in(text: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(LAST_SUCCESS)?.strip_prefix(' ')?;
        value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t > 0.0)
    })
}

/// The metrics file must be a file name in an existing directory: found out now rather than
/// after an hour of exporting, when the run's metrics could not be written.
pub fn check_file(path: &Path) -> anyhow::Result<()> {
    if path.file_name().is_none() || path.is_dir() {
        anyhow::bail!(
            "--metrics-file {}: not a file name (a directory?)",
            path.display()
        );
    }
    let dir = directory_of(path);
    if !dir.is_dir() {
        anyhow::bail!(
            "--metrics-file {}: the directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// The directory `path` is in (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `text` atomically: a temporary file in the same directory (the rename
/// must not cross file systems), flushed to disk, then renamed over `path`.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = directory_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A dot name without `.prom` at the end: the textfile collector never reads it.
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// How an `export` run ended, as far as the metrics care.
pub enum Outcome<'a> {
    /// It published `RunSummary`.
    Success(&'a RunSummary),
    /// It failed with this exit code.
    Failure(u8),
    /// `--dry-run`: not a run; the file is left as it is.
    DryRun,
}

/// Gathers what the metrics of one `export` run need, and writes them at its end.
pub struct Recorder {
    path: Option<PathBuf>,
    started: Instant,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    live: Option<StatsHandle>,
    tables: Option<Tables>,
}

impl Recorder {
    /// A recorder writing to `path` (none: a recorder that writes nothing), started now.
    pub fn new(path: Option<PathBuf>) -> Recorder {
        Recorder {
            path,
            started: Instant::now(),
            seen: Mutex::default(),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        super::progress::locked(&self.seen)
    }

    /// The tables the run exports, once the configuration is resolved.
    pub fn tables(&self, tables: Tables) {
        self.seen().tables = Some(tables);
    }

    /// The fetcher's live statistics, from the export's start: a failed run still tells what
    /// its requests got.
    pub fn watch(&self, live: StatsHandle) {
        self.seen().live = Some(live);
    }

    /// Writes the metrics of the run that ended with `outcome`. A file that cannot be written
    /// is logged, not fatal: the export's own outcome is what the exit code tells, and the
    /// stale `last_run` time is what monitoring notices.
    pub fn finish(&self, outcome: Outcome<'_>) {
        let Some(path) = &self.path else { return };
        let duration = self.started.elapsed();
        let (fetch, tables) = {
            let seen = self.seen();
            let fetch = seen
                .live
                .as_ref()
                .map(StatsHandle::snapshot)
                .unwrap_or_default();
            (fetch, seen.tables.unwrap_or(Tables::ALL))
        };
        let metrics = match outcome {
            Outcome::DryRun => return,
            Outcome::Success(summary) => RunMetrics::success(summary, fetch, duration),
            Outcome::Failure(code) => {
                let previous = std::fs::read_to_string(path).ok();
                let last_success = previous.as_deref().and_then(last_success_in);
                RunMetrics::failure(code, tables, fetch, duration, last_success)
            }
        };
        if let Err(error) = write_atomically(path, &render(&metrics)) {
            tracing::error!(
                path = %path.display(),
                %error,
                "could not write the metrics file"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use trackly_export::Table;

    fn metrics() -> RunMetrics {
        let mut fetch = FetchStats::default();
        fetch.responses_by_status.insert(200, 41);
        fetch.responses_by_status.insert(500, 3);
        fetch.retries.server_error = 3;
        RunMetrics {
            finished_at: 1_750_000_000.5,
            last_success: Some(1_750_000_000.5),
            exit_code: 0,
            duration: Duration::from_millis(12_345),
            written: vec![
                Written {
                    table: Table::Lists.name(),
                    rows: 3,
                    bytes: 1_000,
                    files: 1,
                    rejects: 0,
                },
                Written {
                    table: Table::Contacts.name(),
                    rows: 4_000,
                    bytes: 90_000,
                    files: 2,
                    rejects: 1,
                },
            ],
            fetch,
        }
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let text = render(&metrics());
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{name} has no # TYPE before it");
            }
        }
        assert_eq!(
            text.matches("# HELP ").count(),
            text.matches("# TYPE ").count()
        );
    }

    #[test]
    fn a_success_reports_per_table_rows_totals_statuses_and_every_retry_cause() {
        let text = render(&metrics());
        for line in [
            "trackly_export_last_run_timestamp_seconds 1750000000.500",
            "trackly_export_last_success_timestamp_seconds 1750000000.500",
            "trackly_export_exit_code 0",
            "trackly_export_duration_seconds 12.345",
            "trackly_export_rows_written{table=\"contacts\"} 4000",
            "trackly_export_rows_written{table=\"lists\"} 3",
            "trackly_export_bytes_written 91000",
            "trackly_export_files_written 3",
            "trackly_export_rejects_total 1",
            "trackly_export_http_requests_total{status=\"200\"} 41",
            "trackly_export_http_requests_total{status=\"500\"} 3",
            "trackly_export_retries_total{cause=\"server_error\"} 3",
            "trackly_export_retries_total{cause=\"rate_limited\"} 0",
            "trackly_export_drift_events_total 0",
            "# TYPE trackly_export_retries_total counter",
            "# TYPE trackly_export_rows_written gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_failure_publishes_nothing_and_writes_zero_before_any_success() {
        let m = RunMetrics::failure(3, Tables::ALL, FetchStats::default(), Duration::ZERO, None);
        let text = render(&m);
        assert!(text.contains("\ntrackly_export_exit_code 3\n"), "{text}");
        assert!(
            text.contains(&format!("\n{LAST_SUCCESS} 0.000\n")),
            "{text}"
        );
        assert!(text.contains("trackly_export_rows_written{table=\"contacts\"} 0"));
        assert!(text.contains("trackly_export_rows_written{table=\"lists\"} 0"));
        // No response at all: the family is declared, without samples.
        assert!(text.contains("# TYPE trackly_export_http_requests_total counter\n# HELP"));
    }

    #[test]
    fn the_last_success_is_read_back_from_an_earlier_file() {
        let text = render(&metrics());
        assert_eq!(last_success_in(&text), Some(1_750_000_000.5));
        assert_eq!(last_success_in("garbage\n"), None);
        assert_eq!(last_success_in(&format!("{LAST_SUCCESS} 0.000\n")), None);
        assert_eq!(last_success_in(&format!("{LAST_SUCCESS}_other 5\n")), None);
    }

    #[test]
    fn label_values_and_help_texts_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
        assert_eq!(escape_help("a\\b\nc \"q\""), r#"a\\b\nc "q""#);
    }

    #[test]
    fn the_file_is_replaced_whole_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trackly.prom");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("trackly.prom")]);
    }
}
