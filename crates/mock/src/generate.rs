//! Deterministic generation of contacts: who signs up when and on which list (the plan), and
//! what each contact's JSON object says (the rendering).
//!
//! The plan is drawn sequentially from one `ChaCha8Rng` seeded with the data set seed. Each
//! contact is then rendered from its own `ChaCha8Rng` seeded with `(seed, id)`, and the
//! attributes of a phone (country, carrier, time zone) from a hash of `(seed, person)`, so
//! rendering can run on several threads and a person looks the same on every list.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Timelike};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{BigTie, SortPrecision};
use crate::json::{push_json_str, push_u64, push_zero_padded};

/// 2022-06-01T00:00:00: the oldest possible signup.
pub(crate) const START_SECS: i64 = 1_654_041_600;
/// 2025-05-31T23:59:59: the newest signup of a freshly generated data set.
pub(crate) const END_SECS: i64 = 1_748_735_999;
/// Activity (`last_sent_at`) runs up to a week after the last signup.
const ACTIVITY_END_SECS: i64 = END_SECS + 7 * 86_400;
/// Largest number of lists a data set has.
pub(crate) const MAX_LISTS: usize = 10_000;

/// Probability that a signup event (other than the first) is a bulk import.
const P_IMPORT_EVENT: f64 = 0.0008;
/// Probability that a single signup carries fractional seconds.
const P_FRACTIONAL: f64 = 0.015;

/// A sending list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListInfo {
    /// E.164 number, e.g. `+18005551234`.
    pub(crate) number: String,
    /// Numeric list id.
    pub(crate) id: u64,
}

/// The sending lists of a data set: `+18005551234` first, then other toll-free numbers.
pub(crate) fn make_lists(count: usize) -> Vec<ListInfo> {
    (0..count.clamp(1, MAX_LISTS)).map(list_info).collect()
}

/// The `i`-th sending list of any data set: number and id depend on `i` alone, and differ for
/// every `i` below 70 000 (past [`MAX_LISTS`], for lists that hold no contacts, such as
/// deleted ones).
pub(crate) fn list_info(i: usize) -> ListInfo {
    const AREAS: [&str; 7] = ["800", "888", "877", "866", "855", "844", "833"];
    // 1111 and 10 000 are coprime: the line number repeats only after 10 000 steps.
    let line = (1234 + 1111 * (i / AREAS.len())) % 10_000;
    ListInfo {
        number: format!("+1{}555{line:04}", AREAS[i % AREAS.len()]),
        id: 42 + 15 * i as u64,
    }
}

/// Picks lists with a Zipf-like skew: the first list is the biggest.
#[derive(Debug, Clone)]
pub(crate) struct ListPicker {
    cumulative: Vec<f64>,
}

impl ListPicker {
    pub(crate) fn new(lists: usize) -> ListPicker {
        let mut total = 0.0;
        let cumulative = (0..lists.max(1))
            .map(|i| {
                total += 1.0 / (i as f64 + 1.0);
                total
            })
            .collect();
        ListPicker { cumulative }
    }

    fn pick(&self, rng: &mut ChaCha8Rng) -> u16 {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let u = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c <= u);
        i.min(self.cumulative.len() - 1) as u16
    }

    fn len(&self) -> usize {
        self.cumulative.len()
    }
}

/// How a contact signed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Api,
    Keyword,
    Import,
    WebForm,
    Manual,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Api => "api",
            Method::Keyword => "keyword",
            Method::Import => "import",
            Method::WebForm => "web_form",
            Method::Manual => "manual",
        }
    }

    fn single(rng: &mut ChaCha8Rng) -> Method {
        match rng.random_range(0..100) {
            0..35 => Method::Keyword,
            35..65 => Method::WebForm,
            65..90 => Method::Api,
            90..97 => Method::Manual,
            _ => Method::Import,
        }
    }
}

/// Fractional seconds as written: `digits` digits (0 = none), zero-padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frac {
    value: u32,
    digits: u8,
}

impl Frac {
    const NONE: Frac = Frac {
        value: 0,
        digits: 0,
    };

    fn micros(self) -> i64 {
        if self.digits == 0 {
            return 0;
        }
        i64::from(self.value) * 10_i64.pow(6 - u32::from(self.digits))
    }
}

/// One planned contact: when, how, on which list, which phone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    /// Signup time in microseconds since the epoch.
    pub(crate) micros: i64,
    /// The value the listing sorts by: `micros`, or `micros` truncated to a coarser precision
    /// ([`coarsen`]). Equal values are ties.
    pub(crate) sort_key: i64,
    frac: Frac,
    method: Method,
    /// Index of the list.
    pub(crate) list: u16,
    /// Person (phone) index.
    pub(crate) person: u64,
}

impl Slot {
    /// A contact signed up at `micros`, sorted by it until [`coarsen`]ed.
    fn new(micros: i64, frac: Frac, method: Method, list: u16, person: u64) -> Slot {
        Slot {
            micros,
            sort_key: micros,
            frac,
            method,
            list,
            person,
        }
    }
}

/// The planned contacts, oldest first, and the next unused person index.
pub(crate) struct Plan {
    pub(crate) slots: Vec<Slot>,
    pub(crate) next_person: u64,
}

