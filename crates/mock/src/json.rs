//! Small infallible writers for the hand-assembled JSON text.

/// Appends `s` as a JSON string literal, escaped by serde_json.
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a `str` into a `Vec` cannot fail: serde_json only errors on I/O failures and
    // non-string map keys, neither of which can happen here. Fall back to `null` regardless,
    // rather than panicking, so the output stays valid JSON.
    let start = out.len();
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
}

/// The decimal digits of `n`, right-aligned in a buffer, and where they start.
fn digits(mut n: u64) -> ([u8; 20], usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    (buf, i)
}

/// Appends the decimal digits of `n`.
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    let (buf, start) = digits(n);
    out.extend_from_slice(&buf[start..]);
}

/// Appends `n` with leading zeros to at least `width` digits.
pub(crate) fn push_zero_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let (buf, start) = digits(n);
    let len = buf.len() - start;
    out.extend(std::iter::repeat_n(b'0', width.saturating_sub(len)));
    out.extend_from_slice(&buf[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_padding() {
        let mut out = Vec::new();
        push_u64(&mut out, 0);
        out.push(b' ');
        push_u64(&mut out, u64::MAX);
        out.push(b' ');
        push_zero_padded(&mut out, 7, 4);
        out.push(b' ');
        push_zero_padded(&mut out, 12345, 2);
        assert_eq!(out, b"0 18446744073709551615 0007 12345");
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        push_json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u0001é\"".as_bytes());
    }
}
