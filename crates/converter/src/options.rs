//! What a run is asked to do: [`SinkOptions`] (date, run id, query) and [`WriterOptions`]
//! (how Parquet files are written, validated into parquet's `WriterProperties`). Settings
//! only: the state of a run lives in the phases that use them.

use std::time::Duration;

use chrono::NaiveDate;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::error::{ConvertError, Result};
use crate::retention::Retention;
use trackly_contacts::table::TableDefinition;

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Zstandard at the given level (1–22; 3 is the default and a good size/speed balance).
    Zstd(i32),
    /// Snappy: faster, larger.
    Snappy,
    /// No compression.
    None,
}

impl Default for Compression {
    fn default() -> Self {
        Compression::Zstd(3)
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Compression::Zstd(level) => write!(f, "zstd({level})"),
            Compression::Snappy => f.write_str("snappy"),
            Compression::None => f.write_str("none"),
        }
    }
}

impl Serialize for Compression {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A codec as [`Compression`]'s `Display` writes it (`zstd(3)`, `snappy`, `none`; `zstd`
/// alone is level 3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Parquet codec (zstd(LEVEL), zstd, snappy, none)")]
pub struct InvalidCompression(String);

impl std::str::FromStr for Compression {
    type Err = InvalidCompression;

    fn from_str(s: &str) -> std::result::Result<Compression, InvalidCompression> {
        let invalid = || InvalidCompression(s.to_owned());
        match s.trim() {
            "snappy" => Ok(Compression::Snappy),
            "none" => Ok(Compression::None),
            "zstd" => Ok(Compression::default()),
            other => other
                .strip_prefix("zstd(")
                .and_then(|rest| rest.strip_suffix(')'))
                .and_then(|level| level.parse().ok())
                .map(Compression::Zstd)
                .ok_or_else(invalid),
        }
    }
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How Parquet files are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterOptions {
    /// Codec for every column (default zstd level 3).
    pub compression: Compression,
    /// Maximum rows per row group (default 131072).
    pub row_group_rows: usize,
    /// Start a new file once this many bytes are written (default 256 MiB).
    pub target_file_bytes: u64,
    /// Write a bloom filter on each table's [`bloom_filter`](trackly_contacts::ColumnHints::bloom_filter) columns
    /// (`phone_number`), for point lookups (default off).
    pub bloom_filter_phone: bool,
    /// Rows the Parquet column writers take at a time (parquet's `write_batch_size`, default
    /// 8192, matching [`DEFAULT_BATCH_SIZE`](trackly_contacts::decode::DEFAULT_BATCH_SIZE)).
    /// Not the rows of an Arrow batch: those are the exporter's `batch_size`. Manifests
    /// written before this field was renamed call it `batch_size`.
    #[serde(alias = "batch_size")]
    pub write_batch_size: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: Compression::default(),
            row_group_rows: 131_072,
            target_file_bytes: 256 * 1024 * 1024,
            bloom_filter_phone: false,
            write_batch_size: trackly_contacts::decode::DEFAULT_BATCH_SIZE,
        }
    }
}

impl WriterOptions {
    /// The Parquet writer properties of `table`'s files under these options: page-level
    /// statistics and page index on, dictionary encoding on except for the table's
    /// [`no_dictionary`](trackly_contacts::ColumnHints::no_dictionary) columns, a bloom filter on its
    /// [`bloom_filter`](trackly_contacts::ColumnHints::bloom_filter) columns when asked, and run metadata in the
    /// footer.
    pub fn writer_properties(
        &self,
        table: &TableDefinition,
        run_id: &str,
        extract_date: NaiveDate,
    ) -> Result<WriterProperties> {
        let invalid = |option, reason: &str| ConvertError::InvalidOption {
            option,
            reason: reason.to_owned(),
        };
        if self.row_group_rows == 0 {
            return Err(invalid("row_group_rows", "must be at least 1"));
        }
        if self.write_batch_size == 0 {
            return Err(invalid("write_batch_size", "must be at least 1"));
        }
        if self.target_file_bytes == 0 {
            return Err(invalid("target_file_bytes", "must be at least 1"));
        }
        let compression = match self.compression {
            Compression::Zstd(level) => {
                ParquetCompression::ZSTD(ZstdLevel::try_new(level).map_err(|_| {
                    invalid(
                        "compression",
                        &format!("{level} is out of range 1..=22 (zstd)"),
                    )
                })?)
            }
            Compression::Snappy => ParquetCompression::SNAPPY,
            Compression::None => ParquetCompression::UNCOMPRESSED,
        };
        let mut builder = WriterProperties::builder()
            .set_compression(compression)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_write_batch_size(self.write_batch_size)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_offset_index_disabled(false)
            .set_dictionary_enabled(true)
            .set_key_value_metadata(Some(vec![
                KeyValue::new("trackly.run_id".into(), run_id.to_owned()),
                KeyValue::new("trackly.extract_date".into(), extract_date.to_string()),
            ]));
        let hints = &table.hints;
        for path in hints.no_dictionary {
            let path = ColumnPath::new(path.iter().map(|p| (*p).to_owned()).collect());
            builder = builder.set_column_dictionary_enabled(path, false);
        }
        let bloom_filters = if self.bloom_filter_phone {
            hints.bloom_filter
        } else {
            &[]
        };
        for column in bloom_filters {
            let column = ColumnPath::from(*column);
            builder = builder
                .set_column_bloom_filter_enabled(column.clone(), true)
                .set_column_bloom_filter_fpp(column.clone(), 0.01)
                .set_column_bloom_filter_max_ndv(column, self.row_group_rows as u64);
        }
        Ok(builder.build())
    }
}

