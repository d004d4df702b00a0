//! Exact JSON number text → `DECIMAL(18, 4)` with integer arithmetic only, rounding half to even
//! where the text carries more than 4 decimals.

use crate::fields::{REVENUE_PRECISION, REVENUE_SCALE};

/// Why a number cannot be stored in `DECIMAL(18, 4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecimalError {
    /// Not JSON number syntax.
    Syntax,
    /// More than 14 digits before the decimal point once rounded to 4 decimals.
    Overflow,
}

impl DecimalError {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            DecimalError::Syntax => "is not a JSON number",
            DecimalError::Overflow => {
                "has more than 14 integer digits (after rounding to 4 decimals) and does not fit \
                 DECIMAL(18,4)"
            }
        }
    }
}

/// A number as stored in `DECIMAL(18, 4)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decimal18_4 {
    /// The unscaled value: `47.5` → `475000`.
    pub(crate) unscaled: i128,
    /// Whether a non-zero digit beyond the 4th decimal place was rounded away.
    pub(crate) rounded: bool,
}

const MAX_INTEGER_DIGITS: i64 = (REVENUE_PRECISION as i64) - (REVENUE_SCALE as i64);
const SCALE: i64 = REVENUE_SCALE as i64;
/// The largest unscaled value with `REVENUE_PRECISION` digits.
const MAX_UNSCALED: i128 = 10_i128.pow(REVENUE_PRECISION as u32) - 1;

/// Parses the JSON number `text` (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`, RFC 8259)
/// into a `DECIMAL(18, 4)`.
///
/// The value is computed digit by digit, so `0.1` is exactly `1000`. Digits beyond the 4th
/// decimal place are rounded half to even (`0.00005` → `0.0000`, `0.00015` → `0.0002`,
/// `-0.00015` → `-0.0002`): Python's `decimal` default and IEEE 754's, unbiased when rounded
/// values are summed (a SQL `CAST` to `DECIMAL` in DuckDB, Spark or PostgreSQL rounds ties away
/// from zero instead). [`Decimal18_4::rounded`] says when digits were dropped.
/// A value with more than 14 integer digits after rounding (`99999999999999.99995` carries into
/// a 15th) is [`DecimalError::Overflow`]. Negative zero, `-0.00001` included, is stored as 0.
pub(crate) fn parse_decimal_18_4(text: &str) -> Result<Decimal18_4, DecimalError> {
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
        || (int_part.len() > 1 && int_part[0] == b'0')
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
    if exponent.is_none()
        && let Some(unscaled) = plain_unscaled(int_part, frac_part)
    {
        return Ok(Decimal18_4 {
            unscaled: if negative { -unscaled } else { unscaled },
            rounded: false,
        });
    }
    scale_digits(negative, int_part, frac_part, exp)
}

/// The general case of [`parse_decimal_18_4`]: the digits of `int_part.frac_part` times
/// `10^exp`, rounded half to even to 4 decimals.
fn scale_digits(
    negative: bool,
    int_part: &[u8],
    frac_part: &[u8],
    exp: i64,
) -> Result<Decimal18_4, DecimalError> {
    // Digits are indexed over `int_part ++ frac_part`; the digit at index i is worth
    // `10^(int_len - 1 - i + exp)`. Indexes outside the text are implicit zeros.
    let int_len = int_part.len() as i64;
    let total = int_len + frac_part.len() as i64;
    let digit = |i: i64| -> u8 {
        if i < 0 || i >= total {
            0
        } else if i < int_len {
            int_part[i as usize] - b'0'
        } else {
            frac_part[(i - int_len) as usize] - b'0'
        }
    };
    let power = |i: i64| int_len - 1 - i + exp;
    let Some(first) = (0..total).find(|&i| digit(i) != 0) else {
        return Ok(Decimal18_4 {
            unscaled: 0,
            rounded: false,
        });
    };
    let last = (first..total)
        .rev()
        .find(|&i| digit(i) != 0)
        .unwrap_or(first);
    if power(first) >= MAX_INTEGER_DIGITS {
        return Err(DecimalError::Overflow);
    }

    // The last digit kept is the one worth 10^-4. Every kept significant digit has a power in
    // [-4, 13], so at most 18 of them: the loops below are short whatever the exponent.
    let last_kept = int_len - 1 + exp + SCALE;
    let mut unscaled: i128 = 0;
    let kept_end = last.min(last_kept);
    for i in first..=kept_end {
        unscaled = unscaled * 10 + i128::from(digit(i));
    }
    if kept_end >= first {
        for _ in 0..(power(kept_end) + SCALE) {
            unscaled *= 10;
        }
    }
    let rounded = last > last_kept;
    if rounded {
        // The first dropped digit decides, the ones after it only break a tie.
        let half = digit(last_kept + 1);
        let beyond_half = last > last_kept + 1;
        if half > 5 || (half == 5 && (beyond_half || unscaled % 2 == 1)) {
            unscaled += 1;
        }
    }
    if unscaled > MAX_UNSCALED {
        return Err(DecimalError::Overflow);
    }
    Ok(Decimal18_4 {
        unscaled: if negative { -unscaled } else { unscaled },
        rounded,
    })
}

