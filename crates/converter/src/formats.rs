//! The table formats of this build, each one module implementing [`Format`]:
//! [`hive`](crate::hive) for [`TableFormat::Parquet`] and `delta` for `TableFormat::Delta`
//! (feature `delta`). The one place that says which implementation a [`TableFormat`] stands
//! for; nothing else in the converter names a format.

use crate::format::{Format, StagedFile, TableFormat, Uncommitted};
use crate::location::OutputLocation;
use trackly_contacts::TableDefinition;

impl TableFormat {
    /// What this format does where formats differ.
    pub(crate) fn implementation(self) -> &'static dyn Format {
        match self {
            TableFormat::Parquet => &crate::hive::Hive,
            #[cfg(feature = "delta")]
            TableFormat::Delta => &crate::delta::Delta,
        }
    }

    /// After a failed commit, or instead of one: removes (best effort) what a run wrote of
    /// `table` (its finished `files`) outside its staging folder that no reader uses; see
    /// [`Format::discard`]. The staging folder is the caller's to clear.
    pub(crate) async fn discard(
        self,
        location: &OutputLocation,
        table: &'static TableDefinition,
        files: &[StagedFile],
    ) {
        let files = files.iter().map(|f| f.staging.clone()).collect();
        let uncommitted = Uncommitted {
            location,
            table,
            files,
        };
        self.implementation().discard(&uncommitted).await;
    }
}
