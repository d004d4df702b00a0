//! Retry policy as data: which failures are retried, how long to wait, when to give up.

use std::time::Duration;

use rand::RngExt;

/// Exponential backoff with full jitter: the n-th wait is uniform in
/// `[0, min(max_backoff, init_backoff * base^n)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// Upper bound of the first wait.
    pub init_backoff: Duration,
    /// Upper bound of any wait.
    pub max_backoff: Duration,
    /// Growth factor per attempt.
    pub base: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        }
    }
}

/// When and how a failed page request is retried.
///
/// Retried: HTTP 429, 500, 502, 503, 504, connection errors, timeouts, truncated bodies and
/// bodies that are not the documented JSON. Never retried: 400, 401, 403, 404 and other 4xx.
/// A `Retry-After` header (seconds or HTTP-date) replaces the computed backoff when longer.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Backoff between attempts.
    pub backoff: BackoffConfig,
    /// Attempts per page, the first included.
    pub max_attempts: u32,
    /// Time budget per page, waits included; no attempt starts after it.
    pub retry_timeout: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            backoff: BackoffConfig::default(),
            max_attempts: 10,
            retry_timeout: Duration::from_secs(300),
        }
    }
}

impl RetryConfig {
    /// The wait before attempt `attempt + 1` (0-based `attempt` is the one that failed).
    pub(crate) fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let b = &self.backoff;
        let ceiling = b.init_backoff.as_secs_f64() * b.base.powi(attempt.min(63) as i32);
        let ceiling = ceiling.min(b.max_backoff.as_secs_f64());
        let jittered = Duration::from_secs_f64(rand::rng().random_range(0.0..=ceiling.max(0.0)));
        match retry_after {
            // A small jitter on top of Retry-After keeps waiting clients from stampeding back.
            Some(after) => {
                after.max(jittered) + Duration::from_millis(rand::rng().random_range(0..50))
            }
            None => jittered,
        }
    }
}

/// Why an attempt failed, for statistics and for the final error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum RetryCause {
    RateLimited,
    ServerError,
    Timeout,
    Connection,
    InvalidBody,
}

/// Parses a `Retry-After` header: delay-seconds or an HTTP-date.
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(3600)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(3600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
    }

    #[test]
    fn backoff_grows_stays_capped_and_honours_retry_after() {
        let policy = RetryConfig::default();
        for attempt in 0..40 {
            assert!(policy.backoff(attempt, None) <= policy.backoff.max_backoff);
        }
        assert!(policy.backoff(0, None) <= Duration::from_millis(100));
        assert!(policy.backoff(0, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
    }
}
