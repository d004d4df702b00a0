//! Shared helpers of the end-to-end tests: the built binary, the mock server, the Python venv
//! (DuckDB, pyarrow) that reads what we wrote, and a secret-leak check on every run.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use trackly_export::mock::{DatasetConfig, Faults, MockConfig, MockServer};

/// The key every test server accepts; no output of ours may ever contain it.
pub const SECRET: &str = "trk_live_SeCrEt_4f9a2c77";

pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trackly-export"));
    // Nothing from the developer's environment leaks into a test.
    for (key, _) in std::env::vars() {
        if key.starts_with("TRACKLY_") && !key.starts_with("TRACKLY_TEST_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

/// Runs the binary to the end and checks the secret appears nowhere in what it printed.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("the binary runs");
    assert_no_secret(&out.stdout, "stdout");
    assert_no_secret(&out.stderr, "stderr");
    out
}

pub fn assert_no_secret(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.contains(SECRET),
        "the API key leaked into {what}:\n{text}"
    );
}

/// Every file under `dir`, checked for the secret.
pub fn assert_no_secret_in_tree(dir: &Path) {
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        assert_no_secret(&bytes, &entry.display().to_string());
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub async fn mock(contacts: usize, faults: Faults) -> MockServer {
    MockServer::start(MockConfig {
        dataset: DatasetConfig {
            seed: 5,
            contacts,
            lists: 3,
        },
        api_key: SECRET.to_owned(),
        faults,
        ..MockConfig::default()
    })
    .await
    .expect("mock starts")
}

/// `export` against `server`, with the key in the environment and `args` after.
pub fn export(server: &MockServer, output: &Path, args: &[&str]) -> Command {
    let mut cmd = binary();
    cmd.env("TRACKLY_API_KEY", SECRET)
        .arg("export")
        .arg("--base-url")
        .arg(server.url())
        .arg("--output")
        .arg(output)
        .args(args);
    cmd
}

/// The venv's Python (set by scripts/test.sh); tests that need it are skipped without it.
pub fn python() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("TRACKLY_TEST_PYTHON") {
        return Some(PathBuf::from(path));
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if local.exists() {
        return Some(local);
    }
    eprintln!("skipped: no Python venv (run scripts/test.sh)");
    None
}

/// Compares the lake under `output` with `truth` (NDJSON) using DuckDB; returns its report.
pub fn check_lake(output: &Path, truth: &[u8], expect_count: Option<usize>) -> Option<String> {
    let python = python()?;
    let truth_file = output.with_extension("truth.ndjson");
    std::fs::write(&truth_file, truth).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_lake.py");
    let glob = output.join("contacts/**/*.parquet");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(glob).arg(&truth_file);
    if let Some(n) = expect_count {
        cmd.arg("--expect-count").arg(n.to_string());
    }
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "check_lake failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a DuckDB query over the lake and returns its rows as JSON text.
pub fn duckdb(sql: &str) -> Option<String> {
    let python = python()?;
    let out = Command::new(python)
        .arg("-c")
        .arg("import duckdb, json, sys; print(json.dumps(duckdb.sql(sys.argv[1]).fetchall(), default=str))")
        .arg(sql)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}
