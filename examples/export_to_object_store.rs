//! Export every contact to any object store: S3 (or an S3-compatible server), Google Cloud
//! Storage or Azure Blob Storage / ADLS Gen2, by URL. Storage options (deltalake's and Polars'
//! keys) follow the URL as `KEY=VALUE`; the rest comes from the cloud's own environment
//! (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
//!
//! ```sh
//! AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… AWS_REGION=us-east-1 \
//!   cargo run --example export_to_object_store -- s3://my-bucket/trackly
//! GOOGLE_APPLICATION_CREDENTIALS=key.json \
//!   cargo run --example export_to_object_store -- gs://my-bucket/trackly
//! cargo run --example export_to_object_store -- \
//!   abfss://lake@myaccount.dfs.core.windows.net/trackly azure_storage_account_key=…
//! # Azurite, the Azure emulator, on its default port:
//! cargo run --example export_to_object_store -- az://lake/trackly azure_storage_use_emulator=true
//! ```
//!
//! The location is checked first (a probe object written and removed): a missing bucket or
//! missing credentials are said in one line before anything is fetched. Without
//! `TRACKLY_BASE_URL` the example exports from an embedded mock API.

use trackly_export::mock::{MockConfig, MockServer};
use trackly_export::{
    ApiKey, Client, ClientBuilder, Export, LocationOptions, OutputLocation, StorageOptions,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: export_to_object_store URL [KEY=VALUE ...]");
        std::process::exit(2);
    };
    let mut options = StorageOptions::new();
    for pair in args {
        let Some((key, value)) = pair.split_once('=') else {
            eprintln!("expected KEY=VALUE after the URL");
            std::process::exit(2);
        };
        options.insert(key, value);
    }
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
    // Plain-HTTP endpoints are accepted for loopback only; `with_allow_http(true)` (or the
    // storage option allow_http=true) allows others.
    let location = OutputLocation::parse_with(
        &url,
        LocationOptions::default().with_storage_options(options),
    )?;
    location.check_access().await?;
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
