//! `_manifest.json`: what one run published for one extract date, for humans and tools.
//!
//! Every table's date folder has one (`contacts/extract_date=…/`, `lists/extract_date=…/`).
//! Its top-level `files`, `rows`, `bytes`, `schema`, `decode` and `rejects` describe that
//! table; `tables` lists every table the run published in the same step (this one included),
//! with their folders, files and rows, so a reader of either finds the other half of the run.
//!
//! ```json
//! {
//!   "format": "trackly-export/contacts-manifest/v1",
//!   "table": "contacts",
//!   "run_id": "0196...", "extract_date": "2025-04-02",
//!   "started_at": "2025-04-02T03:00:00.000000Z", "finished_at": "...",
//!   "query": {"list_number": "+18005551234", "active": true},
//!   "schema": [{"name": "phone_number", "type": "Utf8", "nullable": false}, ...],
//!   "files": [{"path": "contacts/extract_date=2025-04-02/part-00000-0196....parquet",
//!              "rows": 131072, "bytes": 9123456}],
//!   "rows": 131072, "bytes": 9123456,
//!   "fetch_stats": {...},
//!   "rejects": {"count": 0, "file": null},
//!   "writer": {"compression": "zstd(3)", "row_group_rows": 131072, ...},
//!   "tables": [
//!     {"name": "lists", "path": "lists/extract_date=2025-04-02",
//!      "files": [{"path": "lists/extract_date=2025-04-02/part-00000-0196....parquet", ...}],
//!      "rows": 12, "bytes": 4096, "rejects": {"count": 0, "file": null}},
//!     {"name": "contacts", "path": "contacts/extract_date=2025-04-02", "files": [...], ...}
//!   ]
//! }
//! ```
//!
//! The lists table's manifest has the same shape with `"format":
//! "trackly-export/lists-manifest/v1"` and `"table": "lists"`. `files[].path` is the object
//! path inside the store (relative to the local directory for a local output); `fetch_stats`
//! (the whole run's) and `query` are passed through as the caller gave them.
//!
//! A run with retention (`--retain-days`) adds what it removes of the table:
//! `"retention": {"retain_days": 7, "cutoff": "2025-03-26", "removed":
//! ["contacts/extract_date=2025-03-25"]}`, with `left_alone` and `failed` when there are any
//! (see [`retention`](crate::retention)).

use arrow_schema::Schema;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::options::WriterOptions;
use crate::retention::RetentionReport;

/// The content of `_manifest.json`; it reads back with `serde_json::from_slice`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// The table's [`manifest_format`](trackly_contacts::TableDefinition::manifest_format).
    pub format: String,
    /// The table this manifest describes (`contacts`, `lists`): its folder's name.
    pub table: String,
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
    pub decode: trackly_contacts::decode::DecodeStats,
    /// Quarantined records.
    pub rejects: ManifestRejects,
    /// How the files were written.
    pub writer: WriterOptions,
    /// Every table the run published in the same step, this one included, in publication
    /// order: all share `run_id` and `extract_date`.
    pub tables: Vec<ManifestTable>,
    /// The date folders of this table that the run removes once published, under
    /// `--retain-days` (absent without it): see [`retention`](crate::retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RetentionReport>,
}

/// One published Parquet file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Object path inside the store.
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// One table of a run in [`Manifest::tables`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestTable {
    /// The table's name (`contacts`, `lists`).
    pub name: String,
    /// Its date folder (object path), which holds its own `_manifest.json`.
    pub path: String,
    /// Its published Parquet files, in part order.
    pub files: Vec<FileInfo>,
    /// Rows over its files.
    pub rows: u64,
    /// Bytes over its files.
    pub bytes: u64,
    /// Its quarantined records.
    pub rejects: ManifestRejects,
}

/// One column in [`Manifest::schema`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRejects {
    /// How many records were quarantined.
    pub count: u64,
    /// Object path of the NDJSON file holding them, if any.
    pub file: Option<String>,
}

/// A table's schema as manifest fields.
pub fn schema_fields_of(schema: &Schema) -> Vec<ManifestField> {
    schema
        .fields()
        .iter()
        .map(|f| ManifestField {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect()
}

/// A time as every record of a run writes it (manifests, checkpoints, Delta commit metadata):
/// RFC 3339 in UTC, to the microsecond.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_fields_name_every_column_with_a_type() {
        let fields = schema_fields_of(&trackly_contacts::table::CONTACTS.schema());
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