/// Plans `n` contacts over ~3 years: mostly single signups with growth over time, some bulk
/// imports of hundreds sharing one second, some phones on several lists. With `bursts`
/// ([`DatasetConfig::fractional_seconds`](crate::DatasetConfig::fractional_seconds)), every
/// single signup is a burst of 1 to 6 in one second with 6-digit fractions.
pub(crate) fn plan(seed: u64, n: usize, lists: &ListPicker, bursts: bool) -> Plan {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut slots: Vec<Slot> = Vec::with_capacity(n);
    let mut people = People::default();
    let mut first = true;
    while slots.len() < n {
        let remaining = n - slots.len();
        let import = (first && n >= 2) || rng.random_bool(P_IMPORT_EVENT);
        if import {
            let size = if first {
                (n / 25).clamp(2, 600)
            } else {
                rng.random_range(100..=800)
            }
            .min(remaining);
            let micros = random_second(&mut rng) * 1_000_000;
            let list = lists.pick(&mut rng);
            for _ in 0..size {
                let person = people.choose(&mut rng, list, 0.10, lists.len());
                slots.push(Slot::new(micros, Frac::NONE, Method::Import, list, person));
            }
        } else if bursts {
            plan_burst(&mut rng, &mut slots, &mut people, lists, remaining);
        } else {
            let slot = plan_single(&mut rng, &mut people, lists);
            slots.push(slot);
        }
        first = false;
    }
    // Stable: equal timestamps keep their planning order, which becomes the id order.
    slots.sort_by_key(|s| s.micros);
    Plan {
        slots,
        next_person: people.primary.len() as u64,
    }
}

/// A burst of 1 to 6 single signups (at most `remaining`) in one second, with 6-digit
/// fractions, about half of them inside one millisecond.
fn plan_burst(
    rng: &mut ChaCha8Rng,
    slots: &mut Vec<Slot>,
    people: &mut People,
    lists: &ListPicker,
    remaining: usize,
) {
    let secs = random_second(rng);
    let size = rng.random_range(1..=6usize).min(remaining);
    // About half the burst inside one millisecond, to tie at millisecond precision too.
    let base_ms = rng.random_range(0..1_000u32);
    for _ in 0..size {
        let value = if rng.random_bool(0.5) {
            base_ms * 1_000 + rng.random_range(0..1_000u32)
        } else {
            rng.random_range(0..1_000_000u32)
        };
        let frac = Frac { value, digits: 6 };
        slots.push(single_slot(rng, people, lists, secs, frac));
    }
}

/// One single signup, sometimes with a fraction of a second of 1 to 6 digits.
fn plan_single(rng: &mut ChaCha8Rng, people: &mut People, lists: &ListPicker) -> Slot {
    let secs = random_second(rng);
    let frac = if rng.random_bool(P_FRACTIONAL) {
        if rng.random_bool(0.5) {
            Frac {
                value: rng.random_range(0..1_000_000),
                digits: 6,
            }
        } else {
            let digits = rng.random_range(1..=3u8);
            Frac {
                value: rng.random_range(1..10_u32.pow(u32::from(digits))),
                digits,
            }
        }
    } else {
        Frac::NONE
    };
    single_slot(rng, people, lists, secs, frac)
}

/// One single signup at `secs` + `frac`: its method, list and person drawn in that order.
fn single_slot(
    rng: &mut ChaCha8Rng,
    people: &mut People,
    lists: &ListPicker,
    secs: i64,
    frac: Frac,
) -> Slot {
    let method = Method::single(rng);
    let list = lists.pick(rng);
    let person = people.choose(rng, list, 0.15, lists.len());
    Slot::new(secs * 1_000_000 + frac.micros(), frac, method, list, person)
}

/// Plans `n` contacts signed up after `after_micros`, one second apart (or, as one `import`,
/// all in the same second), all new phones.
pub(crate) fn plan_newer(
    seed: u64,
    n: usize,
    lists: &ListPicker,
    after_micros: i64,
    first_person: u64,
    salt: u64,
    import: bool,
) -> Vec<Slot> {
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, salt, 0xd21f7));
    let base_secs = after_micros.div_euclid(1_000_000) + 1;
    let step = i64::from(!import);
    (0..n)
        .map(|k| {
            let method = if import {
                Method::Import
            } else {
                Method::single(&mut rng)
            };
            let micros = (base_secs + step * k as i64) * 1_000_000;
            Slot::new(
                micros,
                Frac::NONE,
                method,
                lists.pick(&mut rng),
                first_person + k as u64,
            )
        })
        .collect()
}

/// Makes `tie.len` contacts, from served (newest-first) position `tie.at` of `slots` (oldest
/// first, sorted), share the `signup_date` of the newest of them, as one import.
pub(crate) fn make_tie(slots: &mut [Slot], tie: BigTie) {
    let len = slots.len();
    let first = tie.at.min(len);
    let count = tie.len.min(len - first);
    if count == 0 {
        return;
    }
    // Served positions `first..first + count` are slots `len - first - count..len - first`.
    let (lo, hi) = (len - first - count, len - first);
    let newest = slots[hi - 1];
    for slot in &mut slots[lo..hi] {
        slot.micros = newest.micros;
        slot.sort_key = newest.sort_key;
        slot.frac = newest.frac;
        slot.method = Method::Import;
    }
}

/// Sorts `slots` (oldest first) by their signup time truncated to `precision`, contacts equal
/// at that precision in a fixed order drawn from `seed`: the order of a listing sorted coarser
/// than it shows.
pub(crate) fn coarsen(slots: &mut [Slot], precision: SortPrecision, seed: u64) {
    let unit = match precision {
        SortPrecision::Exact => return,
        SortPrecision::Millisecond => 1_000,
        SortPrecision::Second => 1_000_000,
    };
    for slot in slots.iter_mut() {
        slot.sort_key = slot.micros - slot.micros.rem_euclid(unit);
    }
    slots.sort_by_key(|s| (s.sort_key, mix(seed, s.person, u64::from(s.list) ^ 0xc0a5e)));
}

