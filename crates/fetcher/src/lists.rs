//! `GET /v2/lists`: every sending list, deleted ones included, as the JSON text of each list
//! for a decoder to read.
//!
//! The documentation shows `{"lists": [...]}` without a `pagination` block and says that the
//! default answer leaves out deleted lists (`status=deleted` asks for them). So [`Client::lists`]
//! makes two requests, and pages through either of them only when its answer carries a
//! `pagination` block (at the documented maximum of 100 per page for list endpoints).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::client::Client;
use crate::error::FetchError;
use crate::limit::Admission;
use crate::page::Pagination;
use crate::stats::StatsHandle;

/// Lists per page asked for: the documented maximum of the list endpoints other than contacts.
pub const LISTS_PER_PAGE: u32 = 100;

/// Pages one listing may take before the API is taken not to honour `page` (10,000 lists per
/// account is the mock's and, as far as documented, any account's order of magnitude).
const MAX_LISTS_PAGES: u64 = 1_000;

/// One answer of `GET /v2/lists`: its body and where each list object lies in it.
#[derive(Clone)]
pub struct ListsPage {
    source: String,
    body: Bytes,
    records: Vec<Range<usize>>,
}

impl std::fmt::Debug for ListsPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListsPage")
            .field("source", &self.source)
            .field("lists", &self.records.len())
            .finish()
    }
}

impl ListsPage {
    /// Which request this answers, for messages: `GET /v2/lists?status=deleted, page 2`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Lists in this answer.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the answer holds no list.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The JSON text of the list at `index` (0-based, in the API's order).
    ///
    /// # Panics
    /// When `index >= len()`.
    pub fn record(&self, index: usize) -> &[u8] {
        &self.body[self.records[index].clone()]
    }

    /// The JSON text of every list, in the API's order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.records.iter().map(|range| &self.body[range.clone()])
    }

    /// Reads one answer: a JSON object with a `lists` array of objects and, optionally, a
    /// well-formed `pagination` block.
    fn parse(source: String, body: Bytes) -> Result<(ListsPage, Option<Pagination>), String> {
        #[derive(Deserialize)]
        struct Envelope<'a> {
            #[serde(borrow)]
            lists: Vec<&'a RawValue>,
            pagination: Option<Pagination>,
        }
        let envelope: Envelope<'_> = serde_json::from_slice(&body)
            .map_err(|e| format!("the body is not the documented lists JSON: {e}"))?;
        let base = body.as_ptr() as usize;
        let mut records = Vec::with_capacity(envelope.lists.len());
        for (index, raw) in envelope.lists.iter().enumerate() {
            let text = raw.get();
            if !text.starts_with('{') {
                return Err(format!("list {index} is not a JSON object"));
            }
            let start = text.as_ptr() as usize - base;
            records.push(start..start + text.len());
        }
        let pagination = envelope.pagination;
        Ok((
            ListsPage {
                source,
                body: body.clone(),
                records,
            },
            pagination,
        ))
    }
}

impl Client {
    /// Every list, deleted ones included: `GET /v2/lists`, then `GET /v2/lists?status=deleted`,
    /// each paged through when its answer carries a `pagination` block. Retries and errors are
    /// those of contact pages; requests are counted in `stats`. A list deleted between the two
    /// requests appears in both answers, active in the first and deleted in the second.
    pub async fn lists(&self, stats: &StatsHandle) -> Result<Vec<ListsPage>, FetchError> {
        let admission = Admission::new(1, self.inner.max_rps);
        let mut pages = self.lists_with(None, &admission, stats).await?;
        pages.extend(self.lists_with(Some("deleted"), &admission, stats).await?);
        Ok(pages)
    }

    async fn lists_with(
        &self,
        status: Option<&str>,
        admission: &Arc<Admission>,
        stats: &StatsHandle,
    ) -> Result<Vec<ListsPage>, FetchError> {
        let mut pages = Vec::new();
        let mut page = 1u64;
        loop {
            let url = self.lists_url(status, page);
            let source = match status {
                Some(status) => format!("GET /v2/lists?status={status}, page {page}"),
                None => format!("GET /v2/lists, page {page}"),
            };
            let (answer, pagination) = self
                .get(url, page, admission, stats, |body| {
                    ListsPage::parse(source.clone(), body)
                })
                .await?;
            pages.push(answer);
            stats.update(|s| s.list_pages += 1);
            let Some(pagination) = pagination else {
                return Ok(pages);
            };
            if pagination.page != page {
                return Err(FetchError::Rejected {
                    page,
                    status: 200,
                    url: self.lists_url(status, page),
                    api: None,
                    body: format!(
                        "asked for page {page} of the lists but the answer says page {}",
                        pagination.page
                    ),
                });
            }
            let last = pages.last().map_or(0, ListsPage::len);
            if page >= pagination.total_pages || last == 0 {
                return Ok(pages);
            }
            if page >= MAX_LISTS_PAGES {
                return Err(FetchError::Rejected {
                    page,
                    status: 200,
                    url: self.lists_url(status, page),
                    api: None,
                    body: format!(
                        "the lists answer claims {} pages; more than {MAX_LISTS_PAGES} is taken as an API that ignores `page`",
                        pagination.total_pages
                    ),
                });
            }
            page += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_pagination_is_one_page_of_raw_lists() {
        let body = Bytes::from_static(
            br#"{"lists": [{"id": 42, "status": "active"}, {"id": 7, "status": "paused"}]}"#,
        );
        let (page, pagination) = ListsPage::parse("GET /v2/lists, page 1".into(), body).unwrap();
        assert_eq!(pagination, None);
        assert_eq!(page.len(), 2);
        assert_eq!(page.record(1), br#"{"id": 7, "status": "paused"}"#);
        assert_eq!(page.source(), "GET /v2/lists, page 1");
    }

    #[test]
    fn a_pagination_block_is_read() {
        let body = Bytes::from_static(
            br#"{"pagination": {"page": 2, "per_page": 100, "total": 150, "total_pages": 2}, "lists": []}"#,
        );
        let (page, pagination) = ListsPage::parse("x".into(), body).unwrap();
        assert!(page.is_empty());
        assert_eq!(pagination.map(|p| p.total_pages), Some(2));
    }

    #[test]
    fn other_shapes_are_invalid_bodies() {
        for body in [
            &br#"{"contacts": []}"#[..],
            br#"{"lists": [1, 2]}"#,
            br#"{"lists": {}}"#,
            b"<html>",
        ] {
            assert!(
                ListsPage::parse("x".into(), Bytes::from_static(body)).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
