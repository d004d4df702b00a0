//! Exact JSON number text → `DECIMAL(18, 4)` with integer arithmetic only.

use crate::schema::{REVENUE_PRECISION, REVENUE_SCALE};

/// Why a number does not fit `DECIMAL(18, 4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalError {
    /// Not JSON number syntax.
    Syntax,
    /// A non-zero digit beyond the 4th decimal place (would need rounding).
    TooManyDecimals,
    /// More than 14 digits before the decimal point.
    Overflow,
}

impl DecimalError {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            DecimalError::Syntax => "is not a JSON number",
            DecimalError::TooManyDecimals => {
                "has a non-zero digit beyond the 4th decimal place (DECIMAL(18,4) never rounds)"
            }
            DecimalError::Overflow => {
                "has more than 14 integer digits and does not fit DECIMAL(18,4)"
            }
        }
    }
}

const MAX_INTEGER_DIGITS: i64 = (REVENUE_PRECISION as i64) - (REVENUE_SCALE as i64);
const SCALE: i64 = REVENUE_SCALE as i64;

/// Parses the JSON number `text` (`-?int(.frac)?([eE][+-]?exp)?`) into the unscaled `i128` of a
/// `DECIMAL(18, 4)`: `47.5` → `475000`.
///
/// The value is computed digit by digit, so `0.1` is exactly `1000` and nothing is ever
/// rounded: a number that needs rounding or does not fit is an error.
pub(crate) fn parse_decimal_18_4(text: &str) -> Result<i128, DecimalError> {
    let bytes = text.as_bytes();
    let (negative, body) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    let (mantissa, exponent) = match body.iter().position(|&b| b == b'e' || b == b'E') {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, &mantissa[mantissa.len()..]),
    };
    if int_part.is_empty()
        || (mantissa.len() > int_part.len() && frac_part.is_empty())
        || !int_part.iter().all(u8::is_ascii_digit)
        || !frac_part.iter().all(u8::is_ascii_digit)
    {
        return Err(DecimalError::Syntax);
    }
    let exp = match exponent {
        Some(e) => parse_exponent(e)?,
        None => 0,
    };

    // Positions of the first and last non-zero digit in `int_part ++ frac_part`.
    let digit = |i: usize| {
        if i < int_part.len() {
            int_part[i]
        } else {
            frac_part[i - int_part.len()]
        }
    };
    let total = int_part.len() + frac_part.len();
    let Some(first) = (0..total).find(|&i| digit(i) != b'0') else {
        return Ok(0);
    };
    let last = (first..total)
        .rev()
        .find(|&i| digit(i) != b'0')
        .unwrap_or(first);

    // The power of ten of the digit at position i is `int_len - 1 - i + exp`.
    let int_len = int_part.len() as i64;
    let power = |i: usize| int_len - 1 - i as i64 + exp;
    if power(first) >= MAX_INTEGER_DIGITS {
        return Err(DecimalError::Overflow);
    }
    if power(last) < -SCALE {
        return Err(DecimalError::TooManyDecimals);
    }
    // Now every significant digit has a power in [-4, 13], so the unscaled value has at most
    // 18 digits and fits an i64 comfortably.
    let mut unscaled: i128 = 0;
    for i in first..=last {
        unscaled = unscaled * 10 + i128::from(digit(i) - b'0');
    }
    for _ in 0..(power(last) + SCALE) {
        unscaled *= 10;
    }
    Ok(if negative { -unscaled } else { unscaled })
}

/// Parses an exponent, saturating far beyond anything that could fit (the caller decides).
fn parse_exponent(e: &[u8]) -> Result<i64, DecimalError> {
    let (negative, digits) = match e.first() {
        Some(b'-') => (true, &e[1..]),
        Some(b'+') => (false, &e[1..]),
        _ => (false, e),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(DecimalError::Syntax);
    }
    let magnitude = digits.iter().fold(0i64, |acc, &d| {
        (acc * 10 + i64::from(d - b'0')).min(1_000_000_000)
    });
    Ok(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_values_are_exact() {
        for (text, unscaled) in [
            ("0", 0),
            ("-0", 0),
            ("0.0", 0),
            ("47.5", 475_000),
            ("47.50", 475_000),
            ("1234567.89", 12_345_678_900),
            ("0.0001", 1),
            ("-0.0001", -1),
            ("-3", -30_000),
            ("1e2", 1_000_000),
            ("1E+2", 1_000_000),
            ("12.5e-1", 12_500),
            ("1e-4", 1),
            ("0.1", 1000),
            ("47.123400000", 471_234),
            ("0.00000e999999999999", 0),
            ("99999999999999.9999", 999_999_999_999_999_999),
            ("-99999999999999.9999", -999_999_999_999_999_999),
            ("00012", 120_000),
        ] {
            assert_eq!(parse_decimal_18_4(text), Ok(unscaled), "{text}");
        }
    }

    #[test]
    fn decimal_refuses_rounding_and_overflow() {
        for (text, err) in [
            ("0.00001", DecimalError::TooManyDecimals),
            ("47.12345", DecimalError::TooManyDecimals),
            ("1e-5", DecimalError::TooManyDecimals),
            ("100000000000000", DecimalError::Overflow),
            ("100000000000000.0", DecimalError::Overflow),
            ("1e14", DecimalError::Overflow),
            ("1e999999999999999999", DecimalError::Overflow),
            ("1e-999999999999999999", DecimalError::TooManyDecimals),
            ("", DecimalError::Syntax),
            ("-", DecimalError::Syntax),
            ("1.", DecimalError::Syntax),
            (".5", DecimalError::Syntax),
            ("1e", DecimalError::Syntax),
            ("\"47.5\"", DecimalError::Syntax),
            ("true", DecimalError::Syntax),
        ] {
            assert_eq!(parse_decimal_18_4(text), Err(err), "{text}");
        }
    }
}
