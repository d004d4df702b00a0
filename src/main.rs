//! `trackly-export`: parses flags, calls the library, maps errors to exit codes (all of it in
//! `trackly_export::cli`, which the Python package's console script runs too).

fn main() -> std::process::ExitCode {
    trackly_export::cli::main()
}
