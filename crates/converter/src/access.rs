//! Whether an output location can be used, found out before a run writes anything: a small
//! probe object written under the prefix and removed again
//! ([`OutputLocation::check_access`]), and the store's errors turned into what a person can
//! act on ([`ConvertError::Access`]).
//!
//! | what the store said | the message |
//! |---|---|
//! | not found, on a write | the bucket (container) does not exist |
//! | 401 / 403 | the credentials were refused, and where they came from |
//! | a credential source failed (instance metadata, managed identity) | no credentials were found, and which sources were tried |
//! | no connection | nothing answers at the endpoint |
//! | a TLS handshake that got plain HTTP | the endpoint speaks http, not https |
//! | a time-out | the endpoint did not answer in time |
//! | Azure: an answer of the Data Lake (dfs) endpoint, or a Blob API refusal of a hierarchical-namespace account | which kind of account and endpoint met, and the Blob endpoint to use |
//!
//! Anything else stays the store's own error ([`ConvertError::Storage`]). The probe goes
//! through a twin of the location's store with a short retry budget (two retries within ten
//! seconds), so an endpoint that does not answer is reported in seconds.

use std::error::Error as StdError;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use crate::backend::Backend;
use crate::backend::Cloud;
use crate::error::{ConvertError, Result};
use crate::location::OutputLocation;

/// The probe object's name under the prefix: hidden from readers by its `_`, unique to the
/// process and instant.
fn probe_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("_trackly-probe-{}-{nanos}", std::process::id())
}

impl OutputLocation {
    /// Checks that the location exists and can be written: writes a small probe object under
    /// the prefix and deletes it. A local directory or a store given to
    /// [`from_store`](Self::from_store) is not probed (a local directory was checked when it
    /// was parsed).
    ///
    /// Fails with [`ConvertError::Access`] when the store's answer says what is wrong (see the
    /// [module docs](crate::access)), [`ConvertError::Storage`] otherwise.
    pub async fn check_access(&self) -> Result<()> {
        let Some(cloud) = self.cloud() else {
            return Ok(());
        };
        let path = self.child([probe_name().as_str()]);
        let store = cloud.probe.as_ref();
        if let Err(e) = store
            .put(
                &path,
                PutPayload::from_static(b"trackly-export write probe\n"),
            )
            .await
        {
            return Err(self.access_error(cloud, &path, Operation::Write, e));
        }
        match store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.access_error(cloud, &path, Operation::Delete, e)),
        }
    }

    /// `error` as one line a person can act on when the store's answer says what is wrong with
    /// the way this location is reached (Azure: its account kind, flat or hierarchical
    /// namespace, against its endpoint; see the [module docs](crate::access)), wherever in a
    /// run it came; any other error unchanged. [`check_access`](Self::check_access) explains
    /// its own errors more widely (missing buckets, credentials, endpoints).
    pub fn explain(&self, error: ConvertError) -> ConvertError {
        let Some(cloud) = self.cloud() else {
            return error;
        };
        let ConvertError::Storage { path, source } = error else {
            return error;
        };
        let bucket = format!("{} {:?}", self.backend().bucket_word(), cloud.bucket);
        let found = (self.backend() == Backend::Azure)
            .then(|| chain_text(&source))
            .and_then(|text| {
                let code = error_code(&text)?;
                azure_account_kind(code, &bucket)
            });
        match found {
            Some((problem, hint)) => ConvertError::Access {
                location: self.to_string(),
                problem,
                hint,
                source: Box::new(source),
            },
            None => ConvertError::Storage { path, source },
        }
    }

    fn access_error(
        &self,
        cloud: &Cloud,
        path: &Path,
        op: Operation,
        error: object_store::Error,
    ) -> ConvertError {
        match explain(self.backend(), cloud, op, &error) {
            Some((problem, hint)) => ConvertError::Access {
                location: self.to_string(),
                problem,
                hint,
                source: Box::new(error),
            },
            None => ConvertError::storage(path, error),
        }
    }
}

/// What the probe was doing when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Write,
    Delete,
}

/// What is wrong and what to do, when the error says it.
fn explain(
    backend: Backend,
    cloud: &Cloud,
    op: Operation,
    error: &object_store::Error,
) -> Option<(String, String)> {
    let bucket = format!("{} {:?}", backend.bucket_word(), cloud.bucket);
    let endpoint = cloud
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("{}'s default endpoint", backend.name()));
    let text = chain_text(error);
    let lower = text.to_ascii_lowercase();
    // A credential source that failed: the instance metadata service (EC2, GCE) or Azure's
    // managed identity endpoint, the last source each cloud tries.
    if cloud
        .metadata_hosts
        .iter()
        .any(|host| lower.contains(&host.to_ascii_lowercase()))
    {
        return Some((
            format!(
                "no {} credentials were found (tried {})",
                backend.name(),
                cloud.credentials
            ),
            credential_hint(backend).to_owned(),
        ));
    }
    if backend == Backend::Azure
        && let Some(code) = error_code(&text)
        && let Some(found) = azure_account_kind(code, &bucket)
    {
        return Some(found);
    }
    if let Some(refused) = refusal(backend, cloud, op, error, &bucket, &endpoint, &text) {
        return Some(refused);
    }
    unreachable_endpoint(backend, error, &lower, &endpoint)
}

