//! Storage end to end: an export to S3 (moto) read back exactly; the S3 server dying in the
//! middle of a multipart upload; a local disk that fills up. Failures must exit 5, name what
//! failed, and publish nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use trackly_export::mock::Faults;

/// Copies every object under `prefix` into `dir`, keeping the layout.
async fn download(store: &dyn ObjectStore, prefix: &str, dir: &Path) -> Vec<String> {
    let prefix = object_store::path::Path::from(prefix);
    let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
    let mut names = Vec::new();
    for meta in objects {
        let relative: Vec<_> = meta
            .location
            .prefix_match(&prefix)
            .unwrap()
            .map(|p| p.as_ref().to_owned())
            .collect();
        let target = relative.iter().fold(dir.to_path_buf(), |p, s| p.join(s));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let bytes = store
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        std::fs::write(&target, &bytes).unwrap();
        names.push(relative.join("/"));
    }
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn export_to_s3_lands_exactly_the_ground_truth() {
    let endpoint = std::env::var("TRACKLY_TEST_S3_ENDPOINT")
        .expect("TRACKLY_TEST_S3_ENDPOINT is not set: run scripts/test.sh, which starts moto");
    let bucket = env_or("TRACKLY_TEST_S3_BUCKET", "trackly-test");
    let server = mock(4_000, Faults::default()).await;
    let prefix = format!("storage-test/{}", uuid::Uuid::now_v7());
    let mut cmd = binary();
    cmd.env("TRACKLY_API_KEY", SECRET).args([
        "export",
        "--base-url",
        &server.url(),
        "--output",
        &format!("s3://{bucket}/{prefix}"),
        "--per-page",
        "500",
        "--row-group-rows",
        "1000",
        "--extract-date",
        "2026-05-06",
    ]);
    with_s3_env(&mut cmd, &endpoint);
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let names = download(s3(&endpoint, &bucket).as_ref(), &prefix, dir.path()).await;
    let date = "contacts/extract_date=2026-05-06";
    assert!(names.contains(&format!("{date}/_SUCCESS")), "{names:?}");
    assert!(
        names.contains(&format!("{date}/_manifest.json")),
        "{names:?}"
    );
    let lists = "lists/extract_date=2026-05-06";
    assert!(names.contains(&format!("{lists}/_SUCCESS")), "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.starts_with(date) || n.starts_with(lists)),
        "staging objects left behind: {names:?}"
    );
    check_lake(dir.path(), &server.ground_truth(None, None), Some(4_000));
    check_lists(
        dir.path(),
        &server.lists_ground_truth(),
        &["--join", "--same-run"],
    );
    let manifest = manifest(dir.path());
    assert_eq!(manifest["rows"], 4_000);
    assert_no_secret_in_tree(dir.path());
}

/// A moto_server of our own, on a free port, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    async fn start(bucket: &str) -> Moto {
        let program = std::env::var("TRACKLY_TEST_MOTO_SERVER")
            .expect("TRACKLY_TEST_MOTO_SERVER is not set: run scripts/test.sh");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http
                .get(format!("{endpoint}/moto-api/"))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // moto accepts an unsigned CreateBucket.
        let created = http
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .expect("moto is up");
        assert!(created.status().is_success(), "{:?}", created.status());
        Moto { child, endpoint }
    }

    /// The keys of the multipart uploads in progress (ListMultipartUploads, unsigned).
    async fn uploads(&self, bucket: &str) -> Vec<String> {
        let Ok(response) = reqwest::get(format!("{}/{bucket}?uploads", self.endpoint)).await else {
            return Vec::new();
        };
        let text = response.text().await.unwrap_or_default();
        text.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }

    /// Every key in the bucket (ListObjectsV2, unsigned).
    async fn keys(&self, bucket: &str) -> Vec<String> {
        let Ok(response) = reqwest::get(format!("{}/{bucket}?list-type=2", self.endpoint)).await
        else {
            return Vec::new();
        };
        let text = response.text().await.unwrap_or_default();
        text.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_dying_during_a_multipart_upload_exits_5_naming_the_object_and_publishes_nothing() {
    let bucket = "trackly-kill";
    let mut moto = Moto::start(bucket).await;
    let server = big_pages(None);
    let mut cmd = big_export(&server, &moto, bucket, &[]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut cli = cmd.spawn().unwrap();

    // Wait for the multipart upload to begin; meanwhile nothing may be visible outside staging.
    let mut uploading = Vec::new();
    while uploading.is_empty() {
        if let Some(status) = cli.try_wait().unwrap() {
            panic!("the export ended ({status}) before a multipart upload began");
        }
        // The write-access check's probe object (`lake/_trackly-probe-*`, written and deleted
        // before the run starts) is no table's: a reader of `lake/contacts/` never lists it.
        for key in moto.keys(bucket).await {
            assert!(
                key.contains("/_staging/") || key.starts_with("lake/_trackly-probe-"),
                "visible before the end: {key}"
            );
        }
        uploading = moto.uploads(bucket).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        uploading
            .iter()
            .all(|k| k.starts_with("lake/contacts/_staging/") && k.ends_with(".parquet.inprogress")),
        "{uploading:?}"
    );
    moto.child.kill().unwrap();
    moto.child.wait().unwrap();

    let out = tokio::task::spawn_blocking(move || cli.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_no_secret(&out.stdout, "stdout");
    assert_no_secret(&out.stderr, "stderr");
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    // One line that names the object being uploaded when the server went away, and why.
    assert!(
        last.starts_with("error: ")
            && (last.contains("storage error on ") || last.contains("parquet error writing "))
            && last.contains(&uploading[0])
            && last.contains("Connection refused"),
        "{err}"
    );
    assert!(!err.contains("exported "), "no success summary: {err}");
}

/// 40 pages of 100 contacts with 6 KB of random hex each, 100 ms a page: one file outgrows a
/// 10 MiB upload part (so it goes multipart), and pages come slowly enough that the run is
/// still going then. With `fail_after`, pages past it answer 500.
fn big_pages(fail_after: Option<u64>) -> TestServer {
    TestServer::start(move |req| {
        std::thread::sleep(Duration::from_millis(100));
        let page = req.page().max(1);
        let per_page = req
            .query("per_page")
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(100)
            .clamp(1, 100);
        let start = (page - 1) * per_page;
        // `fail_after` pages of 100 are served; anything reaching past them fails for good.
        if fail_after.is_some_and(|last| start + per_page > last * 100) {
            return Reply::status(500);
        }
        let contacts: Vec<String> = (start..(start + per_page).min(4_000))
            .map(|n| {
                let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let blob: String = (0..375)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        format!("{x:016x}")
                    })
                    .collect();
                // Newest first, one second apart, as the API sorts them.
                let signup = chrono::DateTime::from_timestamp(1_750_000_000 - n as i64, 0)
                    .unwrap()
                    .naive_utc()
                    .format("%Y-%m-%dT%H:%M:%S");
                format!(
                    r#"{{"phone_number":"+1415{n:07}","list_number":"+18005551234","signup_date":"{signup}","custom_fields":{{"blob":"{blob}"}}}}"#
                )
            })
            .collect();
        Reply::json(page_body(
            &contacts,
            page,
            per_page,
            4_000,
            4_000u64.div_ceil(per_page),
        ))
    })
}

/// `export` of `server` to `s3://{bucket}/lake` on `moto`, in big uncompressed row groups.
fn big_export(server: &TestServer, moto: &Moto, bucket: &str, extra: &[&str]) -> Command {
    let mut cmd = binary();
    // The test server serves contacts only.
    cmd.env("TRACKLY_API_KEY", SECRET)
        .env("TRACKLY_TABLES", "contacts")
        .args([
            "export",
            "--base-url",
            &server.url(),
            "--output",
            &format!("s3://{bucket}/lake"),
            "--per-page",
            "100",
            "--concurrency",
            "2",
            "--compression",
            "none",
            "--row-group-rows",
            "500",
        ])
        .args(extra);
    with_s3_env(&mut cmd, &moto.endpoint);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_failure_during_a_multipart_upload_aborts_it_and_leaves_the_bucket_empty() {
    let bucket = "trackly-abort";
    let moto = Moto::start(bucket).await;
    // 30 good pages (about 18 MiB: a multipart upload is under way), then 500s for good.
    let server = big_pages(Some(30));
    let out = run_async(big_export(&server, &moto, bucket, &["--max-attempts", "2"])).await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP 500"), "{}", stderr(&out));
    // Windows reached the 30th hundred of contacts (about 18 MiB: an upload under way).
    assert!(
        server.requests().iter().any(|r| {
            let per_page = r
                .query("per_page")
                .and_then(|p| p.parse::<u64>().ok())
                .unwrap_or(100);
            r.page() * per_page >= 2_900
        }),
        "the run got far enough"
    );
    // The multipart upload was aborted, the staged objects deleted: nothing is left at all.
    assert_eq!(moto.uploads(bucket).await, Vec::<String>::new());
    assert_eq!(moto.keys(bucket).await, Vec::<String>::new());
}

/// A directory that can hold about `bytes`: a tmpfs of that size when this process may mount
/// one (root in most containers), else `None`.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: usize) -> Option<SmallDisk> {
        // TRACKLY_TEST_NO_MOUNT=1 exercises the fallback where mounting works.
        if std::env::var_os("TRACKLY_TEST_NO_MOUNT").is_some() {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_local_disk_exits_5_with_a_clear_error_and_no_parquet() {
    let server = mock(5_000, Faults::default()).await;
    let args = [
        "--compression",
        "none",
        "--row-group-rows",
        "1000",
        "--per-page",
        "1000",
    ];
    let limit = 256 * 1024;
    // Preferred: a real 256 KiB tmpfs, so write() fails with ENOSPC. Where mounting is not
    // allowed, a 256 KiB RLIMIT_FSIZE (`ulimit -f`, with SIGXFSZ ignored so that write() fails
    // with EFBIG instead of killing the process) stands in for the full disk.
    let (dir, _disk, _temp, out, expected) = match SmallDisk::mount(limit) {
        Some(disk) => {
            let lake = disk.dir.path().join("lake");
            let out = run_async(export(&server, &lake, &args)).await;
            (
                disk.dir.path().to_path_buf(),
                Some(disk),
                None,
                out,
                "No space left",
            )
        }
        None => {
            eprintln!("cannot mount a tmpfs here; using RLIMIT_FSIZE instead");
            let temp = tempfile::tempdir().unwrap();
            let lake = temp.path().join("lake");
            let inner = export(&server, &lake, &args);
            let mut cmd = Command::new("bash");
            cmd.arg("-c")
                .arg(format!(
                    "trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"",
                    limit / 1024
                ))
                .arg(inner.get_program())
                .args(inner.get_args());
            for (k, v) in inner.get_envs() {
                match v {
                    Some(v) => cmd.env(k, v),
                    None => cmd.env_remove(k),
                };
            }
            let out = run_async(cmd).await;
            (
                temp.path().to_path_buf(),
                None,
                Some(temp),
                out,
                "File too large",
            )
        }
    };
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.contains(expected) && last.contains(".parquet"),
        "one clear line naming the file and the cause: {err}"
    );
    assert!(parquet_files(&dir).is_empty(), "{:?}", walk(&dir));
    assert!(!walk(&dir).iter().any(|p| p.ends_with("_SUCCESS")));
}
