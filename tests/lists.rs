//! The lists table end to end: the binary against the mock, real files, DuckDB as the reader.
//! Every list (deleted ones included) lands beside the contacts, joins them on
//! `contacts.list_id = lists.id`, is published with them or not at all, and `--tables` picks
//! what a run writes without touching the other table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use trackly_export::mock::{DatasetConfig, Faults, MockConfig, MockServer};

const DATE: &str = "2026-03-04";

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--per-page", "500", "--extract-date", DATE];
    args.extend_from_slice(extra);
    args
}

fn manifest_of(lake: &Path, table: &str) -> serde_json::Value {
    let path = lake.join(format!("{table}/extract_date={DATE}/_manifest.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Name and bytes of every file of one table's date folder.
fn folder(lake: &Path, table: &str) -> Vec<(String, Vec<u8>)> {
    walk(&lake.join(format!("{table}/extract_date={DATE}")))
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

async fn paged_mock(contacts: usize, lists: usize, per_page: u32) -> MockServer {
    MockServer::start(MockConfig {
        dataset: DatasetConfig {
            seed: 5,
            contacts,
            lists,
            ..DatasetConfig::default()
        },
        api_key: SECRET.to_owned(),
        lists_per_page: Some(per_page),
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_land_beside_the_contacts_and_join_them_in_duckdb() {
    let server = mock(3_000, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(&server, dir.path(), &args(&[]))).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("and 4 lists to "), "{err}");

    check_lake(dir.path(), &server.ground_truth(None, None), Some(3_000));
    let report = check_lists(
        dir.path(),
        &server.lists_ground_truth(),
        &["--join", "--counts", "--same-run"],
    );
    assert_eq!(report["lists"], 4, "{report}");
    assert_eq!(report["deleted"], 1, "{report}");
    assert_eq!(report["contacts_joined"], 3_000, "{report}");

    // A join as a user writes it, on the partition and the list id.
    let lake = dir.path().display();
    let rows = duckdb(&format!(
        "SELECT l.list_name, l.status, count(*) FROM read_parquet('{lake}/contacts/**/*.parquet', hive_partitioning=true) c \
         JOIN read_parquet('{lake}/lists/**/*.parquet', hive_partitioning=true) l USING (extract_date) \
         WHERE c.list_id = l.id GROUP BY ALL ORDER BY 3 DESC"
    ));
    let rows: Vec<(String, String, u64)> = serde_json::from_str(&rows).unwrap();
    assert_eq!(rows.len(), 3, "every list with contacts: {rows:?}");
    assert_eq!(rows.iter().map(|r| r.2).sum::<u64>(), 3_000);

    // Both manifests describe the one run, each table listed with its files and rows.
    let contacts = manifest_of(dir.path(), "contacts");
    let lists = manifest_of(dir.path(), "lists");
    assert_eq!(contacts["run_id"], lists["run_id"]);
    assert_eq!(lists["format"], "trackly-export/lists-manifest/v1");
    assert_eq!(lists["rows"], 4);
    let tables = contacts["tables"].as_array().unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lists", "contacts"]);
    assert_eq!(tables[0]["rows"], 4);
    assert_eq!(tables[1]["rows"], 3_000);
    assert!(
        dir.path()
            .join(format!("lists/extract_date={DATE}/_SUCCESS"))
            .exists()
    );
    assert_eq!(
        lists["fetch_stats"]["requests"], 4,
        "the default answer and the deleted lists, read twice to see them agree"
    );
    assert_no_secret_in_tree(dir.path());
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_picks_what_a_run_writes_and_leaves_the_other_table_alone() {
    let server = mock(1_200, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    let out = run_async(export(&server, lake, &args(&[]))).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let first_run = manifest_of(lake, "contacts")["run_id"].clone();

    // Contacts alone: the lists of the date stay as they were, byte for byte.
    let lists_before = folder(lake, "lists");
    let out = run_async(export(&server, lake, &args(&["--tables", "contacts"]))).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains(" lists to "), "{}", stderr(&out));
    assert_eq!(folder(lake, "lists"), lists_before);
    let second_run = manifest_of(lake, "contacts")["run_id"].clone();
    assert_ne!(second_run, first_run);
    assert_eq!(
        manifest_of(lake, "contacts")["tables"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    check_lake(lake, &server.ground_truth(None, None), Some(1_200));

    // Lists alone (from the environment): the contacts stay; the contacts filters are only
    // warned about.
    let contacts_before = folder(lake, "contacts");
    let pages_before = server.stats().pages_served;
    let mut cmd = export(&server, lake, &args(&["--active", "true"]));
    cmd.env("TRACKLY_TABLES", "lists");
    let out = run_async(cmd).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("exported 4 lists in"), "{err}");
    assert!(err.contains("filter the contacts"), "{err}");
    assert_eq!(folder(lake, "contacts"), contacts_before);
    let lists = manifest_of(lake, "lists");
    assert_ne!(lists["run_id"], second_run);
    assert_ne!(lists["run_id"], first_run);
    check_lists(lake, &server.lists_ground_truth(), &["--join"]);
    // Lists alone ask nothing of the contacts endpoint.
    assert_eq!(server.stats().pages_served, pages_before);

    // From a config file, as an array; a flag wins over the file.
    let config = dir.path().with_extension("toml");
    std::fs::write(&config, "tables = [\"lists\"]\n").unwrap();
    let before = folder(lake, "contacts");
    let config_arg = config.to_str().unwrap();
    let out = run_async(export(&server, lake, &args(&["--config", config_arg]))).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(folder(lake, "contacts"), before);
    let out = run_async(export(
        &server,
        lake,
        &args(&["--config", config_arg, "--tables", "contacts,lists"]),
    ))
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_ne!(folder(lake, "contacts"), before);

    // Not a table.
    for bad in ["", "contact", "contacts,,lists"] {
        let out = run_async(export(&server, lake, &args(&["--tables", bad]))).await;
        assert_eq!(code(&out), 2, "{bad:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--tables"), "{}", stderr(&out));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_replaces_both_tables_of_the_date() {
    let server = mock(800, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = run_async(export(&server, dir.path(), &args(&[]))).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let run = manifest_of(dir.path(), "contacts")["run_id"].clone();
    assert_eq!(manifest_of(dir.path(), "lists")["run_id"], run);
    for table in ["contacts", "lists"] {
        let parts: Vec<String> = folder(dir.path(), table)
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name.ends_with(".parquet"))
            .collect();
        assert_eq!(
            parts,
            [format!("part-00000-{}.parquet", run.as_str().unwrap())],
            "{table}"
        );
    }
    check_lists(dir.path(), &server.lists_ground_truth(), &["--same-run"]);
    for table in ["contacts", "lists"] {
        assert!(
            walk(&dir.path().join(format!("{table}/_staging"))).is_empty(),
            "{table}: staging left behind"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_that_the_api_pages_are_read_page_by_page() {
    let server = paged_mock(2_000, 9, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(&server, dir.path(), &args(&[]))).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // 9 lists in pages of 2, then 3 deleted ones in pages of 2; read twice, to see that
    // nothing changed while they were read.
    assert_eq!(server.stats().lists_served, 2 * (5 + 2));
    let report = check_lists(
        dir.path(),
        &server.lists_ground_truth(),
        &["--join", "--counts", "--same-run"],
    );
    assert_eq!(report["lists"], 12, "{report}");
    assert_eq!(
        manifest_of(dir.path(), "lists")["fetch_stats"]["requests"],
        2 * 7
    );
}

async fn churning_mock(lists_per_page: Option<u32>) -> MockServer {
    MockServer::start(MockConfig {
        dataset: DatasetConfig {
            seed: 8,
            contacts: 3_000,
            lists: 9,
            ..DatasetConfig::default()
        },
        api_key: SECRET.to_owned(),
        lists_per_page,
        lists_churn: true,
        ..MockConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_restored_while_the_lists_are_read_is_read_by_id() {
    // The biggest list is deleted while the default answer is made and restored before the
    // deleted ones are listed, every time: no listing ever holds it, and two reads agree.
    let server = churning_mock(None).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(&server, dir.path(), &args(&[]))).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = check_lists(
        dir.path(),
        &server.lists_ground_truth(),
        &["--join", "--counts", "--same-run"],
    );
    assert_eq!(report["lists"], 9 + 3, "{report}");
    let fetch = &manifest_of(dir.path(), "lists")["fetch_stats"];
    assert_eq!(fetch["lists_by_id"], 1, "{fetch}");
    assert_eq!(fetch["lists_unknown"], 0, "{fetch}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_that_change_under_every_read_fail_the_run_loudly() {
    // Paged, the same flips shift the lists behind the biggest one between pages: the pages
    // of one listing never agree on the total.
    let server = churning_mock(Some(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export(&server, dir.path(), &args(&[]))).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 7, "{err}");
    assert!(
        err.contains("the lists changed while they were read, 5 times in a row")
            && err.contains("reported totals"),
        "{err}"
    );
    assert!(
        parquet_files(dir.path()).is_empty(),
        "{:?}",
        walk(dir.path())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_id_the_api_does_not_know_is_counted_and_the_run_lands() {
    let with_list =
        |i: usize, list: u32| contact(i).replacen('{', &format!(r#"{{"list_id":{list},"#), 1);
    let server = TestServer::start(move |req| {
        if req.target.starts_with("/api/v2/lists/") {
            Reply::status(404)
        } else if req.target.starts_with("/api/v2/lists") {
            if req.query("status") == Some("deleted") {
                Reply::json(r#"{"lists":[]}"#)
            } else {
                Reply::json(
                    r#"{"lists":[{"id":42,"phone_number":"+18005551234","status":"active"}]}"#,
                )
            }
        } else {
            let contacts = [with_list(0, 42), with_list(1, 77)];
            Reply::json(page_body(&contacts, req.page(), 1000, 2, 1))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(
        &server.url(),
        dir.path(),
        &args(&["--tables", "contacts,lists"]),
    ))
    .await;
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains("contacts refer to lists the API does not know"),
        "{err}"
    );
    let lists_asked: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.target.clone())
        .filter(|t| t.starts_with("/api/v2/lists/"))
        .collect();
    assert_eq!(lists_asked, ["/api/v2/lists/77"]);
    let fetch = &manifest_of(dir.path(), "lists")["fetch_stats"];
    assert_eq!(
        (&fetch["lists_by_id"], &fetch["lists_unknown"]),
        (&0.into(), &1.into()),
        "{fetch}"
    );
    assert_eq!(manifest_of(dir.path(), "contacts")["rows"], 2);
    assert_eq!(manifest_of(dir.path(), "lists")["rows"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_deleted_between_the_two_requests_lands_as_deleted() {
    // The default answer still has list 42 as active; the deleted answer has it deleted.
    let server = TestServer::start(|req| {
        if req.target.starts_with("/api/v2/lists") && req.query("status") == Some("deleted") {
            Reply::json(
                r#"{"lists":[{"id":42,"phone_number":"+18005551234","status":"deleted","contact_count":0,"created_at":"2025-01-01T00:00:00Z"}]}"#,
            )
        } else if req.target.starts_with("/api/v2/lists") {
            Reply::json(
                r#"{"lists":[{"id":42,"phone_number":"+18005551234","status":"active","contact_count":1,"created_at":"2025-01-01T00:00:00Z"},{"id":57,"phone_number":"+18885551234","status":"paused","contact_count":0,"created_at":"2025-01-02T00:00:00Z"}]}"#,
            )
        } else {
            Reply::json(page_body(&[contact(0)], req.page(), 1000, 1, 1))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(
        &server.url(),
        dir.path(),
        &args(&["--tables", "contacts,lists"]),
    ))
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lake = dir.path().display();
    let rows = duckdb(&format!(
        "SELECT id, status, contact_count FROM read_parquet('{lake}/lists/**/*.parquet') ORDER BY id"
    ));
    assert_eq!(rows.trim(), r#"[[42, "deleted", 0], [57, "paused", 0]]"#);
    assert_eq!(manifest_of(dir.path(), "lists")["decode"]["replaced"], 1);
}

/// An API whose contacts answer normally and whose lists answer `lists` (a JSON body; no list
/// is deleted) or the status `lists_status`.
fn lists_api(lists: &'static str, lists_status: u16) -> TestServer {
    TestServer::start(move |req| {
        if req.target.starts_with("/api/v2/lists") {
            if lists_status != 200 {
                Reply::status(lists_status)
            } else if req.query("status") == Some("deleted") {
                Reply::json(r#"{"lists":[]}"#)
            } else {
                Reply::json(lists)
            }
        } else {
            Reply::json(page_body(&[contact(0), contact(1)], req.page(), 1000, 2, 1))
        }
    })
}

fn contacts_requests(server: &TestServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.target.starts_with("/api/v2/contacts"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lists_failure_ends_the_run_before_any_contact_is_paged() {
    let server = lists_api("", 500);
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(
        &server.url(),
        dir.path(),
        &args(&["--tables", "contacts,lists", "--max-attempts", "2"]),
    ))
    .await;
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("lists"), "{}", stderr(&out));
    assert_eq!(contacts_requests(&server), 0, "{:?}", server.requests());
    assert!(walk(dir.path()).is_empty(), "{:?}", walk(dir.path()));
}

const BAD_LISTS: &str = r#"{"lists":[{"id":42,"phone_number":"+18005551234","status":"active","contact_count":"lots"},{"id":57,"phone_number":"+18885551234","list_type":"bandwidth","status":"active","contact_count":3}]}"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_list_that_does_not_fit_is_quarantined_or_fails_fast() {
    let server = lists_api(BAD_LISTS, 200);
    let all = ["--tables", "contacts,lists"];

    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(
        &server.url(),
        dir.path(),
        &args(&["--tables", "contacts,lists", "--on-invalid", "quarantine"]),
    ))
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let lists = manifest_of(dir.path(), "lists");
    assert_eq!(lists["rows"], 1, "{lists}");
    assert_eq!(lists["rejects"]["count"], 1, "{lists}");
    assert_eq!(lists["decode"]["unknown_values"], 1, "{lists}");
    let rejects =
        std::fs::read_to_string(dir.path().join(lists["rejects"]["file"].as_str().unwrap()))
            .unwrap();
    let reject: serde_json::Value = serde_json::from_str(rejects.trim()).unwrap();
    assert_eq!(reject["field"], "contact_count");
    assert_eq!(reject["index"], 0);
    assert!(reject["raw"].as_str().unwrap().contains("lots"));
    assert_eq!(manifest_of(dir.path(), "contacts")["rows"], 2);

    let contacts_asked = contacts_requests(&server);
    let dir = tempfile::tempdir().unwrap();
    let out = run_async(export_to(&server.url(), dir.path(), &args(&all))).await;
    let err = stderr(&out);
    assert!(
        err.contains("GET /v2/lists")
            && err.contains("list 0")
            && err.contains("contact_count")
            && err.contains("lots"),
        "{err}"
    );
    assert_eq!(
        contacts_requests(&server),
        contacts_asked,
        "{:?}",
        server.requests()
    );
    assert!(parquet_files(dir.path()).is_empty());
    assert_eq!(code(&out), 6, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_prints_both_tables_and_duckdb_creates_them() {
    let out = run(binary().args(["schema", "--format", "duckdb"]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ddl = stdout(&out);
    let result = duckdb(&format!(
        "{ddl}; SELECT count(*) FROM contacts JOIN lists ON contacts.list_id = lists.id"
    ));
    assert!(result.contains('0'), "{result}");
    let out = run(binary().args(["schema", "--table", "lists"]));
    let text = stdout(&out);
    assert!(text.starts_with("id: Int64 NOT NULL\n"), "{text}");
    assert!(
        text.contains("created_at: Timestamp(µs, \"UTC\")")
            || text.contains("created_at: Timestamp(Microsecond"),
        "{text}"
    );
    assert!(!text.contains("custom_fields"), "{text}");
    let out = run(binary().args(["schema"]));
    let text = stdout(&out);
    assert!(
        text.starts_with("# contacts\n") && text.contains("\n# lists\nid: Int64"),
        "{text}"
    );
    let out = run(binary().args(["schema", "--format", "spark", "--table", "lists"]));
    assert!(
        stdout(&out).contains("`contact_count` BIGINT"),
        "{}",
        stdout(&out)
    );
}