/// Who has signed up so far, to let a phone join further lists without duplicates.
#[derive(Default)]
struct People {
    /// First list of each person.
    primary: Vec<u16>,
    /// (person, list) pairs beyond the first list.
    extra: HashSet<(u64, u16)>,
}

impl People {
    fn choose(&mut self, rng: &mut ChaCha8Rng, list: u16, p_reuse: f64, lists: usize) -> u64 {
        if lists > 1 && !self.primary.is_empty() && rng.random_bool(p_reuse) {
            let p = rng.random_range(0..self.primary.len());
            if self.primary[p] != list && self.extra.insert((p as u64, list)) {
                return p as u64;
            }
        }
        self.primary.push(list);
        (self.primary.len() - 1) as u64
    }
}

/// A second in the range, denser towards the end (linear growth of signups).
fn random_second(rng: &mut ChaCha8Rng) -> i64 {
    let u: f64 = rng.random();
    START_SECS + ((END_SECS - START_SECS) as f64 * u.sqrt()) as i64
}

/// SplitMix64-style mixing of three values into one well-spread `u64`.
pub(crate) fn mix(a: u64, b: u64, tag: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ tag.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Country {
    code: &'static str,
    weight: u64,
    /// Number prefixes (all of one length) with the time zone they imply.
    prefixes: &'static [(&'static str, &'static str)],
    /// Free digits between the prefix and the 7 unique digits.
    fill: u32,
    carriers: &'static [&'static str],
}

const COUNTRIES: &[Country] = &[
    Country {
        code: "1",
        weight: 56,
        prefixes: &[
            ("212", "America/New_York"),
            ("917", "America/New_York"),
            ("617", "America/New_York"),
            ("305", "America/New_York"),
            ("404", "America/New_York"),
            ("312", "America/Chicago"),
            ("713", "America/Chicago"),
            ("512", "America/Chicago"),
            ("720", "America/Denver"),
            ("602", "America/Phoenix"),
            ("310", "America/Los_Angeles"),
            ("415", "America/Los_Angeles"),
            ("818", "America/Los_Angeles"),
            ("206", "America/Los_Angeles"),
            ("503", "America/Los_Angeles"),
            ("702", "America/Los_Angeles"),
            ("907", "America/Anchorage"),
            ("808", "Pacific/Honolulu"),
        ],
        fill: 0,
        carriers: &[
            "T-Mobile",
            "Verizon Wireless",
            "AT&T Wireless",
            "Sprint",
            "US Cellular",
            "Google Voice",
        ],
    },
    Country {
        code: "1",
        weight: 6,
        prefixes: &[
            ("416", "America/Toronto"),
            ("647", "America/Toronto"),
            ("514", "America/Toronto"),
            ("604", "America/Vancouver"),
            ("403", "America/Edmonton"),
            ("902", "America/Halifax"),
        ],
        fill: 0,
        carriers: &["Rogers Wireless", "Bell Mobility", "Telus Mobility"],
    },
    Country {
        code: "44",
        weight: 10,
        prefixes: &[
            ("71", "Europe/London"),
            ("73", "Europe/London"),
            ("74", "Europe/London"),
            ("75", "Europe/London"),
            ("77", "Europe/London"),
            ("78", "Europe/London"),
            ("79", "Europe/London"),
        ],
        fill: 1,
        carriers: &["Vodafone UK", "EE", "O2 (UK)", "Three"],
    },
    Country {
        code: "49",
        weight: 7,
        prefixes: &[
            ("151", "Europe/Berlin"),
            ("152", "Europe/Berlin"),
            ("157", "Europe/Berlin"),
            ("160", "Europe/Berlin"),
            ("170", "Europe/Berlin"),
            ("171", "Europe/Berlin"),
            ("172", "Europe/Berlin"),
            ("176", "Europe/Berlin"),
        ],
        fill: 0,
        carriers: &["Telekom Deutschland", "Vodafone GmbH", "Telefónica Germany"],
    },
    Country {
        code: "33",
        weight: 6,
        prefixes: &[("6", "Europe/Paris"), ("7", "Europe/Paris")],
        fill: 1,
        carriers: &["Orange France", "SFR", "Bouygues Télécom", "Free Mobile"],
    },
    Country {
        code: "55",
        weight: 6,
        prefixes: &[
            ("119", "America/Sao_Paulo"),
            ("219", "America/Sao_Paulo"),
            ("319", "America/Sao_Paulo"),
            ("519", "America/Sao_Paulo"),
            ("619", "America/Sao_Paulo"),
            ("719", "America/Bahia"),
            ("819", "America/Recife"),
            ("929", "America/Manaus"),
        ],
        fill: 1,
        carriers: &["Vivo", "Claro", "TIM"],
    },
    Country {
        code: "91",
        weight: 5,
        prefixes: &[
            ("98", "Asia/Kolkata"),
            ("99", "Asia/Kolkata"),
            ("97", "Asia/Kolkata"),
            ("96", "Asia/Kolkata"),
            ("94", "Asia/Kolkata"),
            ("91", "Asia/Kolkata"),
            ("90", "Asia/Kolkata"),
            ("88", "Asia/Kolkata"),
            ("70", "Asia/Kolkata"),
            ("80", "Asia/Kolkata"),
        ],
        fill: 1,
        carriers: &["Jio", "Airtel", "Vi (Vodafone Idea)"],
    },
    Country {
        code: "61",
        weight: 4,
        prefixes: &[
            ("40", "Australia/Sydney"),
            ("41", "Australia/Melbourne"),
            ("42", "Australia/Brisbane"),
            ("43", "Australia/Perth"),
            ("45", "Australia/Adelaide"),
        ],
        fill: 0,
        carriers: &["Telstra", "Optus", "Vodafone AU"],
    },
];

