//! Where the Parquet files go: a local directory or an S3 prefix, as an [`ObjectStore`] and a
//! prefix inside it.
//!
//! ```
//! # fn main() -> Result<(), trackly_converter::ConvertError> {
//! let dir = tempfile::tempdir().unwrap();
//! let out = trackly_converter::OutputLocation::parse(dir.path().to_str().unwrap())?;
//! assert_eq!(out.prefix().as_ref(), "");
//! # Ok(()) }
//! ```
//!
//! `s3://bucket/prefix` is configured by [`AmazonS3Builder::from_env`], the only place in this
//! crate that reads the environment: the standard `AWS_*` variables (credentials, `AWS_REGION`,
//! defaulting to `us-east-1`), and `AWS_ENDPOINT_URL` / `AWS_ENDPOINT` / `AWS_ENDPOINT_URL_S3`
//! for S3-compatible servers such as MinIO or moto. Requests go path-style unless
//! `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`. A plain-`http` endpoint is accepted only when its host
//! is a loopback address (`localhost`, `127.0.0.0/8`, `::1`) or the caller sets
//! [`LocationOptions::allow_http`]; credentials would otherwise cross the network in clear text.
//! [`LocationOptions::storage_options`] override the environment, with object_store's keys
//! (those deltalake and Polars take too: `aws_access_key_id`, `aws_secret_access_key`,
//! `aws_session_token`, `aws_region`, `aws_endpoint_url`, ...; `allow_http` /
//! `aws_allow_http` set [`LocationOptions::allow_http`]).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::error::{ConvertError, Result};

/// An object store and the prefix under which `contacts/...` is written.
#[derive(Clone)]
pub struct OutputLocation {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    display: String,
    /// The directory behind a local store, to tidy up directories object stores cannot delete.
    local_root: Option<std::path::PathBuf>,
    /// The bucket behind an `s3://` store (its root), for the URL of a Delta table.
    #[cfg_attr(not(feature = "delta"), allow(dead_code))]
    s3_bucket: Option<String>,
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
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocationOptions {
    /// Accept a plain-`http` S3 endpoint that is not on a loopback address (default false:
    /// credentials would cross the network in clear text).
    pub allow_http: bool,
    /// Create a local directory that does not exist yet, as `mkdir -p` (default true). The
    /// local object store needs an existing root; false makes a missing directory an error.
    pub create_local_dir: bool,
    /// Settings of an `s3://` location, applied over the environment's: object_store's
    /// [`AmazonS3ConfigKey`] names, with or without their `aws_` prefix (`aws_region`,
    /// `aws_endpoint_url`, `aws_access_key_id`, ...), as deltalake's and Polars'
    /// `storage_options` take them. `allow_http`/`aws_allow_http` (`true`/`false`) sets
    /// [`allow_http`](Self::allow_http). An unknown key is an error; so is any key for a local
    /// directory, which has no settings. Values are never shown (`Debug` prints the keys).
    pub storage_options: Vec<(String, String)>,
}

impl Default for LocationOptions {
    fn default() -> Self {
        LocationOptions {
            allow_http: false,
            create_local_dir: true,
            storage_options: Vec::new(),
        }
    }
}

impl fmt::Debug for LocationOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self
            .storage_options
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        f.debug_struct("LocationOptions")
            .field("allow_http", &self.allow_http)
            .field("create_local_dir", &self.create_local_dir)
            .field("storage_options", &keys)
            .finish()
    }
}

impl LocationOptions {
    /// Sets [`allow_http`](Self::allow_http).
    pub fn with_allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Sets [`create_local_dir`](Self::create_local_dir).
    pub fn with_create_local_dir(mut self, create: bool) -> Self {
        self.create_local_dir = create;
        self
    }

    /// Adds one of the [`storage_options`](Self::storage_options).
    pub fn with_storage_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.storage_options.push((key.into(), value.into()));
        self
    }
}

impl OutputLocation {
    /// Parses `input` with the default [`LocationOptions`]: `s3://bucket[/prefix]`, or a local
    /// directory path, **created if missing** (the local object store needs an existing root).
    ///
    /// Any other `scheme://` is refused, as are `s3://` without a bucket and prefixes with empty
    /// or relative (`.`/`..`) segments.
    pub fn parse(input: &str) -> Result<OutputLocation> {
        Self::parse_with(input, LocationOptions::default())
    }

