//! Raw command-line arguments, as clap parses them. Every `export` flag also reads a
//! `TRACKLY_*` environment variable; values left unset here are filled from the `--config` file,
//! then from defaults, in [`super::config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use trackly_export::Table;

/// The exit codes, in `--help` (top level and `export`) and the README.
macro_rules! exit_codes {
    () => {
        "\
Exit codes:
  0    success
  2    usage or configuration error (bad flag, bad E.164 number, missing API key, ...)
  3    authentication: the API refused the API key (HTTP 401 or 403)
  4    API failure after retries (or an API answer retrying cannot fix)
  5    storage failure (local disk or S3)
  6    invalid data under --on-invalid fail
  7    incomplete: the export could not be proven to hold every contact exactly once
       (nothing published)
  130  interrupted (Ctrl-C / SIGTERM); nothing of the run is left visible"
    };
}

const EXIT_CODES: &str = exit_codes!();

/// What `export --help` ends with: the exit codes, then examples to start from.
const EXPORT_AFTER_HELP: &str = concat!(
    exit_codes!(),
    "

Examples:
  # Every contact and list to S3, the key from a file (a Kubernetes Secret, say)
  trackly-export export -o s3://my-lake/trackly --api-key-file /run/secrets/trackly/api-key

  # The active contacts of one sending list, for a given day, to a local lake
  TRACKLY_API_KEY=trk_... trackly-export export -o /data/lake \\
      --list-number +18005551234 --active true --extract-date 2026-11-27

  # The nightly job: quiet, continuing a failed run of the day, with metrics for node_exporter
  trackly-export export -o /data/lake --api-key-file /etc/trackly/key --resume --quiet \\
      --metrics-file /var/lib/node_exporter/textfile_collector/trackly_export.prom"
);

/// Help headings of `export`, in the order a user needs them.
const WHAT: &str = "What to export";
const API: &str = "API";
const PARQUET: &str = "Output and Parquet";
const RELIABILITY: &str = "Reliability";
const LOGGING: &str = "Logging";

/// Export every contact from the Trackly SMS API to Parquet, on local disk or S3.
#[derive(Debug, Parser)]
#[command(name = "trackly-export", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Print nothing but errors (no progress, no summary).
    #[arg(long, short, global = true, help_heading = LOGGING)]
    pub quiet: bool,

    /// More log output: -v for debug, -vv for trace.
    #[arg(long, short, global = true, action = clap::ArgAction::Count, help_heading = LOGGING)]
    pub verbose: u8,

    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TRACKLY_LOG_FORMAT", help_heading = LOGGING)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export every matching contact to Parquet (the nightly job).
    #[command(after_help = EXPORT_AFTER_HELP)]
    Export(Box<ExportArgs>),
    /// Start an embedded mock API with a realistic data set and export it to a local lake.
    Demo(DemoArgs),
    /// Print the output schema (Arrow) or DDL for DuckDB or Spark.
    Schema(SchemaArgs),
    /// Run the fault-injecting mock Trackly API server (for tests and benchmarks).
    MockServer(Box<MockServerArgs>),
    /// Print a shell completion script to stdout.
    #[command(after_help = COMPLETIONS_AFTER_HELP)]
    Completions(CompletionsArgs),
}

const COMPLETIONS_AFTER_HELP: &str = "\
Install:
  bash  trackly-export completions bash > ~/.local/share/bash-completion/completions/trackly-export
  zsh   trackly-export completions zsh > ~/.zfunc/_trackly-export   (with fpath+=~/.zfunc before compinit)
  fish  trackly-export completions fish > ~/.config/fish/completions/trackly-export.fish";

