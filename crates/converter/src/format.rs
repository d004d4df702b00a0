//! [`TableFormat`]: how a run's files become what readers see.
//!
//! - [`TableFormat::Parquet`] (the default): Hive-style date folders of plain Parquet files,
//!   published with `_manifest.json` and `_SUCCESS` (see [`sink`](crate::sink) and
//!   [`publish`](crate::publish)).
//! - `TableFormat::Delta` (feature `delta`): each table is a Delta Lake table partitioned by
//!   `extract_date`, and a run is one Delta commit per table (see `delta`).

/// How a run is published; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TableFormat {
    /// Hive-style `extract_date=` folders with `_manifest.json` and `_SUCCESS`.
    #[default]
    Parquet,
    /// A Delta Lake table per table, one commit per run (feature `delta`).
    #[cfg(feature = "delta")]
    Delta,
}

impl TableFormat {
    /// Every format this build supports, by name.
    pub const NAMES: &'static [&'static str] = &[
        "parquet",
        #[cfg(feature = "delta")]
        "delta",
    ];

    /// The format's name, as [`FromStr`](std::str::FromStr) takes it.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Parquet => "parquet",
            #[cfg(feature = "delta")]
            TableFormat::Delta => "delta",
        }
    }
}

impl std::fmt::Display for TableFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of [`TableFormat::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a table format of this build (one of: {})", TableFormat::NAMES.join(", "))]
pub struct InvalidTableFormat {
    name: String,
}

impl std::str::FromStr for TableFormat {
    type Err = InvalidTableFormat;

    fn from_str(s: &str) -> Result<TableFormat, InvalidTableFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "parquet" => Ok(TableFormat::Parquet),
            #[cfg(feature = "delta")]
            "delta" => Ok(TableFormat::Delta),
            _ => Err(InvalidTableFormat { name: s.to_owned() }),
        }
    }
}

impl serde::Serialize for TableFormat {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for TableFormat {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_by_name() {
        assert_eq!(
            "parquet".parse::<TableFormat>().unwrap(),
            TableFormat::Parquet
        );
        assert_eq!(TableFormat::default(), TableFormat::Parquet);
        #[cfg(feature = "delta")]
        assert_eq!(
            " Delta ".parse::<TableFormat>().unwrap(),
            TableFormat::Delta
        );
        let err = "iceberg".parse::<TableFormat>().unwrap_err().to_string();
        assert!(err.contains("parquet"), "{err}");
    }
}
