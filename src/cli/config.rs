//! Stage two of flag parsing: raw flags (with their environment fallbacks) plus the optional
//! TOML file, resolved once into a validated [`ExportConfig`] (flag > env > file > default).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use serde::Deserialize;
use trackly_export::{
    ApiKey, ClientBuilder, Compression, E164, InvalidApiKey, InvalidPolicy, Query, RetryConfig,
    StorageOptions, WriterOptions,
};
use trackly_export::{Table, TableFormat, Tables};

use super::flags::ExportArgs;

/// The settings a `--config` file may hold: the `export` flags, by the same names with `_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    output: Option<String>,
    tables: Option<TablesSetting>,
    list_number: Option<String>,
    active: Option<String>,
    concurrency: Option<usize>,
    decode_threads: Option<usize>,
    per_page: Option<u32>,
    base_url: Option<String>,
    compression: Option<String>,
    zstd_level: Option<i32>,
    row_group_rows: Option<usize>,
    file_size: Option<u64>,
    batch_size: Option<usize>,
    on_invalid: Option<String>,
    retain_days: Option<u32>,
    table_format: Option<String>,
    vacuum_retain_hours: Option<u64>,
    extract_date: Option<String>,
    max_rps: Option<f64>,
    bloom_filter: Option<bool>,
    request_timeout: Option<f64>,
    max_attempts: Option<u32>,
    retry_timeout: Option<f64>,
    dedup_window: Option<u64>,
    allow_http: Option<bool>,
    api_key_file: Option<PathBuf>,
    http_compression: Option<bool>,
    metrics_file: Option<PathBuf>,
    storage_options: Option<std::collections::BTreeMap<String, String>>,
}

/// `tables` in a config file: `"contacts,lists"` as on the command line, or a TOML array.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum TablesSetting {
    Text(String),
    Names(Vec<String>),
}

impl TablesSetting {
    fn into_text(self) -> String {
        match self {
            TablesSetting::Text(text) => text,
            TablesSetting::Names(names) => names.join(","),
        }
    }
}

/// A fully resolved, validated `export` configuration.
#[derive(Debug)]
pub struct ExportConfig {
    pub client: ClientBuilder,
    pub query: Query,
    /// The tables to write (`--tables`).
    pub tables: Tables,
    pub output: String,
    /// `--storage-option`s over `TRACKLY_STORAGE_OPTIONS` over the file's `storage_options`.
    pub storage_options: StorageOptions,
    pub allow_http: bool,
    pub writer: WriterOptions,
    pub batch_size: Option<usize>,
    pub on_invalid: InvalidPolicy,
    pub extract_date: Option<NaiveDate>,
    /// `--retain-days`: days of date folders kept before the run's (none: keep everything).
    pub retain_days: Option<u32>,
    /// `--table-format`.
    pub table_format: TableFormat,
    /// `--vacuum-retain-hours` (Delta only; `None`: never vacuum).
    pub vacuum_retention: Option<std::time::Duration>,
    pub dry_run: bool,
    pub resume: bool,
    /// The key was given with `--api-key` on the command line (it shows in `ps`).
    pub key_on_command_line: bool,
    /// Where the key came from, for the message when the API refuses it.
    pub key_source: String,
}

/// The `--config` file's settings, read once (none without `--config`).
pub fn file_settings(args: &ExportArgs) -> anyhow::Result<FileConfig> {
    match &args.config {
        Some(path) => read_file(path),
        None => Ok(FileConfig::default()),
    }
}

/// `--metrics-file`, from the flag, its variable or the config file. Known before anything
/// else is validated, so that a configuration error is reported in the metrics too (with a
/// config file that does not parse, only the flag and the variable count).
pub fn metrics_file(args: &ExportArgs, file: Option<&FileConfig>) -> Option<PathBuf> {
    args.metrics_file
        .clone()
        .or_else(|| file.and_then(|f| f.metrics_file.clone()))
}

/// The storage options, each key from the first of: the flags (in order, the last of a key
/// wins), `TRACKLY_STORAGE_OPTIONS` (one `KEY=VALUE` a line), the config file's table.
fn storage_options(
    flags: &[String],
    env: Option<&str>,
    file: std::collections::BTreeMap<String, String>,
) -> anyhow::Result<StorageOptions> {
    let mut options: StorageOptions = file.into_iter().collect();
    let pair = |text: &str, source: &str| -> anyhow::Result<(String, String)> {
        match text.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_owned(), value.to_owned()))
            }
            // Nothing of the text is shown: it may be a secret given without its key.
            Some(_) => bail!("{source}: expected KEY=VALUE, got an empty key"),
            None => bail!("{source}: expected KEY=VALUE, got no `=` (the text is not shown)"),
        }
    };
    if let Some(env) = env {
        for line in env.lines().map(str::trim).filter(|l| !l.is_empty()) {
            options.extend([pair(line, "TRACKLY_STORAGE_OPTIONS")?]);
        }
    }
    for flag in flags {
        options.extend([pair(flag, "--storage-option")?]);
    }
    Ok(options)
}