    /// Parses `input` as [`parse`](Self::parse) does, with `options`.
    pub fn parse_with(input: &str, options: LocationOptions) -> Result<OutputLocation> {
        let mut allow_http = options.allow_http;
        let fail = |reason: &str| ConvertError::Location {
            input: input.to_owned(),
            reason: reason.to_owned(),
        };
        if input.trim().is_empty() {
            return Err(fail("it is empty"));
        }
        match input.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("s3") => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(fail("no bucket name; expected s3://bucket/prefix"));
                }
                if !bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
                {
                    return Err(fail(
                        "a bucket name has only lowercase letters, digits, '-' and '.'",
                    ));
                }
                let prefix = parse_prefix(prefix).map_err(|reason| fail(&reason))?;
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                for (key, value) in &options.storage_options {
                    let key = key.to_ascii_lowercase();
                    if key == "allow_http" || key == "aws_allow_http" {
                        allow_http = match value.to_ascii_lowercase().as_str() {
                            "true" | "1" => true,
                            "false" | "0" => false,
                            _ => {
                                return Err(fail(&format!(
                                    "storage option {key} takes true or false"
                                )));
                            }
                        };
                        continue;
                    }
                    let config_key: AmazonS3ConfigKey = key
                        .parse()
                        .map_err(|_| fail(&format!("unknown storage option {key:?}")))?;
                    builder = builder.with_config(config_key, value);
                }
                let store = build_s3(builder, allow_http).map_err(|reason| fail(&reason))?;
                Ok(OutputLocation {
                    store,
                    prefix,
                    display: format!("s3://{}", rest.trim_end_matches('/')),
                    local_root: None,
                    s3_bucket: Some(bucket.to_owned()),
                })
            }
            Some((scheme, _)) => Err(fail(&format!(
                "unsupported scheme {scheme:?}; use s3://bucket/prefix or a local directory"
            ))),
            None if input
                .get(..3)
                .is_some_and(|s| s.eq_ignore_ascii_case("s3:")) =>
            {
                // `s3:/bucket` or `s3:bucket` is a mistyped S3 URL, not a local folder `s3:`.
                Err(fail(
                    "looks like an S3 URL but lacks `//`; expected s3://bucket/prefix",
                ))
            }
            None => {
                if let Some((key, _)) = options.storage_options.first() {
                    return Err(fail(&format!(
                        "storage option {key:?} given for a local directory, which takes none"
                    )));
                }
                if options.create_local_dir {
                    std::fs::create_dir_all(input)
                        .map_err(|e| fail(&format!("cannot create the directory: {e}")))?;
                }
                let root = std::fs::canonicalize(input)
                    .map_err(|e| fail(&format!("cannot resolve the directory: {e}")))?;
                let store = LocalFileSystem::new_with_prefix(&root)
                    .map_err(|e| fail(&e.to_string()))?
                    .with_automatic_cleanup(true);
                Ok(OutputLocation {
                    store: Arc::new(store),
                    prefix: Path::default(),
                    display: input.to_owned(),
                    local_root: Some(root),
                    s3_bucket: None,
                })
            }
        }
    }

    /// A location in any object store (GCS, Azure, in-memory, ...), under `prefix`.
    pub fn from_store(store: Arc<dyn ObjectStore>, prefix: impl Into<Path>) -> OutputLocation {
        let prefix = prefix.into();
        OutputLocation {
            display: format!("{store}/{prefix}"),
            store,
            prefix,
            local_root: None,
            s3_bucket: None,
        }
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// A streaming upload to `path` here, in parts of
    /// [`UPLOAD_PART_BYTES`](crate::sink::UPLOAD_PART_BYTES) (S3's smallest part) on an object
    /// store and [`LOCAL_UPLOAD_PART_BYTES`](crate::sink::LOCAL_UPLOAD_PART_BYTES) on a local
    /// directory.
    pub(crate) fn upload(&self, path: &Path) -> object_store::buffered::BufWriter {
        let part_bytes = if self.local_root.is_some() {
            crate::store::LOCAL_UPLOAD_PART_BYTES
        } else {
            crate::store::UPLOAD_PART_BYTES
        };
        crate::store::upload(&self.store, path, part_bytes)
    }

    /// The prefix inside the store (empty for a local directory, which is the store's root).
    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Removes the local directory of object path `dir` if it is empty (a no-op elsewhere).
    pub(crate) fn remove_empty_local_dir(&self, dir: &Path) {
        if let Some(root) = &self.local_root {
            let mut path = root.clone();
            path.extend(dir.parts().map(|p| p.as_ref().to_owned()));
            // Fails when not empty or already gone, both of which are fine.
            let _ = std::fs::remove_dir(path);
        }
    }

    /// The store with "/" at its root and the URL of the table `table` in it, as delta-rs
    /// resolves a table: `file:///dir/table` over the root of the file system,
    /// `s3://bucket/prefix/table` over the bucket, and `memory:///prefix/table` over any other
    /// store given to [`from_store`](Self::from_store) (the URL only names the path there).
    #[cfg(feature = "delta")]
    pub(crate) fn delta_root(&self, table: &str) -> Result<(Arc<dyn ObjectStore>, url::Url)> {
        let fail = |reason: String| ConvertError::Location {
            input: self.display.clone(),
            reason,
        };
        let path = self.child([table]);
        if let Some(root) = &self.local_root {
            let mut dir = root.clone();
            dir.extend(path.parts().map(|p| p.as_ref().to_owned()));
            let url = url::Url::from_directory_path(&dir)
                .map_err(|()| fail(format!("{} is not an absolute path", dir.display())))?;
            let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
            return Ok((store, url));
        }
        let url = match &self.s3_bucket {
            Some(bucket) => format!("s3://{bucket}/{path}"),
            None => format!("memory:///{path}"),
        };
        let url = url::Url::parse(&url).map_err(|e| fail(format!("no table URL: {e}")))?;
        Ok((self.store.clone(), url))
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

/// Builds the S3 store, enforcing the plain-http rule on whichever endpoint will be used.
fn build_s3(
    builder: AmazonS3Builder,
    allow_http: bool,
) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    let mut http_ok = false;
    if let Some(endpoint) = &endpoint {
        let url = url::Url::parse(endpoint)
            .map_err(|e| format!("the S3 endpoint {endpoint:?} is not a URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http || is_loopback(&url) => http_ok = true,
            "http" => {
                return Err(format!(
                    "the S3 endpoint {endpoint} is plain http on a non-loopback host; \
                     allow it explicitly (allow_http) or use https"
                ));
            }
            other => return Err(format!("the S3 endpoint scheme {other:?} is not http(s)")),
        }
    }
    let builder = if builder
        .get_config_value(&AmazonS3ConfigKey::Region)
        .is_none()
    {
        builder.with_region("us-east-1")
    } else {
        builder
    };
    let store = builder
        .with_allow_http(http_ok)
        .build()
        .map_err(|e| format!("cannot configure S3: {e}"))?;
    Ok(Arc::new(store))
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
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
    fn malformed_s3_urls_are_refused_clearly() {
        assert!(reason("s3://").contains("no bucket"));
        assert!(reason("s3:///x").contains("no bucket"));
        assert!(reason("s3://Bucket_Name/x").contains("bucket name"));
        assert!(reason("s3://bucket/a//b").contains("empty or relative"));
        assert!(reason("s3://bucket/a/../b").contains("empty or relative"));
        assert!(reason("gs://bucket/x").contains("unsupported scheme \"gs\""));
        assert!(reason("https://example.com/x").contains("unsupported scheme"));
        assert!(reason("").contains("empty"));
        assert!(reason("s3:/bucket/x").contains("s3://bucket/prefix"));
        assert!(reason("S3:bucket").contains("s3://bucket/prefix"));
    }

    #[test]
    fn s3_prefix_is_kept_without_slashes() {
        let builder = AmazonS3Builder::new()
            .with_bucket_name("b")
            .with_access_key_id("k")
            .with_secret_access_key("s");
        let store = build_s3(builder, false).unwrap();
        let loc = OutputLocation::from_store(store, parse_prefix("/exports/trackly/").unwrap());
        assert_eq!(loc.prefix().as_ref(), "exports/trackly");
        assert_eq!(
            loc.child(["contacts", "x.parquet"]).as_ref(),
            "exports/trackly/contacts/x.parquet"
        );
    }

    #[test]
    fn plain_http_endpoints_need_loopback_or_permission() {
        let with = |endpoint: &str| {
            AmazonS3Builder::new()
                .with_bucket_name("b")
                .with_endpoint(endpoint)
                .with_access_key_id("k")
                .with_secret_access_key("s")
        };
        assert!(build_s3(with("http://127.0.0.1:5000"), false).is_ok());
        assert!(build_s3(with("http://localhost:9000"), false).is_ok());
        assert!(build_s3(with("http://[::1]:9000"), false).is_ok());
        assert!(build_s3(with("https://minio.internal:9000"), false).is_ok());
        let err = build_s3(with("http://minio.internal:9000"), false).unwrap_err();
        assert!(err.contains("plain http"), "{err}");
        assert!(build_s3(with("http://minio.internal:9000"), true).is_ok());
        assert!(build_s3(with("ftp://x"), true).is_err());
    }

    #[test]
    fn storage_options_configure_s3_and_never_show_their_values() {
        let options = LocationOptions::default()
            .with_storage_option("aws_endpoint_url", "http://minio.internal:9000")
            .with_storage_option("AWS_ACCESS_KEY_ID", "k")
            .with_storage_option("aws_secret_access_key", "hunter2")
            .with_storage_option("aws_region", "eu-west-1");
        assert!(!format!("{options:?}").contains("hunter2"));
        // Plain http off loopback: refused until allow_http says otherwise.
        let err = OutputLocation::parse_with("s3://b/x", options.clone()).unwrap_err();
        assert!(err.to_string().contains("plain http"), "{err}");
        let allowed = options.with_storage_option("allow_http", "true");
        let loc = OutputLocation::parse_with("s3://b/x", allowed).unwrap();
        assert_eq!(loc.prefix().as_ref(), "x");

        let unknown = LocationOptions::default().with_storage_option("aws_colour", "blue");
        let err = OutputLocation::parse_with("s3://b/x", unknown).unwrap_err();
        assert!(err.to_string().contains("unknown storage option"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let local = LocationOptions::default().with_storage_option("aws_region", "x");
        let err = OutputLocation::parse_with(dir.path().to_str().unwrap(), local).unwrap_err();
        assert!(err.to_string().contains("local directory"), "{err}");
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
