//! Decodes the decode bench's page many times, for instruction counts under callgrind
//! (deterministic where wall time on a shared machine is not):
//!
//! ```sh
//! cargo build --release -p trackly-contacts --example profile_decode
//! for mode in setup decode_page batcher; do
//!   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$mode \
//!     target/release/examples/profile_decode $mode 20
//! done   # (Ir(mode) - Ir(setup)) / (20 * 1000) = instructions per contact
//! ```
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use trackly_contacts::{ContactBatcher, DecoderOptions, Page, Pass, decode_page};

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "decode_page".into());
    let times: usize = args.next().map_or(10, |n| n.parse().unwrap());
    let contacts = support::contacts(42, 0, 1000);
    let body = bytes::Bytes::from(support::page_body(1, &contacts));
    let started = Utc.with_ymd_and_hms(2025, 4, 2, 3, 0, 0).unwrap();
    let mut decoder =
        ContactBatcher::new(DecoderOptions::new("profile", started).with_batch_size(1000)).unwrap();
    for _ in 0..times {
        match mode.as_str() {
            "setup" => {}
            "decode_page" => {
                black_box(decode_page(1, Pass::Main, black_box(&body)).unwrap());
            }
            "batcher" => {
                let page = Page::parse(1, Pass::Main, black_box(body.clone())).unwrap();
                decoder.push_page(&page).unwrap();
                black_box(decoder.flush().unwrap());
            }
            other => panic!("unknown mode {other}"),
        }
    }
}
