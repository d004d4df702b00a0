//! Every `export` setting, defined once: its flag, environment variable, config-file key,
//! default (as help shows it), help text, and how its value reaches the library (ripgrep's
//! `flags/defs.rs` is the model). The clap arguments, the `--config` keys and the resolution
//! (flag > environment > file > default) are all derived from [`SETTINGS`]; what they fill is
//! [`ExportConfig`], in the library's types.
//!
//! A setting parses its text into the library's type and sets it; whether the value is in
//! range is the library's to say ([`ClientBuilder::build`](trackly_export::ClientBuilder::build),
//! [`ExportBuilder::check`](trackly_export::ExportBuilder::check)), and its typed error names
//! the setting by the library's name, which [`Setting::option`] maps back to the flag. So the
//! CLI and the library cannot disagree on a range, and a default shown here that is not the
//! library's fails a unit test.

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ValueHint};
use serde::de::{Deserialize, DeserializeSeed, Deserializer};
use trackly_export::{
    ClientBuilder, Compression, ConfigError, E164, Export, ExportBuilder, ExportError,
    InvalidPolicy, LocationOptions, OutputLocation, Query, RetryConfig, StorageOptions,
    TableFormat, Tables, WriterOptions,
};

/// Help headings of `export`, in the order a user needs them.
const WHAT: &str = "What to export";
const API: &str = "API";
const PARQUET: &str = "Output and Parquet";
const RELIABILITY: &str = "Reliability";
pub(super) const LOGGING: &str = "Logging";

/// Parses a setting's text into the configuration, or says why the text is not a value
/// (the value first: `"lz4" is not one of zstd, snappy, none`).
type Apply = fn(&mut ExportConfig, &str) -> Result<(), String>;

/// Checks a flag's text as clap does for a typed argument: the text itself, or why not.
type ClapCheck = fn(&str) -> Result<String, String>;

/// One `export` setting.
#[derive(Debug)]
pub(super) struct Setting {
    /// The long flag, without `--`; the clap argument's id too.
    pub(super) flag: &'static str,
    short: Option<char>,
    env: Option<&'static str>,
    pub(super) kind: Kind,
    heading: Option<&'static str>,
    help: &'static str,
    /// The default as help shows it (`[default: …]`); the value itself is the library's.
    default: Option<&'static str>,
    /// Its key in the `--config` file.
    file: FileKey,
    /// What its value is, in the file and (a number) on the command line.
    ty: Type,
    /// The library's name for it in its typed errors (`FetchError::InvalidConfig::field`,
    /// `ConfigError::InvalidOption::option`).
    option: Option<&'static str>,
    /// Said after any error about its value (`; omit it to keep everything`).
    hint: &'static str,
    apply: Apply,
}