/// Size of the unique 7-digit block (first digit 2-9) that keeps phones distinct.
const UNIQUE_SPAN: u64 = 8_000_000;
/// Multiplier of the bijection on `0..UNIQUE_SPAN` (coprime with 2 and 5).
const UNIQUE_MUL: u64 = 1_234_567;

/// The fixed attributes of one phone number.
struct Person {
    country: &'static Country,
    prefix: usize,
    fill: u64,
    unique: u64,
    carrier: Option<&'static str>,
    line_type: &'static str,
    is_valid: bool,
}

impl Person {
    /// Phones are unique for distinct persons of one country as long as
    /// `person < prefixes * UNIQUE_SPAN` (at least 40 million).
    fn new(seed: u64, person: u64) -> Person {
        let total: u64 = COUNTRIES.iter().map(|c| c.weight).sum();
        let mut roll = mix(seed, person, 1) % total;
        let mut country = &COUNTRIES[0];
        for c in COUNTRIES {
            if roll < c.weight {
                country = c;
                break;
            }
            roll -= c.weight;
        }
        let low = person % UNIQUE_SPAN;
        let high = person / UNIQUE_SPAN;
        let n = country.prefixes.len() as u64;
        let prefix = ((high % n + mix(seed, low, 2) % n) % n) as usize;
        let unique = 2_000_000 + (UNIQUE_MUL * low + mix(seed, 0, 3) % UNIQUE_SPAN) % UNIQUE_SPAN;
        let attrs = mix(seed, person, 4);
        let carrier = if attrs % 100 < 6 {
            None
        } else {
            Some(country.carriers[((attrs >> 8) % country.carriers.len() as u64) as usize])
        };
        let line_type = match (attrs >> 24) % 100 {
            0..85 => "CELL PHONE",
            85..94 => "VOIP",
            _ => "LANDLINE",
        };
        Person {
            country,
            prefix,
            fill: mix(seed, person, 5),
            unique,
            carrier,
            line_type,
            is_valid: (attrs >> 40) % 100 >= 3,
        }
    }

    fn push_phone(&self, out: &mut Vec<u8>) {
        out.push(b'+');
        out.extend_from_slice(self.country.code.as_bytes());
        out.extend_from_slice(self.country.prefixes[self.prefix].0.as_bytes());
        if self.country.fill > 0 {
            push_zero_padded(
                out,
                self.fill % 10_u64.pow(self.country.fill),
                self.country.fill as usize,
            );
        }
        push_u64(out, self.unique);
    }

    fn timezone(&self) -> &'static str {
        self.country.prefixes[self.prefix].1
    }
}

/// How a custom field's value is drawn.
enum Value {
    /// A string from the pool, escaped with serde_json.
    Str(&'static [&'static str]),
    /// A string from the pool, or `null` with the given percent chance.
    NullableStr(&'static [&'static str], u32),
    /// An integer in the range.
    Int(u64, u64),
    /// `true` or `false`.
    Bool,
    /// A ready JSON text (numbers in various forms, nested objects and arrays).
    Raw(&'static [&'static str]),
}

const SOURCES: &[&str] = &[
    "landing_page_v2",
    "facebook_ad",
    "instagram_story",
    "qr_code_menu",
    "keyword_JOIN",
    "checkout_optin",
    "popup_10off",
    "tiktok",
    "referral",
    "import_2023_q4",
    "google_ads",
    "in_store_tablet",
];
const FIRST_NAMES: &[&str] = &[
    "Jane",
    "Zoë",
    "José",
    "Renée",
    "Søren",
    "Łukasz",
    "Anaïs",
    "Björn",
    "Chloé",
    "Mohammed",
    "Priya",
    "Ольга",
    "明",
    "さくら",
    "Nguyễn",
    "O'Brien",
    "Ana María",
    "François",
    "Kwame",
    "Siobhán",
];
const LAST_NAMES: &[&str] = &[
    "Doe",
    "Müller",
    "García",
    "O'Connor",
    "Nowak",
    "Dubois",
    "Silva",
    "Sharma",
    "Smith",
    "Núñez",
    "山田",
    "Ivanova",
    "van der Berg",
    "Øvergaard",
];
pub(crate) const CITIES: &[&str] = &[
    "San Francisco",
    "東京",
    "São Paulo",
    "Zürich",
    "München",
    "Kraków",
    "Montréal",
    "Mumbai",
    "Köln",
    "Reykjavík",
    "Αθήνα",
];
const EMAILS: &[&str] = &[
    "jane.doe@example.com",
    "zoe+sms@example.org",
    "j.garcia@example.es",
    "PRIYA.S@EXAMPLE.IN",
    "",
];
const ZIPS: &[&str] = &[
    "94107",
    "SW1A 1AA",
    "10115",
    "75001",
    "01310-100",
    "400001",
    "2000",
    "02134",
];
pub(crate) const NOTES: &[&str] = &[
    "She said \"call me after 5pm\"",
    "line one\nline two",
    "C:\\Users\\jane\\promo.txt",
    "tab\tseparated\tvalues",
    "🎉 VIP since 2021 🎉",
    "50% off — \"summer\" sale",
    "emoji 👍🏽 and combining e\u{301}",
    "backslash-quote \\\" mix",
    "windows\r\nline ending",
    "",
    "control \u{1} char",
    "plain note",
];
const EMOJI: &[&str] = &["🍕", "🎉", "❤️", "🚀", "👍🏽", "🇧🇷"];
const BIRTHDAYS: &[&str] = &["1990-04-12", "1985-12-31", "2001-02-28", "1979-07-04"];
const REFERRERS: &[&str] = &["friend", "+14155550123", "newsletter", "store #12"];
const SCORES: &[&str] = &[
    "0.75", "3.14159", "-2.5", "98.6", "0.1", "1e3", "2.5E-7", "100.0", "-0.0001", "7",
];
pub(crate) const TAGS: &[&str] = &[
    "[\"vip\",\"summer\"]",
    "[]",
    "[1,2,3]",
    "[\"early_access\"]",
    "[{\"id\":7,\"name\":\"promo\"}]",
    "[null,true,\"mixed\",4.5]",
];
pub(crate) const ADDRESSES: &[&str] = &[
    "{\"street\":\"1 Infinite Loop\",\"city\":\"Cupertino\",\"geo\":{\"lat\":37.33182,\"lng\":-122.03118}}",
    "{\"street\":\"Königstraße 12\",\"city\":\"Stuttgart\",\"zip\":\"70173\"}",
    "{}",
    "{\"line1\":\"Flat 2\\nBlock B\",\"country\":\"GB\",\"verified\":null}",
];
pub(crate) const PREFERENCES: &[&str] = &[
    "{\"sms\":true,\"frequency\":\"weekly\"}",
    "{\"sms\":false,\"topics\":[\"deals\",\"news\"],\"quiet_hours\":null}",
];

