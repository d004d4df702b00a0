//! One page of `GET /v2/contacts`, decoded in one pass ([`decode_page`]): its pagination block,
//! every contact's key, its valid contacts as Arrow columns, the invalid ones, and which
//! contacts the run keeps. The response body stays alongside for callers who want the JSON text
//! of each contact ([`Page::raw_contacts`]) or structs ([`Page::contacts`]).

use arrow_array::RecordBatch;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::contacts_page::{ContactsPage, Pass, decode_page};
use crate::envelope::EnvelopeError;
pub use crate::envelope::Pagination;
use crate::key::Identity;
use crate::reject::Reject;

/// How far a run's delivery is proven: every contact present for the whole run with a
/// `signup_date` above [`signup_date`](Self::signup_date) has been delivered, and that key is
/// the lowest of main-pass page [`page`](Self::page) as it was read. A resumed run starts at
/// that page (or earlier, if the listing has shifted since) and misses nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontier {
    /// Microseconds since the epoch.
    pub signup_date: i64,
    /// The last main-pass page with every boundary above it proven.
    pub page: u64,
}

/// Where an interrupted run picks up again, as its checkpoint records it: the page it was
/// decoding, the total that page reported and the [`Frontier`] below which nothing is proven
/// written. The one type from the [`Page`] that carries the frontier to the fetcher's
/// `ResumeFrom`, through the converter's checkpoint; serialised here alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ResumeRecord", into = "ResumeRecord")]
pub struct ResumePoint {
    /// The page being decoded when the point was taken (1 before any page).
    pub page: u64,
    /// `pagination.total` that page reported (0 when it reported none); when the resumed run
    /// sees the same total throughout, the count is reconciled across both runs.
    pub total: u64,
    /// Every contact present throughout the run with a `signup_date` above this frontier was
    /// written before the point was taken. `None`: a resumed run starts from page 1 (exact,
    /// but every page is fetched again).
    pub frontier: Option<Frontier>,
}

impl Default for ResumePoint {
    /// Before any page: page 1, no total, no frontier.
    fn default() -> Self {
        ResumePoint {
            page: 1,
            total: 0,
            frontier: None,
        }
    }
}

/// [`ResumePoint`] as a checkpoint's `progress` holds it: `{"page", "total", "frontier"
/// (microseconds), "frontier_page"}`. Checkpoints older than `frontier_page` resume the
/// frontier from `page`.
#[derive(Serialize, Deserialize)]
struct ResumeRecord {
    page: u64,
    total: u64,
    #[serde(default)]
    frontier: Option<i64>,
    #[serde(default)]
    frontier_page: Option<u64>,
}

impl From<ResumeRecord> for ResumePoint {
    fn from(r: ResumeRecord) -> Self {
        ResumePoint {
            page: r.page,
            total: r.total,
            frontier: r.frontier.map(|signup_date| Frontier {
                signup_date,
                page: r.frontier_page.unwrap_or(r.page),
            }),
        }
    }
}

impl From<ResumePoint> for ResumeRecord {
    fn from(p: ResumePoint) -> Self {
        ResumeRecord {
            page: p.page,
            total: p.total,
            frontier: p.frontier.map(|f| f.signup_date),
            frontier_page: p.frontier.map(|f| f.page),
        }
    }
}

