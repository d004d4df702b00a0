//! Export every contact to a local lake folder.
//!
//! ```sh
//! cargo run --example export_to_local -- ./lake            # against an embedded mock API
//! TRACKLY_BASE_URL=https://app.tracklysms.com/api TRACKLY_API_KEY=trk_… \
//!   cargo run --example export_to_local -- ./lake          # against the real API
//! ```

use trackly_export::mock::{MockConfig, MockServer};
use trackly_export::{ApiKey, Client, ClientBuilder, Export, OutputLocation, Query};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let output = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "./example-lake".into());
    // Without a base URL, start a mock API in-process so the example runs anywhere.
    let (client, mock) = match std::env::var("TRACKLY_BASE_URL") {
        Ok(_) => (Client::from_env()?, None),
        Err(_) => {
            let mock = MockServer::start(MockConfig::default()).await?;
            let client = ClientBuilder::new()
                .with_base_url(mock.url())
                .with_api_key(ApiKey::new(mock.api_key()))
                .build()?;
            (client, Some(mock))
        }
    };
    let summary = Export::builder()
        .client(client)
        .query(Query::all())
        .location(OutputLocation::parse(&output)?)
        .build()?
        .run()
        .await?;
    println!(
        "{} contacts in {} {} under {output}/contacts/extract_date={} (run {})",
        summary.rows,
        summary.files.len(),
        if summary.files.len() == 1 {
            "file"
        } else {
            "files"
        },
        summary.extract_date,
        summary.run_id
    );
    if let Some(mock) = mock {
        mock.shutdown().await;
    }
    Ok(())
}