/// Custom fields besides `source`, which most contacts have.
const FIELDS: &[(&str, Value)] = &[
    ("first_name", Value::Str(FIRST_NAMES)),
    ("last_name", Value::Str(LAST_NAMES)),
    ("email", Value::Str(EMAILS)),
    ("zip", Value::Str(ZIPS)),
    ("city", Value::Str(CITIES)),
    ("age", Value::Int(18, 85)),
    ("loyalty_points", Value::Int(0, 250_000)),
    ("score", Value::Raw(SCORES)),
    ("vip", Value::Bool),
    ("opted_in_email", Value::Bool),
    ("referrer", Value::NullableStr(REFERRERS, 50)),
    ("notes", Value::Str(NOTES)),
    ("favorite_emoji", Value::Str(EMOJI)),
    ("tags", Value::Raw(TAGS)),
    ("address", Value::Raw(ADDRESSES)),
    ("preferences", Value::Raw(PREFERENCES)),
    ("birthday", Value::NullableStr(BIRTHDAYS, 40)),
    ("last_order_id", Value::Int(100_000, 999_999)),
];

fn pick<'a>(rng: &mut ChaCha8Rng, pool: &'a [&'a str]) -> &'a str {
    pool[rng.random_range(..pool.len())]
}

/// Renders contacts of one data set.
pub(crate) struct Renderer<'a> {
    pub(crate) seed: u64,
    pub(crate) lists: &'a [ListInfo],
    /// [`DatasetConfig::money_forms`](crate::DatasetConfig::money_forms).
    pub(crate) money_forms: bool,
}

impl Renderer<'_> {
    /// Appends the JSON object of contact `id` planned as `slot`; returns whether it is active.
    // Long on purpose: it writes one contact's fields in document order with one RNG, so it
    // reads as the JSON it produces, and splitting it would spread the draws' order.
    pub(crate) fn render(&self, out: &mut Vec<u8>, slot: &Slot, id: u64) -> bool {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, id, 0xc0a7));
        let person = Person::new(self.seed, slot.person);
        let list = &self.lists[usize::from(slot.list).min(self.lists.len() - 1)];
        let active = if person.is_valid {
            rng.random_bool(0.81)
        } else {
            rng.random_bool(0.1)
        };
        let signup_secs = slot.micros.div_euclid(1_000_000);

        out.extend_from_slice(b"{\"phone_number\":\"");
        person.push_phone(out);
        out.extend_from_slice(b"\",\"list_number\":");
        push_json_str(out, &list.number);
        out.extend_from_slice(b",\"list_id\":");
        push_u64(out, list.id);
        out.extend_from_slice(b",\"active\":");
        push_bool(out, active);
        out.extend_from_slice(b",\"signup_date\":\"");
        push_datetime(out, signup_secs, slot.frac);
        out.extend_from_slice(b"\",\"signup_method\":\"");
        out.extend_from_slice(slot.method.as_str().as_bytes());
        out.extend_from_slice(b"\",\"custom_fields\":");
        push_custom_fields(out, &mut rng);
        out.extend_from_slice(b",\"carrier\":");
        match person.carrier {
            Some(carrier) => push_json_str(out, carrier),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"line_type\":\"");
        out.extend_from_slice(person.line_type.as_bytes());
        out.extend_from_slice(b"\",\"timezone\":\"");
        out.extend_from_slice(person.timezone().as_bytes());
        out.extend_from_slice(b"\",\"is_valid\":");
        push_bool(out, person.is_valid);

        let sends = send_count(&mut rng);
        let clicks = if sends == 0 || rng.random_bool(0.35) {
            0
        } else {
            rng.random_range(1..=(sends / 4).max(1))
        };
        let conversions = if clicks == 0 || rng.random_bool(0.5) {
            0
        } else {
            rng.random_range(1..=(clicks / 3).max(1))
        };
        out.extend_from_slice(b",\"send_count\":");
        push_u64(out, sends);
        out.extend_from_slice(b",\"click_count\":");
        push_u64(out, clicks);
        out.extend_from_slice(b",\"revenue_total\":");
        let revenue_at = out.len();
        let cents = push_revenue(out, &mut rng, conversions);
        if self.money_forms {
            // A stream of its own, so that everything else in the contact, and every contact
            // without a money form, is byte for byte what it is without money forms.
            let mut forms = ChaCha8Rng::seed_from_u64(mix(self.seed, id, 0x30e7));
            if forms.random_bool(P_MONEY_FORM) {
                out.truncate(revenue_at);
                push_money_form(out, &mut forms, cents, conversions);
            }
        }
        out.extend_from_slice(b",\"conversion_count\":");
        push_u64(out, conversions);

        out.extend_from_slice(b",\"last_sent_at\":");
        let last_sent = if sends == 0 {
            out.extend_from_slice(b"null");
            None
        } else {
            let upper = ACTIVITY_END_SECS.max(signup_secs + 60);
            let at = rng.random_range(signup_secs + 60..=upper);
            push_quoted_datetime(out, at);
            Some(at)
        };
        out.extend_from_slice(b",\"last_clicked_at\":");
        match last_sent {
            Some(sent) if clicks > 0 => {
                push_quoted_datetime(out, sent + rng.random_range(5..=7_200));
            }
            _ => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"in_workflow\":");
        push_bool(out, rng.random_bool(0.12));
        out.push(b'}');
        active
    }
}

