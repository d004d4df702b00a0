//! An ETL job that wants Arrow, not files: stream record batches and aggregate revenue by
//! carrier as they arrive, in bounded memory.
//!
//! ```sh
//! cargo run --example stream_record_batches      # against an embedded mock API
//! ```

use std::collections::BTreeMap;

use trackly_export::arrow_array::Array;
use trackly_export::arrow_array::cast::AsArray;
use trackly_export::arrow_array::types::Decimal128Type;
use trackly_export::futures::StreamExt;
use trackly_export::mock::{DatasetConfig, MockConfig, MockServer};
use trackly_export::{ApiKey, Client, ClientBuilder, DecoderOptions, Query, record_batches};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (client, mock) = match std::env::var("TRACKLY_BASE_URL") {
        Ok(_) => (Client::from_env()?, None),
        Err(_) => {
            let mock = MockServer::start(MockConfig {
                dataset: DatasetConfig {
                    contacts: 25_000,
                    ..DatasetConfig::default()
                },
                ..MockConfig::default()
            })
            .await?;
            let client = ClientBuilder::new()
                .with_base_url(mock.url())
                .with_api_key(ApiKey::new(mock.api_key()))
                .build()?;
            (client, Some(mock))
        }
    };
    let options = DecoderOptions::new("stream-example", trackly_export::chrono::Utc::now());
    let mut batches = record_batches(&client, Query::all().with_active(true), options)?;
    // carrier -> (contacts, revenue in ten-thousandths)
    let mut by_carrier: BTreeMap<String, (u64, i128)> = BTreeMap::new();
    let mut rows = 0;
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        let carrier = batch
            .column_by_name("carrier")
            .ok_or("no carrier column")?
            .as_string::<i32>();
        let revenue = batch
            .column_by_name("revenue_total")
            .ok_or("no revenue_total column")?
            .as_primitive::<Decimal128Type>();
        for i in 0..batch.num_rows() {
            let name = if carrier.is_null(i) {
                "(unknown)"
            } else {
                carrier.value(i)
            };
            let entry = by_carrier.entry(name.to_owned()).or_default();
            entry.0 += 1;
            if !revenue.is_null(i) {
                entry.1 += revenue.value(i);
            }
        }
    }
    println!("{rows} active contacts");
    for (carrier, (contacts, revenue)) in by_carrier {
        println!(
            "{carrier:>20}: {contacts:>7} contacts, revenue {}.{:04}",
            revenue / 10_000,
            (revenue % 10_000).abs()
        );
    }
    if let Some(mock) = mock {
        mock.shutdown().await;
    }
    Ok(())
}
