//! What to export: the filters of `GET /v2/contacts`, validated before any request is made.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A phone number in E.164 form: `+`, a country code that does not start with 0, 8 to 15 digits
/// in all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

/// Why a text is not an E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an E.164 phone number ({reason}); expected e.g. +18005551234")]
pub struct InvalidE164 {
    /// The rejected text.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl E164 {
    /// Validates `text` as E.164.
    pub fn parse(text: &str) -> Result<E164, InvalidE164> {
        let fail = |reason| InvalidE164 {
            value: text.to_owned(),
            reason,
        };
        let digits = text
            .strip_prefix('+')
            .ok_or_else(|| fail("it must start with +"))?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail("only digits may follow the +"));
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(fail("it must have 8 to 15 digits"));
        }
        if digits.starts_with('0') {
            return Err(fail("a country code never starts with 0"));
        }
        Ok(E164(text.to_owned()))
    }

    /// The number, `+` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for E164 {
    type Err = InvalidE164;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        E164::parse(s)
    }
}

impl TryFrom<String> for E164 {
    type Error = InvalidE164;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        E164::parse(&value)
    }
}

impl From<E164> for String {
    fn from(value: E164) -> String {
        value.0
    }
}

/// The filters of one export. The default exports every contact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Query {
    /// Only contacts of this sending list.
    pub list_number: Option<E164>,
    /// Only active (`Some(true)`) or inactive (`Some(false)`) contacts.
    pub active: Option<bool>,
}

impl Query {
    /// Every contact of the account.
    pub fn all() -> Query {
        Query::default()
    }

    /// Only contacts of this sending list.
    pub fn with_list_number(mut self, list_number: E164) -> Query {
        self.list_number = Some(list_number);
        self
    }

    /// Only active (`true`) or inactive (`false`) contacts.
    pub fn with_active(mut self, active: bool) -> Query {
        self.active = Some(active);
        self
    }

    /// The query string for `page` with `per_page` contacts, percent-encoded (`+` as `%2B`).
    pub fn to_query_string(&self, page: u64, per_page: u32) -> String {
        let mut out = String::new();
        if let Some(list) = &self.list_number {
            out.push_str("list_number=");
            out.extend(percent_encoding::utf8_percent_encode(
                list.as_str(),
                percent_encoding::NON_ALPHANUMERIC,
            ));
            out.push('&');
        }
        if let Some(active) = self.active {
            out.push_str(if active {
                "active=true&"
            } else {
                "active=false&"
            });
        }
        out.push_str(&format!("page={page}&per_page={per_page}"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_accepts_numbers_from_several_countries() {
        for n in [
            "+18005551234",
            "+4915112345678",
            "+447911123456",
            "+8613812345678",
        ] {
            assert_eq!(E164::parse(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn e164_rejects_malformed_numbers_with_a_reason() {
        for (n, why) in [
            ("18005551234", "start with +"),
            ("+1800555123a", "only digits"),
            ("+1 800 555 1234", "only digits"),
            ("+1234567", "8 to 15"),
            ("+1234567890123456", "8 to 15"),
            ("+0123456789", "never starts with 0"),
            ("", "start with +"),
        ] {
            let err = E164::parse(n).unwrap_err();
            assert!(err.to_string().contains(why), "{n}: {err}");
        }
    }

    #[test]
    fn query_string_percent_encodes_the_plus() {
        let q = Query::all()
            .with_list_number(E164::parse("+18005551234").unwrap())
            .with_active(true);
        assert_eq!(
            q.to_query_string(2, 1000),
            "list_number=%2B18005551234&active=true&page=2&per_page=1000"
        );
        assert_eq!(Query::all().to_query_string(1, 50), "page=1&per_page=50");
    }
}
