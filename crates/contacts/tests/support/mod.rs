//! Deterministic contact fixtures shared by the decode bench and the converter's integration
//! tests (which include this file by path).
#![allow(dead_code, clippy::unwrap_used)]

use trackly_contacts::{Page, Pass};

/// A tiny xorshift64* generator: deterministic from its seed, no dependency.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `items`.
    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `percent`%.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// `s` as a JSON string literal.
pub fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

const FIRST_NAMES: &[&str] = &[
    "Jane",
    "José",
    "Zoë",
    "李雷",
    "O'Brien",
    "Bob \"The Builder\"",
    "Ana María",
    "Søren",
    "محمد",
    "Emoji 🎉",
];
const SOURCES: &[&str] = &[
    "landing_page_v2",
    "facebook",
    "keyword:JOIN",
    "import/2024-11",
];
const CARRIERS: &[&str] = &["T-Mobile", "Verizon Wireless", "AT&T", "Vodafone"];
const LINE_TYPES: &[&str] = &["CELL PHONE", "LANDLINE", "VOIP"];
const ZONES: &[&str] = &[
    "America/Los_Angeles",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Tokyo",
];
const METHODS: &[&str] = &["api", "keyword", "web_form", "import"];
const LISTS: &[&str] = &["+18005551234", "+18005559999", "+447700900123"];
const NOTES: &[&str] = &[
    "called back\nprefers evenings",
    "said \"stop\" then re-subscribed",
    "tab\tseparated\tnote",
    "plain note",
    "back\\slash",
];

fn timestamp(rng: &mut Rng) -> String {
    format!(
        "2025-{:02}-{:02}T{:02}:{:02}:{:02}",
        1 + rng.below(12),
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60)
    )
}

/// One realistic contact object as compact JSON, like the API sends it.
///
/// `custom_fields` mixes unicode strings, escaped quotes and newlines, integers, decimals,
/// booleans, nulls and nested objects and arrays; `revenue_total` keeps trailing zeros.
pub fn contact(rng: &mut Rng, i: u64) -> String {
    let mut cf = vec![
        format!("\"first_name\":{}", js(rng.pick(FIRST_NAMES))),
        format!("\"source\":{}", js(rng.pick(SOURCES))),
    ];
    if rng.chance(60) {
        cf.push(format!("\"age\":{}", 18 + rng.below(60)));
    }
    if rng.chance(40) {
        cf.push(format!(
            "\"score\":{}.{:02}",
            rng.below(100),
            rng.below(100)
        ));
    }
    if rng.chance(50) {
        cf.push(format!("\"vip\":{}", rng.chance(20)));
    }
    if rng.chance(30) {
        cf.push("\"referrer\":null".to_owned());
    }
    if rng.chance(40) {
        cf.push(format!("\"notes\":{}", js(rng.pick(NOTES))));
    }
    if rng.chance(35) {
        cf.push(format!(
            "\"utm\":{{\"source\":{},\"campaign\":\"spring_{}\",\"clicks\":[{},{}]}}",
            js(rng.pick(SOURCES)),
            rng.below(10),
            rng.below(5),
            rng.below(5)
        ));
    }
    if rng.chance(20) {
        cf.push("\"tags\":[\"a\",\"b c\",1,true,null]".to_owned());
    }
    let custom_fields = if rng.chance(5) {
        "null".to_owned()
    } else {
        format!("{{{}}}", cf.join(","))
    };
    let revenue = match rng.below(4) {
        0 => "0".to_owned(),
        1 => format!("{}.50", rng.below(500)),
        2 => format!("{}.{:02}", rng.below(100_000), rng.below(100)),
        _ => format!("{}", rng.below(1000)),
    };
    let last_clicked = if rng.chance(50) {
        "null".to_owned()
    } else {
        js(&timestamp(rng))
    };
    format!(
        concat!(
            "{{\"phone_number\":\"+1415{:07}\",\"list_number\":{},\"list_id\":{},",
            "\"active\":{},\"signup_date\":{},\"signup_method\":{},\"custom_fields\":{},",
            "\"carrier\":{},\"line_type\":{},\"timezone\":{},\"is_valid\":{},",
            "\"send_count\":{},\"click_count\":{},\"revenue_total\":{},\"conversion_count\":{},",
            "\"last_sent_at\":{},\"last_clicked_at\":{},\"in_workflow\":{}}}"
        ),
        i % 10_000_000,
        js(rng.pick(LISTS)),
        40 + rng.below(5),
        rng.chance(85),
        js(&timestamp(rng)),
        js(rng.pick(METHODS)),
        custom_fields,
        js(rng.pick(CARRIERS)),
        js(rng.pick(LINE_TYPES)),
        js(rng.pick(ZONES)),
        rng.chance(95),
        rng.below(200),
        rng.below(50),
        revenue,
        rng.below(10),
        js(&timestamp(rng)),
        last_clicked,
        rng.chance(30),
    )
}

/// `n` contacts numbered from `first`, generated from `seed`.
pub fn contacts(seed: u64, first: u64, n: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (first..first + n).map(|i| contact(&mut rng, i)).collect()
}

/// A fetcher page holding `contacts`.
pub fn page(number: u64, contacts: &[String]) -> Page {
    let body = bytes::Bytes::from(page_body(number, contacts));
    Page::parse(number, Pass::Main, body).unwrap()
}

/// A response body of `GET /v2/contacts` holding `contacts`, as the API sends it.
pub fn page_body(number: u64, contacts: &[String]) -> Vec<u8> {
    let n = contacts.len();
    format!(
        "{{\"contacts\":[{}],\"pagination\":{{\"page\":{number},\"per_page\":{},\"total\":{n},\"total_pages\":1}}}}",
        contacts.join(","),
        n.max(1)
    )
    .into_bytes()
}
