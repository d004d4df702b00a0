//! Test helpers of the converter: the contact fixtures (kept with the contract they exercise,
//! in `trackly-contacts`) and the faulty object store.
#![allow(dead_code, clippy::unwrap_used)]

pub mod faulty_store;
#[path = "../../../contacts/tests/support/mod.rs"]
mod fixtures;
pub mod store;

pub use fixtures::*;
