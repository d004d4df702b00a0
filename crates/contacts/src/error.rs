//! The one error type of this crate, [`DecodeError`].

use arrow_schema::ArrowError;

use crate::reject::{ListReject, Reject};

/// A `Result` whose error is [`DecodeError`].
pub(crate) type Result<T, E = DecodeError> = std::result::Result<T, E>;

/// Everything that can go wrong while decoding contacts or lists into Arrow.
///
/// Each variant carries the context needed to act on it without a debugger: a bad contact or
/// list as its table's reject (page or answer, position, field, value, reason, text), the name
/// of a bad option.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A contact that does not match the documented schema (under
    /// [`InvalidPolicy::Fail`](crate::InvalidPolicy::Fail)).
    #[error(
        "page {}, record {}: field `{}` {}: {}",
        .0.page, .0.index, .0.field, .0.reason, .0.value
    )]
    InvalidRecord(Box<Reject>),

    /// A list of `GET /v2/lists` that does not match the documented schema (under
    /// [`InvalidPolicy::Fail`](crate::InvalidPolicy::Fail)).
    #[error(
        "{}, list {}: field `{}` {}: {}",
        .0.request, .0.index, .0.field, .0.reason, .0.value
    )]
    InvalidList(Box<ListReject>),

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
            DecodeError::InvalidRecord(_) | DecodeError::InvalidList(_)
        )
    }
}
