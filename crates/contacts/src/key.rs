//! What the run must know of each contact without decoding it: who it is (the key
//! `(phone_number, list_number)`, hashed, for de-duplication) and where it sorts (its
//! `signup_date`, the key of the API's newest-first order, for proving that no contact fell
//! between two pages).

use std::borrow::Cow;

use serde::Deserialize;

use crate::timestamp::signup_micros;

/// One contact as the paging run sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// 64-bit hash of `(phone_number, list_number)`; of the raw text when the contact cannot be
    /// read (so a damaged contact served twice is still delivered once).
    pub hash: u64,
    /// `signup_date` in microseconds since the epoch (UTC when naive); `None` when absent,
    /// `null` or unreadable.
    pub signup: Option<i64>,
}

/// Reads a contact's identity: the documented field order without a JSON parse when it can,
/// a borrowed serde parse of the three fields otherwise.
pub fn identify(raw: &[u8]) -> Identity {
    if let Some(id) = fast_identity(raw) {
        return id;
    }
    match serde_json::from_slice::<IdentityFields<'_>>(raw) {
        Ok(IdentityFields {
            phone_number: Some(phone),
            list_number: Some(list),
            signup_date,
        }) => Identity {
            hash: hash_key(phone.as_bytes(), list.as_bytes()),
            signup: signup_date.as_deref().and_then(signup_micros),
        },
        _ => Identity {
            hash: hash_raw(raw),
            signup: None,
        },
    }
}

/// The fields a run needs, borrowed from the contact's text where it has no escapes.
#[derive(Deserialize)]
struct IdentityFields<'a> {
    #[serde(borrow)]
    phone_number: Option<Cow<'a, str>>,
    #[serde(borrow)]
    list_number: Option<Cow<'a, str>>,
    #[serde(borrow)]
    signup_date: Option<Cow<'a, str>>,
}

/// 64-bit hash of a contact key.
pub fn hash_key(phone: &[u8], list: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(phone);
    h.update(&[0]);
    h.update(list);
    h.digest()
}

fn hash_raw(raw: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(b"\xffraw\xff");
    h.update(raw);
    h.digest()
}

/// The documented field order puts the keys first and `signup_date` fifth: read them without
/// a JSON parse when the object starts exactly so and no value has an escape.
fn fast_identity(raw: &[u8]) -> Option<Identity> {
    let rest = raw.strip_prefix(br#"{"phone_number":""#)?;
    let (phone, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(br#","list_number":""#)?;
    let (list, rest) = plain_string(rest)?;
    // `list_id` and `active` are short scalars: `signup_date` follows within a few bytes.
    const FIELD: &[u8] = br#","signup_date":"#;
    let window = &rest[..rest.len().min(64)];
    let at = window.windows(FIELD.len()).position(|w| w == FIELD)?;
    let value = &rest[at + FIELD.len()..];
    let signup = match value.strip_prefix(b"\"") {
        Some(text) => {
            let (text, _) = plain_string(text)?;
            std::str::from_utf8(text).ok().and_then(signup_micros)
        }
        None if value.starts_with(b"null") => None,
        None => return None,
    };
    Some(Identity {
        hash: hash_key(phone, list),
        signup,
    })
}

/// The text of a JSON string up to its closing quote, when it has no escape.
fn plain_string(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = s.iter().position(|&b| b == b'"' || b == b'\\')?;
    (s[end] == b'"').then(|| (&s[..end], &s[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_and_slow_paths_agree() {
        let compact = br#"{"phone_number":"+14155559876","list_number":"+18005551234","list_id":42,"active":true,"signup_date":"2025-03-15T14:30:00","x":1}"#;
        let spaced = br#"{ "signup_date": "2025-03-15T14:30:00Z", "list_number": "+18005551234", "phone_number": "+14155559876" }"#;
        assert!(fast_identity(compact).is_some());
        assert!(fast_identity(spaced).is_none());
        assert_eq!(identify(compact), identify(spaced));
        let escaped = br#"{"phone_number":"+1415555\u0039876","list_number":"+18005551234","list_id":42,"active":true,"signup_date":"2025-03-15T14:30:00"}"#;
        assert!(fast_identity(escaped).is_none());
        assert_eq!(identify(escaped), identify(compact));
        assert_eq!(identify(compact).signup, Some(1_742_049_000_000_000));
    }

    #[test]
    fn unreadable_contacts_are_identified_by_their_text() {
        let a =
            br#"{"phone_number":"+14155559876","list_number":"+18005551234","revenue_total":NaN}"#;
        let b = br#"{"phone_number":"+14155559876","list_number":"+18005551234","revenue_total":Infinity}"#;
        assert_eq!(identify(a).signup, None);
        assert_ne!(identify(a).hash, identify(b).hash);
        assert_eq!(identify(a), identify(a));
        let missing = identify(br#"{"list_number":"+18005551234"}"#);
        assert_eq!(missing.signup, None);
    }
}