/// A page of contacts as it left the API, decoded, with a mask of the contacts the run keeps
/// (the fetcher's de-duplication drops contacts it delivered before).
///
/// Decoding happens once, when the page is built ([`Page::parse`]); nothing later tokenizes the
/// body again. [`len`](Self::len), [`raw_contacts`](Self::raw_contacts) and
/// [`contacts`](Self::contacts) see only the kept contacts.
#[derive(Clone)]
pub struct Page {
    number: u64,
    pass: Pass,
    frontier: Option<Frontier>,
    body: Bytes,
    decoded: ContactsPage,
    /// One flag per contact, in body order: whether the run keeps it.
    kept_by_contact: Vec<bool>,
    kept: usize,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("number", &self.number)
            .field("pass", &self.pass)
            .field("pagination", &self.decoded.pagination())
            .field("contacts", &self.decoded.len())
            .field("kept", &self.kept)
            .field("invalid", &self.decoded.invalid().len())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl Page {
    /// Decodes a response body (see [`decode_page`]).
    ///
    /// Fails when the body is not a JSON object with a `contacts` array of objects and a
    /// well-formed `pagination` block; damage inside a contact only makes it invalid.
    pub fn parse(number: u64, pass: Pass, body: Bytes) -> Result<Page, EnvelopeError> {
        let decoded = decode_page(number, pass, &body)?;
        Ok(Page::new(number, pass, body, decoded))
    }

    fn new(number: u64, pass: Pass, body: Bytes, decoded: ContactsPage) -> Page {
        let n = decoded.len();
        Page {
            number,
            pass,
            frontier: None,
            body,
            decoded,
            kept_by_contact: vec![true; n],
            kept: n,
        }
    }

    /// The page number that was requested.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Which read of the listing the page comes from: the main pass, or a verification read
    /// of the boundary above page [`number`](Self::number) (a request with another page size
    /// whose window straddles that boundary; it delivers only contacts no page delivered before).
    pub fn pass(&self) -> Pass {
        self.pass
    }

    /// How far delivery was proven when the fetcher delivered this page (see [`Frontier`]).
    /// `None` until the fetcher sets it. A resumed run that starts above this key misses
    /// nothing (see the fetcher's `ResumeFrom`).
    pub fn frontier(&self) -> Option<Frontier> {
        self.frontier
    }

    /// The pagination block the API sent with this page.
    pub fn pagination(&self) -> Pagination {
        self.decoded.pagination()
    }

    /// The whole response body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Number of contacts kept in this page.
    pub fn len(&self) -> usize {
        self.kept
    }

    /// Whether no contact is kept in this page.
    pub fn is_empty(&self) -> bool {
        self.kept == 0
    }

    /// The key of every contact in the body, kept or not, in body order.
    pub fn keys(&self) -> &[Identity] {
        self.decoded.keys()
    }

    /// One flag per contact in the body, in body order (the index space of
    /// [`Reject::index`] and [`ContactsPage::row_of`]): whether the run keeps it.
    pub fn kept_by_contact(&self) -> &[bool] {
        &self.kept_by_contact
    }

    /// The decoded body: every contact's columns or why it is invalid, kept or not.
    pub fn decoded(&self) -> &ContactsPage {
        &self.decoded
    }

    /// The rows of the valid contacts, kept or not (see [`ContactsPage::rows`]).
    pub fn rows(&self) -> &RecordBatch {
        self.decoded.rows()
    }

    /// The invalid contacts the run keeps, in body order ([`Reject::index`] is the position
    /// in the body as sent).
    pub fn kept_invalid(&self) -> impl Iterator<Item = &Reject> + '_ {
        self.decoded
            .invalid()
            .iter()
            .filter(|i| self.kept_by_contact[i.index])
    }

    /// The JSON text of each kept contact, one object each, in the order the API sent them.
    pub fn raw_contacts(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let kept: Vec<&[u8]> = self
            .decoded
            .ranges()
            .iter()
            .zip(&self.kept_by_contact)
            .filter(|(_, k)| **k)
            .map(|(r, _)| &self.body[r.clone()])
            .collect();
        kept.into_iter()
    }

    /// Parses every kept contact into a [`Contact`].
    pub fn contacts(&self) -> Result<Vec<Contact>, serde_json::Error> {
        self.raw_contacts()
            .map(serde_json::from_slice::<Contact>)
            .collect()
    }

    /// Keeps the contacts for which `keep` returns true (used for de-duplication).
    #[cfg(test)]
    pub(crate) fn retain_contacts(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let flags: Vec<bool> = self.raw_contacts().map(&mut keep).collect();
        self.retain_among_kept(&flags);
    }

