//! Retries against the real mock server: which limit ends them (and that the error says so),
//! what an operator is told while they happen, and that a burst of 429s leaves no slow pace
//! behind. Nothing here asserts a wall-clock time: counts, messages and the admission state
//! the log lines report.
#![allow(clippy::unwrap_used)]

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use futures::StreamExt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};
use trackly_fetcher::{ApiKey, BackoffConfig, Client, FetchError, FetchStats, Query, RetryConfig};
use trackly_mock::{DatasetConfig, Faults, MockConfig, MockServer};

const KEY: &str = "trk_live_do_not_print_me_4242";

async fn server(contacts: usize, faults: Faults) -> MockServer {
    MockServer::start(MockConfig {
        dataset: DatasetConfig {
            seed: 3,
            contacts,
            lists: 2,
            ..DatasetConfig::default()
        },
        api_key: KEY.to_owned(),
        faults,
        ..MockConfig::default()
    })
    .await
    .expect("mock server starts")
}

fn client(mock: &MockServer, retry: RetryConfig) -> Client {
    Client::builder()
        .with_base_url(mock.url())
        .with_api_key(ApiKey::new(mock.api_key()))
        .with_per_page(100)
        .with_concurrency(8)
        .with_retry(retry)
        .with_request_timeout(Duration::from_secs(5))
        .build()
        .expect("valid client")
}

fn fast(max_attempts: u32, budget: Duration) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(20),
            base: 2.0,
        },
        max_attempts,
        retry_timeout: budget,
    }
}

/// Reads every page; the contacts delivered, the statistics, and the error that ended the run.
async fn run(client: &Client) -> (u64, FetchStats, Option<FetchError>) {
    let mut pages = client.contacts(Query::all());
    let mut contacts = 0;
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => contacts += page.len() as u64,
            Err(e) => return (contacts, pages.snapshot(), Some(e)),
        }
    }
    (contacts, pages.snapshot(), None)
}

/// The run's error, which must be a give-up: its message, attempts and `Debug` of `gave_up`.
fn gave_up(error: Option<FetchError>) -> (String, u32, String) {
    match error {
        Some(e @ FetchError::RetriesExhausted { .. }) => {
            let text = e.to_string();
            let FetchError::RetriesExhausted {
                attempts, gave_up, ..
            } = e
            else {
                unreachable!()
            };
            (text, attempts, format!("{gave_up:?}"))
        }
        other => panic!("expected a give-up, got {other:?}"),
    }
}

#[tokio::test]
async fn the_attempt_limit_is_named_and_one_attempt_reads_in_the_singular() {
    let mock = server(
        1_000,
        Faults {
            p_500: 1.0,
            ..Faults::default()
        },
    )
    .await;
    let (_, stats, error) = run(&client(&mock, fast(3, Duration::from_secs(60)))).await;
    let (text, attempts, reason) = gave_up(error);
    assert_eq!(attempts, 3);
    assert_eq!(stats.requests, 3);
    assert!(reason.starts_with("Attempts"), "{reason}");
    assert!(
        text.contains("page 1: gave up after 3 attempts in"),
        "{text}"
    );
    assert!(text.contains("attempt limit (max_attempts 3)"), "{text}");

    let (_, _, error) = run(&client(&mock, fast(1, Duration::from_secs(60)))).await;
    let (text, attempts, _) = gave_up(error);
    assert_eq!(attempts, 1);
    assert!(text.contains("gave up after 1 attempt in"), "{text}");
    assert!(text.contains("(max_attempts 1)"), "{text}");
}

#[tokio::test]
async fn a_spent_time_budget_is_named_not_mistaken_for_the_attempt_limit() {
    let mock = server(
        1_000,
        Faults {
            p_503: 1.0,
            ..Faults::default()
        },
    )
    .await;
    // 503 carries `Retry-After: 1`; a budget under a second cannot honour it...
    let (_, _, error) = run(&client(&mock, fast(1000, Duration::from_millis(400)))).await;
    let (text, attempts, reason) = gave_up(error);
    assert_eq!(attempts, 1, "{text}");
    assert!(reason.starts_with("RetryAfterTooLong"), "{reason}");
    assert!(
        text.contains("the server asked to wait 1s (Retry-After)"),
        "{text}"
    );
    assert!(
        text.contains("time budget (retry_timeout) allowed only"),
        "{text}"
    );

    // ...while 500s without one are retried until the budget is spent, far below 1000 attempts.
    mock.set_faults(Faults {
        p_500: 1.0,
        ..Faults::default()
    });
    let (_, stats, error) = run(&client(&mock, fast(1000, Duration::from_millis(300)))).await;
    let (text, attempts, reason) = gave_up(error);
    assert!(reason.starts_with("TimeBudget"), "{reason}");
    assert!((2..1000).contains(&attempts), "{text}");
    assert_eq!(stats.requests, u64::from(attempts));
    assert!(
        text.contains("the page's time budget (retry_timeout 0.3s) was spent"),
        "{text}"
    );
    assert!(!text.contains("max_attempts"), "{text}");
}

/// Every `trackly_fetcher` event at DEBUG or above, as `message field=value ...`, with the
/// thread it was emitted on. Installed once as the global subscriber (a scoped one can miss
/// events while other tests register the same callsites); a `#[tokio::test]` runs every task
/// on its own thread, so a test reads its own lines by thread.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(ThreadId, Level, String)>>>);

fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        tracing::subscriber::set_global_default(capture.clone()).expect("first subscriber");
        capture
    })
}

impl Capture {
    /// This thread's lines at `level`.
    fn lines(&self, level: Level) -> Vec<String> {
        self.mine()
            .into_iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, text)| text)
            .collect()
    }

    fn mine(&self) -> Vec<(Level, String)> {
        let me = std::thread::current().id();
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter(|(thread, _, _)| *thread == me)
            .map(|(_, level, text)| (*level, text.clone()))
            .collect()
    }

    /// Everything captured, from every test.
    fn all(&self) -> String {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .map(|(_, _, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        meta.target().starts_with("trackly_fetcher") && *meta.level() <= Level::DEBUG
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        let entry = (
            std::thread::current().id(),
            *event.metadata().level(),
            line.0,
        );
        self.0.lock().unwrap().push(entry);
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// A 429 burst at the start of a run: the API refuses everything (`Retry-After: 1`) until it
/// has refused three requests, then serves everything. Before, the first refusal set a pace of
/// 0.8 requests/s (from a second in which nothing was accepted) that then grew by one request/s
/// per second: 50 pages took 19 s instead of 0.3 s after a 3 s burst.
#[tokio::test]
async fn a_429_burst_at_the_start_is_one_info_line_and_leaves_no_pace_behind() {
    let capture = capture();
    let mock = Arc::new(
        server(
            5_000,
            Faults {
                rate_limit_rps: Some(0),
                ..Faults::default()
            },
        )
        .await,
    );
    let lift = tokio::spawn({
        let mock = Arc::clone(&mock);
        async move {
            while mock.stats().rate_limited < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            mock.set_faults(Faults::default());
        }
    });
    let (contacts, stats, error) = run(&client(&mock, RetryConfig::default())).await;
    lift.await.unwrap();
    assert!(error.is_none(), "{error:?}");
    assert_eq!(contacts, 5_000);
    let refused = mock.stats().rate_limited;
    assert_eq!(stats.retries.rate_limited, refused);
    assert_eq!(stats.retries.total(), refused);

    // One info line for the wave, naming page, cause and wait; the other retries at debug.
    let info = capture.lines(Level::INFO);
    assert_eq!(info.len(), 1, "{info:#?}");
    let line = &info[0];
    assert!(
        line.starts_with("page 1: HTTP 429 rate_limited: Rate limit exceeded; retry 2 of 10 in 1"),
        "{line}"
    );
    assert!(line.contains("(Retry-After: 1s)"), "{line}");
    assert!(line.contains("cause=rate_limited"), "{line}");
    // The admission state it reports: the concurrency halved, and no pace learnt from a
    // second in which the API accepted nothing.
    assert!(
        line.contains("now at most 4 of 8 requests in flight"),
        "{line}"
    );
    assert!(!line.contains("requests/s"), "{line}");
    let debug = retries_at_debug(capture);
    assert_eq!(debug.len() as u64, refused - 1, "{debug:#?}");
    for line in &debug {
        assert!(line.contains("pace=unpaced"), "{line}");
    }
    assert!(!capture.all().contains(KEY));
}

/// A steady rate limit: every retry wave gets a line at info, at most one every few seconds,
/// the rest counted in the next one; the pace learnt is what the API accepted.
#[tokio::test]
async fn under_a_steady_limit_concurrent_429s_are_summed_up_not_repeated() {
    let capture = capture();
    let mock = server(
        6_000,
        Faults {
            rate_limit_rps: Some(25),
            ..Faults::default()
        },
    )
    .await;
    let (contacts, stats, error) = run(&client(&mock, fast(50, Duration::from_secs(60)))).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(contacts, 6_000);
    let refused = mock.stats().rate_limited;
    assert!(refused > 0);
    assert_eq!(stats.retries.rate_limited, refused);
    let info = capture.lines(Level::INFO);
    let debug = retries_at_debug(capture);
    assert_eq!(info.len() + debug.len(), refused as usize);
    assert!(!info.is_empty());
    assert!(
        info.len() < refused as usize,
        "some 429s came together: {info:#?}"
    );
    // Every retry is a line of its own, or counted in the next info line, or after the last.
    let summed: u64 = info
        .iter()
        .filter_map(|l| {
            l.split("; ")
                .find(|p| p.contains("since the last such line"))
        })
        .map(|p| p.split(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(summed + info.len() as u64, refused - trailing(capture));
    // The first push-back came after the bucket's first 25 requests were accepted: paced.
    assert!(info[0].contains(" requests/s"), "{}", info[0]);
    assert!(!capture.all().contains(KEY));
}

/// This thread's retries logged at debug.
fn retries_at_debug(capture: &Capture) -> Vec<String> {
    capture
        .lines(Level::DEBUG)
        .into_iter()
        .filter(|line| line.starts_with("retrying page"))
        .collect()
}

/// Retries logged at debug after the last info line: no line has summed them up yet.
fn trailing(capture: &Capture) -> u64 {
    capture
        .mine()
        .iter()
        .rev()
        .take_while(|(level, _)| *level != Level::INFO)
        .filter(|(level, text)| *level == Level::DEBUG && text.starts_with("retrying page"))
        .count() as u64
}
