//! One page of `GET /v2/contacts`: its raw bytes, the byte range of every kept contact, and a
//! typed view for callers who want structs.

use std::ops::Range;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// The `pagination` block of a response, exactly as the API reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pagination {
    /// The page this response is for (1-based).
    pub page: u64,
    /// Contacts per page.
    pub per_page: u64,
    /// Contacts matching the query when the page was served.
    pub total: u64,
    /// `ceil(total / per_page)` when the page was served.
    pub total_pages: u64,
}

/// A page of contacts as it left the API, minus any contact already delivered earlier in the run.
///
/// The contacts are kept as the JSON text the API sent (`raw_contacts`), so a decoder can read
/// them straight into columns without an intermediate struct; [`Page::contacts`] parses them into
/// [`Contact`] values for callers who prefer structs.
#[derive(Clone)]
pub struct Page {
    number: u64,
    pass: u32,
    frontier: Option<i64>,
    pagination: Pagination,
    body: Bytes,
    contacts: Vec<Range<usize>>,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("number", &self.number)
            .field("pass", &self.pass)
            .field("pagination", &self.pagination)
            .field("contacts", &self.contacts.len())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl Page {
    /// Builds a page from a response body, recording where each contact object lies.
    ///
    /// Fails when the body is not a JSON object with a `contacts` array of objects and a
    /// well-formed `pagination` block.
    pub fn parse(number: u64, pass: u32, body: Bytes) -> Result<Page, serde_json::Error> {
        let envelope = parse_envelope(&body)?;
        Ok(Page {
            number,
            pass,
            frontier: None,
            pagination: envelope.pagination,
            body,
            contacts: envelope.contacts,
        })
    }

    /// Builds a page from already-separated contact objects (for tests, benches and callers
    /// that source contacts elsewhere). Each item must be one JSON object.
    pub fn from_raw_contacts<'a>(
        number: u64,
        pagination: Pagination,
        contacts: impl IntoIterator<Item = &'a [u8]>,
    ) -> Page {
        let mut body = Vec::new();
        let mut ranges = Vec::new();
        for contact in contacts {
            if !body.is_empty() {
                body.push(b'\n');
            }
            let start = body.len();
            body.extend_from_slice(contact);
            ranges.push(start..body.len());
        }
        Page {
            number,
            pass: 1,
            frontier: None,
            pagination,
            body: Bytes::from(body),
            contacts: ranges,
        }
    }

    /// The page number that was requested.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// 1 for the main pass over the listing; 2 and up for a verification read of the boundary
    /// above page [`number`](Self::number) (a request with another page size whose window
    /// straddles that boundary; it delivers only contacts no page delivered before).
    pub fn pass(&self) -> u32 {
        self.pass
    }

    /// When the fetcher delivered this page: the `signup_date` (microseconds since the epoch)
    /// above which every contact present for the whole run has been delivered, in this page or
    /// before it. `None` while no boundary is proven yet. A resumed run that starts above this
    /// key misses nothing (see the fetcher's `ResumeFrom`).
    pub fn frontier(&self) -> Option<i64> {
        self.frontier
    }

    /// The pagination block the API sent with this page.
    pub fn pagination(&self) -> Pagination {
        self.pagination
    }

    /// The whole response body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Number of contacts kept in this page.
    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    /// Whether no contact is kept in this page.
    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }

    /// The JSON text of each kept contact, one object each, in the order the API sent them.
    pub fn raw_contacts(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.contacts.iter().map(|r| &self.body[r.clone()])
    }

    /// Parses every kept contact into a [`Contact`].
    pub fn contacts(&self) -> Result<Vec<Contact>, serde_json::Error> {
        self.raw_contacts()
            .map(serde_json::from_slice::<Contact>)
            .collect()
    }

    /// Keeps only the contacts for which `keep` returns true (used for de-duplication).
    #[cfg(test)]
    pub(crate) fn retain_contacts(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let body = &self.body;
        self.contacts.retain(|r| keep(&body[r.clone()]));
    }

    /// Keeps the contacts whose flag in `keep` (one per contact, in order) is true: the
    /// fetcher's de-duplication drops the contacts it delivered before.
    pub fn retain_flagged(&mut self, keep: &[bool]) {
        let mut flags = keep.iter();
        self.contacts
            .retain(|_| flags.next().copied().unwrap_or(true));
    }

    /// Files the page as a verification read of the boundary above main page `number` (the
    /// fetcher does this for the reads that prove a page boundary).
    pub fn set_verification(&mut self, number: u64, pass: u32) {
        self.number = number;
        self.pass = pass;
    }

    /// Sets [`frontier`](Self::frontier): the fetcher does this when it delivers the page.
    pub fn set_frontier(&mut self, frontier: Option<i64>) {
        self.frontier = frontier;
    }
}