/// The fast path for how money usually arrives (`47.50`): no exponent, at most 4 decimals and
/// 14 integer digits (a leading zero is only ever `0` itself), so nothing to round or check.
#[inline]
fn plain_unscaled(int_part: &[u8], frac_part: &[u8]) -> Option<i128> {
    if frac_part.len() > SCALE as usize || int_part.len() > MAX_INTEGER_DIGITS as usize {
        return None;
    }
    let mut unscaled: i64 = 0;
    for &d in int_part.iter().chain(frac_part) {
        unscaled = unscaled * 10 + i64::from(d - b'0');
    }
    for _ in frac_part.len()..SCALE as usize {
        unscaled *= 10;
    }
    Some(i128::from(unscaled))
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

    /// Each text parses to its unscaled value, `rounded` or not.
    fn parses_to(rounded: bool, cases: &[(&str, i128)]) {
        for &(text, unscaled) in cases {
            let expected = Decimal18_4 { unscaled, rounded };
            assert_eq!(parse_decimal_18_4(text), Ok(expected), "{text}");
        }
    }

    /// Each text is refused with `error`.
    fn refused(error: DecimalError, texts: &[&str]) {
        for text in texts {
            assert_eq!(parse_decimal_18_4(text), Err(error), "{text}");
        }
    }

    #[test]
    fn decimal_values_that_fit_are_exact() {
        parses_to(
            false,
            &[
                ("0", 0),
                ("-0", 0),
                ("0.0", 0),
                ("-0.0000000", 0),
                ("47.5", 475_000),
                ("47.50", 475_000),
                ("1234567.89", 12_345_678_900),
                ("0.0001", 1),
                ("-0.0001", -1),
                ("-3", -30_000),
                ("1e2", 1_000_000),
                ("1E+2", 1_000_000),
                ("12.5e-1", 12_500),
                ("4.75e1", 475_000),
                ("4750E-2", 475_000),
                ("1e-4", 1),
                ("0.1", 1000),
                ("47.123400000", 471_234),
                ("0.00000e999999999999", 0),
                ("99999999999999.9999", 999_999_999_999_999_999),
                ("-99999999999999.9999", -999_999_999_999_999_999),
            ],
        );
    }

    #[test]
    fn decimal_ties_round_half_to_even() {
        parses_to(
            true,
            &[
                ("0.00005", 0),
                ("0.00015", 2),
                ("-0.00015", -2),
                ("0.00025", 2),
                ("0.00035", 4),
                ("-0.00025", -2),
                ("2.50005", 25_000),
                ("2.50015", 25_002),
                ("0.5e-4", 0),
                ("15e-5", 2),
                ("99999999999999.99985", 999_999_999_999_999_998),
            ],
        );
    }

    #[test]
    fn decimal_digits_past_the_half_break_the_tie() {
        parses_to(
            true,
            &[
                ("0.000050000001", 1),
                ("0.00004999999", 0),
                ("0.00014", 1),
                ("0.00016", 2),
                ("-0.000051", -1),
                ("0.00001", 0),
                ("1e-5", 0),
                ("-1e-5", 0),
                ("1e-999999999999999999", 0),
                ("47.12345", 471_234),
                ("47.12346", 471_235),
            ],
        );
    }

    #[test]
    fn decimal_float_artifacts_round_to_the_intended_value() {
        parses_to(
            true,
            &[
                ("47.5000000000001", 475_000),
                ("0.30000000000000004", 3_000),
                ("0.7999999999999999", 8_000),
                ("1234567.8899999999", 12_345_678_900),
                ("-12.339999999999998", -123_400),
                ("4.7500000000000001e1", 475_000),
            ],
        );
    }

    #[test]
    fn decimal_overflow_counts_the_carry_of_rounding() {
        refused(
            DecimalError::Overflow,
            &[
                "99999999999999.99995",
                "-99999999999999.99995",
                "99999999999999.9999500001",
                "100000000000000",
                "100000000000000.0",
                "1e14",
                "1e999999999999999999",
            ],
        );
        assert_eq!(
            parse_decimal_18_4("99999999999999.99994999"),
            Ok(Decimal18_4 {
                unscaled: 999_999_999_999_999_999,
                rounded: true
            })
        );
    }

    #[test]
    fn decimal_refuses_what_is_not_a_json_number() {
        refused(
            DecimalError::Syntax,
            &[
                "", "-", "1.", ".5", "00012", "-01", "1e", "1e+", "+1", "--1", "1.2.3", "0x10",
                "1_000", " 1", "1 ", "\"47.5\"", "true", "NaN", "Infinity", "1,5",
            ],
        );
    }

    /// An independent reference: the value as `n * 10^e` in one `u128`, rounded by division.
    fn by_division(negative: bool, n: u128, e: i32) -> Result<Decimal18_4, DecimalError> {
        let (mut unscaled, rounded) = if e >= -4 {
            let scaled = 10_u128
                .checked_pow((e + 4) as u32)
                .and_then(|p| n.checked_mul(p));
            match scaled {
                Some(v) => (v, false),
                None => return Err(DecimalError::Overflow),
            }
        } else {
            let d = 10_u128.pow((-4 - e) as u32);
            let (q, r) = (n / d, n % d);
            let up = match (2 * r).cmp(&d) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => q % 2 == 1,
                std::cmp::Ordering::Less => false,
            };
            (q + u128::from(up), r != 0)
        };
        if unscaled > MAX_UNSCALED as u128 {
            return Err(DecimalError::Overflow);
        }
        if negative {
            unscaled = unscaled.wrapping_neg();
        }
        Ok(Decimal18_4 {
            unscaled: unscaled as i128,
            rounded,
        })
    }

    #[test]
    fn decimal_agrees_with_rounding_by_division() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200_000 {
            // Up to 30 digits (so n < 10^30 fits a u128), a decimal point anywhere, an exponent.
            let len = 1 + next(30) as usize;
            let mut digits: Vec<u8> = (0..len).map(|_| b'0' + next(10) as u8).collect();
            // Favour ties and carries: runs of 9s, a 5 followed by zeros.
            match next(4) {
                0 => digits.iter_mut().take(len / 2).for_each(|d| *d = b'9'),
                1 if len > 2 => {
                    let at = next(len as u64) as usize;
                    digits[at] = b'5';
                    digits[at + 1..].iter_mut().for_each(|d| *d = b'0');
                }
                _ => {}
            }
            let point = next(len as u64 + 1) as usize;
            let int_part = &digits[..point.max(1)];
            let int_text = std::str::from_utf8(int_part)
                .unwrap()
                .trim_start_matches('0');
            let int_text = if int_text.is_empty() { "0" } else { int_text };
            let frac = std::str::from_utf8(&digits[point.max(1)..]).unwrap();
            let negative = next(2) == 0;
            let exp = next(13) as i32 - 6;
            let mut text = String::new();
            if negative {
                text.push('-');
            }
            text.push_str(int_text);
            if !frac.is_empty() {
                text.push('.');
                text.push_str(frac);
            }
            if exp != 0 {
                text.push_str(&format!("e{exp}"));
            }
            let n: u128 = format!("{int_text}{frac}").parse().unwrap();
            let e = exp - frac.len() as i32;
            // e lies in [-35, 6], so the reference's powers of ten fit a u128.
            assert_eq!(
                parse_decimal_18_4(&text),
                by_division(negative, n, e),
                "{text}"
            );
        }
    }
}