/// How a setting is given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `--flag VALUE`.
    Value(&'static str),
    /// `--flag PATH`: shells complete it as a path.
    Path(&'static str),
    /// `--flag true|false`.
    Bool(&'static str),
    /// `--flag`, alone.
    Switch,
    /// `--flag VALUE`, repeatable.
    Repeated(&'static str),
    /// `--flag VALUE`, a secret: its environment variable's value is never shown.
    Secret(&'static str),
}

/// Where a setting is in the `--config` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKey {
    /// The flag with `_` for `-`.
    Flag,
    /// A switch whose key says the opposite (`--no-http-compression`, `http_compression`).
    Negated(&'static str),
    /// Not in the file (a secret, or what only makes sense for one run).
    None,
}

/// The type of a setting's value. The `--config` file must give it in this TOML type (a
/// string, a boolean, an integer, a float; `tables` a string or an array of names), refused
/// otherwise as serde says it (`invalid type: string "10", expected u32`); a number flag or
/// variable must be text of the number (`--per-page ten` is a usage error before anything
/// runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Text,
    Path,
    Bool,
    Tables,
    U32,
    U64,
    Usize,
    I32,
    F64,
}

/// `tables` in the file: `"contacts,lists"` as on the command line, or an array of names.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum TablesSetting {
    Text(String),
    Names(Vec<String>),
}

impl Type {
    /// How clap checks the text of a number flag and its variable: the text itself, or why
    /// it is not a number of this type.
    fn clap_check(self) -> Option<ClapCheck> {
        Some(match self {
            Type::U32 => is_a::<u32>,
            Type::U64 => is_a::<u64>,
            Type::Usize => is_a::<usize>,
            Type::I32 => is_a::<i32>,
            Type::F64 => is_a::<f64>,
            Type::Text | Type::Path | Type::Bool | Type::Tables => return None,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Type {
    /// The value as a flag would give it.
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, value: D) -> Result<String, D::Error> {
        fn text<'de, T: Deserialize<'de> + ToString, D: Deserializer<'de>>(
            value: D,
        ) -> Result<String, D::Error> {
            T::deserialize(value).map(|v| v.to_string())
        }
        match self {
            Type::Text => String::deserialize(value),
            Type::Path => PathBuf::deserialize(value).map(|p| p.to_string_lossy().into_owned()),
            Type::Bool => text::<bool, D>(value),
            Type::Tables => TablesSetting::deserialize(value).map(|tables| match tables {
                TablesSetting::Text(text) => text,
                TablesSetting::Names(names) => names.join(","),
            }),
            Type::U32 => text::<u32, D>(value),
            Type::U64 => text::<u64, D>(value),
            Type::Usize => text::<usize, D>(value),
            Type::I32 => text::<i32, D>(value),
            Type::F64 => text::<f64, D>(value),
        }
    }
}

/// Reads a setting's value in the `--config` file, as its text on the command line.
impl<'de> DeserializeSeed<'de> for &Setting {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, value: D) -> Result<String, D::Error> {
        self.ty.deserialize(value)
    }
}

/// A setting read from `--flag`, `env` and the file's key of the same name, which `apply`
/// parses into the configuration (one applied elsewhere does nothing here).
const fn setting(
    flag: &'static str,
    kind: Kind,
    env: &'static str,
    heading: &'static str,
    help: &'static str,
    apply: Apply,
) -> Setting {
    Setting {
        flag,
        short: None,
        env: Some(env),
        kind,
        heading: Some(heading),
        help,
        default: None,
        file: FileKey::Flag,
        ty: match kind {
            Kind::Path(_) => Type::Path,
            Kind::Bool(_) | Kind::Switch => Type::Bool,
            _ => Type::Text,
        },
        option: None,
        hint: "",
        apply,
    }
}

/// For what `config` reads apart from the rest.
fn elsewhere(_: &mut ExportConfig, _: &str) -> Result<(), String> {
    Ok(())
}

impl Setting {
    const fn default(mut self, shown: &'static str) -> Self {
        self.default = Some(shown);
        self
    }

    const fn option(mut self, library_name: &'static str) -> Self {
        self.option = Some(library_name);
        self
    }

    const fn file(mut self, key: FileKey) -> Self {
        self.file = key;
        self
    }

    const fn typed(mut self, ty: Type) -> Self {
        self.ty = ty;
        self
    }

    const fn hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }

    const fn no_env(mut self) -> Self {
        self.env = None;
        self
    }

    /// The clap argument.
    pub(super) fn arg(&self) -> Arg {
        let help = match self.default {
            Some(default) => format!("{} [default: {default}]", self.help),
            None => self.help.to_owned(),
        };
        let mut arg = Arg::new(self.flag).long(self.flag).help(help);
        arg = match self.kind {
            Kind::Value(name) => arg.value_name(name),
            Kind::Path(name) => arg.value_name(name).value_hint(ValueHint::AnyPath),
            Kind::Bool(name) => arg
                .value_name(name)
                .value_parser(PossibleValuesParser::new(["true", "false"])),
            Kind::Switch => arg.action(ArgAction::SetTrue),
            Kind::Repeated(name) => arg.value_name(name).action(ArgAction::Append),
            Kind::Secret(name) => arg.value_name(name).hide_env_values(true),
        };
        if let Some(check) = self.ty.clap_check() {
            arg = arg.value_parser(check);
        }
        if let Some(short) = self.short {
            arg = arg.short(short);
        }
        if let Some(env) = self.env {
            arg = arg.env(env);
        }
        if let Some(heading) = self.heading {
            arg = arg.help_heading(heading);
        }
        arg
    }

    /// The setting's key in the `--config` file, and whether its value there is the
    /// opposite of the switch's.
    pub(super) fn file_key(&self) -> Option<(String, bool)> {
        match self.file {
            FileKey::Flag => Some((self.flag.replace('-', "_"), false)),
            FileKey::Negated(key) => Some((key.to_owned(), true)),
            FileKey::None => None,
        }
    }

    /// Sets `config` from the setting's text.
    pub(super) fn apply(&self, config: &mut ExportConfig, text: &str) -> anyhow::Result<()> {
        (self.apply)(config, text).map_err(|reason| self.refused(&reason))
    }

    /// A value of the setting refused for `reason`, said as every such error is: the flag,
    /// then why (`--zstd-level 30 is out of range 1..=22`), then the setting's hint.
    pub(super) fn refused(&self, reason: &str) -> anyhow::Error {
        anyhow::anyhow!("--{} {reason}{}", self.flag, self.hint)
    }

    /// The setting the library calls `option` in its errors.
    pub(super) fn by_option(option: &str) -> Option<&'static Setting> {
        SETTINGS.iter().find(|s| s.option == Some(option))
    }

    /// The setting of `--flag`.
    pub(super) fn by_flag(flag: &str) -> &'static Setting {
        SETTINGS
            .iter()
            .find(|s| s.flag == flag)
            .unwrap_or_else(|| unreachable!("no setting --{flag}"))
    }
}

