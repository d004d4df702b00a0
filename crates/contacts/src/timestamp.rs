//! Timestamps as the API sends them (ISO-8601 text) → microseconds since the epoch, UTC.

use std::borrow::Cow;

use chrono::Utc;

/// ISO-8601 text → microseconds since the epoch, UTC when no offset is given.
pub(crate) fn parse_timestamp_micros(s: &str) -> Result<i64, Cow<'static, str>> {
    // The API's usual form, `YYYY-MM-DDTHH:MM:SS`, without the general parser.
    if let Some(micros) = naive_seconds_micros(s.as_bytes()) {
        return Ok(micros);
    }
    let parsed = arrow_cast::parse::string_to_datetime(&Utc, s)
        .map_err(|_| Cow::Borrowed("is not an ISO-8601 timestamp"))?;
    if parsed.timestamp_subsec_nanos() % 1_000 != 0 {
        return Err(Cow::Borrowed(
            "has sub-microsecond precision, which would be lost",
        ));
    }
    Ok(parsed.timestamp_micros())
}

/// ISO-8601 text → microseconds since the epoch: naive means UTC, `Z` and `±hh:mm` offsets are
/// applied. `None` for anything else.
pub fn signup_micros(text: &str) -> Option<i64> {
    if let Some(micros) = naive_seconds_micros(text.as_bytes()) {
        return Some(micros);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc().timestamp_micros())
}

/// Fast path for the API's usual form, `YYYY-MM-DDTHH:MM:SS` (naive, so UTC), fully validated:
/// microseconds since the epoch, or `None` for anything else (left to a general parser).
#[inline]
pub fn naive_seconds_micros(b: &[u8]) -> Option<i64> {
    // A fixed-size array: every index below is checked at compile time, not per digit.
    let b: &[u8; 19] = b.try_into().ok()?;
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let digit = |i: usize| {
        let d = b[i].wrapping_sub(b'0');
        (d < 10).then_some(i64::from(d))
    };
    let two = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
    let year = two(0)? * 100 + two(2)?;
    let (month, day) = (two(5)?, two(8)?);
    let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hour * 3_600 + minute * 60 + second) * 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signup_dates_in_every_documented_form_sort_as_instants() {
        let naive = signup_micros("2025-03-15T14:30:00").unwrap();
        assert_eq!(signup_micros("2025-03-15T14:30:00Z"), Some(naive));
        assert_eq!(signup_micros("2025-03-15T16:30:00+02:00"), Some(naive));
        assert_eq!(
            signup_micros("2025-03-15T14:30:00.5"),
            Some(naive + 500_000)
        );
        assert_eq!(signup_micros("2025-03-15 14:30:00.000001"), Some(naive + 1));
        assert_eq!(signup_micros("yesterday"), None);
        assert_eq!(naive_seconds_micros(b"2025-02-29T00:00:00"), None);
    }
}
