//! Raw command-line arguments, as clap parses them. The `export` flags are built from their
//! definitions in [`super::settings`]; each also reads a `TRACKLY_*` environment variable, and
//! what is left unset here comes from the `--config` file, then the library's defaults, in
//! [`super::config`].

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Args, Parser, Subcommand, ValueEnum};
use trackly_export::Table;

use super::settings::{Kind, LOGGING, SETTINGS, Setting};

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

/// The `export` settings as given on the command line or in their environment variables;
/// what each one is (flag, variable, help, config key) is defined in [`settings`](super::settings).
pub struct ExportArgs(clap::ArgMatches);

impl std::fmt::Debug for ExportArgs {
    /// The flags given, never their values: `--api-key`'s is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let given = SETTINGS
            .iter()
            .filter(|s| self.given(s.flag))
            .map(|s| s.flag);
        f.debug_tuple("ExportArgs")
            .field(&given.collect::<Vec<_>>())
            .finish()
    }
}

impl ExportArgs {
    /// The setting's value, if it was given (the last one of a repeated flag; `true` for a
    /// switch that is on).
    pub fn text(&self, setting: &Setting) -> Option<String> {
        match setting.kind {
            _ if !self.given(setting.flag) => None,
            // A switch off (`TRACKLY_RESUME=false`) is not given: the file may still say.
            Kind::Switch => self.0.get_flag(setting.flag).then(|| "true".to_owned()),
            _ => self.values(setting.flag).last().cloned(),
        }
    }

    /// Every value given to `--flag`, in order.
    pub fn values(&self, flag: &str) -> Vec<String> {
        self.0
            .get_many::<String>(flag)
            .map_or_else(Vec::new, |values| values.cloned().collect())
    }

    /// Whether `--flag` itself was on the command line (not its variable).
    pub fn on_command_line(&self, flag: &str) -> bool {
        self.0.value_source(flag) == Some(ValueSource::CommandLine)
    }

    /// Whether `--flag` or its variable was given (a switch left off was not).
    fn given(&self, flag: &str) -> bool {
        matches!(
            self.0.value_source(flag),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    }
}

impl clap::FromArgMatches for ExportArgs {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Ok(ExportArgs(matches.clone()))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Args for ExportArgs {
    fn augment_args(command: clap::Command) -> clap::Command {
        command.args(SETTINGS.iter().map(Setting::arg))
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
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
