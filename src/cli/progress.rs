//! Progress on stderr: an indicatif bar on a terminal, a plain log line every few seconds
//! otherwise, nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trackly_export::ExportProgress;

/// How often a non-terminal progress line is written.
const LINE_EVERY: Duration = Duration::from_secs(5);

pub enum Progress {
    Off,
    Bar(ProgressBar),
    Lines(Mutex<Option<Instant>>),
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        if quiet {
            Progress::Off
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} pages  {msg}  ETA {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Progress::Bar(bar)
        } else {
            Progress::Lines(Mutex::new(None))
        }
    }

    pub fn update(&self, p: &ExportProgress) {
        let rate = p.rows_written as f64 / p.elapsed.as_secs_f64().max(1e-3);
        match self {
            Progress::Off => {}
            Progress::Bar(bar) => {
                bar.set_length(p.fetch.expected_pages.max(p.fetch.pages));
                bar.set_position(p.fetch.pages);
                bar.set_message(format!(
                    "{} contacts  {:.0}/s  {} retries",
                    p.rows_written,
                    rate,
                    p.fetch.retries.total()
                ));
            }
            Progress::Lines(last) => {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_some_and(|t| t.elapsed() < LINE_EVERY) {
                    return;
                }
                *last = Some(Instant::now());
                tracing::info!(
                    pages = p.fetch.pages,
                    expected_pages = p.fetch.expected_pages,
                    contacts = p.rows_written,
                    contacts_per_sec = rate as u64,
                    retries = p.fetch.retries.total(),
                    "progress"
                );
            }
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
