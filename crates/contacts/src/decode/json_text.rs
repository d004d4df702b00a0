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
