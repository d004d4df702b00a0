//! Stage two of flag parsing: the `export` settings as given (flags and their variables) over
//! the optional TOML file, applied in the order of [`SETTINGS`] to the library's own settings,
//! then checked by the library, into an [`ExportConfig`] (flag > env > file > default: the
//! default is whatever the library does with a setting left alone).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::de::{Deserialize, DeserializeSeed, Deserializer, Error as _, MapAccess, Visitor};
use trackly_export::{
    ApiKey, ConfigError, ExportError, FetchError, InvalidApiKey, Query, StorageOptions, Table,
};

use super::flags::ExportArgs;
use super::metrics;
use super::settings::{ExportConfig, SETTINGS, Setting};

/// The settings of a `--config` file: each key's value as text, as a flag would give it. A
/// key must be a setting's, its value of the setting's type.
#[derive(Debug, Default)]
pub struct FileSettings {
    /// By flag.
    values: BTreeMap<&'static str, String>,
    storage_options: BTreeMap<String, String>,
}

impl FileSettings {
    /// The file's value of `setting`, if it has one (a negated key's as the switch's).
    fn text(&self, setting: &Setting) -> Option<String> {
        let (_, negated) = setting.file_key()?;
        let text = self.values.get(setting.flag)?;
        Some(match (negated, text.as_str()) {
            (true, "true") => "false".to_owned(),
            (true, "false") => "true".to_owned(),
            _ => text.clone(),
        })
    }

    fn read(path: &Path) -> anyhow::Result<FileSettings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--config {}: cannot read the file", path.display()))?;
        // Not the error's own text: it quotes the file's line, which may hold a secret (a
        // storage key written outside `[storage_options]`); where it is and why is enough.
        toml::from_str(&text).map_err(|e| {
            let at = e.span().map_or(String::new(), |span| {
                let before = &text[..span.start];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("line {line}, column {column}: ")
            });
            anyhow::anyhow!(
                "--config {}: not a valid config file: {at}{}",
                path.display(),
                e.message()
            )
        })
    }
}

impl<'de> Deserialize<'de> for FileSettings {
    fn deserialize<D: Deserializer<'de>>(file: D) -> Result<Self, D::Error> {
        file.deserialize_map(FileSettings::default())
    }
}

impl<'de> Visitor<'de> for FileSettings {
    type Value = FileSettings;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a table of export settings")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<FileSettings, A::Error> {
        while let Some(key) = map.next_key_seed(FileKey)? {
            match key {
                Some(setting) => {
                    let text = map.next_value_seed(setting)?;
                    self.values.insert(setting.flag, text);
                }
                None => self.storage_options = map.next_value()?,
            }
        }
        Ok(self)
    }
}

/// A key of the file: a setting's, or `storage_options` (`None`); any other is refused, as
/// serde refuses an unknown field.
struct FileKey;

impl<'de> DeserializeSeed<'de> for FileKey {
    type Value = Option<&'static Setting>;

    fn deserialize<D: Deserializer<'de>>(self, key: D) -> Result<Self::Value, D::Error> {
        let key = String::deserialize(key)?;
        if key == "storage_options" {
            return Ok(None);
        }
        let mut names = Vec::new();
        for setting in SETTINGS {
            match setting.file_key() {
                Some((name, _)) if name == key => return Ok(Some(setting)),
                Some((name, _)) => names.push(format!("`{name}`")),
                None => {}
            }
        }
        names.push("`storage_options`".to_owned());
        Err(D::Error::custom(format_args!(
            "unknown field `{key}`, expected one of {}",
            names.join(", ")
        )))
    }
}

/// The `--config` file's settings, read once (none without `--config`).
pub fn file_settings(args: &ExportArgs) -> anyhow::Result<FileSettings> {
    match args.text(Setting::by_flag("config")) {
        Some(path) => FileSettings::read(Path::new(&path)),
        None => Ok(FileSettings::default()),
    }
}