/// What a [`ParquetSink`](crate::ParquetSink) writes and where.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// The date partition (`extract_date=YYYY-MM-DD`) the run replaces.
    pub extract_date: NaiveDate,
    /// The run id: letters, digits, `-`, `_` and `.` (not first), at most 128 characters.
    pub run_id: String,
    /// How files are written.
    pub writer: WriterOptions,
    /// The export's query, recorded in the manifest as is.
    pub query_json: serde_json::Value,
}

/// What follows a run's commit, for every table it commits: the removal of old date folders,
/// and (Delta) the VACUUM. The one owner of their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetentionPolicy {
    /// Date folders older than this are removed (default: none, keep everything).
    pub(crate) retention: Option<Retention>,
    /// For Delta, which keeps the files a commit replaced: how long they are kept before its
    /// VACUUM deletes them (default [`DEFAULT_VACUUM_RETENTION`]; `None`: never). A build
    /// without Delta has nothing to vacuum and keeps no such setting.
    #[cfg(feature = "delta")]
    pub(crate) vacuum_retention: Option<Duration>,
}

impl RetentionPolicy {
    /// No date folder removed; (Delta) a VACUUM after [`DEFAULT_VACUUM_RETENTION`].
    pub(crate) const DEFAULT: RetentionPolicy = RetentionPolicy {
        retention: None,
        #[cfg(feature = "delta")]
        vacuum_retention: Some(DEFAULT_VACUUM_RETENTION),
    };

    /// Sets the VACUUM retention (a build without Delta ignores it: see the field).
    pub(crate) fn set_vacuum_retention(&mut self, retention: Option<Duration>) {
        #[cfg(feature = "delta")]
        {
            self.vacuum_retention = retention;
        }
        #[cfg(not(feature = "delta"))]
        let _ = retention;
    }
}

/// The default of the VACUUM retention: 7 days, Delta's own default
/// (`delta.deletedFileRetentionDuration`).
pub const DEFAULT_VACUUM_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;
    use trackly_contacts::fields::{MAP_ENTRIES, MAP_KEY};
    use trackly_contacts::table::CONTACTS;

    #[test]
    fn writer_options_are_validated() {
        let date = NaiveDate::from_ymd_opt(2025, 4, 2).unwrap();
        let bad = |o: WriterOptions| {
            o.writer_properties(&CONTACTS, "r", date)
                .unwrap_err()
                .to_string()
        };
        let d = WriterOptions::default;
        type Change = fn(&mut WriterOptions);
        let invalid: [(Change, &str); 4] = [
            (|o| o.row_group_rows = 0, "row_group_rows"),
            (|o| o.write_batch_size = 0, "batch_size"),
            (|o| o.target_file_bytes = 0, "target_file_bytes"),
            (|o| o.compression = Compression::Zstd(99), "compression"),
        ];
        for (change, option) in invalid {
            let mut options = d();
            change(&mut options);
            assert!(bad(options).contains(option), "{option}");
        }
        let props = d().writer_properties(&CONTACTS, "r", date).unwrap();
        assert!(!props.dictionary_enabled(&ColumnPath::from("phone_number")));
        assert!(props.dictionary_enabled(&ColumnPath::from("carrier")));
        assert!(!props.dictionary_enabled(&ColumnPath::from("last_sent_at")));
        let custom_field_names = ColumnPath::new(vec![
            "custom_fields".into(),
            MAP_ENTRIES.into(),
            MAP_KEY.into(),
        ]);
        assert!(props.dictionary_enabled(&custom_field_names));
        assert_eq!(props.max_row_group_row_count(), Some(131_072));
        assert_eq!(
            serde_json::to_value(d()).unwrap()["compression"],
            serde_json::json!("zstd(3)")
        );
    }
}
