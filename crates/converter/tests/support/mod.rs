//! Test helpers of the converter: the contact fixtures (kept with the contract they exercise,
//! in `trackly-contacts`) and a recording object store.
#![allow(dead_code, clippy::unwrap_used)]

#[path = "../../../contacts/tests/support/mod.rs"]
mod fixtures;
pub mod recording;
pub mod store;

pub use fixtures::*;
