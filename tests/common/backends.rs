//! The three object-store emulators scripts/test.sh starts (moto for S3, fake-gcs-server
//! behind an XML-API bridge for GCS, Azurite for Azure), each described once: its bucket URL, the storage options and
//! environment that reach it, and a client to look at what a run left. The conformance suite
//! (`tests/object_stores.rs`) runs the same tests against each.
//!
//! The options are given to the binary as `--storage-option KEY=VALUE` and to the Python
//! readers (deltalake, Polars) as their `storage_options`, unchanged: one map serves both, as
//! the README promises.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use trackly_export::{LocationOptions, OutputLocation, StorageOptions};

use super::env_or;

/// The bucket (container) scripts/test.sh creates in every emulator.
pub const BUCKET: &str = "trackly-test";

/// Azurite's well-known development account key (public, the same in every Azurite).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// One emulator as the tests reach it.
#[derive(Debug, Clone)]
pub struct Emulator {
    /// `s3`, `gcs`, `azure`.
    pub name: &'static str,
    /// The URL scheme and the bucket (container) part: `s3://trackly-test`.
    pub root: String,
    /// Storage options, for the binary and the Python readers alike.
    pub options: Vec<(String, String)>,
    /// Environment variables, for the binary and the Python readers alike.
    pub env: Vec<(String, String)>,
    /// The emulator's address.
    pub endpoint: String,
}

