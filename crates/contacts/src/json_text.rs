//! JSON text that the scanner ([`crate::scan`]) has read: unescaping a string, compacting a
//! value, writing a string literal, and quoting text for error messages. One copy of each, for
//! contacts and lists alike.

/// Appends the unescaped text of a string literal whose escapes the cursor has checked
/// (`inner`: between the quotes). `false` when an escape is not a character (a lone surrogate
/// in a string read as [`Strings::Skipped`](crate::scan::Strings::Skipped)).
pub(crate) fn unescape(inner: &[u8], out: &mut Vec<u8>) -> bool {
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'\\', &inner[i..]) {
        out.extend_from_slice(&inner[i..i + at]);
        i += at + 1;
        let Some(&kind) = inner.get(i) else {
            return false;
        };
        i += 1;
        let c = match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let Some(high) = hex4(inner, i) else {
                    return false;
                };
                i += 4;
                let code = if (0xD800..0xDC00).contains(&high) {
                    match (inner.get(i), inner.get(i + 1), hex4(inner, i + 2)) {
                        (Some(b'\\'), Some(b'u'), Some(low)) if (0xDC00..0xE000).contains(&low) => {
                            i += 6;
                            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                        }
                        _ => return false,
                    }
                } else {
                    high
                };
                match char::from_u32(code) {
                    Some(c) => c,
                    None => return false,
                }
            }
            _ => return false,
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    out.extend_from_slice(&inner[i..]);
    true
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    bytes.get(at..at + 4)?.iter().try_fold(0u32, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some(acc * 16 + d)
    })
}

/// Appends one valid JSON value without insignificant whitespace, every other byte as sent.
pub(crate) fn push_compact(raw: &[u8], out: &mut Vec<u8>) {
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, &b) in raw.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            out.extend_from_slice(&raw[start..i]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&raw[start..]);
}

/// Appends `s` as a JSON string literal (quotes included).
pub(crate) fn push_json_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// A value's text for a message (cut to ~200 characters).
pub(crate) fn quote(raw: &[u8]) -> String {
    quote_value(&String::from_utf8_lossy(raw))
}

/// A short, printable excerpt from byte `start` on (control characters escaped), for a token
/// the scanner stopped at; `-Infinity` is shown whole.
pub(crate) fn text_at(record: &[u8], start: usize) -> String {
    let record = String::from_utf8_lossy(record);
    let mut start = start.min(record.len());
    while !record.is_char_boundary(start) {
        start -= 1;
    }
    if record[..start].ends_with('-') {
        start -= 1;
    }
    let rest = &record[start..];
    let end = rest
        .char_indices()
        .find(|&(i, c)| i > 0 && matches!(c, ',' | '}' | ']'))
        .map_or(rest.len(), |(i, _)| i);
    let excerpt: String = rest[..end].chars().take(40).collect();
    excerpt.escape_debug().to_string()
}

/// The JSON text of a value for an error message: whole when short, else its first ~200
/// characters followed by how long it was.
pub(crate) fn quote_value(raw: &str) -> String {
    const LIMIT: usize = 200;
    if raw.len() <= LIMIT {
        return raw.to_owned();
    }
    let mut cut = LIMIT;
    while !raw.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes in all)", &raw[..cut], raw.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(raw: &str) -> String {
        let mut out = Vec::new();
        push_compact(raw.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn compact_strips_only_insignificant_whitespace() {
        assert_eq!(compact(r#"{"a":[1,2]}"#), r#"{"a":[1,2]}"#);
        assert_eq!(
            compact("{ \"a b\" : [ 1 ,\n\t2.50 , \"x \\\" y\" ] ,\r\n \"c\":{ } }"),
            r#"{"a b":[1,2.50,"x \" y"],"c":{}}"#
        );
        assert_eq!(compact(r#"[ "\\", " " ]"#), r#"["\\"," "]"#);
        assert_eq!(compact(r#"{"k":"\u00e9 é"}"#), r#"{"k":"\u00e9 é"}"#);
    }

    #[test]
    fn unescaping_matches_serde_json() {
        for literal in [
            r#""plain""#,
            r#""a\"b\\c\/d\b\f\n\r\t""#,
            r#""\u00e9\u20AC \ud83d\ude00 é😀""#,
            r#""""#,
            r#""\\\\""#,
        ] {
            let expected: String = serde_json::from_str(literal).unwrap();
            let mut out = b"x".to_vec();
            assert!(
                unescape(&literal.as_bytes()[1..literal.len() - 1], &mut out),
                "{literal}"
            );
            assert_eq!(out, format!("x{expected}").into_bytes(), "{literal}");
        }
        for bad in [r"\", r"\x", r"\u12", r"\ud83d", r"\ud83d\u0041"] {
            assert!(!unescape(bad.as_bytes(), &mut Vec::new()), "{bad}");
        }
    }

    #[test]
    fn json_string_escapes_what_json_requires() {
        let mut out = Vec::new();
        push_json_string("a\"b\\c\nd\u{1}é".as_bytes(), &mut out);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn long_values_are_cut_on_a_char_boundary() {
        let long = "é".repeat(300);
        let quoted = quote_value(&long);
        assert!(quoted.starts_with("éé"));
        assert!(quoted.ends_with("(600 bytes in all)"));
        assert!(quoted.len() < 230);
        assert_eq!(quote_value("12"), "12");
    }
}