fn push_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

fn send_count(rng: &mut ChaCha8Rng) -> u64 {
    let r: f64 = rng.random();
    if r < 0.12 {
        0
    } else if r < 0.90 {
        rng.random_range(1..=300)
    } else if r < 0.995 {
        rng.random_range(301..=20_000)
    } else {
        rng.random_range(20_001..=2_000_000)
    }
}

/// Writes the revenue as a JSON number in the textual forms real exports use: `0`, `12`,
/// `12.0`, `47.5`, `47.50`, `0.01`, `1234567.89`. Built from integer cents, never via `f64`.
/// Returns the cents written.
fn push_revenue(out: &mut Vec<u8>, rng: &mut ChaCha8Rng, conversions: u64) -> u64 {
    if conversions == 0 {
        out.extend_from_slice(if rng.random_bool(0.9) { b"0" } else { b"0.00" });
        return 0;
    }
    let r: f64 = rng.random();
    let cents = if r < 0.03 {
        1
    } else if r < 0.05 {
        rng.random_range(100_000_000..=200_000_000)
    } else {
        conversions * rng.random_range(99..=25_000)
    };
    push_u64(out, cents / 100);
    let frac = cents % 100;
    if frac == 0 {
        match rng.random_range(0..3) {
            0 => {}
            1 => out.extend_from_slice(b".0"),
            _ => out.extend_from_slice(b".00"),
        }
    } else if frac % 10 == 0 {
        out.push(b'.');
        push_u64(out, frac / 10);
        if rng.random_bool(0.5) {
            out.push(b'0');
        }
    } else {
        out.push(b'.');
        push_zero_padded(out, frac, 2);
    }
    cents
}

/// Share of contacts whose revenue is written in one of the money forms, when they are on.
const P_MONEY_FORM: f64 = 0.4;

/// Writes a revenue of `cents` as backends that do not keep money as decimals send it, each
/// form as likely as the others:
///
/// - the sum of the `conversions` amounts in binary floating point, as `f64`'s shortest
///   round-trip text (`0.30000000000000004`, or `47.5` when the sum happens to be exact);
/// - just above or just below the value, as a float artifact (`47.5000000000001`,
///   `47.4999999999999`);
/// - an exponent form (`4750e-2`, `4.75E+1`, `4.75e1`, `47500000E-6`);
/// - a JSON string holding one of the forms above or the plain two-decimal text (`"47.50"`);
/// - sub-cent precision (currency conversion, tax), half of it an exact tie on the 5th decimal
///   (`47.50125`, `47.5013997`);
/// - a refund: the negative of a plain, tie or artifact form (`-47.50`, `-0.00015`).
///
/// The value never needs more than 14 integer digits, so every form is a valid record.
fn push_money_form(out: &mut Vec<u8>, rng: &mut ChaCha8Rng, cents: u64, conversions: u64) {
    match rng.random_range(0..6) {
        0 => push_float_sum(out, rng, cents, conversions),
        1 => push_float_artifact(out, rng, cents),
        2 => push_exponent_form(out, rng, cents),
        3 => {
            out.push(b'"');
            match rng.random_range(0..4) {
                0 => push_cents(out, cents),
                1 => push_exponent_form(out, rng, cents),
                2 => push_float_artifact(out, rng, cents),
                _ => {
                    out.push(b'-');
                    push_sub_cent(out, rng, cents);
                }
            }
            out.push(b'"');
        }
        4 => push_sub_cent(out, rng, cents),
        _ => {
            out.push(b'-');
            match rng.random_range(0..3) {
                0 => push_cents(out, cents),
                1 => push_sub_cent(out, rng, cents),
                _ => push_float_artifact(out, rng, cents),
            }
        }
    }
}

/// `cents` as `int.ff`.
fn push_cents(out: &mut Vec<u8>, cents: u64) {
    push_u64(out, cents / 100);
    out.push(b'.');
    push_zero_padded(out, cents % 100, 2);
}

/// `cents` split into `conversions` (at most 12) amounts summed as `f64`, as Python's `repr`,
/// JavaScript and Rust print it: the shortest text that reads back as the same `f64`.
fn push_float_sum(out: &mut Vec<u8>, rng: &mut ChaCha8Rng, cents: u64, conversions: u64) {
    use std::io::Write;
    let parts = conversions.clamp(1, 12);
    let mut left = cents;
    let mut sum = 0.0_f64;
    for part in 1..=parts {
        let amount = if part == parts {
            left
        } else {
            rng.random_range(0..=left)
        };
        left -= amount;
        sum += amount as f64 / 100.0;
    }
    // Writing into a Vec cannot fail; `Display` for a finite f64 is plain JSON number text.
    let _ = write!(out, "{sum}");
}

