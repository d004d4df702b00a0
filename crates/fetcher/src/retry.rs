//! Retry policy as data: which failures are retried, how long to wait, when to give up; and
//! what an operator is told about it.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

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
///
/// A page is given up on ([`GaveUp`]) after `max_attempts` attempts, when its time budget
/// `retry_timeout` is spent, or at once when the server asks (`Retry-After`) to wait longer
/// than what is left of that budget. A computed backoff longer than what is left is shortened
/// so the last attempt starts before the budget ends.
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

/// Which limit of the [`RetryConfig`] ended the retries of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GaveUp {
    /// [`RetryConfig::max_attempts`] attempts were made.
    Attempts {
        /// The limit.
        limit: u32,
    },
    /// [`RetryConfig::retry_timeout`] was spent: no time left for another attempt.
    TimeBudget {
        /// The budget.
        budget: Duration,
    },
    /// The server's `Retry-After` asked for a longer wait than what was left of
    /// [`RetryConfig::retry_timeout`], so waiting could only end in giving up.
    RetryAfterTooLong {
        /// The wait the server asked for.
        asked: Duration,
        /// What was left of the budget.
        left: Duration,
    },
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GaveUp::Attempts { limit } => {
                write!(f, "the attempt limit (max_attempts {limit}) was reached")
            }
            GaveUp::TimeBudget { budget } => write!(
                f,
                "the page's time budget (retry_timeout {}) was spent",
                Secs(*budget)
            ),
            GaveUp::RetryAfterTooLong { asked, left } => write!(
                f,
                "the server asked to wait {} (Retry-After) but the page's time budget (retry_timeout) allowed only {} more",
                Secs(*asked),
                Secs(*left)
            ),
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Wait this long, then try again.
    Wait(Duration),
    /// Stop: the page fails.
    GiveUp(GaveUp),
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

    /// The decision after `attempts` attempts (1-based) of one page failed, `elapsed` after
    /// the first one started, the last answer carrying `retry_after`.
    pub(crate) fn after_failure(
        &self,
        attempts: u32,
        elapsed: Duration,
        retry_after: Option<Duration>,
    ) -> Verdict {
        if attempts >= self.max_attempts {
            return Verdict::GiveUp(GaveUp::Attempts {
                limit: self.max_attempts,
            });
        }
        let left = self.retry_timeout.saturating_sub(elapsed);
        if let Some(asked) = retry_after
            && asked > left
        {
            return Verdict::GiveUp(GaveUp::RetryAfterTooLong { asked, left });
        }
        if left.is_zero() {
            return Verdict::GiveUp(GaveUp::TimeBudget {
                budget: self.retry_timeout,
            });
        }
        Verdict::Wait(self.backoff(attempts - 1, retry_after).min(left))
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

impl fmt::Display for RetryCause {
    /// The name of the cause's counter in [`Retries`](crate::Retries).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryCause::RateLimited => "rate_limited",
            RetryCause::ServerError => "server_error",
            RetryCause::Timeout => "timeout",
            RetryCause::Connection => "connection",
            RetryCause::InvalidBody => "invalid_body",
        })
    }
}

/// Parses a `Retry-After` header: delay-seconds or an HTTP-date. Not capped: the page's time
/// budget bounds any wait, and a give-up reports what the server really asked for.
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `1 attempt`, `2 attempts`.
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A duration for people: `40ms`, `0.4s`, `1.5s`, `3s`, `86400s` (whole seconds from 10 s).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Secs(pub(crate) Duration);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs_f64();
        if secs >= 10.0 || (secs >= 1.0 && self.0.subsec_millis() == 0) {
            write!(f, "{}s", secs.round() as u64)
        } else if secs < 0.1 {
            write!(f, "{}ms", self.0.as_millis())
        } else {
            write!(f, "{secs:.1}s")
        }
    }
}

/// At most one routine retry line per this long at the default log level.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// A wait at least this long is always reported, unless one already reported covers it.
const LONG_WAIT: Duration = Duration::from_secs(5);
/// How much later than the end of a reported wait a new wait may end and still count as
/// covered by it (concurrent pages told the same `Retry-After` end a few ms apart).
const COVERED_SLACK: Duration = Duration::from_secs(1);

/// Decides which retries are worth a line at the default log level, so an operator hears of
/// every wave of retries and of every long wait once, not of each of N concurrent requests.
///
/// A retry is reported when no retry was reported for [`REPORT_EVERY`] (the first of a wave,
/// then one line every few seconds while the wave lasts), or when its wait is
/// [`LONG_WAIT`] or more and ends later than every wait reported so far (one line explains
/// a silence, however many pages wait through it). The others are counted and summed up in
/// the next reported line.
#[derive(Debug, Default)]
pub(crate) struct RetryReport {
    last_report: Option<Instant>,
    /// When the longest wait reported so far ends.
    quiet_until: Option<Instant>,
    unreported: u64,
    unreported_pages: BTreeSet<u64>,
}

/// Retries that were not reported since the last reported one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreported {
    /// Retries.
    pub(crate) retries: u64,
    /// Distinct pages among them.
    pub(crate) pages: u64,
}

