//! Progress on stderr: an indicatif bar on a terminal, a plain log line every few seconds
//! otherwise, nothing with `--quiet`.
//!
//! Both keep coming while no page arrives (a stalled or rate-limiting API): a ticker task
//! redraws them on its own clock, so a wait shows as a growing `idle_s` instead of silence.
//! The export reports progress per Arrow batch (many pages); given the fetcher's live
//! statistics ([`Progress::watch`]) the ticker shows pages, requests and retries as they
//! happen, and says when it is waiting for the API. The retries themselves are told by the
//! fetcher's own log lines.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trackly_export::ExportProgress;
use trackly_export::fetcher::{FetchStats, StatsHandle};

/// How often a non-terminal progress line is written, pages or not.
const LINE_EVERY: Duration = Duration::from_secs(5);
/// How often the ticker looks at the clock.
const TICK: Duration = Duration::from_secs(1);
/// Without a page for this long, the bar says how long it has been waiting.
const WAITING_AFTER: Duration = Duration::from_secs(3);

pub struct Progress {
    shared: Arc<Shared>,
    ticker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

enum Display {
    Off,
    Bar(ProgressBar),
    Lines,
}

/// What the display and its ticker share.
struct Shared {
    display: Display,
    started: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last: Option<ExportProgress>,
    /// The fetcher's statistics as they change, when the export shares them.
    live: Option<StatsHandle>,
    /// Pages seen last, and when that number last changed.
    pages: u64,
    last_page_at: Option<Instant>,
    last_line: Option<Instant>,
}

impl Progress {
    /// A display for this terminal (or none with `quiet`), ticking when called inside a Tokio
    /// runtime.
    pub fn new(quiet: bool) -> Progress {
        let display = if quiet {
            Display::Off
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} pages  {msg}  ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Display::Bar(bar)
        } else {
            Display::Lines
        };
        let shared = Arc::new(Shared {
            display,
            started: Instant::now(),
            state: Mutex::default(),
        });
        let ticker = match (&shared.display, tokio::runtime::Handle::try_current()) {
            (Display::Off, _) | (_, Err(_)) => None,
            (_, Ok(runtime)) => {
                let shared = Arc::clone(&shared);
                Some(runtime.spawn(async move {
                    let mut tick = tokio::time::interval(TICK);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tick.tick().await;
                        shared.draw(false);
                    }
                }))
            }
        };
        Progress {
            shared,
            ticker: Mutex::new(ticker),
        }
    }

    /// Progress reported by the export (after a batch of pages was decoded).
    pub fn update(&self, p: &ExportProgress) {
        self.shared.lock().last = Some(p.clone());
        self.shared.draw(true);
    }

    /// Reads the fetcher's statistics live from now on, so the ticker shows pages, requests
    /// and retries between the export's reports.
    pub fn watch(&self, live: StatsHandle) {
        self.shared.lock().live = Some(live);
    }

    /// Stops the ticker and clears the bar.
    pub fn finish(&self) {
        if let Some(ticker) = self
            .ticker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            ticker.abort();
        }
        if let Display::Bar(bar) = &self.shared.display {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// One reading of the progress, for either display.
struct Reading {
    pages: u64,
    expected_pages: u64,
    contacts: u64,
    requests: u64,
    retries: u64,
    elapsed: Duration,
    /// Since the number of pages last changed (or the start, before the first).
    idle: Duration,
    /// The pages are counted live, so `idle` means the API has sent nothing.
    live: bool,
}

impl Reading {
    fn contacts_per_sec(&self) -> f64 {
        self.contacts as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Draws the bar, or writes a line when one is due. `page` says a page just arrived.
    fn draw(&self, page: bool) {
        let (reading, line_due) = {
            let mut state = self.lock();
            let now = Instant::now();
            let reading = self.reading(&mut state, now);
            // The first line comes with the first page, or after one interval without any.
            let line_due = now.duration_since(state.last_line.unwrap_or(self.started))
                >= LINE_EVERY
                || (page && state.last_line.is_none());
            if matches!(self.display, Display::Lines) && line_due {
                state.last_line = Some(now);
            }
            (reading, line_due)
        };
        match &self.display {
            Display::Off => {}
            Display::Bar(bar) => {
                if page || reading.live {
                    bar.set_length(reading.expected_pages.max(reading.pages));
                    bar.set_position(reading.pages);
                }
                let mut msg = format!(
                    "{} contacts  {:.0}/s  {} retries",
                    reading.contacts,
                    reading.contacts_per_sec(),
                    reading.retries
                );
                if reading.live && reading.idle >= WAITING_AFTER {
                    msg.push_str(&format!(
                        "  waiting {}s for the API",
                        reading.idle.as_secs()
                    ));
                }
                bar.set_message(msg);
            }
            Display::Lines if line_due => {
                let waiting = reading.live && reading.idle >= LINE_EVERY;
                tracing::info!(
                    pages = reading.pages,
                    expected_pages = reading.expected_pages,
                    contacts = reading.contacts,
                    contacts_per_sec = reading.contacts_per_sec() as u64,
                    requests = reading.requests,
                    retries = reading.retries,
                    elapsed_s = reading.elapsed.as_secs(),
                    idle_s = reading.idle.as_secs(),
                    "{}",
                    if waiting {
                        "progress: waiting for the API"
                    } else {
                        "progress"
                    }
                );
            }
            Display::Lines => {}
        }
    }

    /// The freshest numbers: the live statistics when there are some, else the export's last
    /// report. Notes when the page count changed.
    fn reading(&self, state: &mut State, now: Instant) -> Reading {
        let written = state.last.as_ref().map_or(0, |p| p.rows_written);
        let (fetch, contacts) = match (&state.live, &state.last) {
            // Contacts fetched so far, ahead of those decoded into a finished batch.
            (Some(live), _) => {
                let fetch = live.snapshot();
                let contacts = fetch.contacts.max(written);
                (fetch, contacts)
            }
            (None, Some(p)) => (p.fetch.clone(), written),
            (None, None) => (FetchStats::default(), 0),
        };
        if fetch.pages != state.pages {
            state.pages = fetch.pages;
            state.last_page_at = Some(now);
        }
        let since = |t: Option<Instant>| now.duration_since(t.unwrap_or(self.started));
        Reading {
            pages: fetch.pages,
            expected_pages: fetch.expected_pages,
            contacts,
            requests: fetch.requests,
            retries: fetch.retries.total(),
            elapsed: since(None),
            idle: since(state.last_page_at),
            live: state.live.is_some(),
        }
    }
}
