//! What the exactness proof costs in requests and wall time: one run of the fetcher against the
//! in-process mock, printing pages, requests, repair reads, wall time, CPU time and the ideal
//! (`pages × latency ÷ concurrency`). Used by `scripts/bench-e2e.sh` (`benches/e2e.py`, section
//! `proof`) and recorded in BENCHMARKS.md.
//!
//! ```sh
//! # The mock's data (bulk imports of 100-800 in one second), 100 000 contacts, no latency:
//! cargo run --release --example proof_cost -- --contacts 100000
//! # A listing with small ties (bursts of 1-6 a second, fractions shown), 100 ms a request:
//! cargo run --release --example proof_cost -- --contacts 500000 --small-ties --latency-ms 100
//! ```

use std::time::{Duration, Instant};

use trackly_export::fetcher::{ApiKey, Client, Query};
use trackly_export::futures::StreamExt;
use trackly_export::mock::{DatasetConfig, Faults, MockConfig, MockServer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut contacts = 100_000usize;
    let mut small_ties = false;
    let mut latency_ms = 0u64;
    let mut concurrency = 8usize;
    let mut per_page = 1000u32;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--contacts" => contacts = value()?.parse()?,
            "--small-ties" => small_ties = true,
            "--latency-ms" => latency_ms = value()?.parse()?,
            "--concurrency" => concurrency = value()?.parse()?,
            "--per-page" => per_page = value()?.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let mock = MockServer::start(MockConfig {
        dataset: DatasetConfig {
            contacts,
            fractional_seconds: small_ties,
            ..DatasetConfig::default()
        },
        faults: Faults {
            latency: Duration::from_millis(latency_ms),
            ..Faults::default()
        },
        ..MockConfig::default()
    })
    .await?;
    let client = Client::builder()
        .with_base_url(mock.url())
        .with_api_key(ApiKey::new(mock.api_key()))
        .with_concurrency(concurrency)
        .with_per_page(per_page)
        .build()?;
    let cpu = cpu_seconds();
    let started = Instant::now();
    let mut pages = client.contacts(Query::all());
    let mut delivered = 0u64;
    while let Some(page) = pages.next().await {
        delivered += page?.len() as u64;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    let s = pages.snapshot();
    let full_pages = (contacts as u64).div_ceil(u64::from(per_page));
    let ideal = full_pages as f64 * latency_ms as f64 / 1000.0 / concurrency as f64;
    println!(
        "contacts={contacts} delivered={delivered} small_ties={small_ties} per_page={per_page} concurrency={concurrency} latency_ms={latency_ms} pages={full_pages} requests={} repair_reads={} requests_per_page={:.3} wall_s={wall:.2} cpu_s={cpu:.2} ideal_s={ideal:.2} wall_per_ideal={:.2}",
        s.requests,
        s.verification_reads,
        s.requests as f64 / full_pages as f64,
        if ideal > 0.0 { wall / ideal } else { 0.0 },
    );
    Ok(())
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields 14 and 15 (utime, stime) in clock ticks, after the parenthesised command name.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
