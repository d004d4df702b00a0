//! The facade's error: a fetch, decode or convert error, or an interruption, with a kind that
//! maps one-to-one onto the CLI's exit codes.

use trackly_contacts::DecodeError;
use trackly_converter::ConvertError;
use trackly_fetcher::FetchError;

/// A setting of [`ExportBuilder`](crate::ExportBuilder) that makes no export; found by
/// [`build`](crate::ExportBuilder::build), before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No [`Client`](crate::Client) was given.
    #[error("no API client: set one with ExportBuilder::client")]
    MissingClient,
    /// No output location was given.
    #[error("no output location: set one with ExportBuilder::location")]
    MissingLocation,
    /// The set of tables is empty.
    #[error("no table to export: ExportBuilder::tables got an empty set")]
    NoTables,
    /// A batch of zero rows.
    #[error("batch size 0: an Arrow batch holds at least one row")]
    ZeroBatchSize,
    /// A writer or retention setting that cannot work (a zero row-group size, a zstd level
    /// out of range, zero days of retention, ...).
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The setting's name, as the builder or [`WriterOptions`](crate::WriterOptions) calls it.
        option: &'static str,
        /// Why it is refused.
        reason: String,
    },
}

impl ConfigError {
    /// Maps a converter error found while checking settings: an invalid option (one the sink
    /// checks before anything runs) becomes a [`ConfigError`], anything else stays what it is.
    pub(crate) fn check(error: ConvertError) -> ExportError {
        match error {
            ConvertError::InvalidOption { option, reason } => {
                ExportError::Config(ConfigError::InvalidOption { option, reason })
            }
            other => ExportError::Convert(other),
        }
    }
}

/// What failed in an export.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The export's settings make no export (found by `build()`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Talking to the API failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A contact or list did not match the documented schema, or a decoder option was unusable.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Writing Parquet or publishing it failed.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// The run was stopped from outside (Ctrl-C); nothing of it was published.
    #[error("interrupted: run {run_id} was stopped and nothing of it was published")]
    Interrupted {
        /// The run that was stopped.
        run_id: String,
    },
}

/// The class of an [`ExportError`]; the CLI turns each into its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is unusable (exit code 2).
    Config,
    /// The API rejected the key (exit code 3).
    Auth,
    /// The API failed or answered unusably after retries (exit code 4).
    Api,
    /// Local disk or object storage failed (exit code 5).
    Storage,
    /// A contact did not match the schema under the `fail` policy (exit code 6).
    InvalidData,
    /// The export could not be proven complete: a page boundary stayed unproven, the API broke
    /// its documented order, or the count did not add up (exit code 7). Nothing was published.
    Incomplete,
    /// Stopped from outside (exit code 130).
    Interrupted,
}

impl ExportError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExportError::Config(_) => ErrorKind::Config,
            ExportError::Fetch(e) if e.is_auth() => ErrorKind::Auth,
            ExportError::Fetch(e) if e.is_config() => ErrorKind::Config,
            ExportError::Fetch(e) if e.is_incomplete() => ErrorKind::Incomplete,
            ExportError::Fetch(_) => ErrorKind::Api,
            ExportError::Decode(e) if e.is_invalid_data() => ErrorKind::InvalidData,
            ExportError::Decode(DecodeError::InvalidOption { .. }) => ErrorKind::Config,
            // An Arrow error while building a batch: a bug, classed as before with storage.
            ExportError::Decode(_) => ErrorKind::Storage,
            ExportError::Convert(
                ConvertError::InvalidOption { .. } | ConvertError::Location { .. },
            ) => ErrorKind::Config,
            ExportError::Convert(_) => ErrorKind::Storage,
            ExportError::Interrupted { .. } => ErrorKind::Interrupted,
        }
    }
}