/// A contact as documented by the API. Fields the API adds later land in `extra`.
///
/// Timestamps stay as the API's ISO-8601 text and `revenue_total` as its exact JSON number, so
/// nothing is lost on the way; [`ContactDecoder`](crate::ContactDecoder) gives them proper Arrow
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

struct Envelope {
    pagination: Pagination,
    contacts: Vec<Range<usize>>,
}

/// Parses `{"contacts": [...], "pagination": {...}}`, recording the byte range of each contact.
///
/// A body that strict JSON rejects is scanned once more for its structure alone: when only the
/// inside of some contacts is at fault (`NaN`, `Infinity`, a raw control character in a
/// string), the envelope is still readable, and those contacts are the decoder's to reject one
/// by one, as invalid records. Anything else (a truncated body, HTML, a wrong shape) stays an
/// error: the strict parser's.
fn parse_envelope(body: &[u8]) -> Result<Envelope, serde_json::Error> {
    let base = body.as_ptr() as usize;
    let mut de = serde_json::Deserializer::from_slice(body);
    let strict = EnvelopeSeed { base }
        .deserialize(&mut de)
        .and_then(|envelope| de.end().map(|()| envelope));
    match strict {
        Ok(envelope) => Ok(envelope),
        Err(e) if e.is_syntax() => lenient::envelope(body).ok_or(e),
        Err(e) => Err(e),
    }
}

struct EnvelopeSeed {
    base: usize,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed {
    type Value = Envelope;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Envelope, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed {
    type Value = Envelope;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object with `contacts` and `pagination`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut contacts = None;
        let mut pagination = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "contacts" => {
                    if contacts.is_some() {
                        return Err(de::Error::duplicate_field("contacts"));
                    }
                    contacts = Some(map.next_value_seed(ContactsSeed { base: self.base })?);
                }
                "pagination" => {
                    if pagination.is_some() {
                        return Err(de::Error::duplicate_field("pagination"));
                    }
                    pagination = Some(map.next_value::<Pagination>()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            contacts: contacts.ok_or_else(|| de::Error::missing_field("contacts"))?,
            pagination: pagination.ok_or_else(|| de::Error::missing_field("pagination"))?,
        })
    }
}

struct ContactsSeed {
    base: usize,
}

impl<'de> DeserializeSeed<'de> for ContactsSeed {
    type Value = Vec<Range<usize>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ContactsSeed {
    type Value = Vec<Range<usize>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of contact objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ranges = Vec::with_capacity(seq.size_hint().unwrap_or(1000));
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            let text = raw.get();
            if !text.starts_with('{') {
                return Err(de::Error::invalid_type(
                    de::Unexpected::Other("a non-object contact"),
                    &"a contact object",
                ));
            }
            // `raw` borrows from the body, so its offset in the body is a pointer difference.
            let start = text.as_ptr() as usize - self.base;
            ranges.push(start..start + text.len());
        }
        Ok(ranges)
    }
}

/// A structural scan of the envelope that does not judge the inside of contacts.
mod lenient {
    use std::ops::Range;

    use super::{Envelope, Pagination};

    pub(super) fn envelope(body: &[u8]) -> Option<Envelope> {
        let mut s = Scanner { b: body, i: 0 };
        s.expect(b'{')?;
        let (mut contacts, mut pagination) = (None, None);
        loop {
            s.ws();
            if s.eat(b'}') {
                break;
            }
            let key = s.string()?;
            s.ws();
            s.expect(b':')?;
            s.ws();
            match &body[key] {
                b"\"contacts\"" if contacts.is_none() => contacts = Some(s.contacts()?),
                b"\"pagination\"" if pagination.is_none() => {
                    let value = s.value()?;
                    pagination = Some(serde_json::from_slice::<Pagination>(&body[value]).ok()?);
                }
                b"\"contacts\"" | b"\"pagination\"" => return None,
                _ => {
                    s.value()?;
                }
            }
            s.ws();
            if !s.eat(b',') {
                s.expect(b'}')?;
                break;
            }
        }
        s.ws();
        (s.i == body.len()).then_some(())?;
        Some(Envelope {
            contacts: contacts?,
            pagination: pagination?,
        })
    }

