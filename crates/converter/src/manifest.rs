//! `_manifest.json`: what one run published for one extract date, for humans and tools.
//!
//! ```json
//! {
//!   "format": "trackly-export/contacts-manifest/v1",
//!   "run_id": "0196...", "extract_date": "2025-04-02",
//!   "started_at": "2025-04-02T03:00:00.000000Z", "finished_at": "...",
//!   "query": {"list_number": "+18005551234", "active": true},
//!   "schema": [{"name": "phone_number", "type": "Utf8", "nullable": false}, ...],
//!   "files": [{"path": "contacts/extract_date=2025-04-02/part-00000-0196....parquet",
//!              "rows": 131072, "bytes": 9123456}],
//!   "rows": 131072, "bytes": 9123456,
//!   "fetch_stats": {...},
//!   "rejects": {"count": 0, "file": null},
//!   "writer": {"compression": "zstd(3)", "row_group_rows": 131072, ...}
//! }
//! ```
//!
//! `files[].path` is the object path inside the store (relative to the local directory for a
//! local output); `fetch_stats` and `query` are passed through as the caller gave them.

use serde::Serialize;

use crate::schema::contacts_schema;
use crate::sink::{FileInfo, WriterOptions};

/// The value of the manifest's `format` field.
pub const MANIFEST_FORMAT: &str = "trackly-export/contacts-manifest/v1";

/// The content of `_manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: &'static str,
    /// The run that wrote the files.
    pub run_id: String,
    /// The partition written (`YYYY-MM-DD`).
    pub extract_date: String,
    /// When the sink was created (RFC 3339, UTC).
    pub started_at: String,
    /// When the manifest was written (RFC 3339, UTC).
    pub finished_at: String,
    /// The export's filters, as the caller serialised them.
    pub query: serde_json::Value,
    /// The columns of every file.
    pub schema: Vec<ManifestField>,
    /// The published files, in part order.
    pub files: Vec<FileInfo>,
    /// Rows over all files.
    pub rows: u64,
    /// Bytes over all files.
    pub bytes: u64,
    /// The fetcher's statistics, as the caller gave them.
    pub fetch_stats: serde_json::Value,
    /// What decoding changed within accepted rows (values rounded, undocumented fields kept).
    #[serde(default)]
    pub decode: crate::decode::DecodeStats,
    /// Quarantined records.
    pub rejects: ManifestRejects,
    /// How the files were written.
    pub writer: WriterOptions,
}

/// One column in [`Manifest::schema`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestField {
    /// Column name.
    pub name: String,
    /// Arrow type, as Arrow displays it.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether the column may hold nulls.
    pub nullable: bool,
}

/// The rejects part of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestRejects {
    /// How many records were quarantined.
    pub count: u64,
    /// Object path of the NDJSON file holding them, if any.
    pub file: Option<String>,
}

/// [`contacts_schema`] as manifest fields.
pub fn schema_fields() -> Vec<ManifestField> {
    contacts_schema()
        .fields()
        .iter()
        .map(|f| ManifestField {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_fields_name_every_column_with_a_type() {
        let fields = schema_fields();
        assert_eq!(fields.len(), 21);
        assert_eq!(fields[0].name, "phone_number");
        assert_eq!(fields[0].data_type, "Utf8");
        assert!(!fields[0].nullable);
        assert!(
            fields[6].data_type.contains("Map"),
            "{}",
            fields[6].data_type
        );
        assert!(
            fields[13].data_type.contains("18"),
            "{}",
            fields[13].data_type
        );
    }
}
