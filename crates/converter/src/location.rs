//! Where the Parquet files go: a local directory, or a prefix in an S3 bucket, a Google Cloud
//! Storage bucket or an Azure container, as an [`ObjectStore`] and a prefix inside it.
//!
//! ```
//! # fn main() -> Result<(), trackly_converter::ConvertError> {
//! let dir = tempfile::tempdir().unwrap();
//! let out = trackly_converter::OutputLocation::parse(dir.path().to_str().unwrap())?;
//! assert_eq!(out.prefix().as_ref(), "");
//! # Ok(()) }
//! ```
//!
//! | URL | backend (cargo feature) |
//! |---|---|
//! | `s3://bucket/prefix` | S3 and S3-compatible servers (`aws`) |
//! | `gs://bucket/prefix` | Google Cloud Storage (`gcp`) |
//! | `az://container/prefix`, `abfs[s]://container/prefix` | Azure Blob Storage / ADLS Gen2; the account from `AZURE_STORAGE_ACCOUNT_NAME` (`azure`) |
//! | `abfs[s]://container@account.dfs.core.windows.net/prefix` | the same, account named in the URL (`azure`) |
//! | `https://account.blob.core.windows.net/container/prefix` | the same (`azure`) |
//!
//! Each store is configured by object_store's `from_env` (the only place in this crate that
//! reads the environment: `AWS_*`, `GOOGLE_*`, `AZURE_*`), then by the
//! [`StorageOptions`] of [`LocationOptions`] (see [`credentials`](crate::credentials)), then
//! by what the URL names. For S3 the region defaults to `us-east-1` and
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT` / `AWS_ENDPOINT_URL_S3` reach S3-compatible servers
//! (path-style unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`). A plain-`http` endpoint (S3's
//! endpoint, `google_base_url`, `azure_storage_endpoint`) is accepted only when its host is a
//! loopback address (`localhost`, `127.0.0.0/8`, `::1`) or the caller sets
//! [`LocationOptions::allow_http`] (or the storage option `allow_http=true`); credentials would
//! otherwise cross the network in clear text.
//!
//! Parsing makes no request: [`OutputLocation::check_access`] is what finds out whether the
//! location exists and can be written.

use std::fmt;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::backend::{Backend, Built, Cloud};
use crate::credentials::StorageOptions;
use crate::error::{ConvertError, Result};

/// An object store and the prefix under which `contacts/...` is written.
#[derive(Clone)]
pub struct OutputLocation {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    display: String,
    /// The directory behind a local store, to tidy up directories object stores cannot delete.
    local_root: Option<std::path::PathBuf>,
    backend: Backend,
    /// A cloud location's bucket or container, its root URL (`s3://bucket`, `gs://bucket`,
    /// `az://container`) and what its errors name.
    cloud: Option<Arc<Cloud>>,
}

impl fmt::Debug for OutputLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputLocation")
            .field("location", &self.display)
            .field("prefix", &self.prefix.as_ref())
            .finish()
    }
}

impl fmt::Display for OutputLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// How [`OutputLocation::parse_with`] reads a location.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocationOptions {
    /// Accept a plain-`http` endpoint that is not on a loopback address (default false:
    /// credentials would cross the network in clear text).
    pub allow_http: bool,
    /// Create a local directory that does not exist yet, as `mkdir -p` (default true). The
    /// local object store needs an existing root; false makes a missing directory an error.
    pub create_local_dir: bool,
    /// Settings of the object store on top of the environment (credentials, endpoint, ...):
    /// see [`StorageOptions`]. Ignored for a local directory.
    pub storage_options: StorageOptions,
}

impl Default for LocationOptions {
    fn default() -> Self {
        LocationOptions {
            allow_http: false,
            create_local_dir: true,
            storage_options: StorageOptions::new(),
        }
    }
}

