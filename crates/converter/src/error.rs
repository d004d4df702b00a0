//! The one error type of this crate, [`ConvertError`], and its `Result` alias.

use arrow_schema::ArrowError;
use parquet::errors::ParquetError;

/// A `Result` whose error is [`ConvertError`].
pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

/// Everything that can go wrong while decoding contacts or writing them out.
///
/// Each variant carries the context needed to act on it without a debugger: the page and record
/// of a bad contact, the object path of a failed write, the text of a bad location.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// A contact that does not match the documented schema (under
    /// [`InvalidPolicy::Fail`](crate::InvalidPolicy::Fail)).
    #[error("page {page}, record {index}: field `{field}` {reason}: {value}")]
    InvalidRecord {
        /// The page the contact came in.
        page: u64,
        /// The 0-based position of the contact in that page.
        index: usize,
        /// The offending field (`(record)` when the object itself is malformed).
        field: String,
        /// The offending JSON value as sent, cut to about 200 characters.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A list of `GET /v2/lists` that does not match the documented schema (under
    /// [`InvalidPolicy::Fail`](crate::InvalidPolicy::Fail)).
    #[error("{request}, list {index}: field `{field}` {reason}: {value}")]
    InvalidList {
        /// The answer it came in, e.g. `GET /v2/lists?status=deleted, page 1`.
        request: String,
        /// The 0-based position of the list in that answer.
        index: usize,
        /// The offending field (`(record)` when the object itself is malformed).
        field: String,
        /// The offending JSON value as sent, cut to about 200 characters.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An option that cannot work (a zero batch size, an unsafe run id, ...).
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// Building an Arrow array or batch failed (a bug rather than bad input).
    #[error("arrow error while {context}: {source}")]
    Arrow {
        /// What was being built.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: ArrowError,
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

    /// An output location that cannot be used.
    #[error("invalid output location {input:?}: {reason}")]
    Location {
        /// The location as given.
        input: String,
        /// Why it cannot be used.
        reason: String,
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
}

impl ConvertError {
    /// Whether the input did not match the schema (a contact or a list, under
    /// [`InvalidPolicy::Fail`](crate::InvalidPolicy::Fail)), as opposed to a failure of this
    /// program, its options or the storage.
    pub fn is_invalid_data(&self) -> bool {
        matches!(
            self,
            ConvertError::InvalidRecord { .. } | ConvertError::InvalidList { .. }
        )
    }

    pub(crate) fn storage(path: impl std::fmt::Display, source: object_store::Error) -> Self {
        ConvertError::Storage {
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
