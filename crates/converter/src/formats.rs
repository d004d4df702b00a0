//! The table formats of this build, each one module implementing [`Format`]:
//! [`hive`](crate::hive) for [`TableFormat::Parquet`] and `delta` for `TableFormat::Delta`
//! (feature `delta`). The one place that says which implementation a [`TableFormat`] stands
//! for; nothing else in the converter names a format.

use crate::format::{Format, TableFormat};

impl TableFormat {
    /// What this format does where formats differ.
    pub(crate) fn implementation(self) -> &'static dyn Format {
        match self {
            TableFormat::Parquet => &crate::hive::Hive,
            #[cfg(feature = "delta")]
            TableFormat::Delta => &crate::delta::Delta,
        }
    }
}