/// A value a hair above or below `cents`, as a float computation leaves it.
fn push_float_artifact(out: &mut Vec<u8>, rng: &mut ChaCha8Rng, cents: u64) {
    let zeros = rng.random_range(8..=12);
    if cents > 0 && rng.random_bool(0.5) {
        // (cents - 1) followed by nines: `47.4999999999999` for 47.50.
        push_cents(out, cents - 1);
        out.extend(std::iter::repeat_n(b'9', zeros + 1));
    } else {
        // `47.5000000000001` for 47.50.
        push_cents(out, cents);
        out.extend(std::iter::repeat_n(b'0', zeros));
    }
    push_u64(out, rng.random_range(1..=9));
}

/// `cents` with an exponent: `4750e-2`, `4750E-2`, `4.75e1`, `4.75E+1`, `475000e-4`, `0e0`.
fn push_exponent_form(out: &mut Vec<u8>, rng: &mut ChaCha8Rng, cents: u64) {
    let e = if rng.random_bool(0.5) { b'e' } else { b'E' };
    if cents == 0 {
        out.extend_from_slice(b"0");
        out.push(e);
        out.extend_from_slice(if rng.random_bool(0.5) { b"+3" } else { b"-2" });
        return;
    }
    match rng.random_range(0..3) {
        0 => {
            push_u64(out, cents);
            out.push(e);
            out.extend_from_slice(b"-2");
        }
        1 => {
            push_u64(out, cents * 100);
            out.push(e);
            out.extend_from_slice(b"-4");
        }
        _ => {
            // Scientific: one digit before the point, trailing zeros dropped.
            let mut digits = Vec::new();
            push_u64(&mut digits, cents);
            let exponent = digits.len() as i64 - 3;
            while digits.len() > 1 && digits.last() == Some(&b'0') {
                digits.pop();
            }
            out.push(digits[0]);
            if digits.len() > 1 {
                out.push(b'.');
                out.extend_from_slice(&digits[1..]);
            }
            out.push(e);
            if exponent < 0 {
                out.push(b'-');
            } else if rng.random_bool(0.5) {
                out.push(b'+');
            }
            push_u64(out, exponent.unsigned_abs());
        }
    }
}

/// `cents` with sub-cent digits: half the time an exact tie on the 5th decimal (`47.50125`),
/// else 1 to 5 more digits ending in a non-zero one (`47.5013997`).
fn push_sub_cent(out: &mut Vec<u8>, rng: &mut ChaCha8Rng, cents: u64) {
    push_cents(out, cents);
    if rng.random_bool(0.5) {
        push_zero_padded(out, rng.random_range(0..100), 2);
        out.push(b'5');
    } else {
        for _ in 0..rng.random_range(0..5) {
            push_u64(out, rng.random_range(0..10));
        }
        push_u64(out, rng.random_range(1..10));
    }
}

fn push_custom_fields(out: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
    let r: f64 = rng.random();
    if r < 0.06 {
        out.extend_from_slice(b"null");
        return;
    }
    if r < 0.15 {
        out.extend_from_slice(b"{}");
        return;
    }
    let keys = if rng.random_bool(0.85) {
        rng.random_range(1..=4)
    } else {
        rng.random_range(5..=10)
    };
    out.push(b'{');
    let mut others = keys;
    if rng.random_bool(0.8) {
        out.extend_from_slice(b"\"source\":");
        push_json_str(out, pick(rng, SOURCES));
        others -= 1;
        if others > 0 {
            out.push(b',');
        }
    }
    let chosen = rand::seq::index::sample(rng, FIELDS.len(), others.min(FIELDS.len()));
    for (n, i) in chosen.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let (key, value) = &FIELDS[i];
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        match value {
            Value::Str(pool) => push_json_str(out, pick(rng, pool)),
            Value::NullableStr(pool, p_null) => {
                if rng.random_range(0..100) < *p_null {
                    out.extend_from_slice(b"null");
                } else {
                    push_json_str(out, pick(rng, pool));
                }
            }
            Value::Int(lo, hi) => push_u64(out, rng.random_range(*lo..=*hi)),
            Value::Bool => push_bool(out, rng.random_bool(0.5)),
            Value::Raw(pool) => out.extend_from_slice(pick(rng, pool).as_bytes()),
        }
    }
    out.push(b'}');
}

fn push_quoted_datetime(out: &mut Vec<u8>, secs: i64) {
    out.push(b'"');
    push_datetime(out, secs, Frac::NONE);
    out.push(b'"');
}