/// The store refused the probe: the bucket is missing, or the credentials may not write or
/// delete there.
fn refusal(
    backend: Backend,
    cloud: &Cloud,
    op: Operation,
    error: &object_store::Error,
    bucket: &str,
    endpoint: &str,
    text: &str,
) -> Option<(String, String)> {
    match error {
        object_store::Error::NotFound { .. } if op == Operation::Write => Some((
            format!("the {bucket} does not exist at {endpoint}"),
            format!(
                "create it, or correct its name in the URL{}",
                if backend == Backend::Azure {
                    " (and the storage account)"
                } else {
                    ""
                }
            ),
        )),
        object_store::Error::Unauthenticated { .. }
        | object_store::Error::PermissionDenied { .. } => {
            let code = error_code(text)
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            let problem = match op {
                Operation::Write => format!(
                    "{} refused to let these credentials write to the {bucket}{code}; they came from {}",
                    backend.name(),
                    cloud.credentials
                ),
                Operation::Delete => format!(
                    "{} let these credentials write to the {bucket} but not delete{code} (a run \
                     moves and removes objects); they came from {}",
                    backend.name(),
                    cloud.credentials
                ),
            };
            Some((
                problem,
                "check that the credentials are current and allowed to write, list and delete \
                 under this prefix"
                    .to_owned(),
            ))
        }
        _ => None,
    }
}

/// The endpoint cannot be talked to: not https, not there, or not answering in time.
fn unreachable_endpoint(
    backend: Backend,
    error: &object_store::Error,
    lower: &str,
    endpoint: &str,
) -> Option<(String, String)> {
    if lower.contains("invalidcontenttype")
        || lower.contains("corrupt message")
        || lower.contains("wrong version number")
    {
        return Some((
            format!("{endpoint} does not answer https (a plain-http port?)"),
            "use an http:// endpoint for a local server on loopback, or the server's https port"
                .to_owned(),
        ));
    }
    let problem = if is_connect_error(error)
        || lower.contains("connection refused")
        || lower.contains("dns error")
    {
        format!("nothing answers at {endpoint}")
    } else if lower.contains("timed out") || lower.contains("timeout") {
        format!("{endpoint} did not answer in time")
    } else {
        return None;
    };
    let setting = endpoint_setting(backend);
    let hint = format!("check the endpoint ({setting}) and that the network reaches it");
    Some((problem, hint))
}

