//! Export every contact to S3 or an S3-compatible store (MinIO, moto, ...).
//!
//! Credentials and endpoint come from the standard AWS environment:
//!
//! ```sh
//! AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… AWS_REGION=us-east-1 \
//! AWS_ENDPOINT_URL=http://127.0.0.1:9000 \
//!   cargo run --example export_to_s3 -- s3://my-bucket/trackly
//! ```
//!
//! Without `TRACKLY_BASE_URL` the example exports from an embedded mock API.

use trackly_export::mock::{MockConfig, MockServer};
use trackly_export::{ApiKey, Client, ClientBuilder, Export, OutputLocation};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: export_to_s3 s3://bucket/prefix");
        std::process::exit(2);
    };
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
    // Plain-HTTP endpoints are accepted for loopback only; pass `true` to allow others.
    let location = OutputLocation::parse(&url)?;
    let summary = Export::builder()
        .client(client)
        .location(location)
        .build()?
        .run()
        .await?;
    for file in &summary.files {
        println!("{} ({} rows, {} bytes)", file.path, file.rows, file.bytes);
    }
    if let Some(mock) = mock {
        mock.shutdown().await;
    }
    Ok(())
}