/// The flags of `export`, grouped under help headings in the order a user needs them: what to
/// export, the API, the files, what to do when things fail, and what to say about it.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A TOML file with any of these settings (flag > environment > file > default).
    #[arg(long, value_name = "FILE", env = "TRACKLY_CONFIG")]
    pub config: Option<PathBuf>,

    /// Where to write: a local directory, s3://bucket/prefix, gs://bucket/prefix,
    /// az://container/prefix, abfss://container@account.dfs.core.windows.net/prefix or
    /// https://account.blob.core.windows.net/container/prefix.
    #[arg(long, short, value_name = "DIR|URL", env = "TRACKLY_OUTPUT", help_heading = WHAT)]
    pub output: Option<String>,

    /// An object-store setting for the output, as deltalake's and Polars' storage_options
    /// take it (aws_endpoint, google_service_account_key, azure_storage_account_key, ...);
    /// repeatable; over the AWS_*, GOOGLE_*, AZURE_* variables. The environment form is
    /// TRACKLY_STORAGE_OPTIONS (KEY=VALUE, one per line). Values are never printed.
    #[arg(long = "storage-option", value_name = "KEY=VALUE", help_heading = WHAT)]
    pub storage_option: Vec<String>,

    /// Tables to write, comma-separated: contacts (GET /v2/contacts) and lists (GET /v2/lists,
    /// deleted lists included), published together [default: contacts,lists].
    #[arg(long, value_name = "TABLES", env = "TRACKLY_TABLES", help_heading = WHAT)]
    pub tables: Option<String>,

    /// Only contacts of this sending list (E.164, e.g. +18005551234); the lists table always
    /// has every list.
    #[arg(long, value_name = "E164", env = "TRACKLY_LIST_NUMBER", help_heading = WHAT)]
    pub list_number: Option<String>,

    /// Only active (true) or inactive (false) contacts; omit for all (contacts only).
    #[arg(long, value_name = "true|false", env = "TRACKLY_ACTIVE", help_heading = WHAT)]
    pub active: Option<String>,

    /// The partition date, YYYY-MM-DD [default: today, UTC].
    #[arg(long, value_name = "YYYY-MM-DD", env = "TRACKLY_EXTRACT_DATE", help_heading = WHAT)]
    pub extract_date: Option<String>,

    /// Check the configuration and the API key with one request, print the plan, write nothing.
    #[arg(long, help_heading = WHAT)]
    pub dry_run: bool,

    /// Read the API key from this file (whitespace and line breaks around it are ignored).
    #[arg(long, value_name = "PATH", env = "TRACKLY_API_KEY_FILE", help_heading = API)]
    pub api_key_file: Option<PathBuf>,

    /// The API key. Prefer TRACKLY_API_KEY or --api-key-file: a flag shows in the process list.
    #[arg(long, value_name = "KEY", env = "TRACKLY_API_KEY", hide_env_values = true, help_heading = API)]
    pub api_key: Option<String>,

    /// API base URL [default: https://app.tracklysms.com/api].
    #[arg(long, value_name = "URL", env = "TRACKLY_BASE_URL", help_heading = API)]
    pub base_url: Option<String>,

    /// Most API requests in flight [default: 8].
    #[arg(long, value_name = "N", env = "TRACKLY_CONCURRENCY", help_heading = API)]
    pub concurrency: Option<usize>,

    /// Threads that decode response bodies into columns, in parallel with the requests
    /// [default: one per core].
    #[arg(long, value_name = "N", env = "TRACKLY_DECODE_THREADS", help_heading = API)]
    pub decode_threads: Option<usize>,

    /// Contacts per page, 1 to 1000 [default: 1000].
    #[arg(long, value_name = "N", env = "TRACKLY_PER_PAGE", help_heading = API)]
    pub per_page: Option<u32>,

    /// Client-side ceiling on API requests per second.
    #[arg(long, value_name = "N", env = "TRACKLY_MAX_RPS", help_heading = API)]
    pub max_rps: Option<f64>,

    /// Seconds one API request may take, body included [default: 60].
    #[arg(long, value_name = "SECS", env = "TRACKLY_REQUEST_TIMEOUT", help_heading = API)]
    pub request_timeout: Option<f64>,

    /// Do not ask the API for compressed bodies (by default zstd, brotli or gzip, decoded as
    /// they arrive); `http_compression = false` in the config file does the same.
    #[arg(long, env = "TRACKLY_NO_HTTP_COMPRESSION", help_heading = API)]
    pub no_http_compression: bool,

    /// Allow plain http:// to non-loopback API or S3 endpoints (secrets travel unencrypted).
    #[arg(long, env = "TRACKLY_ALLOW_HTTP", help_heading = API)]
    pub allow_http: Option<bool>,

    /// Parquet compression: zstd, snappy or none [default: zstd].
    #[arg(long, value_name = "zstd|snappy|none", env = "TRACKLY_COMPRESSION", help_heading = PARQUET)]
    pub compression: Option<String>,

    /// zstd level, 1 to 22 [default: 3].
    #[arg(long, value_name = "N", env = "TRACKLY_ZSTD_LEVEL", help_heading = PARQUET)]
    pub zstd_level: Option<i32>,

    /// Target size of one Parquet file in MiB [default: 256].
    #[arg(long, value_name = "MIB", env = "TRACKLY_FILE_SIZE", help_heading = PARQUET)]
    pub file_size: Option<u64>,

    /// Rows per Parquet row group [default: 131072].
    #[arg(long, value_name = "N", env = "TRACKLY_ROW_GROUP_ROWS", help_heading = PARQUET)]
    pub row_group_rows: Option<usize>,

    /// Rows per Arrow record batch [default: 8192].
    #[arg(long, value_name = "N", env = "TRACKLY_BATCH_SIZE", help_heading = PARQUET)]
    pub batch_size: Option<usize>,

    /// Write a bloom filter for phone_number.
    #[arg(long, env = "TRACKLY_BLOOM_FILTER", help_heading = PARQUET)]
    pub bloom_filter: Option<bool>,

    /// What to do with a contact that does not fit the schema: fail or quarantine [default: fail].
    #[arg(long, value_name = "fail|quarantine", env = "TRACKLY_ON_INVALID", help_heading = PARQUET)]
    pub on_invalid: Option<String>,

    /// After a successful run, delete each exported table's extract_date= folders older than
    /// N days before the run's extract date; only folders this tool wrote (with its
    /// _manifest.json) [default: keep everything].
    #[arg(long, value_name = "N", env = "TRACKLY_RETAIN_DAYS", help_heading = PARQUET)]
    pub retain_days: Option<u32>,

    /// How each table is published: parquet (extract_date= folders with _manifest.json and
    /// _SUCCESS) or delta (a Delta Lake table partitioned by extract_date, one commit per
    /// run) [default: parquet].
    #[arg(long, value_name = "parquet|delta", env = "TRACKLY_TABLE_FORMAT", help_heading = PARQUET)]
    pub table_format: Option<String>,

    /// Delta only: after each commit, delete the data files that earlier commits removed
    /// more than H hours ago (VACUUM); 0 never vacuums [default: 168, 7 days].
    #[arg(long, value_name = "H", env = "TRACKLY_VACUUM_RETAIN_HOURS", help_heading = PARQUET)]
    pub vacuum_retain_hours: Option<u64>,

    /// Attempts per page before giving up [default: 10].
    #[arg(long, value_name = "N", env = "TRACKLY_MAX_ATTEMPTS", help_heading = RELIABILITY)]
    pub max_attempts: Option<u32>,

    /// Seconds one page may take, retries and their waits included, before giving up on it;
    /// a Retry-After longer than what is left gives up at once [default: 300].
    #[arg(long, value_name = "SECS", env = "TRACKLY_RETRY_TIMEOUT", help_heading = RELIABILITY)]
    pub retry_timeout: Option<f64>,

    /// Pages behind the current one that de-duplication remembers; 0 remembers every contact
    /// of the run (memory grows with the count) [default: 256].
    #[arg(long, value_name = "PAGES", env = "TRACKLY_DEDUP_WINDOW", help_heading = RELIABILITY)]
    pub dedup_window: Option<u64>,

    /// Continue the newest interrupted run of the same query and extract date: its finished
    /// files are kept and their pages not fetched again.
    #[arg(long, env = "TRACKLY_RESUME", help_heading = RELIABILITY)]
    pub resume: bool,

    /// Write the run's metrics to this file in the Prometheus text format (for node_exporter's
    /// textfile collector), on success and on failure; replaced atomically.
    #[arg(long, value_name = "PATH", env = "TRACKLY_METRICS_FILE", help_heading = LOGGING)]
    pub metrics_file: Option<PathBuf>,
}

