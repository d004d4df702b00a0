//! `trackly-export demo`: the embedded default. An in-process mock API with a realistic data
//! set, exported to a local lake folder, then a ready DuckDB query.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use trackly_export::mock::{DatasetConfig, MockConfig, MockServer};
use trackly_export::{ApiKey, Client, Export, OutputLocation, RunSummary, Table};

use super::count;
use super::flags::DemoArgs;
use super::progress::{self, Progress};

pub async fn run(args: &DemoArgs, progress: Arc<Progress>) -> anyhow::Result<RunSummary> {
    let mock = MockServer::start(MockConfig {
        dataset: DatasetConfig {
            contacts: args.contacts,
            ..DatasetConfig::default()
        },
        ..MockConfig::default()
    })
    .await
    .context("cannot start the embedded mock API")?;
    tracing::info!(url = %mock.url(), contacts = args.contacts, "embedded mock API started");
    let client = Client::builder()
        .with_base_url(mock.url())
        .with_api_key(ApiKey::new(mock.api_key()))
        .build()?;
    let output = args.output.to_string_lossy().into_owned();
    let location = OutputLocation::parse(&output)?;
    let summary = Export::builder()
        .client(client)
        .location(location)
        .on_start({
            let progress = Arc::clone(&progress);
            move |live| progress.watch(live)
        })
        .on_progress(move |p| progress.update(p))
        .build()?
        .run_until(super::shutdown_signal())
        .await?;
    mock.shutdown().await;
    Ok(summary)
}

/// What to tell a new user after the demo.
fn next_steps(output: &Path) -> String {
    let glob = output.join("contacts/**/*.parquet");
    let glob = glob.to_string_lossy();
    let lists = output.join("lists/**/*.parquet");
    let lists = lists.to_string_lossy();
    format!(
        "\nQuery it with DuckDB:\n\n  duckdb -c \"SELECT carrier, count(*) AS contacts, sum(revenue_total) AS revenue, \
         count(custom_fields['source']) AS with_source FROM read_parquet('{glob}', hive_partitioning=true) \
         GROUP BY ALL ORDER BY contacts DESC\"\n\
         \nJoin the contacts with their lists:\n\n  duckdb -c \"SELECT l.brand_name, l.list_name, l.status, count(*) AS contacts \
         FROM read_parquet('{glob}') c JOIN read_parquet('{lists}') l ON c.list_id = l.id \
         GROUP BY ALL ORDER BY contacts DESC\"\n"
    )
}

/// What the demo wrote: every file of the contacts and of the lists, then what to do next.
pub fn print_written(summary: &RunSummary, output: &Path) {
    progress::print(format_args!(
        "Wrote {} to {}:",
        count(summary.rows, "contact", "contacts"),
        output.display()
    ));
    for file in &summary.files {
        progress::print(format_args!(
            "  {}  ({}, {:.1} MiB)",
            output.join(&file.path).display(),
            count(file.rows, "row", "rows"),
            file.bytes as f64 / (1024.0 * 1024.0)
        ));
    }
    if let Some(lists) = summary.table(Table::Lists) {
        progress::print(format_args!(
            "and their {}:",
            count(lists.rows, "list", "lists")
        ));
        for file in &lists.files {
            progress::print(format_args!("  {}", output.join(&file.path).display()));
        }
    }
    progress::print(format_args!("{}", next_steps(output)));
}
