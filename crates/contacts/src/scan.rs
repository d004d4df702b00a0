//! A byte cursor over JSON text: the one tokenizer of a page.
//!
//! It reads what RFC 8259 allows and reports where it stops (a [`Fault`]) so that a caller can
//! name the field and show the text. Nothing here recurses: nested values are walked with an
//! explicit stack, so depth is bounded by the input's size, not by the thread's stack.
//! The positions in [`Fault::Syntax`] are chosen to match what serde_json reported for the same
//! text, so error messages read as they did before this scanner existed.

use std::ops::Range;

/// Where JSON text stops being JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A byte JSON does not allow there; the offset is where an excerpt of the text should
    /// start.
    Syntax(usize),
    /// The text ends inside a value.
    Eof,
}

/// A string literal: the text between its quotes, and whether it holds escapes.
#[derive(Debug, Clone)]
pub(crate) struct Str {
    pub(crate) inner: Range<usize>,
    pub(crate) escaped: bool,
}

/// How strictly a string is read, as serde_json reads a value it decodes (`Decoded`: escapes
/// must form valid characters) or only skips (`Skipped`: lone surrogates pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strings {
    Decoded,
    Skipped,
}

/// A position in JSON text.
pub(crate) struct Cursor<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) i: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(b: &'a [u8], i: usize) -> Self {
        Cursor { b, i }
    }

    /// Skips JSON whitespace.
    #[inline]
    pub(crate) fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                break;
            }
            self.i += 1;
        }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    /// The fault of an unexpected byte at the cursor (or of the end of the text).
    #[inline]
    pub(crate) fn unexpected(&self) -> Fault {
        if self.i < self.b.len() {
            Fault::Syntax(self.i)
        } else {
            Fault::Eof
        }
    }

    /// Whether `pattern` is next; if so, steps over it.
    #[inline]
    pub(crate) fn eat_slice(&mut self, pattern: &[u8]) -> bool {
        let hit = self
            .b
            .get(self.i..self.i + pattern.len())
            .is_some_and(|s| eq_short(s, pattern));
        self.i += if hit { pattern.len() } else { 0 };
        hit
    }

    /// A string; the cursor is on its opening quote.
    #[inline]
    pub(crate) fn string(&mut self, strings: Strings) -> Result<Str, Fault> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            let end = self.i + special(&self.b[self.i..]).ok_or(Fault::Eof)?;
            match self.b[end] {
                b'"' => {
                    self.i = end + 1;
                    return Ok(Str {
                        inner: start..end,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    self.i = end + 1;
                    self.escape(strings)?;
                }
                _ => {
                    return Err(Fault::Syntax(match strings {
                        Strings::Decoded => end,
                        Strings::Skipped => end.saturating_sub(1),
                    }));
                }
            }
        }
    }

    /// One escape; the cursor is just past its backslash.
    fn escape(&mut self, strings: Strings) -> Result<(), Fault> {
        let Some(c) = self.peek() else {
            return Err(Fault::Eof);
        };
        self.i += 1;
        match c {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => {
                let code = self.hex4()?;
                if strings == Strings::Decoded {
                    self.surrogates(code)?;
                }
                Ok(())
            }
            _ => Err(Fault::Syntax(self.i - 1)),
        }
    }

    fn hex4(&mut self) -> Result<u32, Fault> {
        let Some(digits) = self.b.get(self.i..self.i + 4) else {
            return Err(Fault::Eof);
        };
        self.i += 4;
        digits
            .iter()
            .try_fold(0u32, |acc, &d| Some(acc * 16 + (d as char).to_digit(16)?))
            .ok_or(Fault::Syntax(self.i - 1))
    }

    /// serde_json's checks of `\u` escapes in a string it decodes: surrogates must pair.
    fn surrogates(&mut self, code: u32) -> Result<(), Fault> {
        if (0xDC00..0xE000).contains(&code) {
            return Err(Fault::Syntax(self.i - 1));
        }
        if !(0xD800..0xDC00).contains(&code) {
            return Ok(());
        }
        self.expect(b"\\u")?;
        let low = self.hex4()?;
        if (0xDC00..0xE000).contains(&low) {
            Ok(())
        } else {
            Err(Fault::Syntax(self.i - 1))
        }
    }

    /// A number (RFC 8259 grammar); the cursor is on its first byte.
    #[inline]
    pub(crate) fn number(&mut self) -> Result<Range<usize>, Fault> {
        let start = self.i;
        self.eat(b'-');
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return Err(Fault::Syntax(self.i));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.number_fault()),
        }
        if self.eat(b'.') {
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.number_fault());
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.number_fault());
            }
            self.digits();
        }
        Ok(start..self.i)
    }

    #[inline]
    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    /// serde_json peeks at the byte after a number's last valid byte, even at the end.
    fn number_fault(&self) -> Fault {
        Fault::Syntax(self.i.min(self.b.len().saturating_sub(1)))
    }

    /// The rest of `true`, `false` or `null`; the cursor is on its first letter.
    #[inline]
    pub(crate) fn literal(&mut self, word: &[u8]) -> Result<(), Fault> {
        self.i += 1;
        self.expect(&word[1..])
    }

    /// Steps over `bytes`, which must come next: a fault at the first byte that differs.
    #[inline]
    fn expect(&mut self, bytes: &[u8]) -> Result<(), Fault> {
        for &expected in bytes {
            let c = self.peek().ok_or(Fault::Eof)?;
            self.i += 1;
            if c != expected {
                return Err(Fault::Syntax(self.i - 1));
            }
        }
        Ok(())
    }

    /// Any value, checked and skipped as serde_json skips a value it does not decode
    /// (`RawValue`, `IgnoredAny`). `stack` is scratch space for the nesting.
    pub(crate) fn skip(&mut self, stack: &mut Vec<u8>) -> Result<Range<usize>, Fault> {
        stack.clear();
        let start = self.i;
        loop {
            // A value.
            match self.peek() {
                Some(b'"') => {
                    self.string(Strings::Skipped)?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(open @ (b'[' | b'{')) => {
                    self.i += 1;
                    self.ws();
                    let close = if open == b'[' { b']' } else { b'}' };
                    if self.eat(close) {
                        // An empty container is a whole value; fall through to its end.
                    } else {
                        stack.push(open);
                        if open == b'{' {
                            self.key_colon()?;
                        }
                        continue;
                    }
                }
                _ => return Err(self.unexpected()),
            }
            // After a value: close containers, or go on to the next element.
            loop {
                let Some(&open) = stack.last() else {
                    return Ok(start..self.i);
                };
                self.ws();
                if self.eat(b',') {
                    self.ws();
                    if open == b'{' {
                        self.key_colon()?;
                    }
                    break;
                }
                let close = if open == b'[' { b']' } else { b'}' };
                if !self.eat(close) {
                    return Err(self.unexpected());
                }
                stack.pop();
            }
        }
    }

    /// A key and its colon inside a skipped object; the cursor is on the key.
    fn key_colon(&mut self) -> Result<(), Fault> {
        if self.peek() != Some(b'"') {
            return Err(self.unexpected());
        }
        self.string(Strings::Skipped)?;
        self.ws();
        if !self.eat(b':') {
            return Err(self.unexpected());
        }
        self.ws();
        Ok(())
    }

    /// Steps over a value by its structure alone (strings and brackets), as a page is cut into
    /// contacts when some contact is damaged: `NaN`, raw control characters and the like pass.
    /// `None` when the text ends first or a closing bracket does not match its opening one.
    pub(crate) fn skip_structure(&mut self) -> Option<Range<usize>> {
        let start = self.i;
        match self.peek()? {
            b'"' => self.structural_string()?,
            b'{' | b'[' => {
                // The closers expected, innermost last: a `]` where a `}` is due (a quote lost
                // to damage turns strings inside out) is no structure, not the end of one.
                let mut open = Vec::new();
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.structural_string()?;
                            continue;
                        }
                        b'{' => open.push(b'}'),
                        b'[' => open.push(b']'),
                        closer @ (b'}' | b']') => {
                            if open.pop() != Some(closer) {
                                return None;
                            }
                            if open.is_empty() {
                                self.i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|c| !b",}]".contains(&c) && !c.is_ascii_whitespace())
                {
                    self.i += 1;
                }
                (self.i > start).then_some(())?;
            }
        }
        Some(start..self.i)
    }

    fn structural_string(&mut self) -> Option<()> {
        self.i += 1;
        loop {
            let at = memchr::memchr2(b'"', b'\\', self.b.get(self.i..)?)?;
            self.i += at + 1;
            if self.b[self.i - 1] == b'"' {
                return Some(());
            }
            self.i += 1;
        }
    }

    /// Whitespace as the structural scan knows it (any ASCII whitespace, form feed included).
    pub(crate) fn ascii_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
}

