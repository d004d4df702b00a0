//! The object stores behind `s3://`, `gs://` and `az://` (`abfs[s]://`, `https://*.blob.core.windows.net`)
//! locations, each behind its cargo feature (`aws`, `gcp`, `azure`): built from the
//! environment with object_store's `from_env` conventions, then from the caller's
//! [storage options](crate::StorageOptions) (the same keys as deltalake and Polars), with one plain-http rule for
//! every endpoint.
//!
//! Building a store makes no request. Besides the store each backend builds a second one with
//! a short retry budget (two retries within ten seconds), for
//! [`OutputLocation::check_access`](crate::OutputLocation::check_access): a probe against an
//! unreachable endpoint or a missing credential source answers in seconds instead of
//! object_store's three minutes of retries.

#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
use std::net::IpAddr;
use std::sync::Arc;

use object_store::ObjectStore;

#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
use crate::credentials::StorageOptions;

/// Which kind of store a location is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// A local directory.
    Local,
    /// Amazon S3 or an S3-compatible server (`s3://`).
    S3,
    /// Google Cloud Storage (`gs://`).
    Gcs,
    /// Azure Blob Storage or ADLS Gen2 (`az://`, `abfs[s]://`, `https://*.blob.core.windows.net`).
    Azure,
    /// A store given to [`OutputLocation::from_store`](crate::OutputLocation::from_store).
    Other,
}

impl Backend {
    /// What a bucket is called on this backend, for messages.
    pub(crate) fn bucket_word(self) -> &'static str {
        match self {
            Backend::Azure => "container",
            _ => "bucket",
        }
    }

    /// The backend's name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Local => "the local file system",
            Backend::S3 => "S3",
            Backend::Gcs => "Google Cloud Storage",
            Backend::Azure => "Azure Blob Storage",
            Backend::Other => "the object store",
        }
    }
}

/// What a cloud location knows beside its store (built with it by its backend), for its
/// probe and its error messages.
pub(crate) struct Cloud {
    /// The bucket (or container).
    pub(crate) bucket: String,
    /// The same store with `probe_retry`'s short retry budget, for
    /// [`OutputLocation::check_access`](crate::OutputLocation::check_access).
    pub(crate) probe: Arc<dyn ObjectStore>,
    /// The endpoint requests go to (`None`: the cloud's default).
    pub(crate) endpoint: Option<String>,
    /// Where the credentials come from, as a person would look for them.
    pub(crate) credentials: String,
    /// When the credentials come from the cloud's last resort (an instance metadata service,
    /// a managed identity endpoint): the hosts it is reached at, as they appear in its errors.
    pub(crate) metadata_hosts: Vec<String>,
}

/// What a backend built: the store, and what else its location knows.
pub(crate) type Built = (Arc<dyn ObjectStore>, Cloud);

/// `host[:port]` of an endpoint URL, as errors quote it.
#[cfg(any(feature = "aws", feature = "azure"))]
fn host_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => url.to_owned(),
        },
        Err(_) => url.to_owned(),
    }
}

/// The probe's retry budget: two retries within ten seconds. object_store's default (ten
/// retries within three minutes) is right for the export's requests, not for finding out that
/// nothing answers.
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
pub(crate) fn probe_retry() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 2,
        retry_timeout: std::time::Duration::from_secs(10),
        ..Default::default()
    }
}

