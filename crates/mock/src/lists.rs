//! `GET /v2/lists`: the sending lists of the data set, consistent with its contacts.
//!
//! Every list a contact is on is served with exactly the `id` and `phone_number` its contacts
//! carry as `list_id` and `list_number`, and `contact_count` is the number of its active
//! contacts in the data set as it is when the request arrives (drift and live changes
//! included). Besides those, `1 + lists / 4` deleted lists hold no contacts. Every other
//! attribute (brand and list name, `list_type`, `status`, `created_at`) is a pure function of
//! the seed and the list's index, so the same data set always serves the same lists.
//!
//! Lists come in `id` order. The default answer leaves deleted lists out; `status=` selects
//! one status (deleted ones included), as documented. By default the answer is
//! `{"lists":[...]}` without pagination, as the documentation shows it; with
//! [`MockConfig::lists_per_page`](crate::MockConfig::lists_per_page) it is paged and carries a
//! `pagination` block.

use bytes::Bytes;
use chrono::DateTime;

use crate::dataset::Dataset;
use crate::generate::{END_SECS, ListInfo, START_SECS, list_info, mix};
use crate::json::{push_json_str, push_u64};
use crate::query::{DEFAULT_PER_PAGE, ListsQuery, MAX_LISTS_PER_PAGE};

/// Brands behind the lists; two carry non-ASCII text and one quotes, so clients unescape.
const BRANDS: [&str; 12] = [
    "Acme Co",
    "Northwind Traders",
    "Globex",
    "Initech",
    "Umbrella Goods",
    "Stark Apparel",
    "Café Olé",
    "Zoë's \"Best\" Bakery",
    "Hooli",
    "Soylent Foods",
    "Wayne Outdoor",
    "東京 Ramen",
];
/// What a list is for, appended to the brand's first word to name it.
const PURPOSES: [&str; 6] = [
    "Promo List",
    "VIP",
    "Alerts",
    "Loyalty Club",
    "Restock Alerts",
    "Flash Sales",
];
/// The documented `list_type` values.
const LIST_TYPES: [&str; 4] = ["lime", "infobip", "twilio", "cm"];

/// One sending list as the API serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListRow {
    info: ListInfo,
    brand: &'static str,
    name: String,
    list_type: &'static str,
    status: &'static str,
    contact_count: u64,
    created_secs: i64,
}

/// Deleted lists beside `lists` lists that hold contacts.
fn deleted_lists(lists: usize) -> usize {
    1 + lists / 4
}

/// The status of the `i`-th list that holds contacts: the biggest is active, and a steady
/// share of the others is paused or suspended (a list keeps its contacts while it is).
fn live_status(i: usize) -> &'static str {
    match i % 4 {
        _ if i == 0 => "active",
        2 => "paused",
        3 => "suspended",
        _ => "active",
    }
}

impl ListRow {
    /// List `i` of a data set generated from `seed`, with its status and active contacts.
    fn new(seed: u64, i: usize, status: &'static str, contact_count: u64) -> ListRow {
        let h = mix(seed, i as u64, 0x1157);
        // The first list looks like the documentation's example.
        let (brand, purpose, list_type) = if i == 0 {
            (BRANDS[0], PURPOSES[0], "infobip")
        } else {
            (
                BRANDS[(h % BRANDS.len() as u64) as usize],
                PURPOSES[((h >> 8) % PURPOSES.len() as u64) as usize],
                LIST_TYPES[((h >> 16) % LIST_TYPES.len() as u64) as usize],
            )
        };
        let short = brand.split(' ').next().unwrap_or(brand);
        let created_secs = if status == "deleted" {
            // Created, used and deleted at some point of the data set's time range.
            START_SECS + (h >> 24) as i64 % (END_SECS - START_SECS)
        } else {
            // Created before anyone signed up to it: up to about 14 months earlier.
            START_SECS - 86_400 * (1 + (h >> 24) as i64 % 420) - (h >> 40) as i64 % 86_400
        };
        ListRow {
            info: list_info(i),
            brand,
            name: format!("{short} {purpose}"),
            list_type,
            status,
            contact_count,
            created_secs,
        }
    }

