//! The data set: deterministic, and realistic rather than uniform.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use trackly_mock::{Dataset, DatasetConfig, Faults};

use crate::{get, json, lines, start};

fn generate(seed: u64, contacts: usize) -> Dataset {
    Dataset::generate(&DatasetConfig {
        seed,
        contacts,
        lists: 4,
        ..DatasetConfig::default()
    })
}

fn texts(data: &Dataset) -> Vec<String> {
    (0..data.len())
        .map(|i| String::from_utf8(data.contact_json(i).to_vec()).unwrap())
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
    let a = generate(7, 2_000);
    let b = generate(7, 2_000);
    let c = generate(8, 2_000);
    assert_eq!(texts(&a), texts(&b));
    assert_eq!(
        a.page_body(None, None, 2, 1000),
        b.page_body(None, None, 2, 1000)
    );
    assert_ne!(
        a.page_body(None, None, 1, 1000),
        c.page_body(None, None, 1, 1000)
    );
    assert_eq!(a.list_numbers(), c.list_numbers());
}

#[tokio::test]
async fn the_server_serves_exactly_the_generated_data_set() {
    let server = start(700, Faults::default()).await;
    let data = Dataset::generate(&DatasetConfig {
        seed: 11,
        contacts: 700,
        lists: 3,
        ..DatasetConfig::default()
    });
    assert_eq!(server.contact_count(), 700);
    let a = get(&server, "/v2/contacts?page=2&per_page=300").await;
    assert_eq!(a.body, data.page_body(None, None, 2, 300));
    let truth = server.ground_truth(None, None);
    let served = lines(&truth);
    for (i, line) in served.iter().enumerate() {
        assert_eq!(*line, data.contact_json(i));
    }
}

/// The text after `"field":` up to the next `,"` (fine for scalars).
fn raw<'a>(text: &'a str, field: &str) -> &'a str {
    let key = format!("\"{field}\":");
    let start = text.find(&key).unwrap() + key.len();
    let end = text[start..].find(",\"").unwrap() + start;
    &text[start..end]
}