/// `text` itself if it is a `T`, or why not in `T`'s words (clap's check of a number flag).
fn is_a<T: std::str::FromStr>(text: &str) -> Result<String, String>
where
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

/// `text` as a number: clap or the file's type has made sure it is one.
fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

/// `text` as `true` or `false`: clap or the file's type has made sure it is one.
fn boolean(text: &str) -> Result<bool, String> {
    one_of(text, &[("true", true), ("false", false)])
}

/// `text` as a positive number of seconds (fractions allowed).
fn seconds(text: &str) -> Result<Duration, String> {
    number::<f64>(text)
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .filter(|secs| !secs.is_zero())
        .ok_or_else(|| format!("{text} must be a positive number of seconds"))
}

/// `text` as one of `choices`' names.
fn one_of<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
    choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, value)| *value)
        .ok_or_else(|| format!("{text:?} is not one of {}", names.join(", ")))
}

/// Whether the library takes `level` for zstd, or why not.
fn zstd_level_checked(level: i32) -> Result<(), String> {
    let writer = WriterOptions {
        compression: Compression::Zstd(level),
        ..WriterOptions::default()
    };
    Export::builder()
        .writer(writer)
        .check()
        .map_err(|error| match error {
            ExportError::Config(ConfigError::InvalidOption { reason, .. }) => reason,
            other => other.to_string(),
        })
}