    /// Drops from the kept contacts those whose flag in `still_kept` (one per kept contact, in
    /// order) is false: the fetcher's de-duplication. Only the mask changes; nothing is copied.
    pub fn retain_among_kept(&mut self, still_kept: &[bool]) {
        let mut flags = still_kept.iter();
        for k in self.kept_by_contact.iter_mut().filter(|k| **k) {
            *k = flags.next().copied().unwrap_or(true);
        }
        self.kept = self.kept_by_contact.iter().filter(|k| **k).count();
    }

    /// Files the page as a verification read of the boundary above main page `number` (the
    /// fetcher does this for the reads that prove a page boundary).
    pub fn set_verification(&mut self, number: u64) {
        self.number = number;
        self.pass = Pass::Verification;
    }

    /// Sets [`frontier`](Self::frontier): the fetcher does this when it delivers the page.
    pub fn set_frontier(&mut self, frontier: Option<Frontier>) {
        self.frontier = frontier;
    }
}

/// A contact as documented by the API. Fields the API adds later land in `extra`.
///
/// Timestamps stay as the API's ISO-8601 text and `revenue_total` as its exact JSON number, so
/// nothing is lost on the way; [`decode_page`] gives them proper Arrow
/// types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// E.164 phone number of the contact.
    pub phone_number: String,
    /// E.164 number of the sending list.
    pub list_number: String,
    /// Id of the sending list.
    pub list_id: Option<i64>,
    /// Whether the contact is subscribed.
    pub active: Option<bool>,
    /// When the contact signed up (ISO-8601, naive means UTC).
    pub signup_date: Option<String>,
    /// How the contact signed up (`api`, `keyword`, ...).
    pub signup_method: Option<String>,
    /// Free-form fields; values may be any JSON.
    pub custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
    /// Mobile carrier.
    pub carrier: Option<String>,
    /// Line type (`CELL PHONE`, `LANDLINE`, ...).
    pub line_type: Option<String>,
    /// IANA time zone of the contact.
    pub timezone: Option<String>,
    /// Whether the number is valid.
    pub is_valid: Option<bool>,
    /// Messages sent to the contact.
    pub send_count: Option<i64>,
    /// Clicks by the contact.
    pub click_count: Option<i64>,
    /// Revenue attributed to the contact, as the exact JSON number text.
    pub revenue_total: Option<serde_json::Number>,
    /// Conversions by the contact.
    pub conversion_count: Option<i64>,
    /// Last message sent (ISO-8601).
    pub last_sent_at: Option<String>,
    /// Last click (ISO-8601).
    pub last_clicked_at: Option<String>,
    /// Whether the contact is in a workflow.
    pub in_workflow: Option<bool>,
    /// Fields not documented at the time of writing.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"contacts":[{"phone_number":"+14155559876","list_number":"+18005551234","custom_fields":{"a":1}} , {"phone_number":"+4915112345678","list_number":"+18005551234"}],"pagination":{"page":2,"per_page":2,"total":3,"total_pages":2}}"#;

    #[test]
    fn parse_records_each_contact_as_its_exact_json_text() {
        let page = Page::parse(2, Pass::Main, Bytes::from_static(BODY.as_bytes())).unwrap();
        let raw: Vec<&[u8]> = page.raw_contacts().collect();
        assert_eq!(raw.len(), 2);
        assert_eq!(
            raw[0],
            br#"{"phone_number":"+14155559876","list_number":"+18005551234","custom_fields":{"a":1}}"#
        );
        assert_eq!(
            page.pagination(),
            Pagination {
                page: Some(2),
                per_page: Some(2),
                total: Some(3),
                total_pages: Some(2)
            }
        );
        let contacts = page.contacts().unwrap();
        assert_eq!(contacts[1].phone_number, "+4915112345678");
    }

    #[test]
    fn parse_rejects_wrong_shapes() {
        for body in [
            "",
            "[]",
            "{\"contacts\":[]}",
            "{\"pagination\":{\"page\":1,\"per_page\":1,\"total\":0,\"total_pages\":0}}",
            "{\"contacts\":[1],\"pagination\":{\"page\":1,\"per_page\":1,\"total\":0,\"total_pages\":0}}",
            "<html>502 Bad Gateway</html>",
            "{\"contacts\":[{}",
        ] {
            assert!(
                Page::parse(1, Pass::Main, Bytes::from(body)).is_err(),
                "accepted {body:?}"
            );
        }
    }

    #[test]
    fn pagination_fields_that_are_missing_null_strings_or_out_of_range_read_as_none() {
        for (block, total) in [
            (
                r#"{"page":1,"per_page":1,"total":"7","total_pages":1}"#,
                Some(7),
            ),
            (r#"{"page":1,"per_page":1,"total":null}"#, None),
            (r#"{"page":1,"per_page":1}"#, None),
            (r#"{"page":-1,"total":"many"}"#, None),
            (r#"{"total":1e30}"#, None),
        ] {
            let body = format!(r#"{{"contacts":[],"pagination":{block}}}"#);
            let page = Page::parse(1, Pass::Main, Bytes::from(body)).unwrap();
            assert_eq!(page.pagination().total, total, "{block}");
        }
        let body = r#"{"contacts":[],"pagination":{"page":-1}}"#;
        assert_eq!(
            Page::parse(1, Pass::Main, Bytes::from(body))
                .unwrap()
                .pagination()
                .page,
            None
        );
    }

    #[test]
    fn damage_inside_a_contact_leaves_the_page_readable() {
        let body = "{\"contacts\":[{\"phone_number\":\"+1\",\"revenue_total\":NaN},{\"phone_number\":\"+2\",\"carrier\":\"T\u{1}Mobile\"}, {\"phone_number\":\"+3\",\"x\":[Infinity,{\"y\":\"}\\\"\"}]}],\"pagination\":{\"page\":1,\"per_page\":3,\"total\":3,\"total_pages\":1}}";
        let page = Page::parse(1, Pass::Main, Bytes::from(body)).unwrap();
        let raw: Vec<&[u8]> = page.raw_contacts().collect();
        assert_eq!(raw.len(), 3);
        assert!(raw[0].ends_with(b"NaN}"));
        assert_eq!(
            raw[1],
            "{\"phone_number\":\"+2\",\"carrier\":\"T\u{1}Mobile\"}".as_bytes()
        );
        assert!(raw[2].ends_with(b"\"}]}"));
        assert_eq!(page.pagination().total, Some(3));
        // The envelope itself must still be whole.
        let truncated = &body[..body.len() - 1];
        assert!(Page::parse(1, Pass::Main, Bytes::from(truncated)).is_err());
        let bad_pagination = body.replace("\"total\":3", "\"total\":NaN");
        assert!(Page::parse(1, Pass::Main, Bytes::from(bad_pagination)).is_err());
    }

    #[test]
    fn retain_drops_contacts_without_touching_the_body() {
        let mut page = Page::parse(2, Pass::Main, Bytes::from_static(BODY.as_bytes())).unwrap();
        page.retain_contacts(|c| !c.windows(6).any(|w| w == b"+49151"));
        assert_eq!(page.len(), 1);
        assert_eq!(page.body().len(), BODY.len());
    }

    #[test]
    fn a_resume_point_reads_back_as_written_and_old_checkpoints_resume_from_their_page() {
        let point = ResumePoint {
            page: 40,
            total: 10_050,
            frontier: Some(Frontier {
                signup_date: 1_700_000_000_000_000,
                page: 37,
            }),
        };
        let json = serde_json::to_value(point).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"page": 40, "total": 10_050,
                "frontier": 1_700_000_000_000_000i64, "frontier_page": 37})
        );
        assert_eq!(serde_json::from_value::<ResumePoint>(json).unwrap(), point);
        // Before `frontier_page`, the frontier's page was the point's own.
        let old = serde_json::json!({"page": 40, "total": 5, "frontier": 7});
        let read: ResumePoint = serde_json::from_value(old).unwrap();
        assert_eq!(
            read.frontier.map(|f| (f.signup_date, f.page)),
            Some((7, 40))
        );
        let bare: ResumePoint =
            serde_json::from_value(serde_json::json!({"page": 3, "total": 0})).unwrap();
        assert_eq!(bare.frontier, None);
    }
}
