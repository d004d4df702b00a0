//! Log setup for the binary: tracing to stderr, as text or JSON, quiet/verbose aware.

use tracing_subscriber::EnvFilter;

use super::flags::LogFormat;

/// Installs the global subscriber. `RUST_LOG` overrides the level chosen by the flags.
pub fn init(quiet: bool, verbose: u8, format: LogFormat) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our crates at the chosen level; dependencies (hyper, reqwest, object_store) one notch
    // quieter unless -vv, so -v stays readable.
    let default = match verbose {
        0 | 1 => format!(
            "warn,trackly_export={level},trackly_fetcher={level},trackly_converter={level},trackly_mock={level}"
        ),
        _ => level.to_owned(),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Around the progress bar, when one is on screen.
        .with_writer(super::progress::log_writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(verbose > 0);
    // A second init (tests calling run twice) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
