//! The ceiling of an export: GET every page at a fixed concurrency and discard the bytes, with
//! no JSON parsing at all. Used by `scripts/bench-e2e.sh` to say how close the exporter gets to
//! what the API (here: the mock) can deliver.
//!
//! ```sh
//! cargo run --release --example fetch_only -- http://127.0.0.1:8080/api trk_test_key 8
//! ```

use std::time::Instant;

use trackly_export::futures::{StreamExt, stream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(base), Some(key)) = (args.next(), args.next()) else {
        eprintln!("usage: fetch_only BASE_URL API_KEY [CONCURRENCY] [PER_PAGE]");
        std::process::exit(2);
    };
    let concurrency: usize = args.next().map_or(Ok(8), |c| c.parse())?;
    let per_page: u64 = args.next().map_or(Ok(1000), |c| c.parse())?;
    let http = reqwest::Client::new();
    let url = format!("{base}/v2/contacts");
    let get = |page: u64| {
        let request = http
            .get(format!("{url}?page={page}&per_page={per_page}"))
            .header("X-Api-Key", &key);
        async move {
            let body: Result<bytes::Bytes, reqwest::Error> =
                request.send().await?.error_for_status()?.bytes().await;
            body
        }
    };
    let start = Instant::now();
    let first = get(1).await?;
    let head: serde_json::Value = serde_json::from_slice(&first)?;
    let pages = head["pagination"]["total_pages"].as_u64().unwrap_or(1);
    let total = head["pagination"]["total"].as_u64().unwrap_or(0);
    let mut bytes = first.len() as u64;
    let mut bodies = stream::iter(2..=pages).map(get).buffered(concurrency);
    while let Some(body) = bodies.next().await {
        bytes += body?.len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{{\"contacts\":{total},\"pages\":{pages},\"bytes\":{bytes},\"seconds\":{secs:.4}}}");
    Ok(())
}
