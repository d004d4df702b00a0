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
    #[cfg(test)]
    fn record(&self, index: usize) -> &[u8] {
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

    /// Reads the answer of `GET /v2/lists/{id}`, documented as "one list in the same shape":
    /// a bare list object, also accepted wrapped as `{"list": {...}}` or `{"lists": [{...}]}`.
    /// The list must carry an integer `id`, else the body is taken for something else.
    pub fn parse_one(source: String, body: Bytes) -> Result<ListsPage, String> {
        #[derive(Deserialize)]
        struct Probe<'a> {
            #[serde(borrow)]
            list: Option<&'a RawValue>,
            #[serde(borrow)]
            lists: Option<Vec<&'a RawValue>>,
        }
        let invalid =
            |e: serde_json::Error| format!("the body is not the documented list JSON: {e}");
        let probe: Probe<'_> = serde_json::from_slice(&body).map_err(invalid)?;
        let whole: &RawValue = serde_json::from_slice(&body).map_err(invalid)?;
        let raw = match (probe.list, probe.lists.as_deref()) {
            (Some(list), _) => list,
            (None, Some([list])) => *list,
            (None, Some(lists)) => {
                return Err(format!("the answer holds {} lists, not one", lists.len()));
            }
            (None, None) => whole,
        };
        let text = raw.get();
        if list_id(text.as_bytes()).is_none() {
            return Err("the body is not a list object with an integer `id`".to_owned());
        }
        let start = text.as_ptr() as usize - body.as_ptr() as usize;
        Ok(ListsPage {
            source,
            records: std::iter::once(start..start + text.len()).collect(),
            body,
        })
    }

    /// The `id` of every list in this answer, in the API's order: `None` for a list without a
    /// readable integer `id` (the decoder rejects it).
    pub fn ids(&self) -> impl ExactSizeIterator<Item = Option<i64>> + '_ {
        self.records().map(list_id)
    }
}

/// The `id` of one list object, if it has an integer one.
fn list_id(record: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct Id {
        id: Option<serde_json::Value>,
    }
    let id: Id = serde_json::from_slice(record).ok()?;
    id.id?.as_i64()
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
        assert_eq!(pagination.and_then(|p| p.total_pages), Some(2));
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

    #[test]
    fn one_list_is_read_bare_or_wrapped() {
        for body in [
            &br#" {"id": 42, "status": "active"} "#[..],
            br#"{"list": {"id": 42, "status": "active"}}"#,
            br#"{"lists": [{"id": 42, "status": "active"}]}"#,
        ] {
            let page = ListsPage::parse_one("x".into(), Bytes::from_static(body)).unwrap();
            assert_eq!(page.record(0), br#"{"id": 42, "status": "active"}"#);
            assert_eq!(page.ids().collect::<Vec<_>>(), [Some(42)]);
        }
        for body in [
            &br#"{"error": "Not found", "code": "not_found"}"#[..],
            br#"{"lists": []}"#,
            br#"{"id": "42"}"#,
            b"[]",
        ] {
            assert!(ListsPage::parse_one("x".into(), Bytes::from_static(body)).is_err());
        }
    }

    #[test]
    fn ids_are_read_from_each_list() {
        let body = Bytes::from_static(
            br#"{"lists": [{"name": "a", "id": 42}, {"id": 7.5}, {"id": null}, {"id": -3}]}"#,
        );
        let (page, _) = ListsPage::parse("x".into(), body).unwrap();
        assert_eq!(
            page.ids().collect::<Vec<_>>(),
            [Some(42), None, None, Some(-3)]
        );
    }
}