/// Byte equality for short keys (8 to 24 bytes) as three overlapping word compares, where
/// `==` on slices is a `memcmp` call; other lengths fall back to it.
#[inline]
fn eq_short(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if !(8..=24).contains(&n) {
        return a == b;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let mid = (n - 8).min(8);
    word(a, 0) == word(b, 0) && word(a, mid) == word(b, mid) && word(a, n - 8) == word(b, n - 8)
}

/// The offset of the first byte that ends or interrupts a string's plain text: `"`, `\\` or a
/// control character. Eight bytes at a time (the classic "has zero byte" / "has byte less
/// than" word tricks; the lowest flagged byte is exact), as most strings are short and a
/// vectorised search costs more to set up than it saves.
#[inline]
fn special(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(chunk) = b.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
        let hits = zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGHS);
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    b[at..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| at + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(text: &str) -> Result<Range<usize>, Fault> {
        Cursor::new(text.as_bytes(), 0).skip(&mut Vec::new())
    }

    #[test]
    fn skip_reads_whole_values_and_stops_at_faults() {
        for ok in [
            "1",
            "-0.5e+3",
            "\"a\\u00e9\\ud800\"",
            "[]",
            "{}",
            "[1,[2,{\"a\":[]}],{}]",
            "{ \"a\" : { \"b\" : [ true , false , null ] } }",
        ] {
            assert_eq!(skip(ok), Ok(0..ok.len()), "{ok}");
        }
        assert_eq!(skip("[1,]"), Err(Fault::Syntax(3)));
        assert_eq!(skip("[1 2]"), Err(Fault::Syntax(3)));
        assert_eq!(skip("NaN"), Err(Fault::Syntax(0)));
        assert_eq!(skip("01"), Err(Fault::Syntax(1)));
        assert_eq!(skip("[1"), Err(Fault::Eof));
        assert_eq!(skip("{\"a\" 1}"), Err(Fault::Syntax(5)));
        assert_eq!(skip("\"a\u{1}\""), Err(Fault::Syntax(1)));
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(skip(&deep), Ok(0..deep.len()));
    }

    #[test]
    fn short_keys_compare_whole() {
        for (a, b) in [
            ("\"active\"", "\"active\""),
            ("\"conversion_count\"", "\"conversion_count\""),
            ("\"conversion_count\"", "\"conversion_cXunt\""),
            ("\"phone_number\"", "\"phone_numbeX\""),
            ("abc", "abd"),
        ] {
            assert_eq!(eq_short(a.as_bytes(), b.as_bytes()), a == b, "{a} {b}");
        }
    }

    #[test]
    fn decoded_strings_refuse_lone_surrogates() {
        let mut c = Cursor::new(br#""\ud800x""#, 0);
        assert!(c.string(Strings::Decoded).is_err());
        let mut c = Cursor::new(br#""\ud83d\ude00""#, 0);
        assert!(c.string(Strings::Decoded).unwrap().escaped);
        let mut out = Vec::new();
        assert!(crate::json_text::unescape(br"\ud83d\ude00 \n", &mut out));
        assert_eq!(out, "😀 \n".as_bytes());
    }

    #[test]
    fn structure_alone_passes_damage() {
        let text = b"{\"a\":NaN,\"b\":\"\x01\"} ,";
        let mut c = Cursor::new(text, 0);
        assert_eq!(c.skip_structure(), Some(0..17));
    }

    #[test]
    fn structure_alone_needs_each_bracket_closed_by_its_own_kind() {
        // A lost opening quote turns the rest inside out: `{"a":x"},[1],{"b":2}]` must not be
        // read as one value ending at the `]`.
        let text = br#"{"a":x"},[1],{"b":2}],"#;
        assert_eq!(Cursor::new(text, 0).skip_structure(), None);
        let text = br#"{"a":[1,{"b":"]"}]} ,"#;
        assert_eq!(Cursor::new(text, 0).skip_structure(), Some(0..19));
        assert_eq!(Cursor::new(b"[1}", 0).skip_structure(), None);
    }
}