impl LocationOptions {
    /// Sets [`allow_http`](Self::allow_http).
    pub fn with_allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Sets [`storage_options`](Self::storage_options).
    pub fn with_storage_options(mut self, options: StorageOptions) -> Self {
        self.storage_options = options;
        self
    }
}

impl OutputLocation {
    /// Parses `input` with the default [`LocationOptions`]: a URL of the table in the
    /// [module docs](self), or a local directory path, **created if missing** (the local object
    /// store needs an existing root).
    ///
    /// Any other `scheme://` is refused, as is a scheme whose cargo feature is off, a URL
    /// without a bucket or container, and prefixes with empty or relative (`.`/`..`) segments.
    pub fn parse(input: &str) -> Result<OutputLocation> {
        Self::parse_with(input, LocationOptions::default())
    }

    /// Parses `input` as [`parse`](Self::parse) does, with `options`.
    pub fn parse_with(input: &str, options: LocationOptions) -> Result<OutputLocation> {
        let fail = |reason: &str| ConvertError::Location {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        if input.trim().is_empty() {
            return Err(fail("it is empty"));
        }
        let Some((scheme, rest)) = input.split_once("://") else {
            let head = input.get(..3).unwrap_or_default();
            if ["s3:", "gs:", "az:"]
                .iter()
                .any(|s| head.eq_ignore_ascii_case(s))
            {
                // `s3:/bucket` or `s3:bucket` is a mistyped URL, not a local folder `s3:`.
                return Err(fail(
                    "looks like a bucket URL but lacks `//`; expected s3://bucket/prefix, \
                     gs://bucket/prefix or az://container/prefix",
                ));
            }
            return Self::local(input, options.create_local_dir).map_err(|r| fail(&r));
        };
        let scheme = scheme.to_ascii_lowercase();
        let target = CloudUrl::parse(&scheme, rest).map_err(|r| fail(&r))?;
        let prefix = parse_prefix(&target.prefix).map_err(|reason| fail(&reason))?;
        let (store, cloud) = target.build(&options).map_err(|r| fail(&r))?;
        Ok(OutputLocation {
            store,
            prefix,
            display: input.trim_end_matches('/').to_owned(),
            local_root: None,
            backend: target.backend,
            cloud: Some(Arc::new(cloud)),
        })
    }

    fn local(input: &str, create: bool) -> std::result::Result<OutputLocation, String> {
        if create {
            std::fs::create_dir_all(input)
                .map_err(|e| format!("cannot create the directory: {e}"))?;
        }
        let root = std::fs::canonicalize(input)
            .map_err(|e| format!("cannot resolve the directory: {e}"))?;
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| e.to_string())?
            .with_automatic_cleanup(true);
        Ok(OutputLocation {
            store: Arc::new(store),
            prefix: Path::default(),
            display: input.to_owned(),
            local_root: Some(root),
            backend: Backend::Local,
            cloud: None,
        })
    }

    /// A location in any object store (in-memory, a store built by hand, ...), under `prefix`.
    pub fn from_store(store: Arc<dyn ObjectStore>, prefix: impl Into<Path>) -> OutputLocation {
        let prefix = prefix.into();
        OutputLocation {
            display: format!("{store}/{prefix}"),
            store,
            prefix,
            local_root: None,
            backend: Backend::Other,
            cloud: None,
        }
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Which kind of store this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn cloud(&self) -> Option<&Cloud> {
        self.cloud.as_deref()
    }

    /// A streaming upload to `path` here, in parts of
    /// [`UPLOAD_PART_BYTES`](crate::sink::UPLOAD_PART_BYTES) (S3's smallest part) on an object
    /// store and [`LOCAL_UPLOAD_PART_BYTES`](crate::sink::LOCAL_UPLOAD_PART_BYTES) on a local
    /// directory, [`UPLOAD_CONCURRENCY`](crate::sink::UPLOAD_CONCURRENCY) parts in flight.
    pub(crate) fn upload(&self, path: &Path) -> object_store::buffered::BufWriter {
        let part_bytes = if self.local_root().is_some() {
            crate::store::LOCAL_UPLOAD_PART_BYTES
        } else {
            crate::store::UPLOAD_PART_BYTES
        };
        object_store::buffered::BufWriter::with_capacity(
            self.store.clone(),
            path.clone(),
            part_bytes,
        )
        .with_max_concurrency(crate::store::UPLOAD_CONCURRENCY)
    }

    /// The prefix inside the store (empty for a local directory, which is the store's root).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// The directory behind a local store (`None` for an object store).
    pub(crate) fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }

    /// Removes the local directory of object path `dir` if it is empty (a no-op elsewhere).
    pub(crate) fn remove_empty_local_dir(&self, dir: &Path) {
        if let Some(root) = self.local_root() {
            let mut path = root.to_path_buf();
            path.extend(dir.parts().map(|p| p.as_ref().to_owned()));
            // Fails when not empty or already gone, both of which are fine.
            let _ = std::fs::remove_dir(path);
        }
    }

    /// `prefix/part/part...` as an object path.
    pub(crate) fn child<'a>(&self, parts: impl IntoIterator<Item = &'a str>) -> Path {
        let mut path = self.prefix.clone();
        for part in parts {
            path = path.join(part);
        }
        path
    }
}

/// A cloud URL taken apart: which backend, its bucket or container, the prefix inside it.
struct CloudUrl {
    backend: Backend,
    #[cfg_attr(
        not(any(feature = "aws", feature = "gcp", feature = "azure")),
        allow(dead_code)
    )]
    bucket: String,
    prefix: String,
    /// The Azure storage account, when the URL names it.
    #[cfg_attr(not(feature = "azure"), allow(dead_code))]
    account: Option<String>,
}

impl CloudUrl {
    fn parse(scheme: &str, rest: &str) -> std::result::Result<Self, String> {
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let cloud = |backend, bucket: &str, prefix: &str| CloudUrl {
            backend,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            account: None,
        };
        match scheme {
            "s3" => {
                check_bucket(host, "s3://bucket/prefix")?;
                Ok(cloud(Backend::S3, host, path))
            }
            "gs" => {
                check_bucket(host, "gs://bucket/prefix")?;
                Ok(cloud(Backend::Gcs, host, path))
            }
            "az" | "abfs" | "abfss" => {
                // abfss://container@account.dfs.core.windows.net/prefix, or the fsspec form
                // abfss://container/prefix (the account from the environment).
                let (container, account) = match host.split_once('@') {
                    Some((container, account_host)) => {
                        if !is_azure_host(account_host) {
                            return Err(format!(
                                "{account_host:?} is not an Azure storage host; expected \
                                 {scheme}://container@account.dfs.core.windows.net/prefix"
                            ));
                        }
                        (container, account_of(account_host))
                    }
                    None => (host, None),
                };
                check_container(container, scheme)?;
                let mut url = cloud(Backend::Azure, container, path);
                url.account = account;
                Ok(url)
            }
            "https" if is_azure_host(host) => {
                let (container, prefix) = path.split_once('/').unwrap_or((path, ""));
                check_container(container, "https://account.blob.core.windows.net")?;
                let mut url = cloud(Backend::Azure, container, prefix);
                url.account = account_of(host);
                Ok(url)
            }
            other => Err(format!(
                "unsupported scheme {other:?}; use s3://bucket/prefix, gs://bucket/prefix, \
                 az://container/prefix, abfss://container@account.dfs.core.windows.net/prefix \
                 or a local directory"
            )),
        }
    }

