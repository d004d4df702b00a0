//! The lists table of a run: fetched and decoded before any contact is paged (a failure there
//! ends the run early and cheaply), completed by id once the contacts are read (every
//! `list_id` a contact carries gets its row, see [`ListIds`]), held in memory (some thousand
//! lists at most), staged once the contacts are written, and published with them.

use std::collections::BTreeSet;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use chrono::{DateTime, Utc};
use trackly_contacts::schema::col;
use trackly_contacts::table::LISTS;
use trackly_contacts::{DecodeStats, DecoderOptions, ListDecoder, ListReject};
use trackly_converter::{OutputLocation, SinkOptions, StagedTable, TableFormat, TableSpec};
use trackly_fetcher::{Client, FetchStats, ListsPage, StatsHandle};

use crate::ExportError;

/// Every list of the account, deleted ones included, as one batch of
/// [`lists_schema`](trackly_contacts::lists_schema): the lists table of an export without the
/// contacts (a list that only contacts refer to is not read by id here). Under
/// [`InvalidPolicy::Fail`](trackly_contacts::InvalidPolicy) (the default) a list that does not
/// fit the schema fails the read; under `Quarantine` it is left out.
pub async fn read_lists(
    client: &Client,
    options: DecoderOptions,
) -> Result<(RecordBatch, FetchStats), ExportError> {
    let stats = StatsHandle::default();
    let pages = client.lists(&stats).await?;
    let table = ListsTable::decode(pages, options, stats.snapshot())?;
    Ok((table.batch, table.fetch))
}

/// Every list of the account, decoded into one batch of
/// [`lists_schema`](trackly_contacts::lists_schema).
pub(crate) struct ListsTable {
    batch: RecordBatch,
    rejects: Vec<ListReject>,
    decode: DecodeStats,
    /// The answers read, in order (lists fetched by id last).
    pages: Vec<ListsPage>,
    options: DecoderOptions,
    /// The requests made for the lists.
    pub(crate) fetch: FetchStats,
}

/// The `list_id`s the contacts of a run carry, gathered as the batches go to the writer.
#[derive(Debug, Default)]
pub(crate) struct ListIds(BTreeSet<i64>);

impl ListIds {
    /// Notes the `list_id` of every row of a contacts batch.
    pub(crate) fn observe(&mut self, batch: &RecordBatch) {
        if let Some(ids) = batch.column(col::LIST_ID).as_primitive_opt::<Int64Type>() {
            self.0.extend(ids.iter().flatten());
        }
    }
}

impl ListsTable {
    /// Decodes the answers in the order fetched (a list met again replaces the earlier row:
    /// the `status=deleted` answer comes last, so a list deleted during the run lands as
    /// deleted). Fails on the first invalid list under `InvalidPolicy::Fail`.
    pub(crate) fn decode(
        pages: Vec<ListsPage>,
        options: DecoderOptions,
        fetch: FetchStats,
    ) -> Result<ListsTable, ExportError> {
        let mut decoder = ListDecoder::new(options.clone());
        for page in &pages {
            decoder.decode_page(page)?;
        }
        let batch = decoder.finish()?;
        if decoder.rejects() > 0 {
            tracing::warn!(
                rejects = decoder.rejects(),
                "lists that do not fit the schema are set aside in the lists table's rejects file"
            );
        }
        Ok(ListsTable {
            batch,
            rejects: decoder.take_rejects(),
            decode: decoder.stats(),
            pages,
            options,
            fetch,
        })
    }

    /// Gives every list the contacts refer to its row: a `list_id` that no listing held (a
    /// list whose status changed in step with the reads, or created since) is asked for by id,
    /// `GET /v2/lists/{id}`, and decoded into the table. An id the API does not know even so
    /// is counted and warned about: the contacts keep it, the table has no row for it.
    /// Requests count in `stats` (the run's) and in this table's fetch statistics.
    pub(crate) async fn complete(
        self,
        referenced: &ListIds,
        client: &Client,
        stats: &StatsHandle,
    ) -> Result<ListsTable, ExportError> {
        let known: BTreeSet<i64> = self
            .pages
            .iter()
            .flat_map(ListsPage::ids)
            .flatten()
            .collect();
        let missing: Vec<i64> = referenced.0.difference(&known).copied().collect();
        if missing.is_empty() {
            return Ok(self);
        }
        tracing::info!(
            lists = missing.len(),
            "contacts refer to lists the listings left out; reading them by id"
        );
        let before = stats.snapshot();
        let (found, unknown) = client.lists_by_id(&missing, stats).await?;
        let mut pages = self.pages;
        pages.extend(found);
        if let Some(first) = unknown.first() {
            tracing::warn!(
                lists = unknown.len(),
                first,
                "contacts refer to lists the API does not know (404 by id); their list_id has no row in the lists table"
            );
        }
        let after = stats.snapshot();
        let mut fetch = self.fetch;
        fetch.requests += after.requests - before.requests;
        fetch.list_pages += after.list_pages - before.list_pages;
        fetch.lists_by_id += after.lists_by_id - before.lists_by_id;
        fetch.lists_unknown += after.lists_unknown - before.lists_unknown;
        ListsTable::decode(pages, self.options, fetch)
    }

    /// Lists in the table.
    pub(crate) fn rows(&self) -> u64 {
        self.batch.num_rows() as u64
    }

    /// Writes the table's staged file (and rejects) for the run `options` describes.
    pub(crate) async fn stage(
        &self,
        format: TableFormat,
        location: &OutputLocation,
        options: &SinkOptions,
        started_at: DateTime<Utc>,
    ) -> Result<StagedTable, ExportError> {
        let spec = TableSpec {
            table: &LISTS,
            query_json: serde_json::json!({
                "requests": self.pages.iter().map(ListsPage::source).collect::<Vec<_>>()
            }),
            decode: self.decode,
            fetch_stats: serde_json::to_value(&self.fetch).unwrap_or_default(),
        };
        Ok(StagedTable::stage(
            format,
            location,
            spec,
            options,
            started_at,
            &self.batch,
            &self.rejects,
        )
        .await?)
    }
}
