//! Query-string decoding and validation of the `/v2/contacts` parameters.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// Largest accepted `per_page`; larger values are clamped to it.
pub const MAX_PER_PAGE: u64 = 1000;
/// `per_page` when the parameter is omitted.
pub const DEFAULT_PER_PAGE: u64 = 50;

/// A parameter value the server rejects with `400 invalid_parameter`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid value for '{parameter}': {reason}.")]
pub(crate) struct ParamError {
    /// The offending parameter's name.
    pub(crate) parameter: &'static str,
    /// What a valid value looks like.
    pub(crate) reason: &'static str,
}

/// The validated filter part of a query (also used by `/_mock/ground_truth`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Filter {
    /// Trimmed `list_number`; compared exactly with the lists' E.164 numbers.
    pub(crate) list_number: Option<String>,
    pub(crate) active: Option<bool>,
}

/// A validated `/v2/contacts` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContactsQuery {
    pub(crate) filter: Filter,
    pub(crate) page: u64,
    /// Already clamped to [`MAX_PER_PAGE`].
    pub(crate) per_page: u64,
    /// `per_page` as asked, before clamping; `None` when omitted.
    pub(crate) asked_per_page: Option<u64>,
}

/// Decodes `application/x-www-form-urlencoded` pairs like a form-decoding server: `+` is a
/// space, `%XX` escapes are decoded, invalid UTF-8 is replaced. The first occurrence of a key
/// wins; a key without `=` has the empty value.
fn decode_pairs(query: &str) -> Vec<(String, String)> {
    fn decode(part: &str) -> String {
        let spaced: Cow<'_, str> = if part.contains('+') {
            Cow::Owned(part.replace('+', " "))
        } else {
            Cow::Borrowed(part)
        };
        percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
    }
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `^\+?[1-9]\d{1,14}$`: the widely used E.164 pattern (the `+` is optional in it).
pub(crate) fn is_e164(value: &str) -> bool {
    let digits = value.strip_prefix('+').unwrap_or(value).as_bytes();
    (2..=15).contains(&digits.len())
        && digits[0] != b'0'
        && digits.iter().all(|b| b.is_ascii_digit())
}

fn parse_filter(pairs: &[(String, String)]) -> Result<Filter, ParamError> {
    let list_number = match first(pairs, "list_number") {
        None => None,
        Some(raw) => {
            let trimmed = raw.trim();
            if !is_e164(trimmed) {
                return Err(ParamError {
                    parameter: "list_number",
                    reason: "must be a phone number in E.164 format, e.g. +18005551234",
                });
            }
            Some(trimmed.to_owned())
        }
    };
    let active = match first(pairs, "active") {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            return Err(ParamError {
                parameter: "active",
                reason: "must be \"true\" or \"false\"",
            });
        }
    };
    Ok(Filter {
        list_number,
        active,
    })
}

/// A positive 64-bit signed integer, as a typical server's integer column would accept.
fn positive(value: &str, parameter: &'static str) -> Result<u64, ParamError> {
    match value.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n.unsigned_abs()),
        _ => Err(ParamError {
            parameter,
            reason: "must be a positive integer",
        }),
    }
}

/// `page` (1 when omitted) and `per_page` as asked (`None` when omitted), checked in that order.
fn paging(pairs: &[(String, String)]) -> Result<(u64, Option<u64>), ParamError> {
    let page = first(pairs, "page").map_or(Ok(1), |v| positive(v, "page"))?;
    let per_page = first(pairs, "per_page").map(|v| positive(v, "per_page"));
    Ok((page, per_page.transpose()?))
}

/// Parses and validates a `/v2/contacts` query string (without the `?`). Parameters are checked
/// in the order `list_number`, `active`, `page`, `per_page`; the first invalid one is reported.
/// Unknown parameters are ignored.
pub(crate) fn parse_contacts_query(query: Option<&str>) -> Result<ContactsQuery, ParamError> {
    let pairs = decode_pairs(query.unwrap_or(""));
    let filter = parse_filter(&pairs)?;
    let (page, asked_per_page) = paging(&pairs)?;
    Ok(ContactsQuery {
        filter,
        page,
        per_page: asked_per_page.map_or(DEFAULT_PER_PAGE, |n| n.min(MAX_PER_PAGE)),
        asked_per_page,
    })
}

/// Parses the `list_number` and `active` filter of a query string (for `/_mock/ground_truth`).
pub(crate) fn parse_filter_query(query: Option<&str>) -> Result<Filter, ParamError> {
    parse_filter(&decode_pairs(query.unwrap_or("")))
}

/// Largest `per_page` of the list endpoints other than contacts (documented); larger values
/// are clamped to it.
pub const MAX_LISTS_PER_PAGE: u64 = 100;