/// Every setting of `export`, in the order `--help` lists them.
#[rustfmt::skip]
pub(super) const SETTINGS: &[Setting] = &[
    Setting { heading: None, ..setting("config", Kind::Path("FILE"), "TRACKLY_CONFIG", "",
        "A TOML file with any of these settings (flag > environment > file > default)",
        elsewhere) }.file(FileKey::None),
    Setting { short: Some('o'), ..setting("output", Kind::Value("DIR|URL"), "TRACKLY_OUTPUT", WHAT,
        "Where to write: a local directory, s3://bucket/prefix, gs://bucket/prefix, \
         az://container/prefix, abfss://container@account.dfs.core.windows.net/prefix or \
         https://account.blob.core.windows.net/container/prefix",
        |c, v| { c.output = Some(v.to_owned()); Ok(()) }) },
    // Its variable (one KEY=VALUE a line) and the file's table are merged per key with the
    // flags: see `config::storage_options`.
    setting("storage-option", Kind::Repeated("KEY=VALUE"), "", WHAT,
        "An object-store setting for the output, as deltalake's and Polars' storage_options take \
         it (aws_endpoint, google_service_account_key, azure_storage_account_key, ...); \
         repeatable; over the AWS_*, GOOGLE_*, AZURE_* variables. The environment form is \
         TRACKLY_STORAGE_OPTIONS (KEY=VALUE, one per line). Values are never printed",
        elsewhere).no_env().file(FileKey::None),
    setting("tables", Kind::Value("TABLES"), "TRACKLY_TABLES", WHAT,
        "Tables to write, comma-separated: contacts (GET /v2/contacts) and lists (GET /v2/lists, \
         deleted lists included), published together",
        |c, v| { c.tables = v.parse::<Tables>().map_err(|e| e.to_string())?; Ok(()) })
        .default("contacts,lists").typed(Type::Tables),
    setting("list-number", Kind::Value("E164"), "TRACKLY_LIST_NUMBER", WHAT,
        "Only contacts of this sending list (E.164, e.g. +18005551234); the lists table always \
         has every list",
        |c, v| { c.query.list_number = Some(E164::parse(v).map_err(|e| e.to_string())?); Ok(()) }),
    setting("active", Kind::Value("true|false"), "TRACKLY_ACTIVE", WHAT,
        "Only active (true) or inactive (false) contacts; omit for all (contacts only)",
        |c, v| { c.query.active = Some(boolean(v)?); Ok(()) }).hint(" (omit it for all contacts)"),
    setting("extract-date", Kind::Value("YYYY-MM-DD"), "TRACKLY_EXTRACT_DATE", WHAT,
        "The partition date, YYYY-MM-DD",
        |c, v| {
            let date = NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map_err(|e| format!("{v:?} is not a date in YYYY-MM-DD form: {e}"))?;
            c.extract_date = Some(date);
            Ok(())
        }).default("today, UTC"),
    setting("dry-run", Kind::Switch, "", WHAT,
        "Check the configuration and the API key with one request, print the plan, write nothing",
        |c, v| { c.dry_run = boolean(v)?; Ok(()) }).no_env().file(FileKey::None),
    setting("api-key-file", Kind::Path("PATH"), "TRACKLY_API_KEY_FILE", API,
        "Read the API key from this file (whitespace and line breaks around it are ignored)",
        |c, v| { c.api_key_file = Some(PathBuf::from(v)); Ok(()) }),
    // Read with where it came from: see `config::api_key`.
    setting("api-key", Kind::Secret("KEY"), "TRACKLY_API_KEY", API,
        "The API key. Prefer TRACKLY_API_KEY or --api-key-file: a flag shows in the process list",
        elsewhere).file(FileKey::None),
    setting("base-url", Kind::Value("URL"), "TRACKLY_BASE_URL", API, "API base URL",
        |c, v| c.with_client(|b| b.with_base_url(v)))
        .default(trackly_export::fetcher::DEFAULT_BASE_URL).option("base_url"),
    setting("concurrency", Kind::Value("N"), "TRACKLY_CONCURRENCY", API,
        "Most API requests in flight",
        |c, v| { let n = number(v)?; c.with_client(|b| b.with_concurrency(n)) })
        .default("8").option("concurrency").typed(Type::Usize),
    setting("decode-threads", Kind::Value("N"), "TRACKLY_DECODE_THREADS", API,
        "Threads that decode response bodies into columns, in parallel with the requests",
        |c, v| { let n = number(v)?; c.with_client(|b| b.with_decode_threads(n)) })
        .default("one per core").option("decode_threads").typed(Type::Usize),
    setting("per-page", Kind::Value("N"), "TRACKLY_PER_PAGE", API, "Contacts per page, 1 to 1000",
        |c, v| { let n = number(v)?; c.with_client(|b| b.with_per_page(n)) })
        .default("1000").option("per_page").typed(Type::U32)
        .hint(" (the API's documented maximum is 1000)"),
    setting("max-rps", Kind::Value("N"), "TRACKLY_MAX_RPS", API,
        "Client-side ceiling on API requests per second",
        |c, v| { let rps = number(v)?; c.with_client(|b| b.with_max_rps(Some(rps))) })
        .option("max_rps").typed(Type::F64),
    setting("request-timeout", Kind::Value("SECS"), "TRACKLY_REQUEST_TIMEOUT", API,
        "Seconds one API request may take, body included",
        |c, v| { let secs = seconds(v)?; c.with_client(|b| b.with_request_timeout(secs)) })
        .default("60").option("request_timeout").typed(Type::F64),
    setting("no-http-compression", Kind::Switch, "TRACKLY_NO_HTTP_COMPRESSION", API,
        "Do not ask the API for compressed bodies (by default zstd, brotli or gzip, decoded as \
         they arrive); `http_compression = false` in the config file does the same",
        |c, v| { let off = boolean(v)?; c.with_client(|b| b.with_http_compression(!off)) })
        .file(FileKey::Negated("http_compression")),
    setting("allow-http", Kind::Bool("ALLOW_HTTP"), "TRACKLY_ALLOW_HTTP", API,
        "Allow plain http:// to non-loopback API or S3 endpoints (secrets travel unencrypted)",
        |c, v| {
            c.allow_http = boolean(v)?;
            let on = c.allow_http;
            c.with_client(|b| b.with_allow_http(on))
        }),
    setting("compression", Kind::Value("zstd|snappy|none"), "TRACKLY_COMPRESSION", PARQUET,
        "Parquet compression: zstd, snappy or none",
        |c, v| {
            let codecs = [("zstd", Compression::default()), ("snappy", Compression::Snappy),
                          ("none", Compression::None)];
            c.writer.compression = one_of(v, &codecs)?;
            Ok(())
        }).default("zstd"),
    // After `compression`: a level is zstd's alone.
    setting("zstd-level", Kind::Value("N"), "TRACKLY_ZSTD_LEVEL", PARQUET, "zstd level, 1 to 22",
        |c, v| {
            let level = number(v)?;
            match &mut c.writer.compression {
                Compression::Zstd(zstd) => *zstd = level,
                // Another codec ignores the level, but one out of range is still refused.
                _ => zstd_level_checked(level)?,
            }
            Ok(())
        }).default("3").option("compression").typed(Type::I32),
    setting("file-size", Kind::Value("MIB"), "TRACKLY_FILE_SIZE", PARQUET,
        "Target size of one Parquet file in MiB",
        |c, v| { c.writer.target_file_bytes = number::<u64>(v)?.saturating_mul(1 << 20); Ok(()) })
        .default("256").option("target_file_bytes").typed(Type::U64).hint(" (MiB)"),
    setting("row-group-rows", Kind::Value("N"), "TRACKLY_ROW_GROUP_ROWS", PARQUET,
        "Rows per Parquet row group",
        |c, v| { c.writer.row_group_rows = number(v)?; Ok(()) })
        .default("131072").option("row_group_rows").typed(Type::Usize),
    setting("batch-size", Kind::Value("N"), "TRACKLY_BATCH_SIZE", PARQUET,
        "Rows per Arrow record batch",
        |c, v| { c.batch_size = number(v)?; Ok(()) })
        .default("8192").option("batch_size").typed(Type::Usize),
    setting("bloom-filter", Kind::Bool("BLOOM_FILTER"), "TRACKLY_BLOOM_FILTER", PARQUET,
        "Write a bloom filter for phone_number",
        |c, v| { c.writer.bloom_filter_phone = boolean(v)?; Ok(()) }),
    setting("on-invalid", Kind::Value("fail|quarantine"), "TRACKLY_ON_INVALID", PARQUET,
        "What to do with a contact that does not fit the schema: fail or quarantine",
        |c, v| {
            let policies = [("fail", InvalidPolicy::Fail), ("quarantine", InvalidPolicy::Quarantine)];
            c.on_invalid = one_of(v, &policies)?;
            Ok(())
        }).default("fail"),
    setting("retain-days", Kind::Value("N"), "TRACKLY_RETAIN_DAYS", PARQUET,
        "After a successful run, delete each exported table's extract_date= folders older than N \
         days before the run's extract date; only folders this tool wrote (with its \
         _manifest.json)",
        |c, v| { c.retain_days = Some(number(v)?); Ok(()) })
        .default("keep everything").option("retain_days").typed(Type::U32)
        .hint("; omit it to keep everything"),
    setting("table-format", Kind::Value("parquet|delta"), "TRACKLY_TABLE_FORMAT", PARQUET,
        "How each table is published: parquet (extract_date= folders with _manifest.json and \
         _SUCCESS) or delta (a Delta Lake table partitioned by extract_date, one commit per run)",
        |c, v| { c.table_format = v.parse::<TableFormat>().map_err(|e| e.to_string())?; Ok(()) })
        .default("parquet"),
    setting("vacuum-retain-hours", Kind::Value("H"), "TRACKLY_VACUUM_RETAIN_HOURS", PARQUET,
        "Delta only: after each commit, delete the data files that earlier commits removed more \
         than H hours ago (VACUUM); 0 never vacuums",
        |c, v| {
            let hours: u64 = number(v)?;
            c.vacuum_retention = (hours > 0).then(|| Duration::from_secs(hours.saturating_mul(3600)));
            Ok(())
        }).default("168, 7 days").typed(Type::U64),
    setting("max-attempts", Kind::Value("N"), "TRACKLY_MAX_ATTEMPTS", RELIABILITY,
        "Attempts per page before giving up",
        |c, v| { c.retry.max_attempts = number(v)?; Ok(()) })
        .default("10").option("max_attempts").typed(Type::U32),
    setting("retry-timeout", Kind::Value("SECS"), "TRACKLY_RETRY_TIMEOUT", RELIABILITY,
        "Seconds one page may take, retries and their waits included, before giving up on it; a \
         Retry-After longer than what is left gives up at once",
        |c, v| { c.retry.retry_timeout = seconds(v)?; Ok(()) })
        .default("300").option("retry_timeout").typed(Type::F64),
    setting("dedup-window", Kind::Value("PAGES"), "TRACKLY_DEDUP_WINDOW", RELIABILITY,
        "Pages behind the current one that de-duplication remembers; 0 remembers every contact \
         of the run (memory grows with the count)",
        |c, v| {
            let pages: u64 = number(v)?;
            c.with_client(|b| b.with_dedup_window((pages > 0).then_some(pages)))
        })
        .default("256").typed(Type::U64),
    setting("resume", Kind::Switch, "TRACKLY_RESUME", RELIABILITY,
        "Continue the newest interrupted run of the same query and extract date: its finished \
         files are kept and their pages not fetched again",
        |c, v| { c.resume = boolean(v)?; Ok(()) }).file(FileKey::None),
    // Read before the rest, so that a configuration error is in the metrics too: see
    // `config::metrics_file`.
    setting("metrics-file", Kind::Path("PATH"), "TRACKLY_METRICS_FILE", LOGGING,
        "Write the run's metrics to this file in the Prometheus text format (for node_exporter's \
         textfile collector), on success and on failure; replaced atomically",
        elsewhere),
];