    struct Scanner<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl Scanner<'_> {
        fn ws(&mut self) {
            while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> bool {
            let hit = self.b.get(self.i) == Some(&c);
            self.i += usize::from(hit);
            hit
        }

        fn expect(&mut self, c: u8) -> Option<()> {
            self.eat(c).then_some(())
        }

        /// A string, quotes included; raw control characters are let through.
        fn string(&mut self) -> Option<Range<usize>> {
            let start = self.i;
            self.expect(b'"')?;
            loop {
                match *self.b.get(self.i)? {
                    b'"' => {
                        self.i += 1;
                        return Some(start..self.i);
                    }
                    b'\\' => self.i += 2,
                    _ => self.i += 1,
                }
            }
        }

        /// Any value: strings, nested objects and arrays, and bare tokens (numbers, literals,
        /// and the non-standard ones such as `NaN`) up to the next delimiter.
        fn value(&mut self) -> Option<Range<usize>> {
            let start = self.i;
            match *self.b.get(self.i)? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    let mut depth = 0usize;
                    loop {
                        match *self.b.get(self.i)? {
                            b'"' => {
                                self.string()?;
                                continue;
                            }
                            b'{' | b'[' => depth += 1,
                            b'}' | b']' => {
                                depth -= 1;
                                if depth == 0 {
                                    self.i += 1;
                                    break;
                                }
                            }
                            _ => {}
                        }
                        self.i += 1;
                    }
                }
                _ => {
                    while self
                        .b
                        .get(self.i)
                        .is_some_and(|c| !b",}]".contains(c) && !c.is_ascii_whitespace())
                    {
                        self.i += 1;
                    }
                    (self.i > start).then_some(())?;
                }
            }
            Some(start..self.i)
        }

        fn contacts(&mut self) -> Option<Vec<Range<usize>>> {
            self.expect(b'[')?;
            let mut ranges = Vec::new();
            self.ws();
            if self.eat(b']') {
                return Some(ranges);
            }
            loop {
                self.ws();
                if self.b.get(self.i) != Some(&b'{') {
                    return None;
                }
                ranges.push(self.value()?);
                self.ws();
                if !self.eat(b',') {
                    self.expect(b']')?;
                    return Some(ranges);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"contacts":[{"phone_number":"+14155559876","list_number":"+18005551234","custom_fields":{"a":1}} , {"phone_number":"+4915112345678","list_number":"+18005551234"}],"pagination":{"page":2,"per_page":2,"total":3,"total_pages":2}}"#;

    #[test]
    fn parse_records_each_contact_as_its_exact_json_text() {
        let page = Page::parse(2, 1, Bytes::from_static(BODY.as_bytes())).unwrap();
        let raw: Vec<&[u8]> = page.raw_contacts().collect();
        assert_eq!(raw.len(), 2);
        assert_eq!(
            raw[0],
            br#"{"phone_number":"+14155559876","list_number":"+18005551234","custom_fields":{"a":1}}"#
        );
        assert_eq!(
            page.pagination(),
            Pagination {
                page: 2,
                per_page: 2,
                total: 3,
                total_pages: 2
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
            "{\"contacts\":[],\"pagination\":{\"page\":-1,\"per_page\":1,\"total\":0,\"total_pages\":0}}",
            "<html>502 Bad Gateway</html>",
            "{\"contacts\":[{}",
        ] {
            assert!(
                Page::parse(1, 1, Bytes::from(body)).is_err(),
                "accepted {body:?}"
            );
        }
    }

    #[test]
    fn damage_inside_a_contact_leaves_the_page_readable() {
        let body = "{\"contacts\":[{\"phone_number\":\"+1\",\"revenue_total\":NaN},{\"phone_number\":\"+2\",\"carrier\":\"T\u{1}Mobile\"}, {\"phone_number\":\"+3\",\"x\":[Infinity,{\"y\":\"}\\\"\"}]}],\"pagination\":{\"page\":1,\"per_page\":3,\"total\":3,\"total_pages\":1}}";
        let page = Page::parse(1, 1, Bytes::from(body)).unwrap();
        let raw: Vec<&[u8]> = page.raw_contacts().collect();
        assert_eq!(raw.len(), 3);
        assert!(raw[0].ends_with(b"NaN}"));
        assert_eq!(
            raw[1],
            "{\"phone_number\":\"+2\",\"carrier\":\"T\u{1}Mobile\"}".as_bytes()
        );
        assert!(raw[2].ends_with(b"\"}]}"));
        assert_eq!(page.pagination().total, 3);
        // The envelope itself must still be whole.
        let truncated = &body[..body.len() - 1];
        assert!(Page::parse(1, 1, Bytes::from(truncated)).is_err());
        let bad_pagination = body.replace("\"total\":3", "\"total\":NaN");
        assert!(Page::parse(1, 1, Bytes::from(bad_pagination)).is_err());
    }

    #[test]
    fn retain_drops_contacts_without_touching_the_body() {
        let mut page = Page::parse(2, 1, Bytes::from_static(BODY.as_bytes())).unwrap();
        page.retain_contacts(|c| !c.windows(6).any(|w| w == b"+49151"));
        assert_eq!(page.len(), 1);
        assert_eq!(page.body().len(), BODY.len());
    }
}