/// The error, then each of its sources.
fn chain(error: &object_store::Error) -> impl Iterator<Item = &(dyn StdError + 'static)> {
    std::iter::successors(Some(error as &(dyn StdError + 'static)), |e| (*e).source())
}

/// The error and its sources as one text.
fn chain_text(error: &object_store::Error) -> String {
    let parts: Vec<String> = chain(error).map(ToString::to_string).collect();
    parts.join(": ")
}

/// Whether a connection could not be made (object_store's own classification).
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
fn is_connect_error(error: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let http = chain(error).find_map(|e| e.downcast_ref::<HttpError>());
    http.is_some_and(|http| matches!(http.kind(), HttpErrorKind::Connect))
}

#[cfg(not(any(feature = "aws", feature = "gcp", feature = "azure")))]
fn is_connect_error(_: &object_store::Error) -> bool {
    false
}

/// The `<Code>...</Code>` of an S3 or Azure Blob error body (`AccessDenied`,
/// `AuthenticationFailed`, ...), or the `"code"` of an Azure Data Lake (dfs) endpoint's JSON
/// error body (`{"error":{"code":"FilesystemNotFound",...}}`).
fn error_code(text: &str) -> Option<&str> {
    if let Some(start) = text.find("<Code>").map(|i| i + "<Code>".len()) {
        let end = text[start..].find("</Code>")? + start;
        return Some(&text[start..end]);
    }
    let after = &text[text.find("\"code\"")? + "\"code\"".len()..];
    let start = after.find('"')? + 1;
    let end = after[start..].find('"')? + start;
    Some(&after[start..end])
}

/// What to do when Azure says the account and the way it is reached do not fit: the
/// account's Data Lake (dfs) endpoint answered (object_store speaks the Blob API, so an
/// endpoint setting points there), or a hierarchical-namespace (ADLS Gen2) account refused a
/// Blob API operation. The codes and their meaning are Microsoft's:
/// <https://learn.microsoft.com/en-us/rest/api/storageservices/blob-service-error-codes>
/// (`BlobOperationNotSupported`), the Data Lake Storage Gen2 REST API's error list
/// (<https://learn.microsoft.com/en-us/rest/api/storageservices/datalakestoragegen2/filesystem/list>,
/// "Other Status Codes": `FilesystemNotFound`) and the endpoint's own message for
/// `EndpointUnsupportedAccountFeatures` ("This endpoint does not support BlobStorageEvents or
/// SoftDelete"); <https://learn.microsoft.com/en-us/azure/storage/blobs/data-lake-storage-known-issues>
/// lists the Blob APIs a hierarchical namespace refuses.
fn azure_account_kind(code: &str, bucket: &str) -> Option<(String, String)> {
    const USE_BLOB: &str = "reach the account through its Blob endpoint, which serves flat and \
         hierarchical-namespace accounts alike: set azure_storage_endpoint to \
         https://ACCOUNT.blob.core.windows.net or leave it unset (an \
         abfss://container@ACCOUNT.dfs.core.windows.net URL only names the account)";
    let found = match code {
        "EndpointUnsupportedAccountFeatures" => (
            "the requests reached the storage account's Data Lake (dfs) endpoint, which refuses \
             accounts with Blob features it does not support, such as soft delete or Blob \
             storage events (EndpointUnsupportedAccountFeatures)"
                .to_owned(),
            USE_BLOB.to_owned(),
        ),
        "FilesystemNotFound" => (
            format!(
                "the {bucket} does not exist, says the storage account's Data Lake (dfs) \
                 endpoint (FilesystemNotFound)"
            ),
            format!("create it, or correct its name in the URL; and {USE_BLOB}"),
        ),
        "BlobOperationNotSupported" => (
            "the storage account has a hierarchical namespace (ADLS Gen2) and the object was \
             created through its Data Lake API, which a block upload cannot replace \
             (BlobOperationNotSupported)"
                .to_owned(),
            "delete that object, or export under a prefix that no Data Lake (dfs) tool writes"
                .to_owned(),
        ),
        "FeatureNotYetSupportedForHierarchicalNamespaceAccounts"
        | "BlobApiNotYetSupportedForHierarchicalNamespaceAccounts" => (
            format!(
                "the storage account has a hierarchical namespace (ADLS Gen2) and refused a Blob \
                 API operation ({code})"
            ),
            "write to an account without a hierarchical namespace, or to one where the Blob \
             API is available on hierarchical-namespace accounts (multi-protocol access)"
                .to_owned(),
        ),
        _ => return None,
    };
    Some(found)
}

fn credential_hint(backend: Backend) -> &'static str {
    match backend {
        Backend::S3 => {
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the storage options \
             aws_access_key_id / aws_secret_access_key), or run where a role is attached \
             (EKS web identity, ECS task role, EC2 instance profile)"
        }
        Backend::Gcs => {
            "set GOOGLE_APPLICATION_CREDENTIALS or GOOGLE_SERVICE_ACCOUNT to a service account \
             key file (or the storage option google_service_account_key), or run where a \
             service account is attached (GKE workload identity, GCE)"
        }
        Backend::Azure => {
            "set AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN, or AZURE_CLIENT_ID, \
             AZURE_CLIENT_SECRET and AZURE_TENANT_ID (or the storage options of the same names \
             in lower case), or run where a managed or workload identity is attached"
        }
        Backend::Local | Backend::Other => "configure the store's credentials",
    }
}

fn endpoint_setting(backend: Backend) -> &'static str {
    match backend {
        Backend::S3 => "AWS_ENDPOINT_URL or the storage option aws_endpoint",
        Backend::Gcs => {
            "GOOGLE_BASE_URL, the storage option google_base_url, or gcs_base_url in the service account file"
        }
        Backend::Azure => {
            "AZURE_STORAGE_ENDPOINT or the storage option azure_storage_endpoint; \
             AZURITE_BLOB_STORAGE_URL for the emulator"
        }
        Backend::Local | Backend::Other => "the store's endpoint",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_from_xml_bodies() {
        let text = "Client error with status 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>x</Message></Error>";
        assert_eq!(error_code(text), Some("AccessDenied"));
        assert_eq!(error_code("no body"), None);
    }

    #[test]
    fn error_codes_are_read_from_data_lake_json_bodies() {
        let text = r#"Server returned non-2xx status code: 404 Not Found: {"error":{"code":"FilesystemNotFound","message":"The specified filesystem does not exist."}}"#;
        assert_eq!(error_code(text), Some("FilesystemNotFound"));
    }

    /// A cloud location over `endpoint`, as its errors name it.
    fn cloud(endpoint: &str) -> Cloud {
        Cloud {
            bucket: "lake".to_owned(),
            probe: std::sync::Arc::new(object_store::memory::InMemory::new()),
            endpoint: Some(endpoint.to_owned()),
            credentials: "the account key of AZURE_STORAGE_ACCOUNT_KEY".to_owned(),
            metadata_hosts: Vec::new(),
        }
    }

    /// The error object_store makes of an answer with `status` and `body` (a 404 is
    /// `NotFound`, a 409 `AlreadyExists`, a 400 `Generic`), with its text.
    fn answer(status: u16, body: &str) -> object_store::Error {
        let reason = match status {
            400 => "400 Bad Request",
            404 => "404 Not Found",
            _ => "409 Conflict",
        };
        let source: Box<dyn StdError + Send + Sync> = format!(
            "Error performing PUT https://lake.dfs.core.windows.net/lake/x/_trackly-probe in 80ms \
             - Server returned non-2xx status code: {reason}: {body}"
        )
        .into();
        let path = "x/_trackly-probe".to_owned();
        match status {
            404 => object_store::Error::NotFound { path, source },
            409 => object_store::Error::AlreadyExists { path, source },
            _ => object_store::Error::Generic {
                store: "MicrosoftAzure",
                source,
            },
        }
    }

    #[test]
    fn azure_answers_about_the_account_kind_say_which_endpoint_to_use() {
        let dfs = cloud("https://lake.dfs.core.windows.net");
        let explained = |status, body: &str| {
            explain(
                Backend::Azure,
                &dfs,
                Operation::Write,
                &answer(status, body),
            )
            .map(|(problem, hint)| format!("{problem}; {hint}"))
            .unwrap_or_default()
        };
        // The Data Lake endpoint's answers, as its REST API documents them (JSON bodies).
        let line = explained(
            409,
            r#"{"error":{"code":"EndpointUnsupportedAccountFeatures","message":"This endpoint does not support BlobStorageEvents or SoftDelete. Please disable these account features if you would like to use this endpoint.
RequestId:4b5f Time:2026-05-01T00:00:00Z"}}"#,
        );
        assert!(line.contains("Data Lake (dfs) endpoint"), "{line}");
        assert!(
            line.contains("https://ACCOUNT.blob.core.windows.net"),
            "{line}"
        );
        let line = explained(
            404,
            r#"{"error":{"code":"FilesystemNotFound","message":"The specified filesystem does not exist.
RequestId:4b60"}}"#,
        );
        assert!(line.contains("container \"lake\" does not exist"), "{line}");
        assert!(line.contains("Blob endpoint"), "{line}");
        // A hierarchical-namespace account's Blob API refusals (XML bodies).
        let line = explained(
            409,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>BlobOperationNotSupported</Code><Message>Operation is not supported on this scenario.</Message></Error>",
        );
        assert!(line.contains("hierarchical namespace"), "{line}");
        let line = explained(
            400,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>FeatureNotYetSupportedForHierarchicalNamespaceAccounts</Code><Message>This operation is not yet supported for hierarchical namespace accounts.</Message></Error>",
        );
        assert!(
            line.contains("hierarchical namespace (ADLS Gen2)"),
            "{line}"
        );
        assert!(!line.contains('\n'), "one line: {line}");
        // Other backends' codes are not read as Azure's.
        assert_eq!(
            explain(
                Backend::S3,
                &dfs,
                Operation::Write,
                &answer(400, "<Error><Code>BlobOperationNotSupported</Code></Error>")
            ),
            None
        );
    }

    #[cfg(feature = "azure")]
    #[test]
    fn a_runs_storage_error_with_an_account_kind_answer_is_explained_in_one_line() {
        let options = crate::LocationOptions::default().with_storage_options(
            crate::StorageOptions::new()
                .with("azure_storage_account_name", "lake")
                .with("azure_storage_account_key", "a2V5"),
        );
        let location = OutputLocation::parse_with("az://lake/x", options).unwrap();
        let storage = |body: &str| ConvertError::Storage {
            path: "x/contacts/_staging/r/part-00000-r.parquet.inprogress".to_owned(),
            source: answer(409, body),
        };
        // A block upload over an object a Data Lake tool created, mid-run.
        let explained = location.explain(storage(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>BlobOperationNotSupported</Code><Message>Operation is not supported on this scenario.</Message></Error>",
        ));
        let line = explained.to_string();
        assert!(matches!(explained, ConvertError::Access { .. }), "{line}");
        assert!(line.starts_with("cannot write to az://lake/x: "), "{line}");
        assert!(line.contains("hierarchical namespace"), "{line}");
        // Anything else stays the store's error.
        let other = location.explain(storage("<Error><Code>ServerBusy</Code></Error>"));
        assert!(matches!(other, ConvertError::Storage { .. }), "{other}");
    }

    #[test]
    fn probe_names_are_hidden_from_readers() {
        assert!(probe_name().starts_with("_trackly-probe-"));
    }
}