    /// The store, with the feature of its backend; refused clearly when that is off.
    #[allow(unused_variables)]
    fn build(&self, options: &LocationOptions) -> std::result::Result<Built, String> {
        let (storage, http) = (&options.storage_options, options.allow_http);
        match self.backend {
            #[cfg(feature = "aws")]
            Backend::S3 => crate::backend::s3(&self.bucket, storage, http),
            #[cfg(feature = "gcp")]
            Backend::Gcs => crate::backend::gcs(&self.bucket, storage, http),
            #[cfg(feature = "azure")]
            Backend::Azure => {
                crate::backend::azure(&self.bucket, self.account.as_deref(), storage, http)
            }
            backend => Err(format!(
                "this build has no {} support (cargo feature `{}` of trackly-converter, or of \
                 trackly-export)",
                backend.name(),
                match backend {
                    Backend::S3 => "aws",
                    Backend::Gcs => "gcp",
                    _ => "azure",
                }
            )),
        }
    }
}

/// The account of `account.dfs.core.windows.net` (or `.blob.`).
fn account_of(host: &str) -> Option<String> {
    host.split_once('.').map(|(account, _)| account.to_owned())
}

fn is_azure_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host.ends_with(".dfs.core.windows.net") || host.ends_with(".blob.core.windows.net")
}

/// S3 and GCS bucket names: lowercase letters, digits, `-`, `_` (GCS) and `.`.
fn check_bucket(bucket: &str, form: &str) -> std::result::Result<(), String> {
    if bucket.is_empty() {
        return Err(format!("no bucket name; expected {form}"));
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
    {
        return Err("a bucket name has only lowercase letters, digits, '-', '_' and '.'".into());
    }
    Ok(())
}

/// Azure container names: lowercase letters, digits and `-`.
fn check_container(container: &str, form: &str) -> std::result::Result<(), String> {
    if container.is_empty() {
        return Err(format!("no container name in the {form} URL"));
    }
    if !container
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("a container name has only lowercase letters, digits and '-'".into());
    }
    Ok(())
}

