//! # trackly-fetcher
//!
//! An async client for the Trackly SMS API's `GET /v2/contacts`: concurrent, ordered, retrying
//! page requests that deliver every contact exactly once, even when the listing changes under
//! the run.
mod page;
mod query;

pub use page::{Contact, Page, Pagination};
pub use query::{E164, InvalidE164, Query};
