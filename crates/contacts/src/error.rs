//! The one error type of this crate, [`DecodeError`].

use arrow_schema::ArrowError;

/// A `Result` whose error is [`DecodeError`].
pub(crate) type Result<T, E = DecodeError> = std::result::Result<T, E>;

/// Everything that can go wrong while decoding contacts or lists into Arrow.
///
/// Each variant carries the context needed to act on it without a debugger: the page and record
/// of a bad contact, the answer and position of a bad list, the name of a bad option.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A contact that does not match the documented schema (under
    /// [`InvalidPolicy::Fail`](crate::InvalidPolicy::Fail)).
    #[error("page {page}, record {index}: field `{field}` {reason}: {value}")]
    InvalidRecord {
        /// The page the contact came in.
        page: u64,
        /// The 0-based position of the contact in that page's body, as sent.
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

    /// A decoder option that cannot work (a zero batch size, ...).
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
}

impl DecodeError {
    /// Whether the input did not match the schema (a contact or a list, under
    /// [`InvalidPolicy::Fail`](crate::InvalidPolicy::Fail)), as opposed to a failure of this
    /// program or its options.
    pub fn is_invalid_data(&self) -> bool {
        matches!(
            self,
            DecodeError::InvalidRecord { .. } | DecodeError::InvalidList { .. }
        )
    }
}