/// Resolves and validates everything; every error names the setting and the value.
pub fn resolve(
    args: &ExportArgs,
    file: FileConfig,
    key_on_command_line: bool,
) -> anyhow::Result<ExportConfig> {
    if let Some(path) = metrics_file(args, Some(&file)) {
        check_metrics_file(&path)?;
    }
    macro_rules! pick {
        ($field:ident) => {
            args.$field.clone().or(file.$field.clone())
        };
    }

    let output = pick!(output)
        .context("--output is required (a directory, or s3://, gs://, az:// or abfss:// URL)")?;
    let storage_options = storage_options(
        &args.storage_option,
        std::env::var("TRACKLY_STORAGE_OPTIONS").ok().as_deref(),
        file.storage_options.clone().unwrap_or_default(),
    )?;
    let tables = match args
        .tables
        .clone()
        .or_else(|| file.tables.clone().map(TablesSetting::into_text))
    {
        Some(text) => text.parse::<Tables>().context("--tables")?,
        None => Tables::ALL,
    };
    let query = Query {
        list_number: pick!(list_number)
            .map(|n| E164::parse(&n).with_context(|| "--list-number".to_string()))
            .transpose()?,
        active: pick!(active).map(|a| parse_active(&a)).transpose()?,
    };
    if !tables.contains(Table::Contacts) && query != Query::all() {
        // Often set in the environment for the nightly contacts job: not worth failing for.
        tracing::warn!(
            "--list-number and --active filter the contacts, which --tables {tables} does not export; the lists table always holds every list"
        );
    }

    let mut client = ClientBuilder::new();
    if let Some(url) = pick!(base_url) {
        client = client.with_base_url(url);
    }
    let (key, key_source) = api_key(args, file.api_key_file.as_deref(), key_on_command_line)?;
    client = client.with_api_key(key);
    if let Some(n) = pick!(concurrency) {
        if !(1..=256).contains(&n) {
            bail!("--concurrency {n} is out of range 1..=256");
        }
        client = client.with_concurrency(n);
    }
    if let Some(n) = pick!(decode_threads) {
        if !(1..=256).contains(&n) {
            bail!("--decode-threads {n} is out of range 1..=256");
        }
        client = client.with_decode_threads(n);
    }
    if let Some(n) = pick!(per_page) {
        if !(1..=1000).contains(&n) {
            bail!("--per-page {n} is out of range 1..=1000 (the API's documented maximum is 1000)");
        }
        client = client.with_per_page(n);
    }
    if let Some(rps) = pick!(max_rps) {
        if !(rps.is_finite() && rps > 0.0) {
            bail!("--max-rps {rps} must be a positive number of requests per second");
        }
        client = client.with_max_rps(Some(rps));
    }
    if let Some(secs) = pick!(request_timeout) {
        client = client.with_request_timeout(seconds("--request-timeout", secs)?);
    }
    let mut retry = RetryConfig::default();
    if let Some(attempts) = pick!(max_attempts) {
        if attempts == 0 {
            bail!("--max-attempts must be at least 1");
        }
        retry.max_attempts = attempts;
    }
    if let Some(secs) = pick!(retry_timeout) {
        retry.retry_timeout = seconds("--retry-timeout", secs)?;
    }
    client = client.with_retry(retry);
    if let Some(pages) = pick!(dedup_window) {
        client = client.with_dedup_window((pages > 0).then_some(pages));
    }
    let allow_http = pick!(allow_http).unwrap_or(false);
    client = client.with_allow_http(allow_http);
    // The flag (or its variable) can only turn compression off; the file either way.
    let http_compression = !args.no_http_compression && file.http_compression.unwrap_or(true);
    client = client.with_http_compression(http_compression);

    let mut writer = WriterOptions::default();
    let level = pick!(zstd_level);
    if let Some(level) = level
        && !(1..=22).contains(&level)
    {
        bail!("--zstd-level {level} is out of range 1..=22");
    }
    writer.compression = match pick!(compression).as_deref() {
        None | Some("zstd") => Compression::Zstd(level.unwrap_or(3)),
        Some("snappy") => Compression::Snappy,
        Some("none") => Compression::None,
        Some(other) => bail!("--compression {other:?} is not one of zstd, snappy, none"),
    };
    if let Some(rows) = pick!(row_group_rows) {
        if rows == 0 {
            bail!("--row-group-rows must be at least 1");
        }
        writer.row_group_rows = rows;
    }
    if let Some(mib) = pick!(file_size) {
        if mib == 0 {
            bail!("--file-size must be at least 1 (MiB)");
        }
        writer.target_file_bytes = mib.saturating_mul(1024 * 1024);
    }
    if let Some(bloom) = pick!(bloom_filter) {
        writer.bloom_filter_phone = bloom;
    }
    let batch_size = pick!(batch_size);
    if batch_size == Some(0) {
        bail!("--batch-size must be at least 1");
    }
    let on_invalid = match pick!(on_invalid).as_deref() {
        None | Some("fail") => InvalidPolicy::Fail,
        Some("quarantine") => InvalidPolicy::Quarantine,
        Some(other) => bail!("--on-invalid {other:?} is not one of fail, quarantine"),
    };
    let retain_days = pick!(retain_days);
    if retain_days == Some(0) {
        bail!(
            "--retain-days must be at least 1 (days of extract dates kept before the run's); omit it to keep everything"
        );
    }
    let table_format = match pick!(table_format) {
        None => TableFormat::default(),
        Some(name) => name
            .parse::<TableFormat>()
            .map_err(|e| anyhow::anyhow!("--table-format: {e}"))?,
    };
    let vacuum_retention = match pick!(vacuum_retain_hours) {
        None => Some(trackly_export::DEFAULT_VACUUM_RETENTION),
        Some(0) => None,
        Some(hours) => Some(std::time::Duration::from_secs(hours.saturating_mul(3600))),
    };
    let extract_date = pick!(extract_date)
        .map(|d| {
            NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                .with_context(|| format!("--extract-date {d:?} is not a date in YYYY-MM-DD form"))
        })
        .transpose()?;
    // Building the client validates the base URL, the key's characters and the HTTPS rule
    // before any request; the builder itself is kept for the run.
    client.clone().build()?;
    Ok(ExportConfig {
        client,
        query,
        tables,
        output,
        storage_options,
        allow_http,
        writer,
        batch_size,
        on_invalid,
        extract_date,
        retain_days,
        table_format,
        vacuum_retention,
        dry_run: args.dry_run,
        resume: args.resume,
        key_on_command_line,
        key_source,
    })
}