/// The plain-http rule: an `http://` endpoint is accepted only on a loopback address, or when
/// the caller allows it (`allow_http`, or the storage option `allow_http=true`). Returns
/// whether the store must be told to allow http.
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
fn http_allowed(
    what: &str,
    endpoint: Option<&str>,
    allow_http: bool,
) -> std::result::Result<bool, String> {
    let Some(endpoint) = endpoint else {
        return Ok(allow_http);
    };
    let url = url::Url::parse(endpoint)
        .map_err(|e| format!("the {what} endpoint {endpoint:?} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(allow_http),
        "http" if allow_http || is_loopback(&url) => Ok(true),
        "http" => Err(format!(
            "the {what} endpoint {endpoint} is plain http on a non-loopback host; \
             allow it explicitly (allow_http) or use https"
        )),
        other => Err(format!(
            "the {what} endpoint scheme {other:?} is not http(s)"
        )),
    }
}

#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// What the three cloud builders of object_store share, so that reading the options, the
/// plain-http rule and building the store and its probe twin are written once.
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
trait CloudBuilder: Clone + Sized {
    /// The builder's configuration key.
    type Key: std::str::FromStr;
    /// The store it builds.
    type Store: ObjectStore;
    /// The backend's name, for messages.
    const NAME: &'static str;
    /// Its key of `allow_http`.
    const ALLOW_HTTP: Self::Key;

    fn from_env() -> Self;
    fn with_config(self, key: Self::Key, value: &str) -> Self;
    fn get(&self, key: &Self::Key) -> Option<String>;
    fn with_retry(self, retry: object_store::RetryConfig) -> Self;
    fn build(self) -> object_store::Result<Self::Store>;

    /// `from_env()`, then `options`, refusing a key the backend does not know.
    fn configured(options: &StorageOptions) -> std::result::Result<Self, String> {
        let mut builder = Self::from_env();
        for (key, value) in options.iter() {
            let parsed: Self::Key = key
                .parse()
                .map_err(|_| format!("unknown storage option {key:?} for {}", Self::NAME))?;
            builder = builder.with_config(parsed, value);
        }
        Ok(builder)
    }

    /// Whether the configuration sets a `true`-like value for `key` (object_store's boolean
    /// config parsing accepts these).
    fn is_set_true(&self, key: &Self::Key) -> bool {
        let value = self.get(key).map(|v| v.to_ascii_lowercase());
        matches!(value.as_deref(), Some("true" | "1" | "yes" | "on"))
    }

    /// `host[:port]` of the instance metadata endpoint set under `key`, or of the default
    /// (`169.254.169.254`), as its errors quote it.
    #[cfg(any(feature = "aws", feature = "azure"))]
    fn metadata_host(&self, key: &Self::Key) -> String {
        host_of(
            &self
                .get(key)
                .unwrap_or_else(|| "http://169.254.169.254".to_owned()),
        )
    }

    /// The plain-http rule for `endpoint` (see [`http_allowed`]), the caller's `allow_http`
    /// and the storage option `allow_http` together.
    fn http_ok(
        &self,
        endpoint: Option<&str>,
        allow_http: bool,
    ) -> std::result::Result<bool, String> {
        let allow_http = allow_http || self.is_set_true(&Self::ALLOW_HTTP);
        http_allowed(Self::NAME, endpoint, allow_http)
    }

    /// The store, its probe twin with [`probe_retry`]'s budget, and what errors name.
    fn finish(
        self,
        bucket: &str,
        endpoint: Option<String>,
        credentials: &str,
        metadata_hosts: Vec<String>,
    ) -> std::result::Result<Built, String> {
        let build = |b: Self| {
            b.build()
                .map_err(|e| format!("cannot configure {}: {e}", Self::NAME))
        };
        let probe = build(self.clone().with_retry(probe_retry()))?;
        let cloud = Cloud {
            bucket: bucket.to_owned(),
            probe: Arc::new(probe),
            endpoint,
            credentials: credentials.to_owned(),
            metadata_hosts,
        };
        Ok((Arc::new(build(self)?), cloud))
    }
}

/// Implements `CloudBuilder` for object_store's builders, each behind its feature.
macro_rules! cloud_builders {
    ($($feature:literal: $module:ident::{$builder:ident, $key:ident, $store:ident}, $name:literal;)*) => {$(
        #[cfg(feature = $feature)]
        impl CloudBuilder for object_store::$module::$builder {
            type Key = object_store::$module::$key;
            type Store = object_store::$module::$store;
            const NAME: &'static str = $name;
            const ALLOW_HTTP: Self::Key =
                Self::Key::Client(object_store::client::ClientConfigKey::AllowHttp);

            fn from_env() -> Self {
                Self::from_env()
            }
            fn with_config(self, key: Self::Key, value: &str) -> Self {
                Self::with_config(self, key, value)
            }
            fn get(&self, key: &Self::Key) -> Option<String> {
                self.get_config_value(key)
            }
            fn with_retry(self, retry: object_store::RetryConfig) -> Self {
                Self::with_retry(self, retry)
            }
            fn build(self) -> object_store::Result<Self::Store> {
                Self::build(self)
            }
        }
    )*};
}

cloud_builders! {
    "aws": aws::{AmazonS3Builder, AmazonS3ConfigKey, AmazonS3}, "S3";
    "gcp": gcp::{GoogleCloudStorageBuilder, GoogleConfigKey, GoogleCloudStorage}, "Google Cloud Storage";
    "azure": azure::{MicrosoftAzureBuilder, AzureConfigKey, MicrosoftAzure}, "Azure";
}

/// `s3://bucket`: `AmazonS3Builder::from_env()`, then `options`; the region defaults to
/// `us-east-1`.
#[cfg(feature = "aws")]
pub(crate) fn s3(
    bucket: &str,
    options: &StorageOptions,
    allow_http: bool,
) -> std::result::Result<Built, String> {
    let builder = object_store::aws::AmazonS3Builder::configured(options)?.with_bucket_name(bucket);
    s3_from(builder, allow_http)
}

/// Builds an S3 store from a configured builder (also used by the unit tests).
#[cfg(feature = "aws")]
pub(crate) fn s3_from(
    builder: object_store::aws::AmazonS3Builder,
    allow_http: bool,
) -> std::result::Result<Built, String> {
    use object_store::aws::AmazonS3ConfigKey as Key;
    let endpoint = builder
        .get_config_value(&Key::S3Endpoint)
        .or_else(|| builder.get_config_value(&Key::Endpoint));
    let http_ok = builder.http_ok(endpoint.as_deref(), allow_http)?;
    let builder = if builder.get_config_value(&Key::Region).is_none() {
        builder.with_region("us-east-1")
    } else {
        builder
    };
    let set = |k: Key| builder.get_config_value(&k).is_some();
    let mut metadata_hosts = Vec::new();
    let credentials = if set(Key::AccessKeyId) {
        "the access key of AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the storage options \
         aws_access_key_id / aws_secret_access_key)"
    } else if set(Key::WebIdentityTokenFile) {
        "the web identity token of AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN"
    } else if set(Key::ContainerCredentialsRelativeUri) || set(Key::ContainerCredentialsFullUri) {
        "the container credentials of AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI"
    } else if builder.is_set_true(&Key::SkipSignature) {
        "none (unsigned requests: aws_skip_signature)"
    } else {
        metadata_hosts.push(builder.metadata_host(&Key::MetadataEndpoint));
        "the EC2 instance metadata service, the last source tried: none of AWS_ACCESS_KEY_ID, \
         AWS_WEB_IDENTITY_TOKEN_FILE, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (nor the storage \
         option aws_access_key_id) is set"
    };
    let bucket = builder.get_config_value(&Key::Bucket).unwrap_or_default();
    builder
        .with_allow_http(http_ok)
        .finish(&bucket, endpoint, credentials, metadata_hosts)
}

/// `gs://bucket`: `GoogleCloudStorageBuilder::from_env()`, then `options`.
#[cfg(feature = "gcp")]
pub(crate) fn gcs(
    bucket: &str,
    options: &StorageOptions,
    allow_http: bool,
) -> std::result::Result<Built, String> {
    use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey as Key};
    let builder = GoogleCloudStorageBuilder::configured(options)?.with_bucket_name(bucket);
    let set = |k: Key| builder.get_config_value(&k).is_some();
    // The endpoint may also come from the service account file (`gcs_base_url`, the emulator
    // convention), which only the builder reads; the plain-http rule then applies to it there.
    let endpoint = builder
        .get_config_value(&Key::BaseUrl)
        .or_else(|| service_account_base_url(&builder));
    let http_ok = builder.http_ok(endpoint.as_deref(), allow_http)?;
    let mut metadata_hosts = Vec::new();
    let credentials = if set(Key::ServiceAccountKey) {
        "the service account key of GOOGLE_SERVICE_ACCOUNT_KEY (or the storage option \
         google_service_account_key)"
    } else if set(Key::ServiceAccount) {
        "the service account file of GOOGLE_SERVICE_ACCOUNT (or the storage option \
         google_service_account)"
    } else if set(Key::ApplicationCredentials) {
        "the application default credentials of GOOGLE_APPLICATION_CREDENTIALS"
    } else if builder.is_set_true(&Key::SkipSignature) {
        "none (unsigned requests: google_skip_signature)"
    } else {
        metadata_hosts = vec![
            "metadata.google.internal".to_owned(),
            "169.254.169.254".to_owned(),
        ];
        "gcloud's application default credentials file, then the GCE metadata server: none of \
         GOOGLE_SERVICE_ACCOUNT, GOOGLE_SERVICE_ACCOUNT_KEY, GOOGLE_APPLICATION_CREDENTIALS is set"
    };
    builder
        .with_config(
            GoogleCloudStorageBuilder::ALLOW_HTTP,
            if http_ok { "true" } else { "false" },
        )
        .finish(bucket, endpoint, credentials, metadata_hosts)
}

