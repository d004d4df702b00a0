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
//!
//! Anything else stays the store's own error ([`ConvertError::Storage`]). The probe goes
//! through a twin of the location's store with a short retry budget (two retries within ten
//! seconds), so an endpoint that does not answer is reported in seconds.

use std::error::Error as StdError;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

use crate::backend::Backend;
use crate::error::{ConvertError, Result};
use crate::location::{Cloud, OutputLocation};

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
    match error {
        object_store::Error::NotFound { .. } if op == Operation::Write => {
            return Some((
                format!("the {bucket} does not exist at {endpoint}"),
                format!(
                    "create it, or correct its name in the URL{}",
                    if backend == Backend::Azure {
                        " (and the storage account)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        object_store::Error::Unauthenticated { .. }
        | object_store::Error::PermissionDenied { .. } => {
            let code = error_code(&text)
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
            return Some((
                problem,
                "check that the credentials are current and allowed to write, list and delete \
                 under this prefix"
                    .to_owned(),
            ));
        }
        _ => {}
    }
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
    if is_connect_error(error)
        || lower.contains("connection refused")
        || lower.contains("dns error")
    {
        return Some((
            format!("nothing answers at {endpoint}"),
            format!(
                "check the endpoint ({}) and that the network reaches it",
                endpoint_setting(backend)
            ),
        ));
    }
    if lower.contains("timed out") || lower.contains("timeout") {
        return Some((
            format!("{endpoint} did not answer in time"),
            format!(
                "check the endpoint ({}) and that the network reaches it",
                endpoint_setting(backend)
            ),
        ));
    }
    None
}

/// The error and its sources as one text.
fn chain_text(error: &object_store::Error) -> String {
    let mut parts = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = next {
        parts.push(e.to_string());
        next = e.source();
    }
    parts.join(": ")
}

/// Whether a connection could not be made (object_store's own classification).
#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
fn is_connect_error(error: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(http) = e.downcast_ref::<HttpError>() {
            return matches!(http.kind(), HttpErrorKind::Connect);
        }
        next = e.source();
    }
    false
}

#[cfg(not(any(feature = "aws", feature = "gcp", feature = "azure")))]
fn is_connect_error(_: &object_store::Error) -> bool {
    false
}

/// The `<Code>...</Code>` of an S3 or Azure error body (`AccessDenied`,
/// `AuthenticationFailed`, ...), or GCS's JSON `"reason"`.
fn error_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(&text[start..end])
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
    fn probe_names_are_hidden_from_readers() {
        assert!(probe_name().starts_with("_trackly-probe-"));
    }
}
