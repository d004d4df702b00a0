//! The lists table of a run: fetched and decoded before any contact is paged (a failure there
//! ends the run early and cheaply), held in memory (some thousand lists at most), staged once
//! the contacts are written, and published with them.

use arrow_array::RecordBatch;
use chrono::{DateTime, Utc};
use trackly_contacts::{DecodeStats, DecoderOptions, ListDecoder, ListReject, lists_schema};
use trackly_converter::manifest::LISTS_MANIFEST_FORMAT;
use trackly_converter::{
    LISTS_TABLE, OutputLocation, SinkOptions, StagedTable, TableFormat, TableSpec,
};
use trackly_fetcher::{FetchStats, ListsPage};

use crate::ExportError;

/// Every list of the account, decoded into one batch of
/// [`lists_schema`](trackly_contacts::lists_schema).
pub(crate) struct ListsTable {
    batch: RecordBatch,
    rejects: Vec<ListReject>,
    decode: DecodeStats,
    /// The answers read, as the fetcher names them (for the manifest's `query`).
    requests: Vec<String>,
    /// The requests made for the lists.
    pub(crate) fetch: FetchStats,
}

impl ListsTable {
    /// Decodes the answers in the order fetched (a list met again replaces the earlier row:
    /// the `status=deleted` answer comes last, so a list deleted during the run lands as
    /// deleted). Fails on the first invalid list under `InvalidPolicy::Fail`.
    pub(crate) fn decode(
        pages: &[ListsPage],
        options: DecoderOptions,
        fetch: FetchStats,
    ) -> Result<ListsTable, ExportError> {
        let mut decoder = ListDecoder::new(options);
        for page in pages {
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
            requests: pages.iter().map(|p| p.source().to_owned()).collect(),
            fetch,
        })
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
            name: LISTS_TABLE,
            manifest_format: LISTS_MANIFEST_FORMAT,
            schema: lists_schema(),
            query_json: serde_json::json!({ "requests": self.requests }),
            decode: self.decode,
            fetch_stats: serde_json::to_value(&self.fetch).unwrap_or_default(),
        };
        Ok(StagedTable::stage_as(
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