/// `gcs_base_url` of the service account file, when one is named and readable.
#[cfg(feature = "gcp")]
fn service_account_base_url(
    builder: &object_store::gcp::GoogleCloudStorageBuilder,
) -> Option<String> {
    use object_store::gcp::GoogleConfigKey as Key;
    let json = match builder.get_config_value(&Key::ServiceAccountKey) {
        Some(key) => key,
        None => std::fs::read_to_string(builder.get_config_value(&Key::ServiceAccount)?).ok()?,
    };
    let value: serde_json::Value = serde_json::from_str(&json).ok()?;
    value.get("gcs_base_url")?.as_str().map(str::to_owned)
}

/// An Azure container (`az://`, `abfs[s]://`, `https://*.blob.core.windows.net`):
/// `MicrosoftAzureBuilder::from_env()`, then `options`, then what the URL names (the
/// container, and the account when it names one).
#[cfg(feature = "azure")]
pub(crate) fn azure(
    container: &str,
    account: Option<&str>,
    options: &StorageOptions,
    allow_http: bool,
) -> std::result::Result<Built, String> {
    use object_store::azure::{AzureConfigKey as Key, MicrosoftAzureBuilder};
    let builder = MicrosoftAzureBuilder::configured(options)?.with_container_name(container);
    let builder = match account {
        Some(account) => builder.with_account(account),
        None => builder,
    };
    let set = |k: Key| builder.get_config_value(&k).is_some();
    let emulator = builder.is_set_true(&Key::UseEmulator);
    // The emulator's address is read by the builder from AZURITE_BLOB_STORAGE_URL (default
    // http://127.0.0.1:10000), where object_store allows http itself.
    let endpoint = if emulator {
        Some(
            std::env::var("AZURITE_BLOB_STORAGE_URL")
                .unwrap_or_else(|_| "http://127.0.0.1:10000".to_owned()),
        )
    } else {
        builder.get_config_value(&Key::Endpoint)
    };
    let http_ok = builder.http_ok(endpoint.as_deref(), allow_http)?;
    if let Some(dfs) = endpoint.as_deref().filter(|e| is_dfs_endpoint(e)) {
        return Err(format!(
            "the Azure endpoint {dfs} is the Data Lake (dfs) endpoint, but every request goes \
             through the Blob API, which serves flat and hierarchical-namespace (ADLS Gen2) \
             accounts alike: set azure_storage_endpoint to the account's \
             https://ACCOUNT.blob.core.windows.net, or leave it unset (an \
             abfss://container@ACCOUNT.dfs.core.windows.net URL only names the account)"
        ));
    }
    if !emulator && !set(Key::AccountName) {
        return Err(
            "no storage account: name it in the URL (abfss://container@account.dfs.core.windows.net/…) \
             or set AZURE_STORAGE_ACCOUNT_NAME (or the storage option azure_storage_account_name)"
                .to_owned(),
        );
    }
    let mut metadata_hosts = Vec::new();
    let credentials = if emulator {
        "the Azurite emulator's well-known key (AZURE_STORAGE_USE_EMULATOR)"
    } else if set(Key::AccessKey) {
        "the account key of AZURE_STORAGE_ACCOUNT_KEY (or the storage option \
         azure_storage_account_key)"
    } else if set(Key::SasKey) {
        "the SAS token of AZURE_STORAGE_SAS_TOKEN (or the storage option azure_storage_sas_token)"
    } else if set(Key::Token) {
        "the bearer token of AZURE_STORAGE_TOKEN"
    } else if set(Key::ClientSecret) {
        "the service principal of AZURE_CLIENT_ID / AZURE_CLIENT_SECRET / AZURE_TENANT_ID"
    } else if set(Key::FederatedTokenFile) {
        "workload identity (AZURE_FEDERATED_TOKEN_FILE with AZURE_CLIENT_ID and AZURE_TENANT_ID)"
    } else if builder.is_set_true(&Key::UseAzureCli) {
        "the Azure CLI's login (AZURE_USE_AZURE_CLI)"
    } else if builder.is_set_true(&Key::SkipSignature) {
        "none (unsigned requests: azure_skip_signature)"
    } else {
        metadata_hosts.push(builder.metadata_host(&Key::MsiEndpoint));
        "the managed identity endpoint, the last source tried: none of AZURE_STORAGE_ACCOUNT_KEY, \
         AZURE_STORAGE_SAS_TOKEN, AZURE_CLIENT_SECRET, AZURE_FEDERATED_TOKEN_FILE is set"
    };
    let builder = if emulator {
        builder
    } else {
        builder.with_allow_http(http_ok)
    };
    builder.finish(container, endpoint, credentials, metadata_hosts)
}

