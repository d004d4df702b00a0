//! One answer of `GET /v2/lists`: the JSON text of each list, for [`ListDecoder`](super::ListDecoder)
//! to read. The HTTP requests that fetch these answers are the fetcher's.

use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::page::Pagination;

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
    /// well-formed `pagination` block. `source` names the request, for messages. Fails with a
    /// message saying what is wrong (the fetcher retries such a body like any invalid one).
    pub fn parse(source: String, body: Bytes) -> Result<(ListsPage, Option<Pagination>), String> {
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