    /// Appends the list's JSON object, fields in the documented order.
    fn render(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        push_u64(out, self.info.id);
        out.extend_from_slice(b",\"phone_number\":");
        push_json_str(out, &self.info.number);
        out.extend_from_slice(b",\"brand_name\":");
        push_json_str(out, self.brand);
        out.extend_from_slice(b",\"list_name\":");
        push_json_str(out, &self.name);
        out.extend_from_slice(b",\"list_type\":");
        push_json_str(out, self.list_type);
        out.extend_from_slice(b",\"status\":");
        push_json_str(out, self.status);
        out.extend_from_slice(b",\"contact_count\":");
        push_u64(out, self.contact_count);
        out.extend_from_slice(b",\"created_at\":\"");
        let at = DateTime::from_timestamp(self.created_secs, 0).unwrap_or(DateTime::UNIX_EPOCH);
        out.extend_from_slice(at.format("%Y-%m-%dT%H:%M:%SZ").to_string().as_bytes());
        out.extend_from_slice(b"\"}");
    }
}

/// Every list of `dataset`, deleted ones included, in `id` order; the first list (the biggest,
/// always active) shown as deleted when `flipped`
/// ([`MockConfig::lists_churn`](crate::MockConfig::lists_churn)).
fn list_rows(dataset: &Dataset, flipped: bool) -> Vec<ListRow> {
    let seed = dataset.seed();
    let live = dataset.lists().len();
    let active = dataset.active_per_list();
    let mut rows: Vec<ListRow> = (0..live)
        .map(|i| ListRow::new(seed, i, live_status(i), active.get(i).copied().unwrap_or(0)))
        .collect();
    rows.extend((live..live + deleted_lists(live)).map(|i| ListRow::new(seed, i, "deleted", 0)));
    if flipped {
        rows[0].status = "deleted";
    }
    rows
}

/// The body of `GET /v2/lists/{id}`: the list alone, as documented ("one list in the same
/// shape"), or `None` when no list has that id.
pub(crate) fn list_body(dataset: &Dataset, id: u64, flipped: bool) -> Option<Bytes> {
    let row = list_rows(dataset, flipped)
        .into_iter()
        .find(|row| row.info.id == id)?;
    let mut out = Vec::with_capacity(256);
    row.render(&mut out);
    Some(Bytes::from(out))
}

/// The body of a `/v2/lists` answer to `query`: without pagination when `page_size` is `None`
/// (every matching list; `page` and `per_page` are ignored), else the asked page of at most
/// `min(per_page or 50, page_size, 100)` lists with a `pagination` block; the first list is
/// shown as deleted when `flipped`. Also returns the number of lists in it.
pub(crate) fn lists_body(
    dataset: &Dataset,
    query: &ListsQuery,
    page_size: Option<u32>,
    flipped: bool,
) -> (Bytes, usize) {
    let selected: Vec<ListRow> = list_rows(dataset, flipped)
        .into_iter()
        .filter(|row| match query.status {
            None => row.status != "deleted",
            Some(status) => row.status == status,
        })
        .collect();
    let total = selected.len() as u64;
    let (window, pagination) = match page_size {
        None => (&selected[..], None),
        Some(size) => {
            let per_page = query
                .per_page
                .unwrap_or(DEFAULT_PER_PAGE)
                .min(u64::from(size))
                .clamp(1, MAX_LISTS_PER_PAGE);
            let start = query.page.saturating_sub(1).saturating_mul(per_page);
            let start = usize::try_from(start)
                .unwrap_or(usize::MAX)
                .min(selected.len());
            let end = start.saturating_add(per_page as usize).min(selected.len());
            (&selected[start..end], Some((query.page, per_page)))
        }
    };
    let mut out = Vec::with_capacity(64 + 220 * window.len());
    out.extend_from_slice(b"{\"lists\":[");
    for (n, row) in window.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        row.render(&mut out);
    }
    out.push(b']');
    if let Some((page, per_page)) = pagination {
        out.extend_from_slice(b",\"pagination\":{\"page\":");
        push_u64(&mut out, page);
        out.extend_from_slice(b",\"per_page\":");
        push_u64(&mut out, per_page);
        out.extend_from_slice(b",\"total\":");
        push_u64(&mut out, total);
        out.extend_from_slice(b",\"total_pages\":");
        push_u64(&mut out, total.div_ceil(per_page));
        out.push(b'}');
    }
    out.push(b'}');
    (Bytes::from(out), window.len())
}

