//! Shared helpers of the end-to-end tests: the built binary, the mock server, the Python venv
//! (DuckDB, pyarrow) that reads what we wrote, and a secret-leak check on every run.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod backends;
pub mod metrics;
// The workspace's one test store, shared with the converter's tests.
#[path = "../../crates/converter/tests/support/faulty_store.rs"]
pub mod faulty_store;

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

/// Writes `toml` to a config file in `dir` and returns its path, as `--config` takes it.
pub fn config_file(dir: &Path, toml: &str) -> String {
    let path = dir.join("trackly.toml");
    std::fs::write(&path, toml).unwrap();
    path.to_str().unwrap().to_owned()
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

/// The mock over `contacts` contacts (seed 5, 3 lists) under `faults`, accepting [`SECRET`].
pub async fn mock(contacts: usize, faults: Faults) -> MockServer {
    mock_with(dataset(contacts), faults).await
}

/// The data set of [`mock`]: `contacts` contacts, seed 5, 3 lists.
pub fn dataset(contacts: usize) -> DatasetConfig {
    DatasetConfig {
        seed: 5,
        contacts,
        lists: 3,
        ..DatasetConfig::default()
    }
}

/// The mock over the data set `dataset` under `faults`, accepting [`SECRET`].
pub async fn mock_with(dataset: DatasetConfig, faults: Faults) -> MockServer {
    MockServer::start(MockConfig {
        dataset,
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

/// The venv's Python with DuckDB, pyarrow and moto (set by scripts/test.sh, or the project's
/// `.venv`). A test whose checker is missing fails: it never passes by skipping.
pub fn python() -> PathBuf {
    if let Ok(path) = std::env::var("TRACKLY_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        local.exists(),
        "no Python venv with the checkers (DuckDB, pyarrow): run scripts/test.sh"
    );
    local
}

/// Compares the lake under `output` with `truth` (NDJSON) using DuckDB; returns its report.
pub fn check_lake(output: &Path, truth: &[u8], expect_count: Option<usize>) -> String {
    check_lake_with(output, truth, expect_count, false)
}

/// [`check_lake`]; with `allow_extra`, rows not in `truth` are accepted (each at most once):
/// every contact of `truth` must still be there exactly once, with exactly its values.
pub fn check_lake_with(
    output: &Path,
    truth: &[u8],
    expect_count: Option<usize>,
    allow_extra: bool,
) -> String {
    let python = python();
    let truth_file = output.with_extension("truth.ndjson");
    std::fs::write(&truth_file, truth).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_lake.py");
    let glob = output.join("contacts/**/*.parquet");
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(glob).arg(&truth_file);
    if let Some(n) = expect_count {
        cmd.arg("--expect-count").arg(n.to_string());
    }
    if allow_extra {
        cmd.arg("--allow-extra");
    }
    String::from_utf8_lossy(&checked(cmd, "check_lake")).into_owned()
}

/// Runs a Python checker to its end; panics with its report when it fails, returns its
/// stdout otherwise.
pub fn checked(mut cmd: Command, what: &str) -> Vec<u8> {
    let out = cmd.output().expect("python runs");
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Compares the lists table under `output` with `truth` (the mock's lists NDJSON) using DuckDB,
/// with the checks `flags` ask for (`--join`, `--counts`, `--same-run`: see
/// `tests/py/check_lists.py`); returns its report.
pub fn check_lists(output: &Path, truth: &[u8], flags: &[&str]) -> serde_json::Value {
    let truth_file = output.with_extension("lists.ndjson");
    std::fs::write(&truth_file, truth).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_lists.py");
    let mut cmd = Command::new(python());
    cmd.arg(script).arg(output).arg(&truth_file).args(flags);
    serde_json::from_slice(&checked(cmd, "check_lists")).unwrap()
}

/// Runs a DuckDB query over the lake and returns its rows as JSON text.
pub fn duckdb(sql: &str) -> String {
    let python = python();
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
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` on a blocking thread (so the async mock keeps serving) and checks its output for
/// the secret, as [`run`] does.
pub async fn run_async(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || run(&mut cmd))
        .await
        .expect("runner")
}

/// The run ended by itself with an exit code (no panic: 101, no signal: stack overflow, abort).
pub fn assert_no_crash(out: &Output, what: &str) {
    let code = out.status.code();
    assert!(
        code.is_some() && code != Some(101),
        "{what}: the binary crashed ({:?}):\n{}",
        out.status,
        stderr(out)
    );
    assert!(
        !stderr(out).contains("panicked"),
        "{what}: panic:\n{}",
        stderr(out)
    );
}

/// The `_manifest.json` of the one extract date under `output`.
pub fn manifest(output: &Path) -> serde_json::Value {
    let path = walk(output)
        .into_iter()
        .find(|p| p.ends_with("_manifest.json"))
        .unwrap_or_else(|| panic!("no _manifest.json under {}", output.display()));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// `(phone_number, list_number)` of every line of an NDJSON ground truth.
pub fn truth_keys(ndjson: &[u8]) -> Vec<(String, String)> {
    ndjson
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap();
            (
                v["phone_number"].as_str().unwrap().to_owned(),
                v["list_number"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The lines of `after` (NDJSON ground truth at the end of a run) whose contact was also in
/// `before`: the contacts present throughout the run (their values never change).
pub fn present_throughout(before: &[u8], after: &[u8]) -> Vec<u8> {
    let before_keys: std::collections::HashSet<_> = truth_keys(before).into_iter().collect();
    let mut throughout = Vec::new();
    for line in after.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        if truth_keys(line)
            .first()
            .is_some_and(|k| before_keys.contains(k))
        {
            throughout.extend_from_slice(line);
            throughout.push(b'\n');
        }
    }
    throughout
}

/// `(phone_number, list_number)` of every row of the lake, duplicates included (DuckDB).
pub fn lake_keys(output: &Path) -> Vec<(String, String)> {
    let glob = output.join("contacts/**/*.parquet");
    let rows = duckdb(&format!(
        "SELECT phone_number, list_number FROM read_parquet('{}')",
        glob.display()
    ));
    serde_json::from_str(&rows).unwrap()
}

/// One request as a [`TestServer`] saw it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request target, e.g. `/api/v2/contacts?page=2&per_page=100`.
    pub target: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `page` query parameter (1 when absent).
    pub fn page(&self) -> u64 {
        self.query("page").and_then(|p| p.parse().ok()).unwrap_or(1)
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// One answer of a [`TestServer`].
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// `200` with a JSON body.
    pub fn json(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    /// `status` with an empty body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A real, tiny HTTP/1.1 server on loopback (one thread per connection, `connection: close`)
/// answering every request with `handler`, and recording what it received. For API answers
/// the mock cannot give: wrong shapes, lying pagination, redirects.
pub struct TestServer {
    addr: std::net::SocketAddr,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
}

impl TestServer {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> TestServer {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let handler = std::sync::Arc::new(handler);
        let log = std::sync::Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let handler = std::sync::Arc::clone(&handler);
                let log = std::sync::Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let mut headers = Vec::new();
                    loop {
                        let mut h = String::new();
                        match reader.read_line(&mut h) {
                            Ok(0) | Err(_) => break,
                            Ok(_) if h.trim().is_empty() => break,
                            Ok(_) => {
                                if let Some((n, v)) = h.split_once(':') {
                                    headers.push((n.trim().to_lowercase(), v.trim().to_owned()));
                                }
                            }
                        }
                    }
                    let request = Request { target, headers };
                    let reply = handler(&request);
                    log.lock().unwrap().push(request);
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (n, v) in &reply.headers {
                        head.push_str(&format!("{n}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&reply.body);
                    let _ = stream.flush();
                });
            }
        });
        TestServer { addr, requests }
    }

    /// Serves `pages[n - 1]` for `?page=n` and, past the end, an empty page with the
    /// pagination of the last one.
    pub fn pages(pages: Vec<String>) -> TestServer {
        TestServer::start(move |req| {
            let n = req.page() as usize;
            match pages.get(n.saturating_sub(1)) {
                Some(body) => Reply::json(body.clone()),
                None => Reply::json(format!(
                    r#"{{"contacts":[],"pagination":{{"page":{n},"per_page":100,"total":0,"total_pages":0}}}}"#
                )),
            }
        })
    }

    /// The API base URL (`http://127.0.0.1:PORT/api`).
    pub fn url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

/// A server that always answers `200` with `body`; returns its API base URL.
pub fn fixed_server(body: &'static str) -> String {
    // The server thread keeps serving for the life of the test process.
    TestServer::start(move |_| Reply::json(body)).url()
}

/// `export` against any API base URL, with the key in the environment and `args` after. The
/// fake servers these tests write serve contacts only, so the run writes the contacts table
/// alone (`TRACKLY_TABLES=contacts`; a `--tables` in `args` overrides it).
pub fn export_to(base_url: &str, output: &Path, args: &[&str]) -> Command {
    let mut cmd = binary();
    cmd.env("TRACKLY_API_KEY", SECRET)
        .env("TRACKLY_TABLES", "contacts")
        .arg("export")
        .arg("--base-url")
        .arg(base_url)
        .arg("--output")
        .arg(output)
        .args(args);
    cmd
}

/// A page body with `contacts` (JSON objects) and the given pagination.
pub fn page_body(
    contacts: &[String],
    page: u64,
    per_page: u64,
    total: u64,
    total_pages: u64,
) -> String {
    format!(
        r#"{{"contacts":[{}],"pagination":{{"page":{page},"per_page":{per_page},"total":{total},"total_pages":{total_pages}}}}}"#,
        contacts.join(",")
    )
}

/// A minimal valid contact with phone number `+1415555` followed by `i` in 4 digits, signed up
/// `i` seconds before the newest (contact 0): in the API's newest-first order by `i`.
pub fn contact(i: usize) -> String {
    let signup = chrono::DateTime::from_timestamp(1_750_000_000 - i as i64, 0)
        .unwrap_or_default()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S");
    format!(
        r#"{{"phone_number":"+1415555{i:04}","list_number":"+18005551234","active":true,"signup_date":"{signup}"}}"#
    )
}

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// An S3 client of `bucket` at `endpoint`, with moto's credentials.
pub fn s3(endpoint: &str, bucket: &str) -> std::sync::Arc<dyn object_store::ObjectStore> {
    std::sync::Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(bucket)
            .with_region(env_or("AWS_REGION", "us-east-1"))
            .with_access_key_id(env_or("AWS_ACCESS_KEY_ID", "testing"))
            .with_secret_access_key(env_or("AWS_SECRET_ACCESS_KEY", "testing"))
            .with_allow_http(true)
            .build()
            .unwrap(),
    )
}

/// The binary's S3 settings: `AWS_ENDPOINT_URL` is how `s3://` outputs reach moto.
pub fn with_s3_env(cmd: &mut Command, endpoint: &str) {
    cmd.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", env_or("AWS_ACCESS_KEY_ID", "testing"))
        .env(
            "AWS_SECRET_ACCESS_KEY",
            env_or("AWS_SECRET_ACCESS_KEY", "testing"),
        )
        .env("AWS_REGION", env_or("AWS_REGION", "us-east-1"));
}

/// `tests/py/check_delta.py MODE TABLE args...` with the venv's Python (deltalake, Polars),
/// S3 settings from `s3_endpoint` when given; panics with its report when it fails.
pub fn check_delta_cmd(
    mode: &str,
    table: &str,
    args: &[&str],
    s3_endpoint: Option<&str>,
) -> Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/check_delta.py");
    let mut cmd = Command::new(python());
    cmd.arg(script).arg(mode).arg(table).args(args);
    if let Some(endpoint) = s3_endpoint {
        with_s3_env(&mut cmd, endpoint);
    }
    cmd
}

/// Reads the Delta table `table` (a directory or `s3://` URL) with deltalake and Polars and
/// compares it with `truth` (see `tests/py/check_delta.py check`); returns its report.
pub fn check_delta(
    table: &str,
    truth: &[u8],
    args: &[&str],
    s3_endpoint: Option<&str>,
) -> serde_json::Value {
    check_delta_with(table, truth, args, |cmd| {
        if let Some(endpoint) = s3_endpoint {
            with_s3_env(cmd, endpoint);
        }
    })
}

/// [`check_delta`], the reader's environment set by `environment` (an emulator's storage
/// options, for instance).
pub fn check_delta_with(
    table: &str,
    truth: &[u8],
    args: &[&str],
    environment: impl FnOnce(&mut Command),
) -> serde_json::Value {
    let truth_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(truth_file.path(), truth).unwrap();
    let truth_path = truth_file.path().to_str().unwrap().to_owned();
    let mut all = vec![truth_path.as_str()];
    all.extend_from_slice(args);
    let mut cmd = check_delta_cmd("check", table, &all, None);
    environment(&mut cmd);
    serde_json::from_slice(&checked(cmd, "check_delta")).unwrap()
}

/// Runs `cmd` (output discarded) and kills it with SIGKILL once `ready` holds, or after 60 s;
/// fails if it ends on its own first.
pub async fn kill_9_when(mut cmd: Command, ready: impl AsyncFn() -> bool) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !ready().await && start.elapsed() < std::time::Duration::from_secs(60) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the export ended before the crash point"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
}

/// The contacts table's checkpoints (`_staging/*/_checkpoint.json`) as they are now.
pub fn checkpoints(lake: &Path) -> Vec<serde_json::Value> {
    walk(&lake.join("contacts/_staging"))
        .into_iter()
        .filter(|p| p.ends_with("_checkpoint.json"))
        .filter_map(|p| std::fs::read(p).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect()
}

/// Finished staged files recorded in the newest checkpoint (0 when there is none yet).
pub fn checkpointed_files(lake: &Path) -> usize {
    checkpoints(lake)
        .iter()
        .map(|c| c["files"].as_array().map_or(0, Vec::len))
        .max()
        .unwrap_or(0)
}
