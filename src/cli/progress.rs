//! Progress on stderr: an indicatif bar on a terminal, a plain log line every few seconds
//! otherwise, nothing with `--quiet`.
//!
//! Both keep coming while no page arrives (a stalled or rate-limiting API): a ticker task
//! redraws them on its own clock, so a wait shows as a growing `idle_s` instead of silence.
//! The export reports progress per Arrow batch (many pages); given the fetcher's live
//! statistics ([`Progress::watch`]) the ticker shows pages, requests and retries as they
//! happen, and says when it is waiting for the API. The retries themselves are told by the
//! fetcher's own log lines.
//!
//! The bar counts contacts against the total the first page reported (windows overlap and
//! repair reads are requests too, so pages would not add up). It appears only once the first
//! page has arrived (a run that ends before, or exports the lists alone, never draws one), and
//! log lines are written
//! around it ([`log_writer`]) rather than over it, so nothing stale is left on screen.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trackly_export::ExportProgress;
use trackly_export::fetcher::{FetchStats, StatsHandle};

use super::count;

/// How often a non-terminal progress line is written, pages or not.
const LINE_EVERY: Duration = Duration::from_secs(5);
/// How often the ticker looks at the clock.
const TICK: Duration = Duration::from_secs(1);
/// Without a page for this long, the bar says how long it has been waiting.
const WAITING_AFTER: Duration = Duration::from_secs(3);

/// How often the bar's spinner and clock move.
const SPIN: Duration = Duration::from_millis(200);

pub struct Progress {
    shared: Arc<Shared>,
    ticker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

enum Display {
    Off,
    Bar(Bar),
    Lines,
}

/// The bar on screen, if any: [`log_writer`] lifts it off for every log line.
static ON_SCREEN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// `mutex`, locked even when a thread panicked holding it: what the CLI locks is never left
/// half-changed.
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the log writes to: stderr, around the progress bar when one is on screen (see
/// [`LogLine`]).
pub fn log_writer() -> LogLine {
    LogLine
}

/// One log line on its way to stderr. While a bar is on screen, the bar is cleared, the line
/// written, and the bar drawn again below it: a line written over the bar would leave the
/// bar's text stranded above it.
///
/// A log nobody reads any more (stderr a pipe whose reader has exited, a full disk) does not
/// stop the export: the line is dropped. Reporting the error instead is worse than it looks:
/// `tracing-subscriber` reports a writer's error with `eprint!`, which panics when stderr is
/// the thing that failed, and a panic between the two tables' Delta commits leaves a run half
/// published.
pub struct LogLine;

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = locked(&ON_SCREEN).clone();
        let _dropped_if_unreadable = match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        };
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _dropped_if_unreadable = std::io::stderr().flush();
        Ok(())
    }
}

/// Writes one line to stderr like `eprintln!`, but a stderr that cannot be written (see
/// [`LogLine`]) loses the line instead of panicking: the run's outcome is its exit code.
pub fn say(line: std::fmt::Arguments<'_>) {
    let _dropped_if_unreadable = writeln!(std::io::stderr(), "{line}");
}

/// Writes one line to stdout like `println!`, without the panic when the reader has gone
/// (`trackly-export schema | head -1`): the rest of the output is dropped.
pub fn print(line: std::fmt::Arguments<'_>) {
    let _dropped_if_unreadable = writeln!(std::io::stdout(), "{line}");
}

/// A progress bar kept off screen until there is something to show.
struct Bar {
    bar: ProgressBar,
    /// Where the bar is drawn once shown; taken by [`Bar::show`].
    screen: Mutex<Option<ProgressDrawTarget>>,
}