/// The metrics file must be a file name in an existing directory: found out now rather than
/// after an hour of exporting, when the run's metrics could not be written.
fn check_metrics_file(path: &Path) -> anyhow::Result<()> {
    if path.file_name().is_none() || path.is_dir() {
        bail!(
            "--metrics-file {}: not a file name (a directory?)",
            path.display()
        );
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        bail!(
            "--metrics-file {}: the directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// A positive number of seconds given to `flag`.
fn seconds(flag: &str, secs: f64) -> anyhow::Result<Duration> {
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => bail!("{flag} {secs} must be a positive number of seconds"),
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--config {}: cannot read the file", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("--config {}: not a valid config file", path.display()))
}

fn parse_active(text: &str) -> anyhow::Result<bool> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        other => bail!("--active {other:?} is not one of true, false (omit it for all contacts)"),
    }
}

/// `--api-key` / `TRACKLY_API_KEY` first, then the key file (flag, env or config file); the
/// key and where it came from. Whitespace around the key is dropped; whitespace inside it is
/// a usage error that does not show the key.
fn api_key(
    args: &ExportArgs,
    file_key_path: Option<&Path>,
    key_on_command_line: bool,
) -> anyhow::Result<(ApiKey, String)> {
    if let Some(key) = &args.api_key {
        let source = if key_on_command_line {
            "--api-key"
        } else {
            "TRACKLY_API_KEY"
        };
        let key = ApiKey::parse(key).with_context(|| source.to_owned())?;
        return Ok((key, source.to_owned()));
    }
    let Some(path) = args.api_key_file.as_deref().or(file_key_path) else {
        bail!("no API key: set TRACKLY_API_KEY or pass --api-key-file PATH");
    };
    let source = format!("--api-key-file {}", path.display());
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{source}: cannot read the file"))?;
    let key = ApiKey::parse(&text).map_err(|e| match e {
        InvalidApiKey::Empty => anyhow::anyhow!("{source}: the file is empty"),
        inside => anyhow::Error::new(inside).context(source.clone()),
    })?;
    Ok((key, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_options_take_flags_over_the_environment_over_the_file() {
        let file = [
            ("aws_region".to_owned(), "from-file".to_owned()),
            ("aws_endpoint".to_owned(), "http://file".to_owned()),
            ("aws_access_key_id".to_owned(), "file-key".to_owned()),
        ]
        .into_iter()
        .collect();
        let env = "aws_region=from-env\n\n  AWS_ENDPOINT=http://env  \n";
        let flags = ["aws_region=from-flag".to_owned(), "token=a=b".to_owned()];
        let options = storage_options(&flags, Some(env), file).unwrap();
        assert_eq!(options.get("aws_region"), Some("from-flag"));
        assert_eq!(options.get("aws_endpoint"), Some("http://env"));
        assert_eq!(options.get("aws_access_key_id"), Some("file-key"));
        // Only the first `=` separates: values may hold `=` (SAS tokens, base64 keys).
        assert_eq!(options.get("token"), Some("a=b"));
    }

    #[test]
    fn a_malformed_storage_option_is_named_without_its_value() {
        let err = storage_options(&["=hunter2".to_owned()], None, Default::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--storage-option"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = storage_options(&["hunter2".to_owned()], None, Default::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("KEY=VALUE") && !err.contains("hunter2"),
            "{err}"
        );
    }
}