/// A fully resolved, validated `export` configuration, in the library's types.
#[derive(Debug)]
pub struct ExportConfig {
    pub client: ClientBuilder,
    /// Applied to `client` once every setting is.
    pub retry: RetryConfig,
    pub query: Query,
    /// The tables to write (`--tables`).
    pub tables: Tables,
    pub output: Option<String>,
    /// `--storage-option`s over `TRACKLY_STORAGE_OPTIONS` over the file's `storage_options`.
    pub storage_options: StorageOptions,
    pub allow_http: bool,
    pub writer: WriterOptions,
    pub batch_size: usize,
    pub on_invalid: InvalidPolicy,
    pub extract_date: Option<NaiveDate>,
    /// `--retain-days`: days of date folders kept before the run's (none: keep everything).
    pub retain_days: Option<u32>,
    pub table_format: TableFormat,
    /// `--vacuum-retain-hours` (Delta only; `None`: never vacuum).
    pub vacuum_retention: Option<Duration>,
    pub dry_run: bool,
    pub resume: bool,
    pub api_key_file: Option<PathBuf>,
    /// The key was given with `--api-key` on the command line (it shows in `ps`).
    pub key_on_command_line: bool,
    /// Where the key came from, for the message when the API refuses it.
    pub key_source: String,
}

