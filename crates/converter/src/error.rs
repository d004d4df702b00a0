//! The one error type of this crate, [`ConvertError`], and its `Result` alias.

use parquet::errors::ParquetError;

/// A `Result` whose error is [`ConvertError`].
pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

/// Everything that can go wrong while writing batches out (decoding fails with
/// [`DecodeError`](trackly_contacts::DecodeError), in `trackly-contacts`).
///
/// Each variant carries the context needed to act on it without a debugger: the object path of
/// a failed write, the text of a bad location, the name of a bad option.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// An option that cannot work (a zero row-group size, an unsafe run id, ...).
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// Encoding a Parquet file failed.
    #[error("parquet error writing {path}: {source}")]
    Parquet {
        /// The object being written.
        path: String,
        /// The underlying error.
        #[source]
        source: ParquetError,
    },

    /// The object store refused or failed an operation.
    #[error("storage error on {path}: {source}")]
    Storage {
        /// The object (or prefix) concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },

    /// A staged file of this run was gone when the run came to publish it: another run of the
    /// same date took this run's staging for abandoned, its heartbeat having been silent for
    /// [`STALE_STAGING`](crate::heartbeat::STALE_STAGING) (see [`heartbeat`](crate::heartbeat)).
    /// Nothing of this run was published; the date holds what it held.
    #[error(
        "this run's staged file {path} is gone: another run of this date removed this run's \
         staging as abandoned (its heartbeat was silent for {} minutes); nothing of this run \
         was published: run the export again",
        crate::heartbeat::STALE_STAGING.as_secs() / 60
    )]
    StagingLost {
        /// The staged object that was gone.
        path: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },

    /// An output location that cannot be used.
    #[error("invalid output location {input:?}: {reason}")]
    Location {
        /// The location as given.
        input: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// The output location cannot be used as it is: its bucket or container is missing, the
    /// credentials are missing or refused, or its endpoint does not answer. Found by
    /// [`OutputLocation::check_access`](crate::OutputLocation::check_access) before a run
    /// writes anything; the message says what is wrong and what to do, the source keeps the
    /// store's own error.
    #[error("cannot write to {location}: {problem}; {hint}")]
    Access {
        /// The location as given.
        location: String,
        /// What is wrong.
        problem: String,
        /// What to do about it.
        hint: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// Serialising the manifest or a reject failed.
    #[error("cannot serialise {path}: {source}")]
    Json {
        /// The object being written.
        path: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// delta-rs failed to read, create, commit to or vacuum a Delta table (feature `delta`).
    #[cfg(feature = "delta")]
    #[error("delta table {table}: {source}")]
    Delta {
        /// The table's URL.
        table: String,
        /// The underlying error.
        #[source]
        source: Box<deltalake_core::DeltaTableError>,
    },

    /// The Delta statistics of a data file could not be gathered (feature `delta`).
    #[cfg(feature = "delta")]
    #[error("delta statistics of {path}: {reason}")]
    DeltaStats {
        /// The data file (or the table, for a schema problem).
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl ConvertError {
    pub(crate) fn storage(path: impl std::fmt::Display, source: object_store::Error) -> Self {
        ConvertError::Storage {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn json(path: impl std::fmt::Display, source: serde_json::Error) -> Self {
        ConvertError::Json {
            path: path.to_string(),
            source,
        }
    }

    pub(crate) fn parquet(path: impl std::fmt::Display, source: ParquetError) -> Self {
        ConvertError::Parquet {
            path: path.to_string(),
            source,
        }
    }
}