/// Writes a naive ISO 8601 date-time, `2025-03-15T14:30:00` plus optional fraction.
fn push_datetime(out: &mut Vec<u8>, secs: i64, frac: Frac) {
    let at = DateTime::from_timestamp(secs, 0)
        .unwrap_or(DateTime::UNIX_EPOCH)
        .naive_utc();
    push_zero_padded(out, u64::try_from(at.year()).unwrap_or(0), 4);
    out.push(b'-');
    push_zero_padded(out, u64::from(at.month()), 2);
    out.push(b'-');
    push_zero_padded(out, u64::from(at.day()), 2);
    out.push(b'T');
    push_zero_padded(out, u64::from(at.hour()), 2);
    out.push(b':');
    push_zero_padded(out, u64::from(at.minute()), 2);
    out.push(b':');
    push_zero_padded(out, u64::from(at.second()), 2);
    if frac.digits > 0 {
        out.push(b'.');
        push_zero_padded(out, u64::from(frac.value), usize::from(frac.digits));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn time_range_constants_are_the_documented_dates() {
        let start = NaiveDate::from_ymd_opt(2022, 6, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc().timestamp());
        let end = NaiveDate::from_ymd_opt(2025, 5, 31)
            .and_then(|d| d.and_hms_opt(23, 59, 59))
            .map(|d| d.and_utc().timestamp());
        assert_eq!(start, Some(START_SECS));
        assert_eq!(end, Some(END_SECS));
    }

    #[test]
    fn raw_json_pools_are_valid_json() {
        for text in SCORES
            .iter()
            .chain(TAGS)
            .chain(ADDRESSES)
            .chain(PREFERENCES)
        {
            assert!(
                serde_json::from_str::<serde_json::Value>(text).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn list_numbers_are_unique_e164_starting_with_the_documented_example() {
        let lists = make_lists(100);
        assert_eq!(lists[0].number, "+18005551234");
        assert_eq!(lists[0].id, 42);
        let unique: HashSet<&str> = lists.iter().map(|l| l.number.as_str()).collect();
        assert_eq!(unique.len(), 100);
        assert!(lists.iter().all(|l| crate::query::is_e164(&l.number)));
        assert_eq!(make_lists(0).len(), 1);
    }

    #[test]
    fn phones_are_unique_across_persons() {
        let mut seen = HashSet::new();
        for p in (0..40_000).chain(7_990_000..8_010_000) {
            let mut out = Vec::new();
            Person::new(3, p).push_phone(&mut out);
            assert!(crate::query::is_e164(&String::from_utf8_lossy(&out)));
            assert!(seen.insert(out), "duplicate phone for person {p}");
        }
    }

    #[test]
    fn datetime_formats_with_and_without_fraction() {
        let mut out = Vec::new();
        push_datetime(&mut out, 1_742_049_000, Frac::NONE);
        assert_eq!(out, b"2025-03-15T14:30:00");
        out.clear();
        push_datetime(
            &mut out,
            1_742_049_000,
            Frac {
                value: 123,
                digits: 6,
            },
        );
        assert_eq!(out, b"2025-03-15T14:30:00.000123");
        out.clear();
        push_datetime(
            &mut out,
            1_742_049_000,
            Frac {
                value: 5,
                digits: 1,
            },
        );
        assert_eq!(out, b"2025-03-15T14:30:00.5");
    }

    fn money_dataset(money_forms: bool) -> crate::Dataset {
        crate::Dataset::generate(&crate::DatasetConfig {
            seed: 3,
            contacts: 4_000,
            lists: 3,
            money_forms,
            ..crate::DatasetConfig::default()
        })
    }

    /// The exact JSON text of `revenue_total` in `contact`.
    fn revenue_text(contact: &[u8]) -> String {
        #[derive(serde::Deserialize)]
        struct Revenue<'a> {
            #[serde(borrow)]
            revenue_total: &'a serde_json::value::RawValue,
        }
        let r: Revenue<'_> = serde_json::from_slice(contact).unwrap();
        r.revenue_total.get().to_owned()
    }

    #[test]
    fn money_forms_change_only_revenue_total_in_a_fixed_share() {
        let (plain, forms) = (money_dataset(false), money_dataset(true));
        assert_eq!(plain.len(), forms.len());
        let mut changed = 0;
        for i in 0..plain.len() {
            let mut a: serde_json::Value = serde_json::from_slice(plain.contact_json(i)).unwrap();
            let mut b: serde_json::Value = serde_json::from_slice(forms.contact_json(i)).unwrap();
            a["revenue_total"].take();
            b["revenue_total"].take();
            assert_eq!(a, b, "contact {i}");
            changed += usize::from(plain.contact_json(i) != forms.contact_json(i));
        }
        // 40 % of 4000 get a money form; a float sum of a plain value often prints the same text
        // (`0` for most contacts, which have no revenue).
        assert!((1_200..1_800).contains(&changed), "{changed}");
        assert_eq!(
            money_dataset(true).page_body(None, None, 3, 1000),
            forms.page_body(None, None, 3, 1000)
        );
    }

    #[test]
    fn money_forms_are_json_numbers_or_decimal_strings_of_every_kind() {
        let forms = money_dataset(true);
        let (mut strings, mut exponents, mut negatives, mut beyond_4, mut ties, mut artifacts) =
            (0, 0, 0, 0, 0, 0);
        for i in 0..forms.len() {
            let text = revenue_text(forms.contact_json(i));
            let number = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                Some(inner) => {
                    strings += 1;
                    inner
                }
                None => text.as_str(),
            };
            // JSON number syntax exactly (serde_json would also skip surrounding spaces).
            assert_eq!(number.trim(), number, "{text}");
            let value: f64 = serde_json::from_str::<serde_json::Number>(number)
                .unwrap_or_else(|e| panic!("{text}: {e}"))
                .as_f64()
                .unwrap();
            assert!(value.abs() < 1e14, "{text}");
            negatives += usize::from(number.starts_with('-'));
            if number.contains(['e', 'E']) {
                exponents += 1;
                continue;
            }
            let decimals = number.split_once('.').map_or("", |(_, d)| d);
            if decimals.len() > 4 && decimals[4..].bytes().any(|d| d != b'0') {
                beyond_4 += 1;
                ties += usize::from(decimals.len() == 5 && decimals.ends_with('5'));
                artifacts +=
                    usize::from(decimals.contains("0000000") || decimals.contains("9999999"));
            }
        }
        for (what, count) in [
            ("strings", strings),
            ("exponents", exponents),
            ("negatives", negatives),
            ("beyond 4 decimals", beyond_4),
            ("ties on the 5th decimal", ties),
            ("float artifacts", artifacts),
        ] {
            assert!(count > 40, "{what}: {count}");
        }
    }
}