impl Default for ExportConfig {
    /// The library's defaults, as a run without any setting gets them.
    fn default() -> Self {
        ExportConfig {
            client: ClientBuilder::new(),
            retry: RetryConfig::default(),
            query: Query::all(),
            tables: Tables::default(),
            output: None,
            storage_options: StorageOptions::default(),
            allow_http: false,
            writer: WriterOptions::default(),
            batch_size: trackly_export::contacts::DEFAULT_BATCH_SIZE,
            on_invalid: InvalidPolicy::default(),
            extract_date: None,
            retain_days: None,
            table_format: TableFormat::default(),
            vacuum_retention: Some(trackly_export::DEFAULT_VACUUM_RETENTION),
            dry_run: false,
            resume: false,
            api_key_file: None,
            key_on_command_line: false,
            key_source: String::new(),
        }
    }
}

impl ExportConfig {
    /// Applies `set` to the client's settings.
    pub fn with_client(
        &mut self,
        set: impl FnOnce(ClientBuilder) -> ClientBuilder,
    ) -> Result<(), String> {
        self.client = set(std::mem::take(&mut self.client));
        Ok(())
    }

    /// The output location as given (`resolve` has checked there is one).
    pub fn output(&self) -> &str {
        self.output.as_deref().unwrap_or_default()
    }

