//! Small helpers over JSON text that serde_json has already validated.

use std::fmt::Write as _;

/// Appends `raw` (one valid JSON value) to `out` without insignificant whitespace, keeping
/// every other byte exactly as sent (escapes, number spelling, key order).
pub(crate) fn push_compact(raw: &str, out: &mut String) {
    let bytes = raw.as_bytes();
    if !bytes.iter().any(|b| is_json_whitespace(*b)) {
        out.push_str(raw);
        return;
    }
    let mut in_string = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
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
        } else if is_json_whitespace(b) {
            // Whitespace is ASCII, so `i` is a char boundary.
            out.push_str(&raw[start..i]);
            start = i + 1;
        }
    }
    out.push_str(&raw[start..]);
}

fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Appends the unescaped content of a JSON string literal (`inner`: the text between the
/// quotes, already validated by serde_json). Returns `false` on an escape JSON does not allow.
#[cfg(test)]
pub(crate) fn push_unescaped(inner: &str, out: &mut String) -> bool {
    let bytes = inner.as_bytes();
    // `contains` on bytes is memchr: the common no-escape case is one fast scan and a copy.
    if !bytes.contains(&b'\\') {
        out.push_str(inner);
        return true;
    }
    let mut start = 0;
    let mut i = 0;
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'\\') {
        let at = i + offset;
        out.push_str(&inner[start..at]);
        let Some(&kind) = bytes.get(at + 1) else {
            return false;
        };
        i = at + 2;
        let simple = match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let Some(high) = hex4(bytes, i) else {
                    return false;
                };
                i += 4;
                let code = if (0xD800..0xDC00).contains(&high) {
                    // A high surrogate must be followed by `\uDC00`–`\uDFFF`.
                    match (bytes.get(i), bytes.get(i + 1), hex4(bytes, i + 2)) {
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
        out.push(simple);
        start = i;
    }
    out.push_str(&inner[start..]);
    true
}

#[cfg(test)]
fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some(acc * 16 + d)
    })
}

/// Appends `s` as a JSON string literal (quotes included).
pub(crate) fn push_json_string(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
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
        let mut out = String::new();
        push_compact(raw, &mut out);
        out
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
            let mut out = String::from("x");
            assert!(
                push_unescaped(&literal[1..literal.len() - 1], &mut out),
                "{literal}"
            );
            assert_eq!(out, format!("x{expected}"), "{literal}");
        }
        for bad in [r"\", r"\x", r"\u12", r"\ud83d", r"\ud83d\u0041"] {
            assert!(!push_unescaped(bad, &mut String::new()), "{bad}");
        }
    }

    #[test]
    fn json_string_escapes_what_json_requires() {
        let mut out = String::new();
        push_json_string("a\"b\\c\nd\u{1}é", &mut out);
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