impl Dataset {
    /// Every list, deleted ones included, one JSON object per line in `id` order, exactly the
    /// text `/v2/lists` serves (see [`MockServer::lists_ground_truth`](crate::MockServer::lists_ground_truth)).
    pub fn lists_ndjson(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for row in list_rows(self, false) {
            row.render(&mut out);
            out.push(b'\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatasetConfig;
    use serde_json::Value;
    use std::collections::{HashMap, HashSet};

    fn dataset(contacts: usize, lists: usize) -> Dataset {
        Dataset::generate(&DatasetConfig {
            seed: 3,
            contacts,
            lists,
            ..DatasetConfig::default()
        })
    }

    fn parse_lines(ndjson: &[u8]) -> Vec<Value> {
        ndjson
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    fn query(status: Option<&'static str>, page: u64, per_page: Option<u64>) -> ListsQuery {
        ListsQuery {
            status,
            page,
            per_page,
        }
    }

    #[test]
    fn lists_match_the_contacts_ids_numbers_and_active_counts() {
        let data = dataset(3_000, 6);
        let lists = parse_lines(&data.lists_ndjson());
        assert_eq!(lists.len(), 6 + deleted_lists(6));
        let mut active: HashMap<(i64, String), u64> = HashMap::new();
        for i in 0..data.len() {
            let c: Value = serde_json::from_slice(data.contact_json(i)).unwrap();
            let key = (
                c["list_id"].as_i64().unwrap(),
                c["list_number"].as_str().unwrap().to_owned(),
            );
            *active.entry(key).or_default() += u64::from(c["active"] == true);
        }
        for list in &lists {
            let key = (
                list["id"].as_i64().unwrap(),
                list["phone_number"].as_str().unwrap().to_owned(),
            );
            let count = list["contact_count"].as_u64().unwrap();
            match active.get(&key) {
                Some(&n) => assert_eq!(count, n, "{list}"),
                None => assert_eq!((list["status"].as_str(), count), (Some("deleted"), 0)),
            }
        }
        // Every (list_id, list_number) of the contacts is a list.
        let known: HashSet<(i64, String)> = lists
            .iter()
            .map(|l| {
                (
                    l["id"].as_i64().unwrap(),
                    l["phone_number"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(active.keys().all(|k| known.contains(k)));
    }

    #[test]
    fn lists_have_the_documented_fields_types_and_values() {
        let data = dataset(500, 8);
        let text = data.lists_ndjson();
        let first = std::str::from_utf8(text.split(|&b| b == b'\n').next().unwrap()).unwrap();
        assert!(
            first.starts_with(r#"{"id":42,"phone_number":"+18005551234","brand_name":"Acme Co","list_name":"Acme Promo List","list_type":"infobip","status":"active","contact_count":"#),
            "{first}"
        );
        let lists = parse_lines(&text);
        let statuses: HashSet<&str> = lists
            .iter()
            .map(|l| l["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            HashSet::from(["active", "paused", "suspended", "deleted"])
        );
        let ids: Vec<i64> = lists.iter().map(|l| l["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        for list in &lists {
            assert_eq!(list.as_object().unwrap().len(), 8, "{list}");
            assert!(LIST_TYPES.contains(&list["list_type"].as_str().unwrap()));
            let created = list["created_at"].as_str().unwrap();
            assert!(
                created.ends_with('Z') && DateTime::parse_from_rfc3339(created).is_ok(),
                "{created}"
            );
        }
        // Deterministic.
        assert_eq!(dataset(500, 8).lists_ndjson(), text);
    }

    #[test]
    fn the_default_answer_leaves_deleted_lists_out_and_status_selects() {
        let data = dataset(200, 4);
        let body = |q: &ListsQuery, size| {
            let (body, n) = lists_body(&data, q, size, false);
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["lists"].as_array().unwrap().len(), n);
            v
        };
        let default = body(&query(None, 1, None), None);
        assert_eq!(default.as_object().unwrap().len(), 1, "no pagination block");
        let lists = default["lists"].as_array().unwrap();
        assert_eq!(lists.len(), 4);
        assert!(lists.iter().all(|l| l["status"] != "deleted"));
        let deleted = body(&query(Some("deleted"), 1, None), None);
        assert_eq!(deleted["lists"].as_array().unwrap().len(), deleted_lists(4));
        let paused = body(&query(Some("paused"), 1, None), None);
        assert_eq!(paused["lists"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn paged_answers_carry_pagination_and_concatenate_to_the_whole() {
        let data = dataset(200, 9);
        let mut seen = Vec::new();
        for page in 1..=4 {
            let (body, _) = lists_body(&data, &query(None, page, Some(100)), Some(4), false);
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                v["pagination"],
                serde_json::json!({"page": page, "per_page": 4, "total": 9, "total_pages": 3})
            );
            seen.extend(v["lists"].as_array().unwrap().iter().cloned());
        }
        let all: Vec<Value> = parse_lines(&data.lists_ndjson())
            .into_iter()
            .filter(|l| l["status"] != "deleted")
            .collect();
        assert_eq!(seen, all);
    }
}