    /// The output location, with the storage options and the plain-HTTP rule.
    pub fn location(&self) -> Result<OutputLocation, ExportError> {
        let options = LocationOptions::default()
            .with_allow_http(self.allow_http)
            .with_storage_options(self.storage_options.clone());
        OutputLocation::parse_with(self.output(), options).map_err(ExportError::from)
    }

    /// An export of these settings, without its client and location.
    pub fn export_builder(&self) -> ExportBuilder {
        let builder = Export::builder()
            .query(self.query.clone())
            .writer(self.writer.clone())
            .batch_size(self.batch_size)
            .on_invalid(self.on_invalid)
            .tables(self.tables)
            .resume(self.resume)
            .retain_days(self.retain_days)
            .table_format(self.table_format)
            .vacuum_retention(self.vacuum_retention);
        match self.extract_date {
            Some(date) => builder.extract_date(date),
            None => builder,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults `--help` shows are the library's: setting each one explicitly changes
    /// nothing. Defaults that are not a value (`today, UTC`, `one per core`, ...) are words.
    #[test]
    fn every_default_shown_is_the_librarys() {
        let words = ["today, UTC", "one per core", "keep everything"];
        let untouched = format!("{:?}", ExportConfig::default());
        for setting in SETTINGS {
            let Some(shown) = setting.default.filter(|d| !words.contains(d)) else {
                continue;
            };
            let value = shown.split(", ").next().unwrap_or(shown);
            let mut config = ExportConfig::default();
            setting.apply(&mut config, value).unwrap();
            assert_eq!(format!("{config:?}"), untouched, "--{}", setting.flag);
        }
    }

    #[test]
    fn every_flag_and_variable_is_in_the_readme() {
        let readme = include_str!("../../README.md");
        for setting in SETTINGS.iter().filter(|s| s.flag != "config") {
            assert!(
                readme.contains(&format!("`--{}", setting.flag)),
                "--{}",
                setting.flag
            );
            if let Some(env) = setting.env {
                assert!(readme.contains(env), "{env}");
            }
        }
    }

    #[test]
    fn every_option_the_library_names_is_one_setting() {
        for setting in SETTINGS {
            if let Some(option) = setting.option {
                assert_eq!(
                    Setting::by_option(option).map(|s| s.flag),
                    Some(setting.flag)
                );
            }
        }
    }
}