#[test]
fn the_default_data_set_is_a_realistic_mix() {
    let data = Dataset::generate(&DatasetConfig::default());
    assert_eq!(data.len(), 10_000);
    assert!(!data.is_empty());
    let lists = data.list_numbers();
    assert_eq!(lists.len(), 4);
    assert_eq!(lists[0], "+18005551234");

    let texts = texts(&data);
    let values: Vec<Value> = texts.iter().map(|t| json(t.as_bytes())).collect();
    let n = values.len() as f64;
    let count = |f: &dyn Fn(&Value) -> bool| values.iter().filter(|v| f(v)).count();

    // ~80/20 active, mostly valid.
    let active = count(&|v| v["active"] == true) as f64 / n;
    assert!((0.72..0.88).contains(&active), "active share {active}");
    assert!(count(&|v| v["is_valid"] == true) as f64 / n > 0.9);

    // Unique per (phone, list); some phones on several lists; several countries.
    let mut pairs = HashSet::new();
    let mut lists_per_phone: HashMap<&str, usize> = HashMap::new();
    for v in &values {
        let phone = v["phone_number"].as_str().unwrap();
        assert!(pairs.insert((phone, v["list_number"].as_str().unwrap())));
        *lists_per_phone.entry(phone).or_default() += 1;
        assert!(phone.starts_with('+') && phone[1..].bytes().all(|b| b.is_ascii_digit()));
    }
    assert!(lists_per_phone.values().filter(|&&k| k > 1).count() > 100);
    for prefix in ["+1", "+44", "+49", "+33", "+55", "+91", "+61"] {
        assert!(
            count(&|v| v["phone_number"].as_str().unwrap().starts_with(prefix)) > 50,
            "{prefix}"
        );
    }
    let list_ids: HashSet<u64> = values
        .iter()
        .map(|v| v["list_id"].as_u64().unwrap())
        .collect();
    assert_eq!(list_ids.len(), 4);

    // Signup dates: naive ISO, ~3 years, shared seconds from bulk imports, some fractions.
    let dates: Vec<&str> = values
        .iter()
        .map(|v| v["signup_date"].as_str().unwrap())
        .collect();
    assert!(
        dates
            .iter()
            .all(|d| d.len() >= 19 && &d[10..11] == "T" && !d.ends_with('Z'))
    );
    assert!(
        dates.iter().any(|d| d.starts_with("2022-"))
            && dates.iter().any(|d| d.starts_with("2025-"))
    );
    let mut per_second: HashMap<&str, usize> = HashMap::new();
    for d in &dates {
        *per_second.entry(&d[..19]).or_default() += 1;
    }
    assert!(
        per_second.values().filter(|&&k| k >= 100).count() >= 2,
        "bulk imports"
    );
    assert!(dates.iter().any(|d| d.len() == 26), "six-digit fractions");
    assert!(
        dates.iter().any(|d| (21..=23).contains(&d.len())),
        "short fractions"
    );

    let methods: HashSet<&str> = values
        .iter()
        .map(|v| v["signup_method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        HashSet::from(["api", "keyword", "import", "web_form", "manual"])
    );

    // custom_fields: null, {}, 1-10 keys, `source` common, every JSON type, tricky strings.
    let fields = |v: &Value| v["custom_fields"].as_object().cloned();
    assert!(count(&|v| v["custom_fields"].is_null()) > 100);
    assert!(count(&|v| fields(v).is_some_and(|o| o.is_empty())) > 100);
    assert!(values.iter().filter_map(fields).all(|o| o.len() <= 10));
    assert!(count(&|v| fields(v).is_some_and(|o| o.len() >= 8)) > 10);
    assert!(count(&|v| fields(v).is_some_and(|o| o.contains_key("source"))) as f64 / n > 0.5);
    let all_values: Vec<Value> = values
        .iter()
        .filter_map(fields)
        .flat_map(|o| o.into_iter().map(|(_, v)| v))
        .collect();
    let has = |f: &dyn Fn(&Value) -> bool| all_values.iter().any(f);
    assert!(has(&|v| v.is_null()));
    assert!(has(&|v| v.is_boolean()));
    assert!(has(&|v| v.is_i64() || v.is_u64()));
    assert!(has(&|v| v.is_f64()));
    assert!(has(&|v| v.is_object()));
    assert!(has(&|v| v.is_array()));
    let strings: Vec<&str> = all_values.iter().filter_map(Value::as_str).collect();
    for needle in ["Zoë", "東京", "🎉", "\"", "\n", "\\"] {
        assert!(strings.iter().any(|s| s.contains(needle)), "{needle:?}");
    }

    // Person attributes.
    assert!(count(&|v| v["carrier"].is_null()) > 0);
    let line_types: HashSet<&str> = values
        .iter()
        .map(|v| v["line_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        line_types,
        HashSet::from(["CELL PHONE", "LANDLINE", "VOIP"])
    );
    assert!(
        values
            .iter()
            .all(|v| v["timezone"].as_str().unwrap().contains('/'))
    );
    assert!(count(&|v| v["last_sent_at"].is_null()) > 0);
    assert!(count(&|v| v["last_clicked_at"].is_null()) > 0);
    assert!(count(&|v| v["in_workflow"] == true) > 0);

    // Counts from 0 to large.
    let sends: Vec<u64> = values
        .iter()
        .map(|v| v["send_count"].as_u64().unwrap())
        .collect();
    assert!(sends.contains(&0));
    let max = sends.iter().max().copied().unwrap_or(0);
    assert!((100_000..=2_000_000).contains(&max), "{max}");
    assert!(
        values
            .iter()
            .all(|v| v["click_count"].as_u64() <= v["send_count"].as_u64())
    );

    // revenue_total written in varied textual forms.
    let revenue: Vec<&str> = texts.iter().map(|t| raw(t, "revenue_total")).collect();
    let form = |f: &dyn Fn(&str) -> bool| revenue.iter().any(|r| f(r));
    assert!(form(&|r| r == "0"));
    assert!(form(&|r| r == "0.01"));
    assert!(form(&|r| !r.contains('.') && r != "0"), "integers like 12");
    assert!(
        form(&|r| r
            .split_once('.')
            .is_some_and(|(_, f)| f.len() == 1 && f != "0")),
        "47.5"
    );
    assert!(
        form(&|r| r
            .split_once('.')
            .is_some_and(|(_, f)| f.len() == 2 && f.ends_with('0') && f != "00")),
        "47.50"
    );
    assert!(
        form(&|r| r
            .split_once('.')
            .is_some_and(|(i, f)| i.len() >= 7 && f.len() == 2)),
        "1234567.89"
    );
    for r in &revenue {
        assert!(serde_json::from_str::<serde_json::Number>(r).is_ok(), "{r}");
    }
}