impl RetryReport {
    /// A retry of `page` waiting `wait` from `now`: `Some` (with what went unreported since the
    /// last report) when it deserves a line of its own.
    pub(crate) fn retry(&mut self, now: Instant, page: u64, wait: Duration) -> Option<Unreported> {
        // `None`: beyond what an `Instant` can hold (a huge budget honouring a huge Retry-After).
        let ends = now.checked_add(wait);
        let routine = self
            .last_report
            .is_none_or(|t| now.saturating_duration_since(t) >= REPORT_EVERY);
        let covered = match (self.quiet_until, ends) {
            (Some(q), Some(ends)) => q.checked_add(COVERED_SLACK).is_none_or(|q| ends <= q),
            (Some(_), None) | (None, _) => false,
        };
        let long = wait >= LONG_WAIT && !covered;
        if !(routine || long) {
            self.unreported += 1;
            self.unreported_pages.insert(page);
            return None;
        }
        self.last_report = Some(now);
        if let Some(ends) = ends {
            self.quiet_until = Some(self.quiet_until.map_or(ends, |q| q.max(ends)));
        }
        let unreported = Unreported {
            retries: self.unreported,
            pages: self.unreported_pages.len() as u64,
        };
        self.unreported = 0;
        self.unreported_pages.clear();
        Some(unreported)
    }
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
            parse_retry_after("86400", now),
            Some(Duration::from_secs(86400))
        );
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

    fn policy(max_attempts: u32, budget_secs: u64) -> RetryConfig {
        RetryConfig {
            max_attempts,
            retry_timeout: Duration::from_secs(budget_secs),
            ..RetryConfig::default()
        }
    }

    #[test]
    fn the_attempt_limit_is_named_when_it_ends_the_retries() {
        let verdict = policy(3, 300).after_failure(3, Duration::from_secs(1), None);
        assert_eq!(verdict, Verdict::GiveUp(GaveUp::Attempts { limit: 3 }));
    }

    #[test]
    fn a_spent_budget_is_named_and_a_long_backoff_is_cut_to_what_is_left() {
        let p = policy(100, 10);
        assert_eq!(
            p.after_failure(5, Duration::from_secs(10), None),
            Verdict::GiveUp(GaveUp::TimeBudget {
                budget: Duration::from_secs(10)
            })
        );
        let p = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_secs(60),
                max_backoff: Duration::from_secs(60),
                base: 1.0,
            },
            ..p
        };
        for _ in 0..20 {
            match p.after_failure(2, Duration::from_millis(9_500), None) {
                Verdict::Wait(w) => assert!(w <= Duration::from_millis(500), "{w:?}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_retry_after_beyond_the_budget_gives_up_at_once_saying_both() {
        let verdict = policy(10, 300).after_failure(
            1,
            Duration::from_secs(20),
            Some(Duration::from_secs(86400)),
        );
        let expected = GaveUp::RetryAfterTooLong {
            asked: Duration::from_secs(86400),
            left: Duration::from_secs(280),
        };
        assert_eq!(verdict, Verdict::GiveUp(expected));
        let text = expected.to_string();
        assert!(text.contains("asked to wait 86400s"), "{text}");
        assert!(text.contains("allowed only 280s more"), "{text}");
        // Within the budget it is honoured.
        match policy(10, 300).after_failure(1, Duration::ZERO, Some(Duration::from_secs(30))) {
            Verdict::Wait(w) => assert!(w >= Duration::from_secs(30), "{w:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn counts_read_in_the_singular_and_the_plural() {
        assert_eq!(count(1, "attempt", "attempts"), "1 attempt");
        assert_eq!(count(2, "attempt", "attempts"), "2 attempts");
        assert_eq!(
            GaveUp::Attempts { limit: 1 }.to_string(),
            "the attempt limit (max_attempts 1) was reached"
        );
        assert_eq!(Secs(Duration::from_millis(1500)).to_string(), "1.5s");
        assert_eq!(Secs(Duration::from_secs(3)).to_string(), "3s");
        assert_eq!(Secs(Duration::from_millis(299_990)).to_string(), "300s");
        assert_eq!(Secs(Duration::from_millis(40)).to_string(), "40ms");
    }

    #[test]
    fn one_wave_of_concurrent_retries_is_one_line_with_the_rest_summed_up_later() {
        let mut report = RetryReport::default();
        let t0 = Instant::now();
        let short = Duration::from_millis(200);
        assert_eq!(
            report.retry(t0, 1, short),
            Some(Unreported {
                retries: 0,
                pages: 0
            })
        );
        for page in 2..=8 {
            assert_eq!(
                report.retry(t0 + Duration::from_millis(3), page, short),
                None
            );
        }
        assert_eq!(report.retry(t0 + Duration::from_secs(1), 2, short), None);
        // The next wave, or the same one going on, is reported with what was left out.
        assert_eq!(
            report.retry(t0 + REPORT_EVERY, 9, short),
            Some(Unreported {
                retries: 8,
                pages: 7
            })
        );
    }

    #[test]
    fn a_long_wait_is_reported_once_however_many_pages_wait_through_it() {
        let mut report = RetryReport::default();
        let t0 = Instant::now();
        let thirty = Duration::from_secs(30);
        assert!(report.retry(t0, 1, Duration::from_millis(100)).is_some());
        // Soon after a routine line, a long wait still gets its own line...
        assert!(
            report
                .retry(t0 + Duration::from_millis(500), 2, thirty)
                .is_some()
        );
        // ...but the other pages told the same wait do not.
        for page in 3..10 {
            assert!(
                report
                    .retry(t0 + Duration::from_millis(510), page, thirty)
                    .is_none()
            );
        }
        // A wait ending well after the reported one is news.
        assert!(
            report
                .retry(t0 + Duration::from_secs(1), 11, Duration::from_secs(60))
                .is_some()
        );
    }
}