/// `--metrics-file`, from the flag, its variable or the config file. Known before anything
/// else is validated, so that a configuration error is reported in the metrics too (with a
/// config file that does not parse, only the flag and the variable count).
pub fn metrics_file(args: &ExportArgs, file: Option<&FileSettings>) -> Option<PathBuf> {
    given(args, file, Setting::by_flag("metrics-file")).map(PathBuf::from)
}

/// `setting`'s text from its flag or variable, else from the config file.
fn given(args: &ExportArgs, file: Option<&FileSettings>, setting: &Setting) -> Option<String> {
    args.text(setting)
        .or_else(|| file.and_then(|f| f.text(setting)))
}

/// The storage options, each key from the first of: the flags (in order, the last of a key
/// wins), `TRACKLY_STORAGE_OPTIONS` (one `KEY=VALUE` a line), the config file's table.
fn storage_options(
    flags: &[String],
    env: Option<&str>,
    file: BTreeMap<String, String>,
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

/// Resolves every setting (flag > env > file > default), then has the library check them;
/// every error names the setting's flag.
pub fn resolve(args: &ExportArgs, file: FileSettings) -> anyhow::Result<ExportConfig> {
    if let Some(path) = metrics_file(args, Some(&file)) {
        metrics::check_file(&path)?;
    }
    if given(args, Some(&file), Setting::by_flag("output")).is_none() {
        bail!("--output is required (a directory, or s3://, gs://, az:// or abfss:// URL)");
    }
    let mut config = ExportConfig::default();
    for setting in SETTINGS {
        if let Some(text) = given(args, Some(&file), setting) {
            setting.apply(&mut config, &text)?;
        }
    }
    config.storage_options = storage_options(
        &args.values("storage-option"),
        std::env::var("TRACKLY_STORAGE_OPTIONS").ok().as_deref(),
        file.storage_options,
    )?;
    if !config.tables.contains(Table::Contacts) && config.query != Query::all() {
        // Often set in the environment for the nightly contacts job: not worth failing for.
        tracing::warn!(
            "--list-number and --active filter the contacts, which --tables {} does not export; the lists table always holds every list",
            config.tables
        );
    }
    let (key, key_source) = api_key(args, config.api_key_file.as_deref())?;
    config.key_on_command_line = args.on_command_line("api-key");
    config.key_source = key_source;
    config.client = config
        .client
        .with_api_key(key)
        .with_retry(config.retry.clone());
    // The ranges are the library's to check, before any request; the builders themselves
    // are kept for the run.
    let checked = config
        .client
        .clone()
        .build()
        .map(drop)
        .map_err(ExportError::from);
    checked
        .and_then(|()| config.export_builder().check())
        .map_err(flagged)?;
    Ok(config)
}

/// A library error about a setting, said with the setting's flag (`--per-page 5000 is out
/// of range 1..=1000`); any other error as it is.
fn flagged(error: ExportError) -> anyhow::Error {
    let (option, reason) = match &error {
        ExportError::Fetch(FetchError::InvalidConfig { field, reason }) => {
            (*field, reason.as_str())
        }
        ExportError::Config(ConfigError::InvalidOption { option, reason }) => {
            (*option, reason.as_str())
        }
        ExportError::Config(ConfigError::ZeroBatchSize) => ("batch_size", "must be at least 1"),
        _ => return error.into(),
    };
    match Setting::by_option(option) {
        Some(setting) => setting.refused(reason),
        None => error.into(),
    }
}

/// `--api-key` / `TRACKLY_API_KEY` first, then the key file (flag, env or config file); the
/// key and where it came from. Whitespace around the key is dropped; whitespace inside it is
/// a usage error that does not show the key.
fn api_key(args: &ExportArgs, key_file: Option<&Path>) -> anyhow::Result<(ApiKey, String)> {
    if let Some(key) = args.text(Setting::by_flag("api-key")) {
        let source = if args.on_command_line("api-key") {
            "--api-key"
        } else {
            "TRACKLY_API_KEY"
        };
        let key = ApiKey::parse(&key).with_context(|| source.to_owned())?;
        return Ok((key, source.to_owned()));
    }
    let Some(path) = key_file else {
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