/// Whether `endpoint` is an Azure Data Lake Storage (dfs) endpoint: `*.dfs.core.windows.net`
/// (private endpoints, `*.privatelink.dfs.core.windows.net`, included), whose REST API is not
/// the Blob API object_store speaks.
#[cfg(feature = "azure")]
fn is_dfs_endpoint(endpoint: &str) -> bool {
    url::Url::parse(endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|host| host.ends_with(".dfs.core.windows.net"))
}

#[cfg(all(test, feature = "azure"))]
mod tests {
    use super::*;

    #[test]
    fn a_data_lake_endpoint_is_refused_with_the_blob_endpoint_to_use() {
        let options = StorageOptions::new()
            .with("azure_storage_account_name", "lake")
            .with("azure_storage_account_key", "a2V5")
            .with(
                "azure_storage_endpoint",
                "https://lake.dfs.core.windows.net",
            );
        let err = azure("c", None, &options, false).err().unwrap();
        assert!(err.contains("Data Lake (dfs) endpoint"), "{err}");
        assert!(err.contains("blob.core.windows.net"), "{err}");
        assert!(is_dfs_endpoint(
            "https://lake.privatelink.dfs.core.windows.net"
        ));
        assert!(!is_dfs_endpoint("https://lake.blob.core.windows.net"));
        assert!(!is_dfs_endpoint("http://127.0.0.1:10000/devstoreaccount1"));
    }
}