/// The statuses a sending list can have, as documented.
pub(crate) const LIST_STATUSES: [&str; 4] = ["active", "paused", "suspended", "deleted"];

/// A validated `/v2/lists` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListsQuery {
    /// One of [`LIST_STATUSES`]; `None`: every list except deleted ones.
    pub(crate) status: Option<&'static str>,
    pub(crate) page: u64,
    /// As asked (clamped to [`MAX_LISTS_PER_PAGE`]); `None` when omitted.
    pub(crate) per_page: Option<u64>,
}

/// Parses and validates a `/v2/lists` query string, checking `status`, `page` and `per_page`
/// in that order. Unknown parameters are ignored.
pub(crate) fn parse_lists_query(query: Option<&str>) -> Result<ListsQuery, ParamError> {
    let pairs = decode_pairs(query.unwrap_or(""));
    let status =
        match first(&pairs, "status") {
            None => None,
            Some(value) => Some(LIST_STATUSES.into_iter().find(|s| *s == value).ok_or(
                ParamError {
                    parameter: "status",
                    reason: "must be one of active, paused, suspended, deleted",
                },
            )?),
        };
    let (page, per_page) = paging(&pairs)?;
    Ok(ListsQuery {
        status,
        page,
        per_page: per_page.map(|n| n.min(MAX_LISTS_PER_PAGE)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<ContactsQuery, ParamError> {
        parse_contacts_query(Some(q))
    }

    #[test]
    fn defaults_when_omitted() {
        let q = parse("").ok();
        assert_eq!(
            q,
            Some(ContactsQuery {
                filter: Filter::default(),
                page: 1,
                per_page: 50,
                asked_per_page: None,
            })
        );
    }

    #[test]
    fn percent_encoded_plus_decodes_to_plus_and_raw_plus_to_space_that_matches_nothing() {
        let q = parse("list_number=%2B18005551234").ok();
        assert_eq!(
            q.and_then(|q| q.filter.list_number).as_deref(),
            Some("+18005551234")
        );
        // A raw `+` is a space; the trimmed value has no `+` and matches no list.
        let q = parse("list_number=+18005551234").ok();
        assert_eq!(
            q.and_then(|q| q.filter.list_number).as_deref(),
            Some("18005551234")
        );
    }

    #[test]
    fn per_page_above_max_is_clamped() {
        assert_eq!(parse("per_page=5000").map(|q| q.per_page), Ok(1000));
        assert_eq!(parse("per_page=1000").map(|q| q.per_page), Ok(1000));
        assert_eq!(parse("per_page=1").map(|q| q.per_page), Ok(1));
    }

    #[test]
    fn invalid_values_name_the_parameter() {
        for (q, param) in [
            ("per_page=0", "per_page"),
            ("per_page=-3", "per_page"),
            ("per_page=abc", "per_page"),
            ("per_page=", "per_page"),
            ("per_page=99999999999999999999", "per_page"),
            ("page=0", "page"),
            ("page=-1", "page"),
            ("page=1.5", "page"),
            ("page=x", "page"),
            ("active=yes", "active"),
            ("active=True", "active"),
            ("active=", "active"),
            ("list_number=abc", "list_number"),
            ("list_number=", "list_number"),
            ("list_number=%2B1-800-555-1234", "list_number"),
            ("list_number=%2B0123", "list_number"),
        ] {
            assert_eq!(parse(q).map_err(|e| e.parameter), Err(param), "{q}");
        }
    }

    #[test]
    fn first_occurrence_wins_and_unknown_parameters_are_ignored() {
        let q = parse("page=2&page=3&foo=bar&per_page=10").ok();
        assert_eq!(q.map(|q| (q.page, q.per_page)), Some((2, 10)));
    }

    #[test]
    fn lists_queries_validate_status_and_clamp_per_page() {
        let q = parse_lists_query(None).ok();
        assert_eq!(
            q,
            Some(ListsQuery {
                status: None,
                page: 1,
                per_page: None
            })
        );
        let q = parse_lists_query(Some("status=deleted&per_page=500&page=2")).ok();
        assert_eq!(
            q,
            Some(ListsQuery {
                status: Some("deleted"),
                page: 2,
                per_page: Some(100)
            })
        );
        for (q, param) in [
            ("status=Deleted", "status"),
            ("status=", "status"),
            ("status=gone", "status"),
            ("page=0", "page"),
            ("per_page=x", "per_page"),
        ] {
            assert_eq!(
                parse_lists_query(Some(q)).map_err(|e| e.parameter),
                Err(param),
                "{q}"
            );
        }
    }

    #[test]
    fn e164_pattern() {
        assert!(is_e164("+18005551234"));
        assert!(is_e164("18005551234"));
        assert!(!is_e164("+"));
        assert!(!is_e164("+1"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("++1800"));
        assert!(!is_e164(" +1800"));
    }
}
