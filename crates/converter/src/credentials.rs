//! [`StorageOptions`]: the settings of an object store given beside the environment, as
//! deltalake (`storage_options=`) and Polars (`storage_options=`) take them, so that one map
//! serves the export and the readers of its tables.
//!
//! ```
//! use trackly_converter::StorageOptions;
//!
//! let options = StorageOptions::new()
//!     .with("azure_storage_account_name", "lake")
//!     .with("AZURE_STORAGE_ACCOUNT_KEY", "c2VjcmV0");
//! assert_eq!(options.get("azure_storage_account_key"), Some("c2VjcmV0"));
//! // Values are never printed: only the keys are.
//! assert!(!format!("{options:?}").contains("c2VjcmV0"));
//! ```
//!
//! Keys are object_store's configuration keys (`aws_access_key_id`, `aws_endpoint`,
//! `google_service_account_key`, `azure_storage_account_key`, `azure_storage_use_emulator`,
//! `allow_http`, ...), matched without regard to case, with object_store's aliases. They apply
//! on top of the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`, read by object_store's
//! `from_env`), so an option overrides the variable of the same name. A key the location's
//! backend does not know is refused when the location is parsed.

use std::collections::BTreeMap;
use std::fmt;

/// Object-store settings by key (see the [module docs](self)); values are secrets as far as
/// printing goes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions {
    /// Lower-cased key → value.
    values: BTreeMap<String, String>,
}

impl StorageOptions {
    /// No options: the environment alone configures the store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` (any case) to `value`, replacing an earlier value.
    pub fn with(mut self, key: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Sets `key` (any case) to `value`, replacing an earlier value.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl Into<String>) {
        self.values
            .insert(key.as_ref().trim().to_ascii_lowercase(), value.into());
    }

    /// The value of `key` (any case).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Every option, keys lower-cased, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The keys, for messages (never the values).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }
}

impl fmt::Debug for StorageOptions {
    /// The keys only: values may be keys, tokens or SAS signatures.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.values.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for StorageOptions {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut options = StorageOptions::new();
        for (key, value) in iter {
            options.insert(key, value);
        }
        options
    }
}

impl<K: AsRef<str>, V: Into<String>> Extend<(K, V)> for StorageOptions {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (key, value) in iter {
            self.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_and_later_values_win() {
        let options: StorageOptions = [("AWS_REGION", "eu-west-1"), ("aws_region", "us-east-2")]
            .into_iter()
            .collect();
        assert_eq!(options.get("Aws_Region"), Some("us-east-2"));
        assert_eq!(options.keys().collect::<Vec<_>>(), ["aws_region"]);
    }

    #[test]
    fn debug_shows_keys_not_values() {
        let options = StorageOptions::new().with("aws_secret_access_key", "hunter2");
        let text = format!("{options:?}");
        assert!(text.contains("aws_secret_access_key"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
