//! The CLI's own documentation: `export --help` as a manual (flags under headings in the order
//! a user needs them, examples at the end) and the shell completion scripts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;

fn export_help() -> String {
    let out = run(binary().args(["export", "--help"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
}

/// Where `text` starts in `help`, failing with the help when it is not there.
fn at(help: &str, text: &str) -> usize {
    help.find(text)
        .unwrap_or_else(|| panic!("{text:?} not in the help:\n{help}"))
}

#[test]
fn export_help_groups_its_flags_under_headings_in_the_order_a_user_needs_them() {
    let help = export_help();
    let headings = [
        "\nWhat to export:\n",
        "\nAPI:\n",
        "\nOutput and Parquet:\n",
        "\nReliability:\n",
        "\nLogging:\n",
    ];
    let starts: Vec<usize> = headings.iter().map(|h| at(&help, h)).collect();
    assert!(starts.is_sorted(), "headings out of order:\n{help}");

    // Each flag under its heading: after it, before the next one.
    let section = |flag: &str| {
        let pos = at(&help, flag);
        starts.iter().rposition(|s| *s < pos).map(|i| headings[i])
    };
    for (flag, heading) in [
        ("--output <DIR|URL>", "\nWhat to export:\n"),
        ("--storage-option <KEY=VALUE>", "\nWhat to export:\n"),
        ("--list-number <E164>", "\nWhat to export:\n"),
        ("--api-key-file <PATH>", "\nAPI:\n"),
        ("--concurrency <N>", "\nAPI:\n"),
        ("--compression <", "\nOutput and Parquet:\n"),
        ("--on-invalid <", "\nOutput and Parquet:\n"),
        ("--max-attempts <N>", "\nReliability:\n"),
        ("--resume", "\nReliability:\n"),
        ("--log-format <", "\nLogging:\n"),
        ("--metrics-file <PATH>", "\nLogging:\n"),
    ] {
        assert_eq!(section(flag), Some(heading), "{flag}:\n{help}");
    }
    // Every flag keeps its environment variable.
    for env in [
        "TRACKLY_OUTPUT",
        "TRACKLY_API_KEY_FILE",
        "TRACKLY_API_KEY]",
        "TRACKLY_RETRY_TIMEOUT",
        "TRACKLY_METRICS_FILE",
        "TRACKLY_LOG_FORMAT",
    ] {
        at(&help, env);
    }
}

#[test]
fn export_help_ends_with_the_exit_codes_then_examples() {
    let help = export_help();
    let codes = at(&help, "\nExit codes:\n");
    let examples = at(&help, "\nExamples:\n");
    assert!(codes < examples, "{help}");
    let tail = &help[examples..];
    let commands = tail
        .lines()
        .filter(|l| l.contains("trackly-export export"))
        .count();
    assert!(
        (2..=3).contains(&commands),
        "two or three examples:\n{tail}"
    );
    assert!(tail.contains("--metrics-file"), "{tail}");
}

/// `completions SHELL` on stdout, checked non-empty and naming the subcommands and the flags
/// (`long` is how the shell's script spells a long flag: `--output`, or fish's `-l output`).
fn completions(shell: &str, long: &str) -> String {
    let out = run(binary().args(["completions", shell]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let script = stdout(&out);
    assert!(!script.trim().is_empty(), "{shell}: empty script");
    let output = format!("{long}output");
    let metrics = format!("{long}metrics-file");
    for word in ["export", "completions", &output, &metrics] {
        assert!(script.contains(word), "{shell}: no {word} in\n{script}");
    }
    script
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    let bash = completions("bash", "--");
    assert!(bash.contains("complete -F"), "{bash}");
    // bash itself accepts the script (parsing only: -n).
    let mut check = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    check
        .stdin
        .take()
        .unwrap()
        .write_all(bash.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&checked.stderr)
    );

    let zsh = completions("zsh", "--");
    assert!(zsh.starts_with("#compdef trackly-export"), "{zsh}");
    let fish = completions("fish", "-l ");
    assert!(fish.contains("complete -c trackly-export"), "{fish}");
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = run(binary().args(["completions", "tcsh"]));
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("bash"), "{}", stderr(&out));
}