impl Bar {
    fn new(screen: ProgressDrawTarget) -> Bar {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} contacts  {msg}  ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bar {
            bar,
            screen: Mutex::new(Some(screen)),
        }
    }

    /// Puts the bar on screen (once), drawn at once with what it was last given.
    fn show(&self) {
        let Some(screen) = locked(&self.screen).take() else {
            return;
        };
        self.bar.set_draw_target(screen);
        *locked(&ON_SCREEN) = Some(self.bar.clone());
        self.bar.enable_steady_tick(SPIN);
        self.bar.force_draw();
    }

    /// Clears the bar off the screen for good.
    fn finish(&self) {
        self.bar.finish_and_clear();
        // One bar per process: whatever is registered is this one.
        *locked(&ON_SCREEN) = None;
    }
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
            Display::Bar(Bar::new(ProgressDrawTarget::stderr()))
        } else {
            Display::Lines
        };
        Progress::start(display)
    }

    fn start(display: Display) -> Progress {
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
        if let Some(ticker) = locked(&self.ticker).take() {
            ticker.abort();
        }
        if let Display::Bar(bar) = &self.shared.display {
            bar.finish();
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
    /// The `total` the first page reported (0 when it reported none).
    expected_contacts: u64,
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
    fn lock(&self) -> MutexGuard<'_, State> {
        locked(&self.state)
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
            // Before the first page, there is no page count to show.
            Display::Bar(_) if reading.expected_pages == 0 && reading.pages == 0 => {}
            Display::Bar(display) => {
                // Contacts against the count the API gave: windows overlap and repair reads
                // are requests too, so pages would not add up to the expected number.
                let bar = &display.bar;
                if page || reading.live {
                    bar.set_length(reading.expected_contacts.max(reading.contacts));
                    bar.set_position(reading.contacts);
                }
                let mut msg = format!(
                    "{:.0}/s  {}  {}",
                    reading.contacts_per_sec(),
                    count(reading.requests, "request", "requests"),
                    count(reading.retries, "retry", "retries")
                );
                if reading.live && reading.idle >= WAITING_AFTER {
                    msg.push_str(&format!(
                        "  waiting {}s for the API",
                        reading.idle.as_secs()
                    ));
                }
                bar.set_message(msg);
                display.show();
            }
            Display::Lines if line_due => {
                let waiting = reading.live && reading.idle >= LINE_EVERY;
                tracing::info!(
                    pages = reading.pages,
                    expected_pages = reading.expected_pages,
                    contacts = reading.contacts,
                    expected_contacts = reading.expected_contacts,
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
            expected_contacts: fetch.expected_contacts,
            contacts,
            requests: fetch.requests,
            retries: fetch.retries.total(),
            elapsed: since(None),
            idle: since(state.last_page_at),
            live: state.live.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::TermLike;

    /// A terminal that keeps what is written to it.
    #[derive(Debug, Clone, Default)]
    struct Screen(Arc<Mutex<String>>);

    impl Screen {
        fn text(&self) -> String {
            locked(&self.0).clone()
        }
        /// A progress display whose bar is drawn on this screen.
        fn progress(&self) -> Progress {
            let target = ProgressDrawTarget::term_like(Box::new(self.clone()));
            Progress::start(Display::Bar(Bar::new(target)))
        }
        fn push(&self, s: &str) -> std::io::Result<()> {
            locked(&self.0).push_str(s);
            Ok(())
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.push(s)?;
            self.push("\n")
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.push(s)
        }
        fn clear_line(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn report(expected_pages: u64, pages: u64, retries: u64) -> ExportProgress {
        let mut fetch = FetchStats {
            expected_pages,
            expected_contacts: expected_pages * 100,
            pages,
            ..FetchStats::default()
        };
        fetch.retries.server_error = retries;
        ExportProgress {
            fetch,
            rows_written: pages * 100,
            rejects: 0,
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn no_bar_is_drawn_before_the_first_page_tells_the_count() {
        let screen = Screen::default();
        let progress = screen.progress();
        progress.update(&report(0, 0, 0));
        assert_eq!(screen.text(), "", "nothing before the first page");

        progress.update(&report(3, 1, 1));
        let drawn = screen.text();
        assert!(drawn.contains("100/300 contacts"), "{drawn:?}");
        assert!(drawn.contains("1 retry "), "singular: {drawn:?}");
        assert!(!drawn.contains("0/0"), "{drawn:?}");
        progress.finish();
    }

    #[test]
    fn a_run_that_never_pages_leaves_the_screen_empty() {
        let screen = Screen::default();
        let progress = screen.progress();
        progress.update(&report(0, 0, 2));
        progress.finish();
        assert_eq!(screen.text(), "");
    }
}