/// `completions <shell>`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Contacts in the embedded data set.
    #[arg(long, default_value_t = 50_000)]
    pub contacts: usize,

    /// The local lake folder to write.
    #[arg(long, short, default_value = "./trackly-lake")]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// What to print.
    #[arg(long, value_enum, default_value_t = SchemaFormat::Arrow)]
    pub format: SchemaFormat,
    /// Only this table [default: every table, contacts then lists].
    #[arg(long, value_enum)]
    pub table: Option<Table>,
}

impl ValueEnum for Table {
    fn value_variants<'a>() -> &'a [Self] {
        &Table::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaFormat {
    Arrow,
    Duckdb,
    Spark,
}

#[derive(Debug, Args)]
pub struct MockServerArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Contacts in the data set.
    #[arg(long, default_value_t = 100_000)]
    pub contacts: usize,
    /// Seed of the data set.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Sending lists in the data set.
    #[arg(long, default_value_t = 4)]
    pub lists: usize,
    /// The key the server accepts.
    #[arg(long, default_value = "trk_test_key")]
    pub api_key: String,
    /// Fixed latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Extra random latency per request, uniform in [0, N] milliseconds.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Requests per second before answering 429 with Retry-After.
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Probability of HTTP 500.
    #[arg(long, default_value_t = 0.0)]
    pub p_500: f64,
    /// Probability of HTTP 502 with an HTML body.
    #[arg(long, default_value_t = 0.0)]
    pub p_502: f64,
    /// Probability of HTTP 503.
    #[arg(long, default_value_t = 0.0)]
    pub p_503: f64,
    /// Probability of a truncated (invalid JSON) body.
    #[arg(long, default_value_t = 0.0)]
    pub p_truncate: f64,
    /// Probability of a connection reset mid-body.
    #[arg(long, default_value_t = 0.0)]
    pub p_reset: f64,
    /// Probability of a very slow body.
    #[arg(long, default_value_t = 0.0)]
    pub p_slow: f64,
    /// How long a slow body takes, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub slow_body_ms: u64,
    /// Drift events, e.g. `insert:500@10` (500 new contacts after request 10) or `delete:100@20`.
    #[arg(long, value_delimiter = ',')]
    pub drift: Vec<String>,
    /// Seed of the fault draws.
    #[arg(long, default_value_t = 1)]
    pub fault_seed: u64,
    /// Contacts sharing a signup_date come back in a new order on every request (an ORDER BY
    /// without a tie-break).
    #[arg(long)]
    pub shuffle_ties: bool,
    /// Report `total` off by up to this many, at random, on every answer.
    #[arg(long, default_value_t = 0)]
    pub total_jitter: u64,
    /// Half the requests see the data as it was this many milliseconds ago (a lagging replica).
    #[arg(long)]
    pub replica_lag_ms: Option<u64>,
    /// New contacts per second while the server runs (on top of the newest-first order).
    #[arg(long, default_value_t = 0.0)]
    pub signups_per_sec: f64,
    /// Contacts deleted per second while the server runs (at random positions).
    #[arg(long, default_value_t = 0.0)]
    pub deletes_per_sec: f64,
    /// Refuse a page past the end with this status (404 as Django REST Framework does, or 400)
    /// instead of the documented empty page.
    #[arg(long)]
    pub past_end_status: Option<u16>,
    /// Page /v2/lists answers, at most N lists a page, with a pagination block (by default
    /// they hold every list and no pagination, as documented).
    #[arg(long, value_name = "N")]
    pub lists_per_page: Option<u32>,
    /// Flip the biggest list between active and deleted on every /v2/lists request, as if
    /// someone kept deleting and restoring it while the lists are read.
    #[arg(long)]
    pub lists_churn: bool,
    /// Refuse every request with the right key as a suspended account does (403, no code).
    #[arg(long)]
    pub suspended: bool,
    /// Send contacts pages compressed when the request accepts it, in these codings by
    /// preference (zstd, br, gzip), e.g. `zstd,br,gzip`. Each page is compressed once and kept.
    #[arg(long, value_delimiter = ',', value_name = "CODINGS")]
    pub compress: Vec<String>,
    /// Bandwidth of one link all connections share, e.g. `100mbit` (bits/s; also kbit, gbit)
    /// or `12MB` (bytes/s; also B, kB, GB): every body is paced through it.
    #[arg(long, value_name = "RATE")]
    pub bandwidth: Option<String>,
}