fn parse_prefix(prefix: &str) -> std::result::Result<Path, String> {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Path::default());
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!(
                "the prefix has an empty or relative segment {segment:?}"
            ));
        }
    }
    Path::parse(trimmed).map_err(|e| format!("invalid prefix: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(input: &str) -> String {
        match OutputLocation::parse(input) {
            Err(ConvertError::Location { reason, .. }) => reason,
            other => panic!("{input}: {other:?}"),
        }
    }

    #[test]
    fn malformed_urls_are_refused_clearly() {
        assert!(reason("s3://").contains("no bucket"));
        assert!(reason("s3:///x").contains("no bucket"));
        assert!(reason("s3://Bucket_Name/x").contains("bucket name"));
        assert!(reason("s3://bucket/a//b").contains("empty or relative"));
        assert!(reason("s3://bucket/a/../b").contains("empty or relative"));
        assert!(reason("gs://").contains("no bucket"));
        assert!(reason("gs://Lake/x").contains("bucket name"));
        assert!(reason("az://").contains("no container"));
        assert!(reason("abfss://Lake@acct.dfs.core.windows.net/x").contains("container name"));
        assert!(reason("abfss://lake@example.com/x").contains("not an Azure storage host"));
        assert!(reason("hdfs://bucket/x").contains("unsupported scheme \"hdfs\""));
        assert!(reason("https://example.com/x").contains("unsupported scheme"));
        assert!(reason("").contains("empty"));
        assert!(reason("s3:/bucket/x").contains("s3://bucket/prefix"));
        assert!(reason("S3:bucket").contains("s3://bucket/prefix"));
        assert!(reason("gs:bucket").contains("gs://bucket/prefix"));
    }

    #[test]
    fn cloud_urls_name_their_bucket_container_and_prefix() {
        fn parse(input: &str) -> CloudUrl {
            let (scheme, rest) = input.split_once("://").unwrap();
            CloudUrl::parse(scheme, rest).unwrap()
        }
        let gs = parse("gs://lake/exports/trackly");
        assert_eq!(
            (gs.backend, gs.bucket.as_str(), gs.prefix.as_str()),
            (Backend::Gcs, "lake", "exports/trackly")
        );
        for url in [
            "az://lake/exports/trackly",
            "abfss://lake/exports/trackly",
            "abfss://lake@acct.dfs.core.windows.net/exports/trackly",
            "abfs://lake@acct.blob.core.windows.net/exports/trackly",
            "https://acct.blob.core.windows.net/lake/exports/trackly",
        ] {
            let az = parse(url);
            assert_eq!(
                (az.backend, az.bucket.as_str(), az.prefix.as_str()),
                (Backend::Azure, "lake", "exports/trackly"),
                "{url}"
            );
            let named = url.contains("acct");
            assert_eq!(az.account.as_deref(), named.then_some("acct"), "{url}");
        }
    }

    #[cfg(feature = "azure")]
    #[test]
    fn azure_needs_an_account_unless_the_url_or_emulator_names_one() {
        let options = LocationOptions::default()
            .with_storage_options(StorageOptions::new().with("azure_storage_account_key", "a2V5"));
        let named =
            OutputLocation::parse_with("abfss://lake@acct.dfs.core.windows.net/x", options.clone())
                .unwrap();
        assert_eq!(named.backend(), Backend::Azure);
        assert_eq!(named.prefix().as_ref(), "x");
        if std::env::var_os("AZURE_STORAGE_ACCOUNT_NAME").is_none()
            && std::env::var_os("AZURE_STORAGE_USE_EMULATOR").is_none()
        {
            let err = OutputLocation::parse_with("az://lake/x", options).unwrap_err();
            assert!(
                err.to_string().contains("AZURE_STORAGE_ACCOUNT_NAME"),
                "{err}"
            );
        }
    }

    #[cfg(feature = "aws")]
    #[test]
    fn unknown_storage_options_are_refused_by_name() {
        let options = LocationOptions::default()
            .with_storage_options(StorageOptions::new().with("aws_acess_key_id", "k"));
        let err = OutputLocation::parse_with("s3://b/x", options).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown storage option \"aws_acess_key_id\""),
            "{err}"
        );
    }

    #[cfg(feature = "aws")]
    #[test]
    fn plain_http_endpoints_need_loopback_or_permission() {
        let with = |endpoint: &str| {
            object_store::aws::AmazonS3Builder::new()
                .with_bucket_name("b")
                .with_endpoint(endpoint)
                .with_access_key_id("k")
                .with_secret_access_key("s")
        };
        let s3 = crate::backend::s3_from;
        assert!(s3(with("http://127.0.0.1:5000"), false).is_ok());
        assert!(s3(with("http://localhost:9000"), false).is_ok());
        assert!(s3(with("http://[::1]:9000"), false).is_ok());
        assert!(s3(with("https://minio.internal:9000"), false).is_ok());
        let err = s3(with("http://minio.internal:9000"), false).err().unwrap();
        assert!(err.contains("plain http"), "{err}");
        assert!(s3(with("http://minio.internal:9000"), true).is_ok());
        let allowed = with("http://minio.internal:9000").with_allow_http(true);
        assert!(
            s3(allowed, false).is_ok(),
            "the storage option allow_http=true allows it"
        );
        assert!(s3(with("ftp://x"), true).is_err());
    }

    #[test]
    fn prefixes_are_kept_without_slashes() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let loc = OutputLocation::from_store(store, parse_prefix("/exports/trackly/").unwrap());
        assert_eq!(loc.prefix().as_ref(), "exports/trackly");
        assert_eq!(
            loc.child(["contacts", "x.parquet"]).as_ref(),
            "exports/trackly/contacts/x.parquet"
        );
    }

    #[test]
    fn local_directories_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/lake");
        let loc = OutputLocation::parse(target.to_str().unwrap()).unwrap();
        assert!(target.is_dir());
        assert_eq!(loc.prefix().as_ref(), "");
        assert_eq!(loc.to_string(), target.to_str().unwrap());
    }
}