fn endpoint(var: &str, emulator: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| {
            panic!("{var} is not set: run scripts/test.sh, which starts {emulator}")
        })
        .trim_end_matches('/')
        .to_owned()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl Emulator {
    /// moto, through the `aws_*` storage options.
    pub fn s3() -> Emulator {
        let endpoint = endpoint("TRACKLY_TEST_S3_ENDPOINT", "moto_server");
        Emulator {
            name: "s3",
            root: format!("s3://{}", env_or("TRACKLY_TEST_S3_BUCKET", BUCKET)),
            options: pairs(&[
                ("aws_endpoint", &endpoint),
                ("aws_access_key_id", "testing"),
                ("aws_secret_access_key", "testing"),
                ("aws_region", "us-east-1"),
                ("allow_http", "true"),
            ]),
            env: Vec::new(),
            endpoint,
        }
    }

    /// fake-gcs-server behind tests/py/gcs_xml_bridge.py, through a service account key that
    /// points at it (object_store's emulator convention: `gcs_base_url` and `disable_oauth`).
    pub fn gcs() -> Emulator {
        let endpoint = endpoint(
            "TRACKLY_TEST_GCS_ENDPOINT",
            "fake-gcs-server and its bridge",
        );
        let key = serde_json::json!({
            "private_key": "",
            "private_key_id": "",
            "client_email": "",
            "disable_oauth": true,
            "gcs_base_url": endpoint,
        })
        .to_string();
        Emulator {
            name: "gcs",
            root: format!("gs://{BUCKET}"),
            options: pairs(&[("google_service_account_key", &key), ("allow_http", "true")]),
            env: Vec::new(),
            endpoint,
        }
    }

    /// Azurite, through the emulator switch and `AZURITE_BLOB_STORAGE_URL`.
    pub fn azure() -> Emulator {
        let endpoint = endpoint("TRACKLY_TEST_AZURITE_ENDPOINT", "Azurite");
        Emulator {
            name: "azure",
            root: format!("az://{BUCKET}"),
            options: pairs(&[
                ("azure_storage_use_emulator", "true"),
                ("allow_http", "true"),
            ]),
            env: pairs(&[("AZURITE_BLOB_STORAGE_URL", &endpoint)]),
            endpoint,
        }
    }

    /// Azurite reached as a real account is, without the emulator switch: its account name
    /// and endpoint, and `extra` options (the credentials, or where to look for them).
    pub fn azure_by_account(extra: &[(&str, &str)]) -> Emulator {
        let mut emulator = Emulator::azure();
        let endpoint = format!("{}/devstoreaccount1", emulator.endpoint);
        emulator.options = pairs(&[
            ("azure_storage_account_name", "devstoreaccount1"),
            ("azure_storage_endpoint", &endpoint),
        ]);
        emulator.options.extend(pairs(extra));
        emulator.env.clear();
        emulator
    }

    /// The URL of `prefix` in the test bucket.
    pub fn url(&self, prefix: &str) -> String {
        format!("{}/{prefix}", self.root)
    }

    /// The URL of `prefix` in a bucket that does not exist.
    pub fn missing_bucket_url(&self, prefix: &str) -> String {
        let scheme = self.root.split_once("://").unwrap().0;
        format!("{scheme}://no-such-bucket-{}/{prefix}", self.name)
    }

    /// `--storage-option KEY=VALUE` for each option.
    pub fn flags(&self) -> Vec<String> {
        self.options
            .iter()
            .flat_map(|(k, v)| ["--storage-option".to_owned(), format!("{k}={v}")])
            .collect()
    }

    /// The emulator's environment, and no cloud credentials of the caller's beyond it.
    pub fn environment(&self, cmd: &mut Command) {
        for (key, _) in std::env::vars() {
            if key.starts_with("AWS_") || key.starts_with("GOOGLE_") || key.starts_with("AZURE_") {
                cmd.env_remove(key);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
    }

    /// The options as [`StorageOptions`], for the library.
    pub fn storage_options(&self) -> StorageOptions {
        self.options.iter().cloned().collect()
    }

    /// A client of the test bucket (the tests' own process has the emulator's environment
    /// from scripts/test.sh).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        for (k, v) in &self.env {
            assert_eq!(
                std::env::var(k).ok().as_deref(),
                Some(v.as_str()),
                "{k} is set by scripts/test.sh"
            );
        }
        let location = OutputLocation::parse_with(
            &self.root,
            LocationOptions::default().with_storage_options(self.storage_options()),
        )
        .unwrap();
        location.store().clone()
    }

    /// Every object under `prefix` (recursively), as paths relative to it, sorted.
    pub async fn list(&self, prefix: &str) -> Vec<String> {
        let prefix = object_store::path::Path::from(prefix);
        let objects: Vec<_> = self
            .store()
            .list(Some(&prefix))
            .try_collect()
            .await
            .unwrap();
        let mut names: Vec<String> = objects
            .iter()
            .map(|meta| {
                meta.location
                    .prefix_match(&prefix)
                    .unwrap()
                    .map(|p| p.as_ref().to_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        names.sort();
        names
    }

    /// Copies every object under `prefix` into `dir`, keeping the layout; returns their names.
    pub async fn download(&self, prefix: &str, dir: &Path) -> Vec<String> {
        let store = self.store();
        let names = self.list(prefix).await;
        for name in &names {
            let target = name.split('/').fold(dir.to_path_buf(), |p, s| p.join(s));
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            let path = object_store::path::Path::from(format!("{prefix}/{name}"));
            let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
            std::fs::write(&target, &bytes).unwrap();
        }
        names
    }

    /// How many finished files the checkpoints under `staging` (a table's `_staging`) name:
    /// what a run killed now leaves for `--resume`.
    pub async fn checkpointed_files(&self, staging: &str) -> usize {
        let store = self.store();
        let mut finished = 0;
        for name in self.list(staging).await {
            if !name.ends_with("_checkpoint.json") {
                continue;
            }
            let path = object_store::path::Path::from(format!("{staging}/{name}"));
            // A checkpoint being replaced may be gone or torn for a moment: it counts 0.
            if let Ok(got) = store.get(&path).await {
                let bytes = got.bytes().await.unwrap_or_default();
                let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                finished += json["files"].as_array().map_or(0, Vec::len);
            }
        }
        finished
    }

    /// How many parts the object at `path` was uploaded in, as the emulator tells it: S3's
    /// multipart ETag (`"…-N"`), the parts tests/py/gcs_xml_bridge.py composed on GCS, the
    /// committed blocks of an Azure block blob (0 or 1 for a single PUT).
    pub async fn upload_parts(&self, path: &object_store::path::Path) -> usize {
        match self.name {
            "s3" => {
                let meta = self.store().head(path).await.unwrap();
                let e_tag = meta.e_tag.unwrap_or_default();
                e_tag
                    .trim_matches('"')
                    .rsplit_once('-')
                    .map_or(1, |(_, n)| n.parse().unwrap())
            }
            emulator => {
                let (what, url, bucket) = match emulator {
                    "gcs" => ("gcs-components", &self.endpoint, BUCKET),
                    _ => ("azurite-blocks", &self.endpoint, BUCKET),
                };
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/emulators.py");
                let mut cmd = Command::new(super::python());
                cmd.arg(script).args([what, url, bucket, path.as_ref()]);
                let out = super::checked(cmd, "emulators.py");
                String::from_utf8_lossy(&out).trim().parse().unwrap()
            }
        }
    }

    /// `cmd` (a Python reader) with the emulator's environment and its options as JSON in
    /// `TRACKLY_TEST_STORAGE_OPTIONS`, which tests/py/check_delta.py passes as
    /// `storage_options`.
    pub fn python_environment(&self, cmd: &mut Command) {
        self.environment(cmd);
        let options: serde_json::Map<String, serde_json::Value> = self
            .options
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        cmd.env(
            "TRACKLY_TEST_STORAGE_OPTIONS",
            serde_json::Value::Object(options).to_string(),
        );
    }
}
